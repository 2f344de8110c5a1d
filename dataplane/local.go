package dataplane

import (
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
)

// What the switch itself answers or takes: ARP and neighbour discovery on
// pod ports, echo requests to its addresses, and the ICMP errors it sends
// about packets it cannot forward. Each handler consumes the frame: it is
// turned around and queued, or freed and counted.

// local4 handles IPv4 addressed to the switch: it answers echo requests.
func (w *Worker) local4(p *port.Packet, in *Port, eth encap.Ethernet, ip encap.IPv4) {
	if in.Passive || ip.Protocol() != encap.ProtoICMP || ip.FragmentOffset() != 0 || ip.MoreFragments() {
		w.drop(p, DropLocal)
		return
	}
	if len(ip.Payload()) < encap.ICMPv4Len || !encap.EchoToReply4(ip, 64) {
		w.drop(p, DropLocal)
		return
	}
	eth.SetDst(eth.Src())
	eth.SetSrc(in.MAC)
	w.cnt.event(EvEchoReplies)
	w.reply(p, in)
}

// local6 answers echo requests addressed to the switch.
func (w *Worker) local6(p *port.Packet, in *Port, eth encap.Ethernet, ip encap.IPv6) {
	if in.Passive || ip.NextHeader() != encap.ProtoICMPv6 {
		w.drop(p, DropLocal)
		return
	}
	if len(ip.Payload()) < encap.ICMPv6Len || !encap.EchoToReply6(ip, 64) {
		w.drop(p, DropLocal)
		return
	}
	eth.SetDst(eth.Src())
	eth.SetSrc(in.MAC)
	w.cnt.event(EvEchoReplies)
	w.reply(p, in)
}

// icmp6Local handles the ICMPv6 the switch answers itself: neighbour
// solicitations for the gateway (proxy NDP on pod ports) and echo requests to
// the gateway. It reports whether it took the packet.
func (w *Worker) icmp6Local(p *port.Packet, in *Port, eth encap.Ethernet, ip encap.IPv6) bool {
	icmp := encap.ICMPv6(ip.Payload())
	if len(icmp) < encap.ICMPv6Len {
		w.drop(p, DropBadNDP)
		return true
	}
	switch icmp.Type() {
	case encap.ICMPv6NeighborSolicit:
	case encap.ICMPv6RouterSolicit, encap.ICMPv6RouterAdvert, encap.ICMPv6NeighborAdvert, 137 /* redirect */ :
		w.drop(p, DropLocal)
		return true
	case encap.ICMPv6EchoRequest:
		if in.Gateway && ip.Dst() == w.gw6 {
			w.local6(p, in, eth, ip)
			return true
		}
		return false
	default:
		return false
	}
	if in.Passive || !in.Gateway {
		// The uplink's neighbours are the kernel's business.
		w.drop(p, DropLocal)
		return true
	}
	src := ip.Src()
	if ip.HopLimit() != 255 || icmp.Code() != 0 || len(icmp) < 24 ||
		encap.ICMPv6Checksum(src, ip.Dst(), icmp) != icmp.Checksum() {
		w.drop(p, DropBadNDP)
		return true
	}
	target := icmp.NDPTarget()
	if target[0] == 0xff {
		w.drop(p, DropBadNDP)
		return true
	}
	if target == in.Own6 {
		// The pod checking its own address (DAD): stay quiet.
		w.drop(p, DropLocal)
		return true
	}
	dstMAC := eth.Src()
	dst := src
	solicited := true
	if src == ([16]byte{}) {
		dst = allNodes
		dstMAC = allNodesMAC
		solicited = false
	}
	frame := w.umem.Frame(p.Addr)
	off := int(p.Addr - w.umem.Base(p.Addr))
	n := encap.BuildNeighborAdvert(frame[off+encap.EthernetLen:], target, dst, target, w.gwMAC, solicited, true)
	if n == 0 {
		w.drop(p, DropBadNDP)
		return true
	}
	eth.SetDst(dstMAC)
	eth.SetSrc(w.gwMAC)
	eth.SetType(encap.EtherTypeIPv6)
	p.Len = uint32(encap.EthernetLen + n)
	w.cnt.event(EvNDPAdverts)
	w.emit(p, in)
	return true
}

var (
	allNodes    = [16]byte{0xff, 0x02, 15: 1}
	allNodesMAC = [6]byte{0x33, 0x33, 0, 0, 0, 1}
)

// arp answers ARP requests on pod ports for any address but the pod's own
// (proxy ARP, so the pod's gateway 169.254.1.1 resolves to the switch).
func (w *Worker) arp(p *port.Packet, in *Port, eth encap.Ethernet, body []byte) {
	a := encap.ARP(body)
	if !a.IsValid() {
		w.drop(p, DropBadARP)
		return
	}
	if in.Passive || !in.Gateway {
		w.drop(p, DropLocal)
		return
	}
	if a.Op() != encap.ARPRequest {
		w.drop(p, DropLocal)
		return
	}
	tpa, spa := a.TPA(), a.SPA()
	if tpa == in.Own4 || tpa == spa || tpa == ([4]byte{}) {
		// Gratuitous ARP or address probe for the pod's own address.
		w.drop(p, DropLocal)
		return
	}
	sha := a.SHA()
	a.SetOp(encap.ARPReply)
	a.SetTHA(sha)
	a.SetTPA(spa)
	a.SetSHA(w.gwMAC)
	a.SetSPA(tpa)
	eth.SetDst(sha)
	eth.SetSrc(w.gwMAC)
	p.Len = uint32(encap.EthernetLen + encap.ARPLen)
	w.cnt.event(EvARPReplies)
	w.emit(p, in)
}

// icmpError4 sends an ICMP error about ip back out of in, built in a fresh
// frame; the caller still drops the original. RFC 1812 4.3.2.7: no errors
// about ICMP errors, non-first fragments, or non-unicast sources.
func (w *Worker) icmpError4(in *Port, eth encap.Ethernet, ip encap.IPv4, typ, code uint8, mtu uint16) {
	if in.Passive || !encap.ICMPv4ErrorAllowed(ip) {
		return
	}
	src := ip.Src()
	if !w.icmpAllow() {
		w.cnt.drop(DropICMPRateLimit)
		return
	}
	f, ok := w.umem.Alloc()
	if !ok {
		w.cnt.drop(DropNoFrames)
		return
	}
	fb := w.umem.Frame(f)[port.Headroom:]
	oeth := encap.Ethernet(fb)
	oeth.SetDst(eth.Src())
	oeth.SetSrc(in.MAC)
	oeth.SetType(encap.EtherTypeIPv4)
	n := encap.BuildICMPv4Error(fb[encap.EthernetLen:], in.ICMPSrc4, src, typ, code, mtu, ip[:ip.TotalLength()], 64)
	if n == 0 {
		w.umem.Free(f)
		return
	}
	w.cnt.event(EvICMPErrors)
	w.reply(&port.Packet{Addr: f + port.Headroom, Len: uint32(encap.EthernetLen + n)}, in)
}

// icmpError6 is icmpError4 for IPv6 (RFC 4443 2.4: no errors about errors,
// nor to multicast or unspecified sources).
func (w *Worker) icmpError6(in *Port, eth encap.Ethernet, ip encap.IPv6, typ, code uint8, mtu uint32) {
	if in.Passive || !encap.ICMPv6ErrorAllowed(ip, typ) {
		return
	}
	src := ip.Src()
	if !w.icmpAllow() {
		w.cnt.drop(DropICMPRateLimit)
		return
	}
	f, ok := w.umem.Alloc()
	if !ok {
		w.cnt.drop(DropNoFrames)
		return
	}
	fb := w.umem.Frame(f)[port.Headroom:]
	oeth := encap.Ethernet(fb)
	oeth.SetDst(eth.Src())
	oeth.SetSrc(in.MAC)
	oeth.SetType(encap.EtherTypeIPv6)
	n := encap.BuildICMPv6Error(fb[encap.EthernetLen:], in.ICMPSrc6, src, typ, code, mtu, ip[:encap.IPv6Len+int(ip.PayloadLength())], 64)
	if n == 0 {
		w.umem.Free(f)
		return
	}
	w.cnt.event(EvICMPErrors)
	w.reply(&port.Packet{Addr: f + port.Headroom, Len: uint32(encap.EthernetLen + n)}, in)
}
