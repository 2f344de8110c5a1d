package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// FastPath holds the maps that let pod programs forward pod-to-pod traffic
// themselves, in XDP, without a trip through the switch's worker: a frame
// from a pod to another pod of this node whose TTL or hop limit is above 1
// and which fits the destination's MTU gets its TTL decremented (IPv4
// checksum updated), its Ethernet addresses rewritten and is redirected to
// the destination's host veth end. Everything else (ARP, NDP, the gateway,
// other destinations, TTL 1, too big, IPv4 options) goes to the AF_XDP
// socket as before, so the switch's pipeline stays the one place that
// answers, routes and sends ICMP errors.
//
// The destinations are host routes the switch installs (Add, Remove) for
// pods whose ports it drives with AF_XDP. A destination pod's eth0 must run
// NAPI (GRO on, or an XDP program) to take redirected frames: veth drops
// them otherwise. One FastPath serves every pod program of a switch; its
// maps are safe to update from any goroutine.
type FastPath struct {
	hosts4 *ebpf.Map // HASH [4]byte -> fastVal
	hosts6 *ebpf.Map // HASH [16]byte -> fastVal
	devs   *ebpf.Map // DEVMAP_HASH ifindex -> ifindex
	stats  *ebpf.Map // PERCPU_ARRAY [4]u64: frames forwarded, XDP IPv4, IPv6, tc IPv4, IPv6

	filter socketFilter // for AF_PACKET pod ports, see SocketFilter
}

// Layout of a fast-path destination (host byte order for numbers).
const (
	fvIfindex = 0  // u32
	fvMTU     = 4  // u16: the largest IP packet the destination takes
	fvDst     = 8  // [6]byte: the pod's MAC
	fvSrc     = 14 // [6]byte: the gateway's MAC
	fvFlags   = 20 // u8: fvXDP, fvTunnel
	// A tunnel destination (fvTunnel) also has:
	fvVNI      = 24 // u32: bpf_tunnel_key.tunnel_id
	fvTunFlags = 28 // u32: bpf_skb_set_tunnel_key's flags
	fvRemote   = 32 // [16]byte: bpf_tunnel_key.remote_ipv4 (host order) or remote_ipv6
	fvLocal    = 48 // [16]byte: bpf_tunnel_key.local_ipv4 (host order) or local_ipv6; zero: the route's
	fvSize     = 64
)

// fvXDP marks a destination XDP programs may redirect to: its pod's eth0
// runs NAPI (see FastPath). The tc fast path reaches every destination.
const fvXDP = 1

// fvTunnel marks a destination behind a VXLAN tunnel the kernel's
// collect_md device builds: the tc fast path sets the tunnel key and
// redirects to that device (see AddTunnel). XDP programs never take it.
const fvTunnel = 2

// bpf_skb_set_tunnel_key flags.
const (
	tunInfoIPv6     = 1 << 0 // BPF_F_TUNINFO_IPV6
	tunZeroCsum     = 1 << 1 // BPF_F_ZERO_CSUM_TX
	tunDontFragment = 1 << 2 // BPF_F_DONT_FRAGMENT
)

// NewFastPath creates the maps for up to max destinations per family.
func NewFastPath(max int) (f *FastPath, err error) {
	if max <= 0 {
		max = 4096
	}
	f = &FastPath{}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.hosts4, err = ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_fp4", Type: ebpf.Hash, KeySize: 4, ValueSize: fvSize, MaxEntries: uint32(max)}); err != nil {
		return nil, fmt.Errorf("create fast-path map: %w", err)
	}
	if f.hosts6, err = ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_fp6", Type: ebpf.Hash, KeySize: 16, ValueSize: fvSize, MaxEntries: uint32(max)}); err != nil {
		return nil, fmt.Errorf("create fast-path map: %w", err)
	}
	if f.devs, err = ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_fpdev", Type: ebpf.DevMapHash, KeySize: 4, ValueSize: 4, MaxEntries: uint32(max)}); err != nil {
		return nil, fmt.Errorf("create fast-path devmap: %w", err)
	}
	if f.stats, err = ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_fpstats", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}); err != nil {
		return nil, fmt.Errorf("create fast-path counters: %w", err)
	}
	return f, nil
}

// Add makes addr (a pod's own address) a fast-path destination: out of the
// interface ifindex (the pod's host veth end), at most mtu bytes of IP,
// from src to dst. With xdp, the pod programs' XDP redirects may send to
// it too (its eth0 must then run NAPI); without, only the tc programs of
// AF_PACKET ports do, whose redirect needs nothing of the pod.
func (f *FastPath) Add(addr netip.Addr, ifindex, mtu int, dst, src [6]byte, xdp bool) error {
	if ifindex <= 0 || mtu <= 0 || mtu > 0xffff {
		return fmt.Errorf("fast path %v: ifindex %d mtu %d", addr, ifindex, mtu)
	}
	m, key, err := f.key(addr)
	if err != nil {
		return err
	}
	// The device first: the program never finds a destination whose
	// redirect would miss.
	if err := f.devs.Put(uint32(ifindex), uint32(ifindex)); err != nil {
		return fmt.Errorf("fast path %v: devmap ifindex %d: %w", addr, ifindex, err)
	}
	var v [fvSize]byte
	binary.LittleEndian.PutUint32(v[fvIfindex:], uint32(ifindex))
	binary.LittleEndian.PutUint16(v[fvMTU:], uint16(mtu))
	copy(v[fvDst:], dst[:])
	copy(v[fvSrc:], src[:])
	if xdp {
		v[fvFlags] = fvXDP
	}
	if err := m.Put(key, v[:]); err != nil {
		return fmt.Errorf("fast path %v: %w", addr, err)
	}
	return nil
}

// AddTunnel makes addr (another node's pod) a destination of the tc fast
// path through a VXLAN tunnel: its frames get their TTL decremented and
// the Ethernet addresses dst (the remote VTEP's MAC) and src (the node's
// VTEP MAC), the tunnel key (vni, remote, the source address local or,
// if local is the zero Addr, the one the host's route to remote prefers;
// TTL 64, and over IPv4 DF and no UDP checksum) and go out of ifindex, a
// collect_md VXLAN device, which encapsulates them, super-frames whole.
// mtu is the tunnel's: the underlay's less the overhead.
func (f *FastPath) AddTunnel(addr netip.Addr, ifindex, mtu int, dst, src [6]byte, vni uint32, remote, local netip.Addr) error {
	remote, local = remote.Unmap(), local.Unmap()
	if ifindex <= 0 || mtu <= 0 || mtu > 0xffff || vni > 1<<24-1 || !remote.IsValid() ||
		(local.IsValid() && local.Is4() != remote.Is4()) {
		return fmt.Errorf("fast path tunnel %v: ifindex %d mtu %d vni %d remote %v local %v", addr, ifindex, mtu, vni, remote, local)
	}
	m, key, err := f.key(addr)
	if err != nil {
		return err
	}
	var v [fvSize]byte
	binary.LittleEndian.PutUint32(v[fvIfindex:], uint32(ifindex))
	binary.LittleEndian.PutUint16(v[fvMTU:], uint16(mtu))
	copy(v[fvDst:], dst[:])
	copy(v[fvSrc:], src[:])
	v[fvFlags] = fvTunnel
	binary.LittleEndian.PutUint32(v[fvVNI:], vni)
	if remote.Is4() {
		b := remote.As4()
		binary.LittleEndian.PutUint32(v[fvRemote:], binary.BigEndian.Uint32(b[:]))
		if local.IsValid() {
			b = local.As4()
			binary.LittleEndian.PutUint32(v[fvLocal:], binary.BigEndian.Uint32(b[:]))
		}
		// No outer UDP checksum over IPv4, as Linux's vxlan devices
		// (Calico's) and the switch's workers send it: the receiver
		// need not verify one per segment.
		binary.LittleEndian.PutUint32(v[fvTunFlags:], tunDontFragment|tunZeroCsum)
	} else {
		b := remote.As16()
		copy(v[fvRemote:], b[:])
		if local.IsValid() {
			b = local.As16()
			copy(v[fvLocal:], b[:])
		}
		binary.LittleEndian.PutUint32(v[fvTunFlags:], tunInfoIPv6)
	}
	if err := m.Put(key, v[:]); err != nil {
		return fmt.Errorf("fast path tunnel %v: %w", addr, err)
	}
	return nil
}

// Remove stops forwarding to addr in XDP; its frames go to the switch.
// Removing an absent address is not an error.
func (f *FastPath) Remove(addr netip.Addr) error {
	m, key, err := f.key(addr)
	if err != nil {
		return err
	}
	if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("fast path remove %v: %w", addr, err)
	}
	return nil
}

// RemoveDev drops ifindex from the devmap, once no destination uses it.
func (f *FastPath) RemoveDev(ifindex int) error {
	if err := f.devs.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("fast path remove ifindex %d: %w", ifindex, err)
	}
	return nil
}

func (f *FastPath) key(addr netip.Addr) (*ebpf.Map, []byte, error) {
	switch a := addr.Unmap(); {
	case a.Is4():
		b := a.As4()
		return f.hosts4, b[:], nil
	case a.Is6():
		b := a.As16()
		return f.hosts6, b[:], nil
	}
	return nil, nil, fmt.Errorf("fast path: invalid address %v", addr)
}

// FastCounts are the frames the fast path forwarded, summed over CPUs: by
// the pod programs (XDP) and by the AF_PACKET ports' tc programs.
type FastCounts struct {
	XDP4, XDP6, TC4, TC6 uint64
}

// Counts returns the frames forwarded in the fast path so far.
func (f *FastPath) Counts() (FastCounts, error) {
	var c FastCounts
	for i, dst := range []*uint64{&c.XDP4, &c.XDP6, &c.TC4, &c.TC6} {
		var per []uint64
		if err := f.stats.Lookup(uint32(i), &per); err != nil {
			return FastCounts{}, fmt.Errorf("fast path counters: %w", err)
		}
		for _, n := range per {
			*dst += n
		}
	}
	return c, nil
}

// Close releases the maps (programs using them keep their references).
func (f *FastPath) Close() error {
	var errs []error
	for _, m := range []*ebpf.Map{f.hosts4, f.hosts6, f.devs, f.stats} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	if f.filter.prog != nil {
		errs = append(errs, f.filter.prog.Close())
	}
	return errors.Join(errs...)
}

// reloadOr puts data in R2 and data_end in R3 and checks that n bytes are
// there, else jumps to label.
func reloadOr(n int32, label string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, n),
		asm.JGT.Reg(asm.R4, asm.R3, label),
	}
}

// lookupDest looks the packet's destination up in m (the hosts map of its
// family): words 32-bit words from IP header offset dst (R2 points at the
// Ethernet header) go to the stack at key; a miss jumps to miss, a hit
// leaves the fastVal in R7. Both fast paths, XDP and tc, use it.
func lookupDest(m *ebpf.Map, dst, words, key int16, miss string) asm.Instructions {
	return lookupDestBy(m, dst, words, asm.Word, key, miss)
}

// lookupDestBy is lookupDest copying the address n loads of size sz.
func lookupDestBy(m *ebpf.Map, dst, n int16, sz asm.Size, key int16, miss string) asm.Instructions {
	var p asm.Instructions
	step := int16(sz.Sizeof())
	for i := int16(0); i < n; i++ {
		p = append(p,
			asm.LoadMem(asm.R5, asm.R2, 14+dst+step*i, sz),
			asm.StoreMem(asm.RFP, key+step*i, asm.R5, sz),
		)
	}
	return append(p,
		mapPtr(asm.R1, m),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(key)),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, miss),
		asm.Mov.Reg(asm.R7, asm.R0),
	)
}

// fastPodProgram is the pod program with the fast path in front of the
// redirect to the socket.
func fastPodProgram(xsks *ebpf.Map, f *FastPath, miss uint32) asm.Instructions {
	x := redirect(xsks, asm.R6, miss)
	x[0] = x[0].WithSymbol("xsk")
	return append(fastPrelude(f, "xsk", "xsk"), x...)
}

// fastPrelude is the fast path: it forwards what it can (a redirect
// through the devmap) and jumps to the label next for everything else,
// the frame untouched, or to tcOnly for a destination only tc reaches. Registers: R6 ctx (set first), R7 the destination,
// R8 the family's counter index, R9 the output ifindex.
func fastPrelude(f *FastPath, next, tcOnly string) asm.Instructions {
	var p asm.Instructions
	add := func(is ...asm.Instruction) { p = append(p, is...) }
	addAll := func(is asm.Instructions) { p = append(p, is...) }

	// Only destinations whose pod runs NAPI take XDP redirects; the
	// others, which only tc reaches, go to tcOnly, if they fit their MTU
	// (a packet too big goes to next: the switch answers it).
	xdpOnly := asm.Instructions{
		asm.LoadMem(asm.R5, asm.R7, fvFlags, asm.Byte),
		asm.And.Imm(asm.R5, fvXDP),
		asm.JEq.Imm(asm.R5, 0, tcOnly),
	}

	add(asm.Mov.Reg(asm.R6, asm.R1))
	addAll(reloadOr(14, next))
	addAll(byEtherType("fp4", "fp6", next))

	// IPv4 without options, TTL > 1, to a fast-path destination.
	addAll(labeled(reloadOr(14+20, next), "fp4"))
	add(
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, next),
		asm.LoadMem(asm.R5, asm.R2, 14+8, asm.Byte),
		asm.JLE.Imm(asm.R5, 1, next),
	)
	addAll(lookupDest(f.hosts4, 16, 1, -4, next))
	addAll(reloadOr(14+20, next))
	add(
		// Total length against the destination's MTU.
		asm.LoadMem(asm.R4, asm.R2, 14+2, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.LoadMem(asm.R5, asm.R7, fvMTU, asm.Half),
		asm.JGT.Reg(asm.R4, asm.R5, next),
	)
	addAll(xdpOnly)
	add(
		// TTL - 1; the checksum gains 0x0100 (RFC 1624), in either byte
		// order, as one's-complement sums are order-blind.
		asm.LoadMem(asm.R4, asm.R2, 14+8, asm.Byte),
		asm.Sub.Imm(asm.R4, 1),
		asm.StoreMem(asm.R2, 14+8, asm.R4, asm.Byte),
		asm.LoadMem(asm.R4, asm.R2, 14+10, asm.Half),
		asm.Add.Imm(asm.R4, 1),
		asm.Mov.Reg(asm.R5, asm.R4),
		asm.RSh.Imm(asm.R5, 16),
		asm.And.Imm(asm.R4, 0xffff),
		asm.Add.Reg(asm.R4, asm.R5),
		asm.StoreMem(asm.R2, 14+10, asm.R4, asm.Half),
		asm.Mov.Imm(asm.R8, 0),
		asm.Ja.Label("rewrite"),
	)

	// IPv6, hop limit > 1, to a fast-path destination.
	addAll(labeled(reloadOr(14+40, next), "fp6"))
	add(
		asm.LoadMem(asm.R5, asm.R2, 14+7, asm.Byte),
		asm.JLE.Imm(asm.R5, 1, next),
	)
	addAll(lookupDest(f.hosts6, 24, 4, -16, next))
	addAll(reloadOr(14+40, next))
	add(
		asm.LoadMem(asm.R4, asm.R2, 14+4, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.Add.Imm(asm.R4, 40),
		asm.LoadMem(asm.R5, asm.R7, fvMTU, asm.Half),
		asm.JGT.Reg(asm.R4, asm.R5, next),
	)
	addAll(xdpOnly)
	add(
		asm.LoadMem(asm.R4, asm.R2, 14+7, asm.Byte),
		asm.Sub.Imm(asm.R4, 1),
		asm.StoreMem(asm.R2, 14+7, asm.R4, asm.Byte),
		asm.Mov.Imm(asm.R8, 1),
	)

	// Ethernet addresses, count, redirect. R2 still points at a frame of
	// at least 34 bytes.
	add(
		asm.LoadMem(asm.R4, asm.R7, fvDst, asm.Word).WithSymbol("rewrite"),
		asm.StoreMem(asm.R2, 0, asm.R4, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, fvDst+4, asm.Half),
		asm.StoreMem(asm.R2, 4, asm.R4, asm.Half),
		asm.LoadMem(asm.R4, asm.R7, fvSrc, asm.Half),
		asm.StoreMem(asm.R2, 6, asm.R4, asm.Half),
		asm.LoadMem(asm.R4, asm.R7, fvSrc+2, asm.Word),
		asm.StoreMem(asm.R2, 8, asm.R4, asm.Word),
		asm.LoadMem(asm.R9, asm.R7, fvIfindex, asm.Word),
		asm.StoreMem(asm.RFP, -20, asm.R8, asm.Word),
		mapPtr(asm.R1, f.stats),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -20),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R4, 1),
		asm.StoreMem(asm.R0, 0, asm.R4, asm.DWord),
		mapPtr(asm.R1, f.devs).WithSymbol("out"),
		asm.Mov.Reg(asm.R2, asm.R9),
		asm.Mov.Imm(asm.R3, Drop), // a destination without its device: never, see Add
		asm.FnRedirectMap.Call(),
		asm.Return(),
	)

	return p
}

// Has reports whether addr is a fast-path destination, and out of which
// interface.
func (f *FastPath) Has(addr netip.Addr) (ifindex int, ok bool) {
	m, key, err := f.key(addr)
	if err != nil {
		return 0, false
	}
	var v [fvSize]byte
	if err := m.Lookup(key, v[:]); err != nil {
		return 0, false
	}
	return int(binary.LittleEndian.Uint32(v[fvIfindex:])), true
}
