package vswitch

import (
	"net/netip"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/fib"
)

// process runs one received vector through the pipeline: parse and classify
// every frame, look the forwarded ones up in one batch per family, then
// rewrite them in place and queue them on their output ports. Every frame
// ends up either queued (w.emit) or freed and counted (w.drop).
func (w *worker) process(pkts []Packet, in *portState) {
	v := w.fib.View()
	w.n4, w.n6 = 0, 0
	var rxBytes uint64
	for i := range pkts {
		rxBytes += uint64(pkts[i].Len)
		w.classify(&pkts[i], uint16(i), in)
	}
	w.cnt.add(EvRxPackets, len(pkts))
	in.stats.rxPackets.Add(uint64(len(pkts)))
	in.stats.rxBytes.Add(rxBytes)
	if n4 := w.n4; n4 > 0 {
		v.LookupBatch4(0, w.a4[:n4], w.r4[:n4])
		for j := 0; j < n4; j++ {
			i, from := w.i4[j], in
			if i&tunnelIndex != 0 {
				i, from = i&^tunnelIndex, w.tun
			}
			w.forward4(&pkts[i], from, v, w.r4[j])
		}
	}
	if n6 := w.n6; n6 > 0 {
		v.LookupBatch6(0, w.a6[:n6], w.r6[:n6])
		for j := 0; j < n6; j++ {
			i, from := w.i6[j], in
			if i&tunnelIndex != 0 {
				i, from = i&^tunnelIndex, w.tun
			}
			w.forward6(&pkts[i], from, v, w.r6[j])
		}
	}
}

// classify parses frame p, number i of its vector, received on in: it
// answers or drops what is for the switch itself, and queues what is to be
// forwarded for the batch lookup (w.a4/w.i4, w.a6/w.i6). A VXLAN frame for
// the node is decapsulated and its inner frame classified as received on
// the tunnel.
func (w *worker) classify(p *Packet, i uint16, in *portState) {
	b := w.umem.Bytes(p.Addr, int(p.Len))
	if len(b) < encap.EthernetLen {
		w.drop(p, DropBadEthernet)
		return
	}
	eth := encap.Ethernet(b)
	if in.passive && eth.Dst() != in.mac {
		// The kernel got this one too; it is not for us to forward.
		w.drop(p, DropLocal)
		return
	}
	if in.needLearn {
		w.learn(in, eth.Src())
	}
	switch eth.Type() {
	case encap.EtherTypeIPv4:
		ip := encap.IPv4(b[encap.EthernetLen:])
		if !ip.IsValid(len(ip)) || !ip.HeaderChecksumValid() {
			w.drop(p, DropBadL3)
			return
		}
		p.Len = uint32(encap.EthernetLen + int(ip.TotalLength()))
		dst := ip.Dst()
		if w.vx.has4 && in.kind == PortUplink && !in.tunnel && dst == w.vx.src4 {
			if isVXLAN, ok := w.decap4(p, ip); isVXLAN {
				if ok {
					w.classify(p, i|tunnelIndex, w.tun)
				}
				return
			}
		}
		if in.gateway && dst == w.gw4 {
			w.local4(p, in, eth, ip)
			return
		}
		if !encap.IsIPv4Forwardable(dst) || !encap.IsIPv4Forwardable(ip.Src()) {
			w.drop(p, DropMartian)
			return
		}
		w.a4[w.n4], w.i4[w.n4] = dst, i
		w.n4++
	case encap.EtherTypeIPv6:
		ip := encap.IPv6(b[encap.EthernetLen:])
		if !ip.IsValid(len(ip)) {
			w.drop(p, DropBadL3)
			return
		}
		p.Len = uint32(encap.EthernetLen + encap.IPv6Len + int(ip.PayloadLength()))
		dst := ip.Dst()
		if w.vx.has6 && in.kind == PortUplink && !in.tunnel && dst == w.vx.src6 {
			if isVXLAN, ok := w.decap6(p, ip); isVXLAN {
				if ok {
					w.classify(p, i|tunnelIndex, w.tun)
				}
				return
			}
		}
		if ip.NextHeader() == encap.ProtoICMPv6 && w.icmp6Local(p, in, eth, ip) {
			return
		}
		if in.gateway && dst == w.gw6 {
			w.drop(p, DropLocal)
			return
		}
		if !encap.IsIPv6Forwardable(dst) {
			if dst[0] == 0xff {
				// Link-scope multicast (MLD reports and the like) is for
				// the link, which the switch does not take part in.
				w.drop(p, DropLocal)
			} else {
				w.drop(p, DropMartian)
			}
			return
		}
		w.a6[w.n6], w.i6[w.n6] = dst, i
		w.n6++
	case encap.EtherTypeARP:
		w.arp(p, in, eth, b[encap.EthernetLen:])
	default:
		w.drop(p, DropUnknownProto)
	}
}

func (w *worker) forward4(p *Packet, in *portState, v *fib.View, idx fib.Index) {
	b := w.umem.Bytes(p.Addr, int(p.Len))
	eth := encap.Ethernet(b)
	ip := encap.IPv4(b[encap.EthernetLen:])
	nh, out, d := w.route4(in, eth, ip, v, idx, int(ip.TotalLength()))
	switch {
	case d != keep:
		w.drop(p, d)
	case out != nil && nh.Kind == fib.KindVXLAN:
		if in.tcFast {
			w.learnRemote(netip.AddrFrom4(ip.Dst()))
		}
		w.cnt.event(EvForwarded4)
		w.sendVXLAN(p, nh, out)
	case out != nil:
		if in.tcFast && out.kind == PortUplink {
			w.learnRemote(netip.AddrFrom4(ip.Dst()))
		}
		w.send(p, eth, nh, out, EvForwarded4)
	case nh.Kind == fib.KindLocal:
		w.local4(p, in, eth, ip)
	default:
		w.punt(p, in, eth)
	}
}

// keep is route4's and route6's "not dropped".
const keep = NumDrops

// route4 decides where the IPv4 packet ip, routed by idx, goes. It returns
// the next hop and output port, with the TTL decremented; or a local or punt
// next hop and no port, for the caller to deliver; or a drop reason, having
// sent the ICMP error that is due. wire is the size of the largest IP packet
// the frame becomes on the wire: a GSO super-frame's segments are smaller
// than it.
func (w *worker) route4(in *portState, eth encap.Ethernet, ip encap.IPv4, v *fib.View, idx fib.Index, wire int) (*fib.NextHop, *portState, Drop) {
	if idx == fib.NoRoute {
		w.icmpError4(in, eth, ip, encap.ICMPv4DestUnreachable, encap.ICMPv4NetUnreachable, 0)
		return nil, nil, DropNoRoute
	}
	nh := v.NextHop(idx)
	if nh.Kind == fib.KindECMP {
		nh = v.NextHop(v.SelectECMP(idx, encap.FlowHash4(ip)))
	}
	switch nh.Kind {
	case fib.KindPort, fib.KindAdjacency, fib.KindVXLAN:
	case fib.KindLocal, fib.KindPunt:
		return nh, nil, keep
	default: // blackhole
		return nil, nil, DropNoRoute
	}
	if ip.TTL() <= 1 {
		w.icmpError4(in, eth, ip, encap.ICMPv4TimeExceeded, 0, 0)
		return nil, nil, DropTTL
	}
	if nh.Kind == fib.KindVXLAN {
		w.vxHash = encap.FlowHash4(ip)
	}
	out, mtu, why := w.egress(v, nh, ip.DstBytes())
	if out == nil {
		if why == DropPortDown || why == DropNoRoute {
			w.icmpError4(in, eth, ip, encap.ICMPv4DestUnreachable, encap.ICMPv4HostUnreachable, 0)
		}
		return nil, nil, why
	}
	if wire > mtu {
		if ip.DF() {
			w.icmpError4(in, eth, ip, encap.ICMPv4DestUnreachable, encap.ICMPv4FragNeeded, uint16(mtu))
		}
		return nil, nil, DropMTU
	}
	ip.DecTTL()
	return nh, out, keep
}

func (w *worker) forward6(p *Packet, in *portState, v *fib.View, idx fib.Index) {
	b := w.umem.Bytes(p.Addr, int(p.Len))
	eth := encap.Ethernet(b)
	ip := encap.IPv6(b[encap.EthernetLen:])
	nh, out, d := w.route6(in, eth, ip, v, idx, encap.IPv6Len+int(ip.PayloadLength()))
	switch {
	case d != keep:
		w.drop(p, d)
	case out != nil && nh.Kind == fib.KindVXLAN:
		if in.tcFast {
			w.learnRemote(netip.AddrFrom16(ip.Dst()))
		}
		w.cnt.event(EvForwarded6)
		w.sendVXLAN(p, nh, out)
	case out != nil:
		if in.tcFast && out.kind == PortUplink {
			w.learnRemote(netip.AddrFrom16(ip.Dst()))
		}
		w.send(p, eth, nh, out, EvForwarded6)
	case nh.Kind == fib.KindLocal:
		w.local6(p, in, eth, ip)
	default:
		w.punt(p, in, eth)
	}
}

// route6 is route4 for IPv6.
func (w *worker) route6(in *portState, eth encap.Ethernet, ip encap.IPv6, v *fib.View, idx fib.Index, wire int) (*fib.NextHop, *portState, Drop) {
	if idx == fib.NoRoute {
		w.icmpError6(in, eth, ip, encap.ICMPv6DestUnreachable, encap.ICMPv6NoRoute, 0)
		return nil, nil, DropNoRoute
	}
	nh := v.NextHop(idx)
	if nh.Kind == fib.KindECMP {
		nh = v.NextHop(v.SelectECMP(idx, encap.FlowHash6(ip)))
	}
	switch nh.Kind {
	case fib.KindPort, fib.KindAdjacency, fib.KindVXLAN:
	case fib.KindLocal, fib.KindPunt:
		return nh, nil, keep
	default:
		return nil, nil, DropNoRoute
	}
	if ip.HopLimit() <= 1 {
		w.icmpError6(in, eth, ip, encap.ICMPv6TimeExceeded, 0, 0)
		return nil, nil, DropTTL
	}
	if nh.Kind == fib.KindVXLAN {
		w.vxHash = encap.FlowHash6(ip)
	}
	out, mtu, why := w.egress(v, nh, ip.DstBytes())
	if out == nil {
		if why == DropPortDown || why == DropNoRoute {
			w.icmpError6(in, eth, ip, encap.ICMPv6DestUnreachable, encap.ICMPv6AddressUnreachable, 0)
		}
		return nil, nil, why
	}
	if wire > mtu {
		w.icmpError6(in, eth, ip, encap.ICMPv6PacketTooBig, 0, uint32(mtu))
		return nil, nil, DropMTU
	}
	ip.SetHopLimit(ip.HopLimit() - 1)
	return nh, out, keep
}

// egress returns the port a packet routed by nh leaves by and the largest
// IP packet it may be there, or nil and why not: for a tunnel, the
// underlay's port (w.under its adjacency, found with w.vxHash) and its MTU
// less the tunnel's overhead; else output's port and its MTU.
func (w *worker) egress(v *fib.View, nh *fib.NextHop, dst []byte) (*portState, int, Drop) {
	if nh.Kind == fib.KindVXLAN {
		out, why := w.underlay(v, nh, w.vxHash)
		if out == nil {
			return nil, 0, why
		}
		return out, out.mtu - vxlanOverhead(nh), keep
	}
	out, why := w.output(nh, dst)
	if out == nil {
		return nil, 0, why
	}
	return out, out.mtu, keep
}

// output returns the port a packet routed by nh leaves by, or nil and why
// not: the port is gone, or the neighbour is not resolved yet (then the
// control plane is asked to resolve it: the gateway, or for an attached
// route the destination itself, whose bytes dst are).
func (w *worker) output(nh *fib.NextHop, dst []byte) (*portState, Drop) {
	out := w.port(nh.Port)
	if out == nil {
		return nil, DropPortDown
	}
	if !nh.Resolved {
		via := nh.Via
		if !via.IsValid() {
			via, _ = netip.AddrFromSlice(dst)
		}
		w.glean(nh.Port, via)
		return nil, DropNoNeighbor
	}
	return out, 0
}

// send rewrites a forwarded packet's Ethernet header from nh and queues it.
func (w *worker) send(p *Packet, eth encap.Ethernet, nh *fib.NextHop, out *portState, ev Event) {
	eth.SetDst(nh.DstMAC)
	eth.SetSrc(nh.SrcMAC)
	w.cnt.event(ev)
	w.emit(p, out)
}

// punt hands a packet for the host (a node address) to the host port.
// The host is the packet's destination, so nothing is decremented: to the
// sender the switch and the host are one node.
func (w *worker) punt(p *Packet, in *portState, eth encap.Ethernet) {
	hp := w.port(w.hostPort)
	if !w.hasHost || hp == nil || hp == in || w.hostMAC == ([6]byte{}) {
		w.drop(p, DropPunt)
		return
	}
	eth.SetDst(w.hostMAC)
	eth.SetSrc(w.gwMAC)
	w.emit(p, hp)
}

// local4 handles IPv4 addressed to the switch: it answers echo requests.
func (w *worker) local4(p *Packet, in *portState, eth encap.Ethernet, ip encap.IPv4) {
	if in.passive || ip.Protocol() != encap.ProtoICMP || ip.FragmentOffset() != 0 || ip.MoreFragments() {
		w.drop(p, DropLocal)
		return
	}
	if len(ip.Payload()) < encap.ICMPv4Len || !encap.EchoToReply4(ip, 64) {
		w.drop(p, DropLocal)
		return
	}
	eth.SetDst(eth.Src())
	eth.SetSrc(in.mac)
	w.cnt.event(EvEchoReplies)
	w.reply(p, in)
}

// local6 answers echo requests addressed to the switch.
func (w *worker) local6(p *Packet, in *portState, eth encap.Ethernet, ip encap.IPv6) {
	if in.passive || ip.NextHeader() != encap.ProtoICMPv6 {
		w.drop(p, DropLocal)
		return
	}
	if len(ip.Payload()) < encap.ICMPv6Len || !encap.EchoToReply6(ip, 64) {
		w.drop(p, DropLocal)
		return
	}
	eth.SetDst(eth.Src())
	eth.SetSrc(in.mac)
	w.cnt.event(EvEchoReplies)
	w.reply(p, in)
}

// icmp6Local handles the ICMPv6 the switch answers itself: neighbour
// solicitations for the gateway (proxy NDP on pod ports) and echo requests to
// the gateway. It reports whether it took the packet.
func (w *worker) icmp6Local(p *Packet, in *portState, eth encap.Ethernet, ip encap.IPv6) bool {
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
		if in.gateway && ip.Dst() == w.gw6 {
			w.local6(p, in, eth, ip)
			return true
		}
		return false
	default:
		return false
	}
	if in.passive || !in.gateway {
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
	if target == in.own6 {
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
func (w *worker) arp(p *Packet, in *portState, eth encap.Ethernet, body []byte) {
	a := encap.ARP(body)
	if !a.IsValid() {
		w.drop(p, DropBadARP)
		return
	}
	if in.passive || !in.gateway {
		w.drop(p, DropLocal)
		return
	}
	if a.Op() != encap.ARPRequest {
		w.drop(p, DropLocal)
		return
	}
	tpa, spa := a.TPA(), a.SPA()
	if tpa == in.own4 || tpa == spa || tpa == ([4]byte{}) {
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
func (w *worker) icmpError4(in *portState, eth encap.Ethernet, ip encap.IPv4, typ, code uint8, mtu uint16) {
	if in.passive || !encap.ICMPv4ErrorAllowed(ip) {
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
	fb := w.umem.Frame(f)[Headroom:]
	oeth := encap.Ethernet(fb)
	oeth.SetDst(eth.Src())
	oeth.SetSrc(in.mac)
	oeth.SetType(encap.EtherTypeIPv4)
	n := encap.BuildICMPv4Error(fb[encap.EthernetLen:], in.icmpSrc4, src, typ, code, mtu, ip[:ip.TotalLength()], 64)
	if n == 0 {
		w.umem.Free(f)
		return
	}
	w.cnt.event(EvICMPErrors)
	w.reply(&Packet{Addr: f + Headroom, Len: uint32(encap.EthernetLen + n)}, in)
}

// icmpError6 is icmpError4 for IPv6 (RFC 4443 2.4: no errors about errors,
// nor to multicast or unspecified sources).
func (w *worker) icmpError6(in *portState, eth encap.Ethernet, ip encap.IPv6, typ, code uint8, mtu uint32) {
	if in.passive || !encap.ICMPv6ErrorAllowed(ip, typ) {
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
	fb := w.umem.Frame(f)[Headroom:]
	oeth := encap.Ethernet(fb)
	oeth.SetDst(eth.Src())
	oeth.SetSrc(in.mac)
	oeth.SetType(encap.EtherTypeIPv6)
	n := encap.BuildICMPv6Error(fb[encap.EthernetLen:], in.icmpSrc6, src, typ, code, mtu, ip[:encap.IPv6Len+int(ip.PayloadLength())], 64)
	if n == 0 {
		w.umem.Free(f)
		return
	}
	w.cnt.event(EvICMPErrors)
	w.reply(&Packet{Addr: f + Headroom, Len: uint32(encap.EthernetLen + n)}, in)
}
