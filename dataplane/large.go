package dataplane

import (
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// processLarge runs a vector that came with large frames (GSO super-frames
// from an offloading port). The packets between large frames go through
// process, each large frame through forwardLarge, and what one step queued
// is flushed before the next, so a flow's frames leave in the order they
// came.
func (w *Worker) processLarge(pkts []port.Packet, large []port.LargeFrame, in *Port) {
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

// forwardLarge routes one large frame through the steps every frame takes
// (pipeline.go): parsed, admitted, decided and rewritten by the same
// functions as a single frame. It leaves whole through an offloading
// output port of this worker (its offload header unchanged: the switch
// rewrites neither header lengths nor checksummed fields other than the
// IPv4 header's, which it updates). For a port that takes no super-frames,
// or another worker's, a GSO super-frame is cut into segments in Umem
// frames, as the kernel would cut it, and a large frame without GSO is
// dropped as too big. The frame is the port's until its next Receive, so
// nothing here keeps it.
func (w *Worker) forwardLarge(lf *port.LargeFrame, in *Port) {
	if w.vxlanLarge(lf, in) {
		return
	}
	b := lf.Frame
	in.Stats.RxPackets.Add(1)
	in.Stats.RxBytes.Add(uint64(len(b)))
	w.cnt.event(EvRxPackets)
	if why := w.parseL2(b, in); why != keep {
		w.cnt.drop(why)
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
	var d desc
	why := DropUnknownProto
	switch encap.Ethernet(b).Type() {
	case encap.EtherTypeIPv4:
		if !parse4(b, in, &d) {
			why = DropBadL3
			break
		}
		ip := encap.IPv4(b[encap.EthernetLen:])
		b = d.frame
		switch {
		case in.Gateway && d.dst4() == w.gw4:
			// Addressed to the switch: nothing it answers is this big.
			why = DropLocal
		case !encap.IsIPv4Forwardable(d.dst4()) || !encap.IsIPv4Forwardable(ip.Src()):
			why = DropMartian
		default:
			why = keep
		}
	case encap.EtherTypeIPv6:
		if !parse6(b, in, &d) {
			why = DropBadL3
			break
		}
		b = d.frame
		switch {
		case in.Gateway && d.dst == w.gw6:
			why = DropLocal
		case !encap.IsIPv6Forwardable(d.dst):
			why = DropMartian
		default:
			why = keep
		}
	}
	if why == keep {
		d.partial = lf.Hdr.Flags()&encap.VirtioNetHdrFNeedsCsum != 0
		if n := w.natState.Load(); n != nil {
			w.ctNow = n.CT.Now()
		}
		why = w.preRoute(b, &d)
	}
	if why != keep {
		w.cnt.drop(why)
		return
	}
	if gso {
		d.wire = int32(g.HdrLen - g.L3 + g.Size)
	}
	v := w.fib.View()
	eth := encap.Ethernet(b)
	var r decision
	if d.fam == fam4 {
		w.decide4(&d, eth, encap.IPv4(b[d.l3:]), v, v.Lookup4(0, d.dst4()), &r)
	} else {
		w.decide6(&d, eth, encap.IPv6(b[d.l3:]), v, v.Lookup6(0, d.dst), &r)
	}
	switch w.act(b, &d, &r) {
	case actDrop:
		w.cnt.drop(r.drop)
		return
	case actLocal:
		w.cnt.drop(DropLocal)
		return
	case actPort, actTunnel:
		w.cnt.event(d.forwarded())
	}
	w.emitLarge(b, lf.Hdr, &g, &r)
}

// emitLarge sends the routed large frame b (offload header hdr, g its
// GSO layout if it has one) as r says: whole to an offloading port on
// this worker, else cut into segments (GSO) or, when it fits, copied into
// one Umem frame with its checksum completed, each queued (emitRouted,
// through the tunnel for actTunnel).
func (w *Worker) emitLarge(b []byte, hdr encap.VirtioNetHdr, g *encap.GSO, r *decision) {
	out := r.out
	gso := hdr.GSOType() != encap.GSONone
	if r.act != actTunnel && out.Large != nil && out.Worker == w.id {
		if err := out.Large.TransmitLarge(b, hdr); err != nil {
			w.cnt.drop(DropRingFull)
			out.Stats.TxDrops.Add(1)
			return
		}
		out.Stats.TxPackets.Add(1)
		out.Stats.TxBytes.Add(uint64(len(b)))
		if gso {
			w.cnt.event(EvGSOWhole)
		}
		return
	}
	room := w.umem.FrameSize() - port.Headroom
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
		f := w.umem.Frame(a)[port.Headroom : port.Headroom+len(b)]
		copy(f, b)
		if hdr.Flags()&encap.VirtioNetHdrFNeedsCsum != 0 {
			if encap.CompleteChecksum(f, int(hdr.CsumStart()), int(hdr.CsumOffset())) != nil {
				w.umem.Free(a)
				w.cnt.drop(DropBadOffload)
				return
			}
		}
		w.emitRouted(&port.Packet{Addr: a + port.Headroom, Len: uint32(len(b))}, r)
		return
	}
	n := g.Segments(b)
	for i := 0; i < n; i++ {
		if p, ok := w.cut(b, g, i); ok {
			w.emitRouted(&p, r)
		}
	}
	w.cnt.event(EvGSOSegmented)
}

// cut puts segment i of the GSO super-frame b into a Umem frame, or
// counts why it cannot (no free frame, a segment that does not fit).
func (w *Worker) cut(b []byte, g *encap.GSO, i int) (port.Packet, bool) {
	a, ok := w.umem.Alloc()
	if !ok {
		w.cnt.drop(DropNoFrames)
		return port.Packet{}, false
	}
	l := g.Segment(w.umem.Frame(a)[port.Headroom:], b, i)
	if l == 0 {
		w.umem.Free(a)
		w.cnt.drop(DropMTU)
		return port.Packet{}, false
	}
	return port.Packet{Addr: a + port.Headroom, Len: uint32(l)}, true
}

// vxlanLarge takes apart a UDP GSO super-frame of datagrams to the node's
// VTEP address, as a steered AF_PACKET uplink receives VXLAN from a sender
// that merged it (another xvsd's UDP GRO, or a NIC's USO, kept whole by
// the network or the kernel's GRO), and runs its datagrams through the
// pipeline, where each is decapsulated. A TCP GSO super-frame to that
// address and the VXLAN port is merged TCP in VXLAN (vxlanLargeTCP). It
// reports whether lf was either; what it does not recognise goes on
// through forwardLarge.
func (w *Worker) vxlanLarge(lf *port.LargeFrame, in *Port) bool {
	b := lf.Frame
	t := lf.Hdr.GSOType() &^ encap.GSOECN
	if !w.vx.On || in.Kind != spec.PortUplink || in.Tunnel || t == encap.GSONone || len(b) < encap.EthernetLen {
		return false
	}
	var l4 int
	switch eth := encap.Ethernet(b); eth.Type() {
	case encap.EtherTypeIPv4:
		ip := encap.IPv4(b[encap.EthernetLen:])
		if !w.vx.Has4 || !ip.IsValid(len(ip)) || ip.Dst() != w.vx.Src4 || ip.Protocol() != encap.ProtoUDP || ip.IsFragment() {
			return false
		}
		l4 = encap.EthernetLen + ip.HeaderLen()
	case encap.EtherTypeIPv6:
		ip := encap.IPv6(b[encap.EthernetLen:])
		if !w.vx.Has6 || !ip.IsValid(len(ip)) || ip.Dst() != w.vx.Src6 || ip.NextHeader() != encap.ProtoUDP {
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
	if !ok || encap.UDP(b[g.L4:]).DstPort() != w.vx.Port {
		return false
	}
	n := g.Segments(b)
	for i := 0; i < n; {
		k := 0
		// No more than a vector at a time: process's scratch is sized
		// for the batch size.
		for ; i < n && k < min(len(w.segs), w.batch); i++ {
			if p, ok := w.cut(b, &g, i); ok {
				p.Port = in.ID
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
func (w *Worker) vxlanLargeTCP(lf *port.LargeFrame, l4 int) bool {
	b := lf.Frame
	udp := encap.UDP(b[l4:])
	if len(udp) < encap.UDPLen || udp.DstPort() != w.vx.Port {
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
	w.inner = port.LargeFrame{At: lf.At, Frame: b[off:], Hdr: ih}
	w.forwardLarge(&w.inner, w.tun)
	return true
}
