package vswitch

import (
	"net/netip"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/fib"
)

// processLarge runs a vector that came with large frames (GSO super-frames
// from an offloading port). The packets between large frames go through
// process, each large frame through forwardLarge, and what one step queued
// is flushed before the next, so a flow's frames leave in the order they
// came.
func (w *worker) processLarge(pkts []Packet, large []LargeFrame, in *portState) {
	prev := 0
	for i := range large {
		lf := &large[i]
		if lf.At > prev {
			w.process(pkts[prev:lf.At], in)
			prev = lf.At
			w.flush()
		}
		w.forwardLarge(lf, in)
	}
	if prev < len(pkts) {
		w.process(pkts[prev:], in)
	}
}

// forwardLarge routes one large frame. It leaves whole through an
// offloading output port of this worker (its offload header unchanged: the
// switch rewrites neither header lengths nor checksummed fields other than
// the IPv4 header's, which it updates). For a port that takes no
// super-frames, or another worker's, a GSO super-frame is cut into
// segments in Umem frames, as the kernel would cut it, and a large frame
// without GSO is dropped as too big. The frame is the
// port's until its next Receive, so nothing here keeps it.
func (w *worker) forwardLarge(lf *LargeFrame, in *portState) {
	if w.vxlanLarge(lf, in) {
		return
	}
	b := lf.Frame
	in.stats.rxPackets.Add(1)
	in.stats.rxBytes.Add(uint64(len(b)))
	w.cnt.event(EvRxPackets)
	if len(b) < encap.EthernetLen {
		w.cnt.drop(DropBadEthernet)
		return
	}
	eth := encap.Ethernet(b)
	if in.passive && eth.Dst() != in.mac {
		w.cnt.drop(DropLocal)
		return
	}
	var g encap.GSO
	gso := lf.Hdr.GSOType() != encap.GSONone
	if gso {
		var ok bool
		if g, ok = encap.CheckGSO(b, lf.Hdr); !ok {
			w.cnt.drop(DropBadOffload)
			return
		}
	}
	v := w.fib.View()
	var (
		nh  *fib.NextHop
		out *portState
		d   Drop
		ev  Event
		// remote is the destination, for learnRemote.
		remote netip.Addr
	)
	switch eth.Type() {
	case encap.EtherTypeIPv4:
		ip := encap.IPv4(b[encap.EthernetLen:])
		if !ip.IsValid(len(ip)) || !ip.HeaderChecksumValid() {
			w.cnt.drop(DropBadL3)
			return
		}
		b = b[:encap.EthernetLen+int(ip.TotalLength())]
		ip = ip[:ip.TotalLength()]
		dst := ip.Dst()
		if in.gateway && dst == w.gw4 {
			w.cnt.drop(DropLocal)
			return
		}
		if !encap.IsIPv4Forwardable(dst) || !encap.IsIPv4Forwardable(ip.Src()) {
			w.cnt.drop(DropMartian)
			return
		}
		wire := len(ip)
		if gso {
			wire = g.HdrLen - g.L3 + g.Size
		}
		nh, out, d = w.route4(in, eth, ip, v, v.Lookup4(0, dst), wire)
		ev = EvForwarded4
		if in.tcFast {
			remote = netip.AddrFrom4(dst)
		}
	case encap.EtherTypeIPv6:
		ip := encap.IPv6(b[encap.EthernetLen:])
		if !ip.IsValid(len(ip)) {
			w.cnt.drop(DropBadL3)
			return
		}
		b = b[:encap.EthernetLen+encap.IPv6Len+int(ip.PayloadLength())]
		ip = ip[:encap.IPv6Len+int(ip.PayloadLength())]
		dst := ip.Dst()
		if in.gateway && dst == w.gw6 {
			w.cnt.drop(DropLocal)
			return
		}
		if !encap.IsIPv6Forwardable(dst) {
			w.cnt.drop(DropMartian)
			return
		}
		wire := len(ip)
		if gso {
			wire = g.HdrLen - g.L3 + g.Size
		}
		nh, out, d = w.route6(in, eth, ip, v, v.Lookup6(0, dst), wire)
		ev = EvForwarded6
		if in.tcFast {
			remote = netip.AddrFrom16(dst)
		}
	default:
		w.cnt.drop(DropUnknownProto)
		return
	}
	switch {
	case d != keep:
		w.cnt.drop(d)
		return
	case out == nil && nh.Kind == fib.KindPunt:
		// Like punt: the host is the destination, nothing is decremented.
		hp := w.port(w.hostPort)
		if !w.hasHost || hp == nil || hp == in || w.hostMAC == ([6]byte{}) {
			w.cnt.drop(DropPunt)
			return
		}
		eth.SetDst(w.hostMAC)
		eth.SetSrc(w.gwMAC)
		out = hp
	case out == nil:
		// Addressed to the switch itself: nothing it answers is this big.
		w.cnt.drop(DropLocal)
		return
	case nh.Kind == fib.KindVXLAN:
		// Into a tunnel: cut (or copied) into frames, each encapsulated.
		w.cnt.event(ev)
		if in.tcFast {
			w.learnRemote(remote)
		}
		w.sendLarge(b, lf.Hdr, &g, gso, out, nh)
		return
	default:
		eth.SetDst(nh.DstMAC)
		eth.SetSrc(nh.SrcMAC)
		w.cnt.event(ev)
		if in.tcFast && out.kind == PortUplink {
			w.learnRemote(remote)
		}
	}
	w.sendLarge(b, lf.Hdr, &g, gso, out, nil)
}

// sendLarge sends a routed large frame out: whole to an offloading port on
// this worker, else cut into segments (GSO) or, when it fits, copied into
// one Umem frame with its checksum completed. With tun set, each frame goes
// into that VXLAN tunnel (sendVXLAN) instead.
func (w *worker) sendLarge(b []byte, hdr encap.VirtioNetHdr, g *encap.GSO, gso bool, out *portState, tun *fib.NextHop) {
	if tun == nil && out.large != nil && out.worker == w.id {
		if err := out.large.TransmitLarge(b, hdr); err != nil {
			w.cnt.drop(DropRingFull)
			out.stats.txDrops.Add(1)
			return
		}
		out.stats.txPackets.Add(1)
		out.stats.txBytes.Add(uint64(len(b)))
		if gso {
			w.cnt.event(EvGSOWhole)
		}
		return
	}
	room := w.umem.FrameSize() - Headroom
	if !gso {
		if len(b) > room {
			w.cnt.drop(DropMTU)
			return
		}
		a, ok := w.umem.Alloc()
		if !ok {
			w.cnt.drop(DropNoFrames)
			return
		}
		f := w.umem.Frame(a)[Headroom : Headroom+len(b)]
		copy(f, b)
		if hdr.Flags()&encap.VirtioNetHdrFNeedsCsum != 0 {
			if encap.CompleteChecksum(f, int(hdr.CsumStart()), int(hdr.CsumOffset())) != nil {
				w.umem.Free(a)
				w.cnt.drop(DropBadOffload)
				return
			}
		}
		w.emitTo(&Packet{Addr: a + Headroom, Len: uint32(len(b))}, out, tun)
		return
	}
	n := g.Segments(b)
	for i := 0; i < n; i++ {
		if p, ok := w.cut(b, g, i); ok {
			w.emitTo(&p, out, tun)
		}
	}
	w.cnt.event(EvGSOSegmented)
}

// cut puts segment i of the GSO super-frame b into a Umem frame, or
// counts why it cannot (no free frame, a segment that does not fit).
func (w *worker) cut(b []byte, g *encap.GSO, i int) (Packet, bool) {
	a, ok := w.umem.Alloc()
	if !ok {
		w.cnt.drop(DropNoFrames)
		return Packet{}, false
	}
	l := g.Segment(w.umem.Frame(a)[Headroom:], b, i)
	if l == 0 {
		w.umem.Free(a)
		w.cnt.drop(DropMTU)
		return Packet{}, false
	}
	return Packet{Addr: a + Headroom, Len: uint32(l)}, true
}

// emitTo queues p on out, through tunnel tun if it is not nil.
func (w *worker) emitTo(p *Packet, out *portState, tun *fib.NextHop) {
	if tun != nil {
		w.sendVXLAN(p, tun, out)
		return
	}
	w.emit(p, out)
}

// vxlanLarge takes apart a UDP GSO super-frame of datagrams to the node's
// VTEP address, as a steered AF_PACKET uplink receives VXLAN from a sender
// that merged it (another xvsd's UDP GRO, or a NIC's USO, kept whole by
// the network or the kernel's GRO), and runs its datagrams through the
// pipeline, where each is decapsulated. A TCP GSO super-frame to that
// address and the VXLAN port is merged TCP in VXLAN (vxlanLargeTCP). It
// reports whether lf was either; what it does not recognise goes on
// through forwardLarge.
func (w *worker) vxlanLarge(lf *LargeFrame, in *portState) bool {
	b := lf.Frame
	t := lf.Hdr.GSOType() &^ encap.GSOECN
	if !w.vx.on || in.kind != PortUplink || in.tunnel || t == encap.GSONone || len(b) < encap.EthernetLen {
		return false
	}
	var l4 int
	switch eth := encap.Ethernet(b); eth.Type() {
	case encap.EtherTypeIPv4:
		ip := encap.IPv4(b[encap.EthernetLen:])
		if !w.vx.has4 || !ip.IsValid(len(ip)) || ip.Dst() != w.vx.src4 || ip.Protocol() != encap.ProtoUDP || ip.IsFragment() {
			return false
		}
		l4 = encap.EthernetLen + ip.HeaderLen()
	case encap.EtherTypeIPv6:
		ip := encap.IPv6(b[encap.EthernetLen:])
		if !w.vx.has6 || !ip.IsValid(len(ip)) || ip.Dst() != w.vx.src6 || ip.NextHeader() != encap.ProtoUDP {
			return false
		}
		l4 = encap.EthernetLen + encap.IPv6Len
	default:
		return false
	}
	if t != encap.GSOUDPL4 {
		return w.vxlanLargeTCP(lf, l4)
	}
	g, ok := encap.CheckGSO(b, lf.Hdr)
	if !ok || encap.UDP(b[g.L4:]).DstPort() != w.vx.port {
		return false
	}
	n := g.Segments(b)
	for i := 0; i < n; {
		k := 0
		for ; i < n && k < len(w.segs); i++ {
			if p, ok := w.cut(b, &g, i); ok {
				p.Port = in.id
				w.segs[k] = p
				k++
			}
		}
		w.process(w.segs[:k], in)
	}
	w.cnt.event(EvGSOSegmented)
	return true
}

// vxlanLargeTCP takes the inner frame out of lf, TCP in VXLAN to the
// node's VTEP (its outer UDP header at l4) that the kernel's GRO merged
// into one super-frame: an uplink that runs GRO (a NIC's driver) on a
// host with a VXLAN socket on the VXLAN port (xvs.vxlan, or a device of
// the host's own) hands these to the packet socket whole, typed as plain
// TCP GSO. The kernel checked the outer checksums when it merged them.
// The inner super-frame goes through forwardLarge as if it came out of
// the tunnel, its offload header moved with it; it reports whether lf
// was such a frame (dropped and counted if its VXLAN header is wrong).
func (w *worker) vxlanLargeTCP(lf *LargeFrame, l4 int) bool {
	b := lf.Frame
	udp := encap.UDP(b[l4:])
	if len(udp) < encap.UDPLen || udp.DstPort() != w.vx.port {
		return false
	}
	d := w.vxlanHeader(udp)
	if d == keep && int(udp.Length()) != len(udp) {
		d = DropBadVXLAN
	}
	if d != keep {
		w.cnt.drop(d)
		return true
	}
	off := l4 + encap.UDPLen + encap.VXLANLen
	h := lf.Hdr
	hdrLen, start := int(h.HdrLen()), int(h.CsumStart())
	if hdrLen = hdrLen - off; hdrLen < 0 {
		hdrLen = 0 // only a hint
	}
	if h.Flags()&encap.VirtioNetHdrFNeedsCsum != 0 {
		if start -= off; start < encap.EthernetLen {
			w.cnt.drop(DropBadOffload)
			return true
		}
	}
	ih := encap.VirtioNetHdr(w.innerHdr[:])
	ih.Set(h.Flags(), h.GSOType(), uint16(hdrLen), h.GSOSize(), uint16(start), h.CsumOffset())
	w.cnt.event(EvVXLANDecap)
	w.inner = LargeFrame{At: lf.At, Frame: b[off:], Hdr: ih}
	w.forwardLarge(&w.inner, w.tun)
	return true
}
