package dataplane

import (
	"net/netip"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// The forwarding path, single frames and super-frames alike:
//
//	classify  parse the frame once into a desc (parseL2, parse4/6, which
//	          also judge whether its addresses may be routed), answer or
//	          drop what is for the switch itself, admit the rest
//	preRoute  stage slot: DNAT, ingress policy
//	decide    one FIB lookup and decision per family (decide4, decide6),
//	          returned as a decision
//	postRoute stage slot: SNAT, egress policy
//	act       what the decision means for the frame (action): the tc fast
//	          path's learning, the host port for a punt, the Ethernet
//	          header rewritten for the next hop
//	emit      queued on the output port (emit; encapVXLAN encapsulates
//	          first; large.go sends super-frames whole or cut)
//
// process does it for a vector of frames, with the lookups batched per
// family; forwardLarge (large.go) for one super-frame. Both call the same
// functions for each step.
//
// The stage slots, empty for now, are where what changes packets goes:
//   - preRoute, after classify and before the lookup: DNAT (services) and
//     ingress policy. It may rewrite the IP and transport headers and then
//     must set desc.dst, the lookup's key.
//   - postRoute, after the decision and before the rewrite: SNAT
//     (natOutgoing) and egress policy. It may rewrite source address and
//     port, or drop (decision.drop); it leaves the next hop and ports alone.
//
// A NAT stage sees a GSO super-frame as one frame: its one IP and
// transport header stand for every segment, so rewriting them once is
// enough, as long as the checksums are kept the way the offload header
// says. With VirtioNetHdrFNeedsCsum (every GSO frame) the transport
// checksum field holds only the pseudo-header sum: a changed address is
// folded into it incrementally (RFC 1624), a changed port is not (it lies
// past CsumStart and is summed when the checksum is completed), and
// nothing is recomputed over the payload; the IPv4 header checksum is
// updated as for any frame. Whoever cuts it (encap.GSO, the NIC, the
// kernel) then carries the rewritten headers into every segment. A stage
// that needs the payload (an ALG) cannot work on a super-frame whole and
// must cut it first.
//
// The BPF fast path follows one rule: a flow the BPF programs cannot
// decide goes to the workers. A program forwards only what its maps say
// (pod to pod, learned remote destinations) and passes the rest up. When
// NAT or policy stages hold state, a fast-path program must either apply
// the same decision from a map the control plane fills, or leave the
// flow to the workers (the learnRemote request is made after postRoute,
// so a stage that drops or rewrites a flow can also keep it out of tc).

// family is a descriptor's network protocol.
type family uint8

const (
	famNone family = iota // not IP: ARP or unknown
	famARP
	fam4
	fam6
)

// desc is what classify learned about a frame, parsed once: every later
// stage reads it instead of parsing the frame again.
type desc struct {
	// in is the port the frame came in on: for a frame that came out of
	// a tunnel, the tunnel's pseudo-port (in.tunnel set).
	in *Port
	// frame is the frame's bytes, from its Ethernet header to the IP
	// packet's end (l3+ipLen): in Umem for a single frame, in the port's
	// buffer for a large one. Later stages read and rewrite the frame
	// through it rather than finding it again.
	frame []byte
	fam   family
	l3    uint16 // the IP header's offset in the frame
	l4    uint16 // the transport header's offset (IPv6: behind the fixed header)
	// ipLen is the IP packet's length, header included.
	ipLen uint16
	// wire is the largest IP packet the frame becomes on the wire: ipLen,
	// or for a GSO super-frame the size of one segment.
	wire int32
	// dst is the destination address, the FIB's key (IPv4 in dst[:4]).
	// A DNAT stage that rewrites the destination updates it.
	dst [16]byte
	// partial: a GSO super-frame whose transport checksum holds only the
	// pseudo-header sum (the NAT stage's rewrite must know).
	partial bool
	// natDone: the NAT stage translated the frame (postRoute's SNAT and
	// the tc fast path's learning leave it alone).
	natDone bool
}

// dst4 is d's IPv4 destination.
func (d *desc) dst4() [4]byte { return [4]byte(d.dst[:4]) }

// dstAddr is d's destination as an address.
func (d *desc) dstAddr() netip.Addr {
	if d.fam == fam4 {
		return netip.AddrFrom4(d.dst4())
	}
	return netip.AddrFrom16(d.dst)
}

// forwarded is the event counting a routed frame of d's family.
func (d *desc) forwarded() Event {
	if d.fam == fam4 {
		return EvForwarded4
	}
	return EvForwarded6
}

// process runs one received vector through the pipeline: parse and classify
// every frame, look the forwarded ones up in one batch per family, then
// rewrite them in place and queue them on their output ports. Every frame
// ends up either queued (w.emit) or freed and counted (w.drop).
func (w *Worker) process(pkts []port.Packet, in *Port) {
	v := w.fib.View()
	if n := w.natState.Load(); n != nil {
		w.ctNow = n.CT.Now()
	}
	var rxBytes uint64
	descs := w.descs[:len(pkts)]
	n4, n6 := 0, 0
	for i := range pkts {
		rxBytes += uint64(pkts[i].Len)
		switch w.classify(&pkts[i], in, &descs[i]) {
		case fam4:
			w.a4[n4], w.i4[n4] = descs[i].dst4(), uint16(i)
			n4++
		case fam6:
			w.a6[n6], w.i6[n6] = descs[i].dst, uint16(i)
			n6++
		}
	}
	w.cnt.add(EvRxPackets, len(pkts))
	in.Stats.RxPackets.Add(uint64(len(pkts)))
	in.Stats.RxBytes.Add(rxBytes)
	if n4 > 0 {
		r4 := w.r4[:n4]
		v.LookupBatch4(0, w.a4[:n4], r4)
		for j, i := range w.i4[:n4] {
			w.forward(&pkts[i], &descs[i], v, r4[j])
		}
	}
	if n6 > 0 {
		r6 := w.r6[:n6]
		v.LookupBatch6(0, w.a6[:n6], r6)
		for j, i := range w.i6[:n6] {
			w.forward(&pkts[i], &descs[i], v, r6[j])
		}
	}
}

// parseL2 is the first check of every frame, single or super-frame,
// received on in: keep, or why to drop it.
func (w *Worker) parseL2(b []byte, in *Port) Drop {
	if len(b) < encap.EthernetLen {
		return DropBadEthernet
	}
	if in.Passive && encap.Ethernet(b).Dst() != in.MAC {
		// The kernel got this one too; it is not for us to forward.
		return DropLocal
	}
	return keep
}

// parse4 parses the IPv4 header behind the Ethernet header of frame b
// (at least EthernetLen long), received on in, into the descriptor d; it
// returns false for an invalid header or header checksum (d is then
// not to be read). Whether the addresses may
// be routed is the caller's question (DropMartian), asked after its checks
// for what is the switch's own, which take frames such addresses would
// fail (the gateway's link-local one), and not at all for a frame the
// switch built or one it decapsulates.
func parse4(b []byte, in *Port, d *desc) bool {
	ip := encap.IPv4(b[encap.EthernetLen:])
	if !ip.IsValid(len(ip)) {
		return false
	}
	n := ip.TotalLength()
	d.in, d.frame = in, b[:encap.EthernetLen+int(n)]
	d.fam, d.l3, d.ipLen = fam4, encap.EthernetLen, n
	d.partial, d.natDone = false, false
	d.l4 = encap.EthernetLen + uint16(ip.HeaderLen())
	d.wire = int32(n)
	*(*[4]byte)(d.dst[:4]) = ip.Dst()
	// Last, so that nothing is kept across the call.
	return ip.HeaderChecksumValid()
}

// parse6 is parse4 for IPv6.
func parse6(b []byte, in *Port, d *desc) bool {
	ip := encap.IPv6(b[encap.EthernetLen:])
	if !ip.IsValid(len(ip)) {
		return false
	}
	n := encap.IPv6Len + ip.PayloadLength()
	d.in, d.frame = in, b[:encap.EthernetLen+int(n)]
	d.fam, d.l3, d.ipLen = fam6, encap.EthernetLen, n
	d.partial, d.natDone = false, false
	d.l4 = encap.EthernetLen + encap.IPv6Len
	d.wire = int32(n)
	d.dst = ip.Dst()
	return true
}

// classify parses frame p, received on in, into its descriptor d. It
// answers or drops what is for the switch itself, runs the preRoute stage,
// and returns p's family if it is to be routed (fam4 or fam6, d.fam), else
// famNone: the frame is taken care of. A VXLAN frame for the node is decapsulated and
// its inner frame classified as received on the tunnel.
func (w *Worker) classify(p *port.Packet, in *Port, d *desc) family {
	b := w.umem.Bytes(p.Addr, int(p.Len))
	if why := w.parseL2(b, in); why != keep {
		w.drop(p, why)
		return famNone
	}
	_ = b[encap.EthernetLen-1] // parseL2 checked it; tells the compiler
	eth := encap.Ethernet(b)
	if in.NeedLearn {
		w.learn(in, eth.Src())
	}
	why := keep
	switch eth.Type() {
	case encap.EtherTypeIPv4:
		if !parse4(b, in, d) {
			why = DropBadL3
			break
		}
		// From d, not b, so that b need not be kept across the call.
		b = d.frame
		eth, ip := encap.Ethernet(b), encap.IPv4(b[encap.EthernetLen:])
		p.Len = uint32(len(b))
		dst := d.dst4()
		if w.vx.Has4 && in.Kind == spec.PortUplink && !in.Tunnel && dst == w.vx.Src4 {
			if isVXLAN, ok := w.decap4(p, ip); isVXLAN {
				if !ok {
					return famNone
				}
				return w.classify(p, w.tun, d)
			}
		}
		if in.Gateway && dst == w.gw4 {
			w.local4(p, in, eth, ip)
			return famNone
		}
		if !encap.IsIPv4Forwardable(dst) || !encap.IsIPv4Forwardable(ip.Src()) {
			why = DropMartian
		}
	case encap.EtherTypeIPv6:
		if !parse6(b, in, d) {
			why = DropBadL3
			break
		}
		// From d, not b, so that b need not be kept across the call.
		b = d.frame
		eth, ip := encap.Ethernet(b), encap.IPv6(b[encap.EthernetLen:])
		p.Len = uint32(len(b))
		dst := &d.dst
		if w.vx.Has6 && in.Kind == spec.PortUplink && !in.Tunnel && *dst == w.vx.Src6 {
			if isVXLAN, ok := w.decap6(p, ip); isVXLAN {
				if !ok {
					return famNone
				}
				return w.classify(p, w.tun, d)
			}
		}
		if ip.NextHeader() == encap.ProtoICMPv6 && w.icmp6Local(p, in, eth, ip) {
			return famNone
		}
		switch {
		case in.Gateway && *dst == w.gw6:
			why = DropLocal
		case dst[0] == 0xff:
			// Link-scope multicast (MLD reports and the like) is for
			// the link, which the switch does not take part in.
			why = DropLocal
		case !encap.IsIPv6Forwardable(*dst):
			why = DropMartian
		}
	case encap.EtherTypeARP:
		w.arp(p, in, eth, b[encap.EthernetLen:])
		return famNone
	default:
		why = DropUnknownProto
	}
	if why == keep {
		why = w.preRoute(d.frame, d)
	}
	if why != keep {
		w.drop(p, why)
		return famNone
	}
	return d.fam
}

// preRoute is the stage slot between classify and the route lookup, where
// DNAT (services) and ingress policy go: it sees every frame to be routed,
// b holding the whole frame (a super-frame's too; the packet ends at
// d.l3+d.ipLen) and d its descriptor. It
// may rewrite the frame's IP and transport headers (with their checksums;
// for a super-frame see the package doc) and then must update d.dst, the
// lookup's key; it must not change d.in, d.fam or the header offsets. It
// returns keep, or why to drop the frame (the caller frees and counts it).
// Frames the switch builds itself (ICMP errors, echo replies routed back
// into a tunnel) do not pass it.
func (w *Worker) preRoute(b []byte, d *desc) Drop {
	if n := w.natState.Load(); n != nil {
		return w.natPre(n, b, d)
	}
	return keep
}

// decision is the route decision's result, returned by decide4 and
// decide6 for act and the emit stage.
type decision struct {
	// nh is the next hop the FIB chose (the ECMP member); a local or punt
	// next hop when out is nil.
	nh *fib.NextHop
	// out is the port the frame leaves by: nh's, or for a VXLAN tunnel the
	// underlay's; after act, the host port for a punt.
	out *Port
	// under is, for a VXLAN next hop, the underlay adjacency toward
	// nh.Remote, and hash the inner flow's hash (the outer UDP source
	// port and the underlay's ECMP choice).
	under *fib.NextHop
	hash  uint32
	// drop is keep, or why the frame is dropped (any ICMP error due is
	// sent).
	drop Drop
	act  action // set by act
}

// action is what a decision makes of the frame.
type action uint8

const (
	actDrop   action = iota // freed and counted: decision.drop says why
	actPort                 // rewritten for nh and queued on out
	actTunnel               // rewritten for nh, encapsulated toward under, queued on out
	actHost                 // punted: rewritten for the host and queued on out, the host port
	actLocal                // for the switch itself
)

// keep is the decisions' and checks' "not dropped".
const keep = NumDrops

// forward decides and acts for the frame p of descriptor d, routed by idx
// in v.
func (w *Worker) forward(p *port.Packet, d *desc, v *fib.View, idx fib.Index) {
	b := d.frame
	eth := encap.Ethernet(b)
	var r decision
	if d.fam == fam4 {
		w.decide4(d, eth, encap.IPv4(b[d.l3:]), v, idx, &r)
	} else {
		w.decide6(d, eth, encap.IPv6(b[d.l3:]), v, idx, &r)
	}
	switch w.act(b, d, &r) {
	case actDrop:
		w.drop(p, r.drop)
	case actPort:
		w.cnt.event(d.forwarded())
		w.emit(p, r.out)
	case actTunnel:
		w.cnt.event(d.forwarded())
		w.encapVXLAN(p, &r)
	case actHost:
		w.emit(p, r.out)
	case actLocal:
		if d.fam == fam4 {
			w.local4(p, d.in, eth, encap.IPv4(b[d.l3:]))
		} else {
			w.local6(p, d.in, eth, encap.IPv6(b[d.l3:]))
		}
	}
}

// decide4 decides, into r (zero on entry), where the IPv4 packet ip of
// descriptor d, routed by idx, goes: a next hop and output port, with the TTL decremented; a local or
// punt next hop and no port; or a drop reason, the ICMP error that is due
// sent. d.wire is what the MTU check compares.
func (w *Worker) decide4(d *desc, eth encap.Ethernet, ip encap.IPv4, v *fib.View, idx fib.Index, r *decision) {
	in := d.in
	if idx == fib.NoRoute {
		w.icmpError4(in, eth, ip, encap.ICMPv4DestUnreachable, encap.ICMPv4NetUnreachable, 0)
		r.drop = DropNoRoute
		return
	}
	nh := v.NextHop(idx)
	if nh.Kind == fib.KindECMP {
		nh = v.NextHop(v.SelectECMP(idx, encap.FlowHash4(ip)))
	}
	switch nh.Kind {
	case fib.KindPort, fib.KindAdjacency, fib.KindVXLAN:
	case fib.KindLocal, fib.KindPunt:
		r.nh, r.drop = nh, keep
		return
	default: // blackhole
		r.drop = DropNoRoute
		return
	}
	if ip.TTL() <= 1 {
		w.icmpError4(in, eth, ip, encap.ICMPv4TimeExceeded, 0, 0)
		r.drop = DropTTL
		return
	}
	r.nh, r.drop = nh, keep
	if nh.Kind == fib.KindVXLAN {
		r.hash = encap.FlowHash4(ip)
	}
	mtu := w.egress(v, r, ip.DstBytes())
	if r.out == nil {
		if r.drop == DropPortDown || r.drop == DropNoRoute {
			w.icmpError4(in, eth, ip, encap.ICMPv4DestUnreachable, encap.ICMPv4HostUnreachable, 0)
		}
		return
	}
	if int(d.wire) > mtu {
		if ip.DF() {
			w.icmpError4(in, eth, ip, encap.ICMPv4DestUnreachable, encap.ICMPv4FragNeeded, uint16(mtu))
		}
		r.out, r.under, r.drop = nil, nil, DropMTU
		return
	}
	ip.DecTTL()
}

// decide6 is decide4 for IPv6.
func (w *Worker) decide6(d *desc, eth encap.Ethernet, ip encap.IPv6, v *fib.View, idx fib.Index, r *decision) {
	in := d.in
	if idx == fib.NoRoute {
		w.icmpError6(in, eth, ip, encap.ICMPv6DestUnreachable, encap.ICMPv6NoRoute, 0)
		r.drop = DropNoRoute
		return
	}
	nh := v.NextHop(idx)
	if nh.Kind == fib.KindECMP {
		nh = v.NextHop(v.SelectECMP(idx, encap.FlowHash6(ip)))
	}
	switch nh.Kind {
	case fib.KindPort, fib.KindAdjacency, fib.KindVXLAN:
	case fib.KindLocal, fib.KindPunt:
		r.nh, r.drop = nh, keep
		return
	default:
		r.drop = DropNoRoute
		return
	}
	if ip.HopLimit() <= 1 {
		w.icmpError6(in, eth, ip, encap.ICMPv6TimeExceeded, 0, 0)
		r.drop = DropTTL
		return
	}
	r.nh, r.drop = nh, keep
	if nh.Kind == fib.KindVXLAN {
		r.hash = encap.FlowHash6(ip)
	}
	mtu := w.egress(v, r, ip.DstBytes())
	if r.out == nil {
		if r.drop == DropPortDown || r.drop == DropNoRoute {
			w.icmpError6(in, eth, ip, encap.ICMPv6DestUnreachable, encap.ICMPv6AddressUnreachable, 0)
		}
		return
	}
	if int(d.wire) > mtu {
		w.icmpError6(in, eth, ip, encap.ICMPv6PacketTooBig, 0, uint32(mtu))
		r.out, r.under, r.drop = nil, nil, DropMTU
		return
	}
	ip.SetHopLimit(ip.HopLimit() - 1)
}

// egress sets r.out, the port a packet routed by r.nh leaves by, and
// returns the largest IP packet it may be there; or leaves r.out nil and
// sets r.drop. For a tunnel it is the underlay's port (and r.under its
// adjacency, found with r.hash) and its MTU less the tunnel's overhead;
// else r.nh's port and its MTU.
func (w *Worker) egress(v *fib.View, r *decision, dst []byte) int {
	if r.nh.Kind == fib.KindVXLAN {
		var why Drop
		if r.out, r.under, why = w.underlay(v, r.nh, r.hash); r.out == nil {
			r.drop = why
			return 0
		}
		return r.out.MTU - VXLANOverhead(r.nh)
	}
	out, why := w.output(r.nh)
	if out == nil {
		r.drop = w.noOutput(r.nh, dst, why)
		return 0
	}
	r.out = out
	return out.MTU
}

// output returns the port a packet routed by nh leaves by, or nil and why
// not: the port is gone (DropPortDown), or the neighbour is not resolved
// yet (DropNoNeighbor), which the caller hands to noOutput. It makes no
// call so that it is inlined into the per-frame path.
func (w *Worker) output(nh *fib.NextHop) (*Port, Drop) {
	out := w.port(nh.Port)
	switch {
	case out == nil:
		return nil, DropPortDown
	case !nh.Resolved:
		return nil, DropNoNeighbor
	}
	return out, 0
}

// noOutput returns why, output's reason for no port toward nh; for an
// unresolved neighbour it first asks the control plane to resolve it:
// the gateway, or for an attached route the destination itself, whose
// bytes dst are.
func (w *Worker) noOutput(nh *fib.NextHop, dst []byte, why Drop) Drop {
	if why == DropNoNeighbor {
		via := nh.Via
		if !via.IsValid() {
			via, _ = netip.AddrFromSlice(dst)
		}
		w.glean(nh.Port, via)
	}
	return why
}

// postRoute is the stage slot after the route decision, where SNAT
// (natOutgoing) and egress policy go: it sees every frame the decision
// did not drop (r.out nil for one to the switch or the host), b being the
// whole frame (a super-frame's too), d its descriptor and r the decision.
// The TTL is decremented, the Ethernet header not yet rewritten. It may
// rewrite the frame's source address and
// port (with their checksums; for a super-frame see the package doc), and
// may set r.drop to drop the frame; it must not change d, r.nh, r.out or
// r.under, which the emit stage and the tc fast path's learning rely on.
func (w *Worker) postRoute(b []byte, d *desc, r *decision) {
	if n := w.natState.Load(); n != nil {
		w.natPost(n, b, d, r)
	}
}

// act runs the steps every routed frame shares after the decision: the
// postRoute stage, the tc fast path's learning, the host port for a punt,
// and the Ethernet rewrite of b. It returns and records in r.act what is
// left to do with the frame.
func (w *Worker) act(b []byte, d *desc, r *decision) action {
	if r.drop == keep {
		w.postRoute(b, d, r)
	}
	switch {
	case r.drop != keep:
		r.act = actDrop
	case r.out != nil:
		if d.in.TCFast && !d.natDone && (r.nh.Kind == fib.KindVXLAN || r.out.Kind == spec.PortUplink) {
			// A flow of a pod with a tc fast path, to another node: the
			// control plane may give it to tc from now on.
			w.learnRemote(d.dstAddr())
		}
		eth := encap.Ethernet(b)
		eth.SetDst(r.nh.DstMAC)
		eth.SetSrc(r.nh.SrcMAC)
		r.act = actPort
		if r.nh.Kind == fib.KindVXLAN {
			r.act = actTunnel
		}
	case r.nh.Kind == fib.KindLocal:
		r.act = actLocal
	default:
		// A punt: the host is the packet's destination, so nothing is
		// decremented; to the sender the switch and the host are one
		// node.
		hp := w.port(w.hostPort)
		if !w.hasHost || hp == nil || hp == d.in || w.hostMAC == ([6]byte{}) {
			r.act, r.drop = actDrop, DropPunt
			break
		}
		eth := encap.Ethernet(b)
		eth.SetDst(w.hostMAC)
		eth.SetSrc(w.gwMAC)
		r.act, r.out = actHost, hp
	}
	return r.act
}
