package dataplane

import (
	"net/netip"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// VXLAN, as Calico's VXLAN mode does it: every node is a VTEP with one
// address per underlay family, one MAC and one VNI; a route to another
// node's pod block names that node's VTEP address and MAC (fib.KindVXLAN).
//
// Encapsulation happens in place: a frame routed into a tunnel gets its
// inner Ethernet header rewritten (local VTEP MAC to remote VTEP MAC) and
// the outer Ethernet, IP, UDP and VXLAN headers written into the headroom
// in front of it, so nothing is copied. The outer header's next hop is the
// FIB's route to the remote VTEP, looked up once per FIB view (vtepCache),
// so the underlay can change (a gateway moves, a link goes) without
// touching the tunnels. Toward an uplink, the datagrams of one inner flow
// leave merged into UDP GSO super-frames at flush (encap.UDPGRO).
//
// Decapsulation happens on the uplinks: UDP to a VTEP address and the VXLAN
// port, with the node's VNI and, inside, a frame for the node's VTEP MAC,
// loses its outer headers (the frame's start moves forward) and the inner
// packet goes through the pipeline as if received on the tunnel, a port of
// its own (Worker.tun) whose replies (ICMP errors, echo replies) are
// routed back rather than sent out of it.
// With the fast path on, the uplink's XDP program decapsulates VXLAN over
// IPv4 for fast-path pods itself (xdpprog.Program.SetDecap), so the worker
// sees only the rest.

// Outer header sizes, the inner Ethernet header included: what a tunnel
// takes from the underlay's MTU (Calico's 1450 and 1430 on a 1500 link).
const (
	vxlanOverhead4 = encap.EthernetLen + encap.VXLAN4EncapLen
	vxlanOverhead6 = encap.EthernetLen + encap.VXLAN6EncapLen
)

// vtepRoute caches the FIB's answer for a remote VTEP in one View.
type vtepRoute struct {
	view   *fib.View
	remote netip.Addr
	idx    fib.Index
}

// VXLAN is the node's VTEP, resolved: what every worker needs per
// packet, copied into each.
type VXLAN struct {
	On   bool
	VNI  uint32
	Port uint16
	MAC  [6]byte
	Has4 bool
	Has6 bool
	Src4 [4]byte
	Src6 [16]byte
}

// SetVXLAN installs the VTEP state and the tunnel's pseudo-port. Runs on
// the worker.
func (w *Worker) SetVXLAN(vx VXLAN) {
	w.vx = vx
	w.tun = &Port{ID: ^uint16(0), Name: "vxlan", Kind: spec.PortUplink, Tunnel: true, MAC: vx.MAC, Worker: w.id, MTU: 1500}
	// ICMP errors about what came out of the tunnel come from the node's
	// VTEP address of the family, or, without one, the pods' gateway.
	w.tun.ICMPSrc4, w.tun.ICMPSrc6 = w.gw4, w.gw6
	if vx.Has4 {
		w.tun.ICMPSrc4 = vx.Src4
	}
	if vx.Has6 {
		w.tun.ICMPSrc6 = vx.Src6
	}
}

// decap4 strips the outer headers of an IPv4 frame p received on an
// uplink if it is VXLAN for this node (ip is its header, addressed to the
// node's VTEP). It returns false, having touched nothing, for UDP to
// another port, which goes on as any packet does; otherwise true, with p
// now the inner frame (ok) or dropped and counted. A non-zero UDP
// checksum must be right (RFC 7348 lets senders leave it zero).
func (w *Worker) decap4(p *port.Packet, ip encap.IPv4) (isVXLAN, ok bool) {
	udp := encap.UDP(ip.Payload())
	if ip.Protocol() != encap.ProtoUDP || len(udp) < encap.UDPLen || udp.DstPort() != w.vx.Port {
		return false, false
	}
	if ip.IsFragment() || !udp.IsValid(len(udp)) {
		w.drop(p, DropBadVXLAN)
		return true, false
	}
	udp = udp[:udp.Length()]
	if c := udp.Checksum(); c != 0 && encap.UDPChecksum4(ip.Src(), ip.Dst(), udp) != c {
		w.drop(p, DropBadVXLAN)
		return true, false
	}
	return true, w.decap(p, udp, encap.EthernetLen+ip.HeaderLen())
}

// decap6 is decap4 for IPv6, where the UDP checksum is mandatory (RFC
// 8200; Linux's vxlan devices send it, and drop zero by default).
func (w *Worker) decap6(p *port.Packet, ip encap.IPv6) (isVXLAN, ok bool) {
	udp := encap.UDP(ip.Payload())
	if ip.NextHeader() != encap.ProtoUDP || len(udp) < encap.UDPLen || udp.DstPort() != w.vx.Port {
		return false, false
	}
	if !udp.IsValid(len(udp)) {
		w.drop(p, DropBadVXLAN)
		return true, false
	}
	udp = udp[:udp.Length()]
	if encap.UDPChecksum6(ip.Src(), ip.Dst(), udp) != udp.Checksum() {
		w.drop(p, DropBadVXLAN)
		return true, false
	}
	return true, w.decap(p, udp, encap.EthernetLen+encap.IPv6Len)
}

// decap checks the VXLAN header in the checked datagram udp, at l4 in p,
// and makes p its inner frame; or drops p and returns false.
func (w *Worker) decap(p *port.Packet, udp encap.UDP, l4 int) bool {
	if d := w.vxlanHeader(udp); d != keep {
		w.drop(p, d)
		return false
	}
	p.Addr += uint64(l4 + encap.UDPLen + encap.VXLANLen)
	p.Len = uint32(len(udp) - encap.UDPLen - encap.VXLANLen)
	w.cnt.event(EvVXLANDecap)
	return true
}

// vxlanHeader checks the VXLAN header behind the UDP header of udp and
// the inner frame's destination: keep, or why to drop the datagram.
func (w *Worker) vxlanHeader(udp encap.UDP) Drop {
	if len(udp) < encap.UDPLen+encap.VXLANLen+encap.EthernetLen || !encap.VXLAN(udp[encap.UDPLen:]).IsValid() {
		return DropBadVXLAN
	}
	if encap.VXLAN(udp[encap.UDPLen:]).VNI() != w.vx.VNI {
		return DropVXLANVNI
	}
	if encap.Ethernet(udp[encap.UDPLen+encap.VXLANLen:]).Dst() != w.vx.MAC {
		return DropVXLANMAC
	}
	return keep
}

// underlay finds how the packet reaches nh's remote VTEP: the output port
// and the adjacency (next hop with the outer L2 rewrite), or nil and why
// not. hash picks among ECMP members.
func (w *Worker) underlay(v *fib.View, nh *fib.NextHop, hash uint32) (*Port, *fib.NextHop, Drop) {
	var dst []byte
	var a4 [4]byte
	var a16 [16]byte
	if nh.Remote.Is4() {
		a4 = nh.Remote.As4()
		dst = a4[:]
	} else {
		a16 = nh.Remote.As16()
		dst = a16[:]
	}
	// The route to a remote VTEP changes only with the FIB, whose every
	// change is a new View: cache the lookup per View.
	c := &w.vtepCache[addrHash(nh.Remote)%uint32(len(w.vtepCache))]
	if c.view != v || c.remote != nh.Remote {
		c.view, c.remote = v, nh.Remote
		if nh.Remote.Is4() {
			c.idx = v.Lookup4(0, a4)
		} else {
			c.idx = v.Lookup6(0, a16)
		}
	}
	idx := c.idx
	if idx == fib.NoRoute {
		return nil, nil, DropNoRoute
	}
	u := v.NextHop(idx)
	if u.Kind == fib.KindECMP {
		u = v.NextHop(v.SelectECMP(idx, hash))
	}
	if u.Kind != fib.KindAdjacency {
		// A tunnel through a tunnel, to a pod, or to the host: not a
		// network the switch encapsulates onto.
		return nil, nil, DropNoRoute
	}
	out, why := w.output(u)
	if out == nil {
		return nil, nil, w.noOutput(u, dst, why)
	}
	return out, u, keep
}

// VXLANOverhead is what tunnel nh adds in front of an inner packet.
func VXLANOverhead(nh *fib.NextHop) int {
	if nh.Remote.Is4() {
		return vxlanOverhead4
	}
	return vxlanOverhead6
}

// encapVXLAN encapsulates the routed frame p (its inner Ethernet header
// already rewritten) into the tunnel r.nh, toward the adjacency r.under,
// with the inner flow's hash r.hash for the UDP source port, and queues it
// on r.out.
func (w *Worker) encapVXLAN(p *port.Packet, r *decision) {
	nh := r.nh
	hl := encap.EthernetLen + encap.VXLAN4EncapLen
	if !nh.Remote.Is4() {
		hl = encap.EthernetLen + encap.VXLAN6EncapLen
	}
	if p.Addr-w.umem.Base(p.Addr) < uint64(hl) {
		w.drop(p, DropNoFrames) // no headroom: cannot happen with port.Headroom
		return
	}
	inner := int(p.Len)
	p.Addr -= uint64(hl)
	p.Len += uint32(hl)
	ob := w.umem.Bytes(p.Addr, int(p.Len))
	oeth := encap.Ethernet(ob)
	oeth.SetDst(r.under.DstMAC)
	oeth.SetSrc(r.under.SrcMAC)
	sport := encap.VXLANSourcePort(r.hash)
	if nh.Remote.Is4() {
		oeth.SetType(encap.EtherTypeIPv4)
		t := encap.VXLANTunnel4{Src: w.vx.Src4, Dst: nh.Remote.As4(), VNI: nh.VNI, Port: w.vx.Port, TTL: vxlanTTL, DF: true}
		encap.EncapVXLAN4(ob[encap.EthernetLen:], &t, sport, inner)
	} else {
		oeth.SetType(encap.EtherTypeIPv6)
		t := encap.VXLANTunnel6{Src: w.vx.Src6, Dst: nh.Remote.As16(), VNI: nh.VNI, Port: w.vx.Port, HopLimit: vxlanTTL}
		encap.EncapVXLAN6(ob[encap.EthernetLen:], &t, sport, inner)
	}
	w.cnt.event(EvVXLANEncap)
	w.emit(p, r.out)
}

// reply queues a frame the switch built or turned around in answer to one
// that came in on in: out of in, or for a frame that came out of a tunnel,
// routed back (into the tunnel, as a rule). The switch built the frame:
// it skips classify's checks and the preRoute stage.
func (w *Worker) reply(p *port.Packet, in *Port) {
	if !in.Tunnel {
		w.emit(p, in)
		return
	}
	v := w.fib.View()
	b := w.umem.Bytes(p.Addr, int(p.Len))
	var d desc
	why := DropLocal
	// The switch built the frame: its addresses are not judged (its
	// source may be the gateway's link-local address).
	switch encap.Ethernet(b).Type() {
	case encap.EtherTypeIPv4:
		if len(b) >= encap.EthernetLen && parse4(b, in, &d) {
			w.forward(p, &d, v, v.Lookup4(0, d.dst4()))
			return
		}
		why = DropBadL3
	case encap.EtherTypeIPv6:
		if len(b) >= encap.EthernetLen && parse6(b, in, &d) {
			w.forward(p, &d, v, v.Lookup6(0, d.dst))
			return
		}
		why = DropBadL3
	}
	w.drop(p, why)
}
