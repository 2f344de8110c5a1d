package dataplane

import (
	"encoding/binary"
	"net/netip"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/maglev"
	"github.com/xvs-project/xvs/nat"
	"github.com/xvs-project/xvs/spec"
)

// The NAT stage: services' DNAT in preRoute, natOutgoing's SNAT in
// postRoute, both on one connection-tracking table (package conntrack)
// shared by every worker. The control plane builds a NAT (vswitch's
// SetServices, SetNATConfig) and publishes it with SetNAT; a worker loads
// the pointer per packet, so a switch without NAT pays one nil check.
//
// preRoute looks a packet up when its destination is a VIP or a node
// address (NAT.Addrs, flag NATAddrVIP / NATAddrNode) or its source a
// backend (NATAddrBackend): the other packets never reach the table.
// A hit in either direction is rewritten to the flow's target (nat.Rewrite)
// and routed by its new destination. A miss to a VIP's service port
// creates the flow: backend by affinity, else Maglev over the ready
// endpoints (serving terminating ones when none is ready; only local ones
// for internalTrafficPolicy/externalTrafficPolicy Local), SNAT to the VIP
// itself for hairpin (a pod reaching itself) and to the node address for
// a NodePort flow to a remote backend unless ExternalLocal. No endpoint:
// an ICMP (ICMPv6) port unreachable goes back, for TCP too, as
// kube-proxy's REJECT does, and the packet is counted
// (DropNATNoEndpoint). A packet to a VIP that nat.Parse refuses
// (fragment, truncated, bad ICMP) is dropped and counted by its reason,
// never translated half-way.
//
// postRoute SNATs, to the output uplink's address (Port.ICMPSrc4/6), a
// packet leaving by an uplink from a source in NAT.Outgoing to a
// destination outside NAT.Internal that preRoute did not translate; its
// replies arrive to the node address (NATAddrNode) and preRoute
// translates them back.

// NATAddr flags: why preRoute looks at a packet.
const (
	NATAddrVIP     uint8 = 1 << iota // a ClusterIP: packets to it
	NATAddrNode                      // a node address (NodePort, SNAT replies): packets to it
	NATAddrBackend                   // a backend: packets from it (replies to DNAT)
)

// NATAddrKey is an address of NAT.Addrs (IPv4 in the first four bytes).
type NATAddrKey struct {
	Addr [16]byte
	Fam  uint8 // conntrack.IPv4 or IPv6
}

// NATVIPKey is a service port as packets to it carry it.
type NATVIPKey struct {
	Addr  [16]byte
	Port  uint16
	Proto uint8
	Fam   uint8
}

// NATBackend is one endpoint.
type NATBackend struct {
	Addr  [16]byte
	Port  uint16
	ID    uint32 // stable across updates: the flows' mark and the affinity value (never 0)
	Local bool
}

// NATPool is a set of backends and their Maglev table.
type NATPool struct {
	Backends []NATBackend
	Table    *maglev.Table
	ByID     map[uint32]int // index in Backends by ID
}

// NATService is one VIP port's backends and policy.
type NATService struct {
	Name       string
	ID         uint32 // the affinity table's service key
	NodePort   bool   // reached on a node address's NodePort
	Affinity   bool
	AffTimeout uint32 // seconds
	// InternalLocal applies to this node's pods, ExternalLocal to
	// NodePort flows.
	InternalLocal, ExternalLocal bool
	// Ready and Fallback (serving terminating endpoints, used when no
	// endpoint is ready); the Local ones hold only this node's.
	Ready, Fallback, ReadyLocal, FallbackLocal NATPool
}

// NAT is the NAT stage's whole state, immutable once published except
// for the tables it points to.
type NAT struct {
	CT       *conntrack.Table
	Affinity *maglev.Affinity
	Addrs    map[NATAddrKey]uint8
	VIPs     map[NATVIPKey]*NATService
	// Outgoing and Internal are spec.NATConfig's; PortMin..PortMax the
	// SNAT ports (set).
	Outgoing, Internal []netip.Prefix
	PortMin, PortMax   uint16
	// filter is a 1024-bit Bloom filter of Addrs (Index builds it): a
	// packet with neither address in it skips the map lookups.
	filter [16]uint64
}

// Index builds n's filter from n.Addrs; call it once Addrs is complete,
// before SetNAT.
func (n *NAT) Index() {
	n.filter = [16]uint64{}
	for k := range n.Addrs {
		b := addrBit(&k.Addr)
		n.filter[b>>6] |= 1 << (b & 63)
	}
}

// addrBit is a's bit in the filter (IPv4 in the first four bytes, the
// rest zero, so the two families share the function).
func addrBit(a *[16]byte) uint32 {
	x := binary.LittleEndian.Uint64(a[0:]) ^ binary.LittleEndian.Uint64(a[8:])
	x *= 0x9e3779b97f4a7c15
	return uint32(x >> 54)
}

func (n *NAT) maybe(a *[16]byte) bool {
	b := addrBit(a)
	return n.filter[b>>6]&(1<<(b&63)) != 0
}

// SetNAT publishes n (nil: no NAT) to the worker; safe from any
// goroutine, it takes effect at the worker's next packet.
func (w *Worker) SetNAT(n *NAT) { w.natState.Store(n) }

func (d *desc) fam8() uint8 {
	if d.fam == fam4 {
		return conntrack.IPv4
	}
	return conntrack.IPv6
}

// srcKey is d's source address as a NATAddrKey.
func (d *desc) srcKey(b []byte) NATAddrKey {
	k := NATAddrKey{Fam: d.fam8()}
	if d.fam == fam4 {
		copy(k.Addr[:4], b[d.l3+12:d.l3+16])
	} else {
		copy(k.Addr[:], b[d.l3+8:d.l3+24])
	}
	return k
}

// natDrop is the drop counting nat's reason r.
func natDrop(r nat.Reason) Drop { return DropNATFragment + Drop(r-1) }

// natPre is preRoute with NAT configured.
func (w *Worker) natPre(n *NAT, b []byte, d *desc) Drop {
	fam := d.fam8()
	dk := NATAddrKey{Addr: d.dst, Fam: fam}
	if d.fam == fam4 {
		dk.Addr = [16]byte{}
		copy(dk.Addr[:4], d.dst[:4]) // the rest of d.dst is not the packet's
	}
	sk := d.srcKey(b)
	dm, sm := n.maybe(&dk.Addr), n.maybe(&sk.Addr)
	if !dm && !sm {
		return keep
	}
	var flags uint8
	if dm {
		flags = n.Addrs[dk] & (NATAddrVIP | NATAddrNode)
	}
	if sm && n.Addrs[sk]&NATAddrBackend != 0 {
		flags |= NATAddrBackend
	}
	if flags == 0 {
		return keep
	}
	ip := b[d.l3 : d.l3+d.ipLen]
	p := &w.natPkt
	if r := nat.Parse(ip, fam, 0, p); r != nat.OK {
		if flags&NATAddrVIP != 0 {
			return natDrop(r)
		}
		return keep // not ours to judge: forwarded as it is
	}
	f := &w.natFlow
	if n.CT.Lookup(&p.Key, f) {
		return w.natApply(n, ip, d, p, f)
	}
	if flags&NATAddrVIP == 0 && flags&NATAddrNode == 0 || p.Kind != nat.KindTCP && p.Kind != nat.KindUDP {
		return keep
	}
	svc := n.VIPs[NATVIPKey{Addr: dk.Addr, Port: p.Key.DPort, Proto: p.Key.Proto, Fam: fam}]
	if svc == nil {
		return keep
	}
	return w.natNew(n, svc, b, ip, d, p, f)
}

// natApply rewrites the packet of flow f to its target.
func (w *Worker) natApply(n *NAT, ip []byte, d *desc, p *nat.Packet, f *conntrack.Flow) Drop {
	if r := nat.Rewrite(ip, p, &f.Target, d.partial); r != nat.OK {
		return natDrop(r)
	}
	n.CT.Update(f, p.Flags, int(d.ipLen), w.ctNow)
	if d.fam == fam4 {
		copy(d.dst[:4], ip[16:20])
	} else {
		copy(d.dst[:], ip[24:40])
	}
	d.natDone = true
	w.cnt.event(EvNATTranslated)
	return keep
}

// pick chooses svc's backend for the new flow of key k, or nil.
func (w *Worker) pick(n *NAT, svc *NATService, d *desc, k *conntrack.Key) *NATBackend {
	pool := &svc.Ready
	if svc.NodePort && svc.ExternalLocal || !svc.NodePort && svc.InternalLocal && d.in.Kind == spec.PortPod {
		pool = &svc.ReadyLocal
		if len(pool.Backends) == 0 {
			pool = &svc.FallbackLocal
		}
	} else if len(pool.Backends) == 0 {
		pool = &svc.Fallback
	}
	if len(pool.Backends) == 0 {
		return nil
	}
	if svc.Affinity && n.Affinity != nil {
		if id, ok := n.Affinity.Lookup(k.Src, svc.ID, w.ctNow, svc.AffTimeout); ok {
			if i, ok := pool.ByID[id]; ok {
				be := &pool.Backends[i]
				n.Affinity.Set(k.Src, svc.ID, be.ID, w.ctNow)
				return be
			}
		}
	}
	i := pool.Table.Lookup(k.Hash())
	if i < 0 {
		return nil
	}
	be := &pool.Backends[i]
	if svc.Affinity && n.Affinity != nil {
		n.Affinity.Set(k.Src, svc.ID, be.ID, w.ctNow)
	}
	return be
}

// natNew creates the flow of a packet to a service port and translates it.
func (w *Worker) natNew(n *NAT, svc *NATService, b, ip []byte, d *desc, p *nat.Packet, f *conntrack.Flow) Drop {
	st := conntrack.InitialState(p.Key.Proto, p.Flags, true)
	if st == conntrack.StateNone {
		return DropNATUntracked
	}
	be := w.pick(n, svc, d, &p.Key)
	if be == nil {
		w.natReject(b, d)
		return DropNATNoEndpoint
	}
	k := &p.Key
	reply := conntrack.Key{Src: be.Addr, Dst: k.Src, SPort: be.Port, DPort: k.SPort, Proto: k.Proto, Family: k.Family}
	var o conntrack.Outcome
	switch {
	case be.Addr == k.Src:
		// Hairpin: the client is the backend; from the VIP, so that the
		// reply comes back through the switch.
		reply.Dst = k.Dst
		o = n.CT.CreateSNAT(k, &reply, n.PortMin, n.PortMax, st, be.ID, w.ctNow, f)
	case svc.NodePort && !svc.ExternalLocal && !be.Local:
		// From the node address the client reached, so that the remote
		// backend's reply comes back here.
		reply.Dst = k.Dst
		o = n.CT.CreateSNAT(k, &reply, n.PortMin, n.PortMax, st, be.ID, w.ctNow, f)
	default:
		o = n.CT.Create(k, &reply, st, be.ID, w.ctNow, f)
	}
	if why := ctDrop(o); why != keep {
		return why
	}
	if o == conntrack.Created {
		w.cnt.event(EvNATNewDNAT)
	}
	return w.natApply(n, ip, d, p, f)
}

// ctDrop is the drop a Create outcome means, or keep.
func ctDrop(o conntrack.Outcome) Drop {
	switch o {
	case conntrack.Created, conntrack.Existed:
		return keep
	case conntrack.Full:
		return DropNATTableFull
	case conntrack.EmbryonicLimit:
		return DropNATEmbryonic
	case conntrack.Conflict:
		return DropNATConflict
	}
	return DropNATNoPort
}

// natReject answers a packet to a service without endpoints with a port
// unreachable (rate-limited like every ICMP error the switch sends).
func (w *Worker) natReject(b []byte, d *desc) {
	eth := encap.Ethernet(b)
	if d.fam == fam4 {
		w.icmpError4(d.in, eth, encap.IPv4(b[d.l3:]), encap.ICMPv4DestUnreachable, encap.ICMPv4PortUnreachable, 0)
	} else {
		w.icmpError6(d.in, eth, encap.IPv6(b[d.l3:]), encap.ICMPv6DestUnreachable, encap.ICMPv6PortUnreachable, 0)
	}
}

// natPost is postRoute with NAT configured: natOutgoing.
func (w *Worker) natPost(n *NAT, b []byte, d *desc, r *decision) {
	if len(n.Outgoing) == 0 || d.natDone || r.out == nil || r.out.Kind != spec.PortUplink {
		return
	}
	var src, dst netip.Addr
	var node [16]byte
	if d.fam == fam4 {
		src, dst = netip.AddrFrom4([4]byte(b[d.l3+12:d.l3+16])), netip.AddrFrom4(d.dst4())
		copy(node[:4], r.out.ICMPSrc4[:])
		if node[0] == 169 && node[1] == 254 {
			return // the uplink has no IPv4 address (the gateway's stands in)
		}
	} else {
		src, dst = netip.AddrFrom16([16]byte(b[d.l3+8:d.l3+24])), netip.AddrFrom16(d.dst)
		node = r.out.ICMPSrc6
		if node[0] == 0xfe && node[1]&0xc0 == 0x80 {
			return // the uplink has no global IPv6 address to translate to
		}
	}
	if !inPrefixes(n.Outgoing, src) || inPrefixes(n.Internal, dst) {
		return
	}
	ip := b[d.l3 : d.l3+d.ipLen]
	p := &w.natPkt
	if why := nat.Parse(ip, d.fam8(), 0, p); why != nat.OK {
		r.drop = natDrop(why) // never leaves with the pod's address
		return
	}
	f := &w.natFlow
	if !n.CT.Lookup(&p.Key, f) {
		if p.Kind == nat.KindError {
			r.drop = DropNATUntracked
			return
		}
		st := conntrack.InitialState(p.Key.Proto, p.Flags, true)
		if st == conntrack.StateNone {
			r.drop = DropNATUntracked
			return
		}
		k := &p.Key
		reply := conntrack.Key{Src: k.Dst, Dst: node, SPort: k.DPort, DPort: k.SPort, Proto: k.Proto, Family: k.Family}
		o := n.CT.CreateSNAT(k, &reply, n.PortMin, n.PortMax, st, 0, w.ctNow, f)
		if why := ctDrop(o); why != keep {
			r.drop = why
			return
		}
		if o == conntrack.Created {
			w.cnt.event(EvNATNewSNAT)
		}
	}
	if why := nat.Rewrite(ip, p, &f.Target, d.partial); why != nat.OK {
		r.drop = natDrop(why)
		return
	}
	n.CT.Update(f, p.Flags, int(d.ipLen), w.ctNow)
	d.natDone = true
	w.cnt.event(EvNATTranslated)
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
