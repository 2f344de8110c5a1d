package fib

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"
)

// Index is a handle into the next-hop table. Index 0 is reserved: it is the
// implicit "no route" answer of every lookup, and its next hop is KindDrop.
type Index uint32

// NoRoute is what a lookup returns when no prefix covers the address.
const NoRoute Index = 0

// Kind says what the dataplane does with a packet whose route resolves to a
// next hop.
type Kind uint8

const (
	// KindDrop discards the packet (blackhole). The implicit NoRoute entry is
	// KindDrop too; the pipeline tells them apart by the index.
	KindDrop Kind = iota
	// KindLocal: the packet is addressed to the switch itself (gateway
	// addresses); the pipeline answers ICMP echo and drops the rest.
	KindLocal
	// KindPunt hands the packet to the host through the host port.
	KindPunt
	// KindPort delivers on a local pod port with a static L2 rewrite.
	KindPort
	// KindAdjacency sends out Port to the neighbour Via. With Via invalid the
	// route is attached (connected subnet): the neighbour is the packet's own
	// destination, so the pipeline asks for it to be resolved (glean) and the
	// control plane installs a host route once it is.
	// Until Resolved, the pipeline treats it as glean for Via.
	KindAdjacency
	// KindVXLAN encapsulates toward Remote with VNI.
	KindVXLAN
	// KindECMP spreads flows over Group by a 5-tuple hash.
	KindECMP
)

var kindNames = [...]string{"drop", "local", "punt", "port", "adjacency", "vxlan", "ecmp"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// NextHop is one entry of the next-hop table. The identity fields (Kind, Port,
// Via, VNI, Remote, Group) decide which routes share an entry; the rewrite
// fields (DstMAC, SrcMAC, Resolved) can be changed in place with SetRewrite
// without touching the routes that use it.
type NextHop struct {
	Kind   Kind
	Port   uint16     // output port ID (KindPort, KindAdjacency)
	Via    netip.Addr // gateway, or invalid for an attached route
	VNI    uint32     // KindVXLAN
	Remote netip.Addr // KindVXLAN: remote VTEP, reached through the FIB's own route to it
	Group  []Index    // KindECMP members (each a non-ECMP next hop)

	// L2 rewrite, prebuilt by the control plane (KindVXLAN: the inner
	// frame's, remote and local VTEP MACs).
	DstMAC   [6]byte
	SrcMAC   [6]byte
	Resolved bool // DstMAC is valid (always true for KindPort)
}

// sameIdentity reports whether a and b denote the same next hop.
func sameIdentity(a, b *NextHop) bool {
	if a.Kind != b.Kind || a.Port != b.Port || a.Via != b.Via || a.VNI != b.VNI || a.Remote != b.Remote || len(a.Group) != len(b.Group) {
		return false
	}
	for i := range a.Group {
		if a.Group[i] != b.Group[i] {
			return false
		}
	}
	if a.Kind == KindPort || a.Kind == KindVXLAN {
		// A pod port's rewrite is its identity: two pods on one port are
		// told apart by MAC. A tunnel's is the inner frame's MACs.
		return a.DstMAC == b.DstMAC && a.SrcMAC == b.SrcMAC
	}
	return true
}

func (nh NextHop) String() string {
	switch nh.Kind {
	case KindPort:
		return fmt.Sprintf("port %d dst %s", nh.Port, macString(nh.DstMAC))
	case KindAdjacency:
		via := "attached"
		if nh.Via.IsValid() {
			via = "via " + nh.Via.String()
		}
		if !nh.Resolved {
			return fmt.Sprintf("port %d %s (unresolved)", nh.Port, via)
		}
		return fmt.Sprintf("port %d %s dst %s", nh.Port, via, macString(nh.DstMAC))
	case KindVXLAN:
		return fmt.Sprintf("vxlan vni %d remote %s dst %s", nh.VNI, nh.Remote, macString(nh.DstMAC))
	case KindECMP:
		return fmt.Sprintf("ecmp %v", nh.Group)
	}
	return nh.Kind.String()
}

// Origin says who installed a route.
type Origin uint8

const (
	OriginStatic Origin = iota
	OriginConnected
	OriginPod
	OriginBGP
	OriginLocal
	// OriginIPAM: the blackhole routes of the node's IPAM blocks, so the
	// unused addresses of a block are not routed elsewhere.
	OriginIPAM
	// OriginKube: the Kubernetes agent's VXLAN routes to other nodes'
	// blocks (package kube/agent).
	OriginKube
)

var originNames = [...]string{"static", "connected", "pod", "bgp", "local", "ipam", "kube"}

func (o Origin) String() string {
	if int(o) < len(originNames) {
		return originNames[o]
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// unsafeSizeofNextHop is used for memory estimates.
const unsafeSizeofNextHop = unsafe.Sizeof(NextHop{})

// nhKey is the identity of a next hop (see sameIdentity) as a map key.
type nhKey struct {
	kind        Kind
	port        uint16
	vni         uint32
	via, remote netip.Addr
	dst, src    [6]byte // KindPort only
	group       string  // ECMP members, 4 bytes each
}

func keyOfNextHop(nh *NextHop) nhKey {
	k := nhKey{kind: nh.Kind, port: nh.Port, vni: nh.VNI, via: nh.Via, remote: nh.Remote}
	if nh.Kind == KindPort || nh.Kind == KindVXLAN {
		k.dst, k.src = nh.DstMAC, nh.SrcMAC
	}
	if len(nh.Group) > 0 {
		b := make([]byte, 0, 4*len(nh.Group))
		for _, m := range nh.Group {
			b = binary.LittleEndian.AppendUint32(b, uint32(m))
		}
		k.group = string(b)
	}
	return k
}

// nhCacheSize is how many next hops internLocked remembers in front of
// the map.
const nhCacheSize = 1024

// nhHash is a cheap hash of nh's identity fields, for the cache in front of
// the map (hashing an nhKey for the map is a tenth of a route change).
func nhHash(nh *NextHop) uint64 {
	h := uint64(nh.Kind)<<56 ^ uint64(nh.Port)<<32 ^ uint64(nh.VNI)
	for _, a := range [2]netip.Addr{nh.Via, nh.Remote} {
		b := a.As16()
		h = (h^binary.LittleEndian.Uint64(b[:8]))*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])
	}
	if len(nh.Group) > 0 {
		h ^= uint64(nh.Group[0]) << 8 * uint64(len(nh.Group))
	}
	return mix64(h)
}

// internLocked returns the entry for nh's identity with one more reference,
// creating it if needed.
func (f *FIB) internLocked(nh *NextHop) (Index, error) {
	slot := &f.nhCache[nhHash(nh)%nhCacheSize]
	if idx := *slot; idx != NoRoute && int(idx) < len(f.nhs) && f.nhs[idx].refs > 0 && sameIdentity(&f.nhs[idx].nh, nh) {
		f.nhs[idx].refs++
		return idx, nil
	}
	k := keyOfNextHop(nh)
	if idx, ok := f.nhIndex[k]; ok {
		f.nhs[idx].refs++
		*slot = idx
		return idx, nil
	}
	for _, m := range nh.Group {
		if m == NoRoute || int(m) >= len(f.nhs) || f.nhs[m].refs == 0 || f.nhs[m].nh.Kind == KindECMP {
			return NoRoute, fmt.Errorf("ecmp member %d: %w", m, ErrBadNextHop)
		}
	}
	var idx Index
	if n := len(f.free); n > 0 {
		idx = f.free[n-1]
		f.free = f.free[:n-1]
	} else {
		if len(f.nhs) >= MaxNextHops {
			return NoRoute, fmt.Errorf("next-hop table full (%d): %w", MaxNextHops, ErrBadNextHop)
		}
		f.nhs = append(f.nhs, nhEntry{})
		idx = Index(len(f.nhs) - 1)
	}
	cp := *nh
	cp.Group = append([]Index(nil), nh.Group...)
	e := nhEntry{nh: cp, refs: 1}
	if nh.Kind == KindECMP {
		for _, m := range cp.Group {
			f.nhs[m].refs++
		}
		e.sel = buildSelect(cp.Group)
	}
	f.nhs[idx] = e
	f.nhIndex[k] = idx
	*slot = idx
	f.nhDirty = true
	return idx, nil
}

// unrefLocked drops one reference; the entry dies with its last one.
func (f *FIB) unrefLocked(idx Index) {
	e := &f.nhs[idx]
	e.refs--
	if e.refs > 0 || idx == NoRoute {
		return
	}
	delete(f.nhIndex, keyOfNextHop(&e.nh))
	group := e.nh.Group
	*e = nhEntry{}
	f.free = append(f.free, idx)
	f.nhDirty = true
	for _, m := range group {
		f.unrefLocked(m)
	}
}

// buildSelect maps 256 flow-hash buckets onto group by rendezvous hashing:
// each bucket goes to the member with the highest hash of (bucket, member,
// occurrence). A member's buckets depend only on who else is in the group,
// so adding or removing one moves only the buckets it wins or held.
// Repeating a member weights it.
func buildSelect(group []Index) *[256]Index {
	keys := make([]uint64, len(group))
	seen := make(map[Index]uint64, len(group))
	for i, m := range group {
		keys[i] = seen[m]<<32 | uint64(m)
		seen[m]++
	}
	sel := new([256]Index)
	for b := range sel {
		var best uint64
		for i, k := range keys {
			if h := mix64(uint64(b)<<48 ^ k); i == 0 || h > best {
				best, sel[b] = h, group[i]
			}
		}
	}
	return sel
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
