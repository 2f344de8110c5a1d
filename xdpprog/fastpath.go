package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
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
	hosts4 *ebpf.Map // HASH [4]byte -> struct xvs_dest
	hosts6 *ebpf.Map // HASH [16]byte -> struct xvs_dest
	devs   *ebpf.Map // DEVMAP_HASH ifindex -> ifindex
	stats  *ebpf.Map // PERCPU_ARRAY enum xvs_stat -> u64: frames forwarded
	punt   *ebpf.Map // HASH struct xvs_punt -> u32: sources left to the workers (AddPunt)

	filter socketFilter // for AF_PACKET pod ports, see SocketFilter
}

// The destinations' flags (enum xvs_dest_flag): destXDP marks one XDP
// programs may redirect to (its pod's eth0 runs NAPI, see FastPath; the tc
// fast path reaches every destination), destTunnel one behind a VXLAN
// tunnel the kernel's collect_md device builds (see AddTunnel; XDP
// programs never take it).
const (
	destXDP    = uint8(xdpXvsDestFlagXVS_DEST_XDP)
	destTunnel = uint8(xdpXvsDestFlagXVS_DEST_TUNNEL)
)

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
	// The error returns set f to nil: the cleanup keeps its own.
	defer func(f *FastPath) {
		if err != nil {
			f.Close()
		}
	}(f)
	if f.hosts4, err = newMap(xdpMapXvsFp4, uint32(max)); err != nil {
		return nil, fmt.Errorf("fast path: %w", err)
	}
	if f.hosts6, err = newMap(xdpMapXvsFp6, uint32(max)); err != nil {
		return nil, fmt.Errorf("fast path: %w", err)
	}
	if f.devs, err = newMap(xdpMapXvsFpdev, uint32(max)); err != nil {
		return nil, fmt.Errorf("fast path: %w", err)
	}
	if f.stats, err = newMap(xdpMapXvsFpstats, 4); err != nil {
		return nil, fmt.Errorf("fast path: %w", err)
	}
	if f.punt, err = newMap(xdpMapXvsPunt, MaxPunts); err != nil {
		return nil, fmt.Errorf("fast path: %w", err)
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
	v := xdpXvsDest{Ifindex: uint32(ifindex), Mtu: uint16(mtu), Dst: dst, Src: src}
	if xdp {
		v.Flags = destXDP
	}
	if err := m.Put(key, &v); err != nil {
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
	v := xdpXvsDest{Ifindex: uint32(ifindex), Mtu: uint16(mtu), Dst: dst, Src: src, Flags: destTunnel, Vni: vni}
	if remote.Is4() {
		// bpf_tunnel_key's IPv4 addresses are in host order.
		b := remote.As4()
		v.Remote[0] = binary.BigEndian.Uint32(b[:])
		if local.IsValid() {
			b = local.As4()
			v.Local[0] = binary.BigEndian.Uint32(b[:])
		}
		// No outer UDP checksum over IPv4, as Linux's vxlan devices
		// (Calico's) and the switch's workers send it: the receiver
		// need not verify one per segment.
		v.TunFlags = tunDontFragment | tunZeroCsum
	} else {
		// IPv6 addresses as the wire has them.
		b := remote.As16()
		for i := range v.Remote {
			v.Remote[i] = be32(b[4*i:])
		}
		if local.IsValid() {
			b = local.As16()
			for i := range v.Local {
				v.Local[i] = be32(b[4*i:])
			}
		}
		v.TunFlags = tunInfoIPv6
	}
	if err := m.Put(key, &v); err != nil {
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
	for _, n := range []struct {
		stat xdpXvsStat
		dst  *uint64
	}{
		{xdpXvsStatXVS_STAT_XDP4, &c.XDP4}, {xdpXvsStatXVS_STAT_XDP6, &c.XDP6},
		{xdpXvsStatXVS_STAT_TC4, &c.TC4}, {xdpXvsStatXVS_STAT_TC6, &c.TC6},
	} {
		var per []uint64
		if err := f.stats.Lookup(uint32(n.stat), &per); err != nil {
			return FastCounts{}, fmt.Errorf("fast path counters: %w", err)
		}
		for _, v := range per {
			*n.dst += v
		}
	}
	return c, nil
}

// Close releases the maps (programs using them keep their references).
func (f *FastPath) Close() error {
	var errs []error
	for _, m := range []*ebpf.Map{f.hosts4, f.hosts6, f.devs, f.stats, f.punt} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	if f.filter.prog != nil {
		errs = append(errs, f.filter.prog.Close())
	}
	return errors.Join(errs...)
}

// Has reports whether addr is a fast-path destination, and out of which
// interface.
func (f *FastPath) Has(addr netip.Addr) (ifindex int, ok bool) {
	m, key, err := f.key(addr)
	if err != nil {
		return 0, false
	}
	var v xdpXvsDest
	if err := m.Lookup(key, &v); err != nil {
		return 0, false
	}
	return int(v.Ifindex), true
}

// MaxPunts is how many sources AddPunt takes.
const MaxPunts = 65536

// puntKey is the xvs_punt key of a TCP or UDP source.
func puntKey(src netip.AddrPort, proto uint8) (*xdpXvsPunt, error) {
	a := src.Addr().Unmap()
	if !a.IsValid() || proto != 6 && proto != 17 {
		return nil, fmt.Errorf("fast path punt %v protocol %d: want an address and TCP or UDP", src, proto)
	}
	k := &xdpXvsPunt{Proto: proto, Port: binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, src.Port()))}
	if a.Is4() {
		b := a.As4()
		k.Addr[0] = be32(b[:])
	} else {
		b := a.As16()
		for i := range k.Addr {
			k.Addr[i] = be32(b[4*i:])
		}
	}
	return k, nil
}

// AddPunt keeps the fast path off packets from src over proto (6 TCP, 17
// UDP): every program built with f (XDP and tc, pod and uplink) passes
// them to the switch's workers instead of forwarding them. The switch
// punts its services' backends, whose replies the NAT stage translates
// back; the VIPs need nothing (no fast-path destination is a VIP).
func (f *FastPath) AddPunt(src netip.AddrPort, proto uint8) error {
	k, err := puntKey(src, proto)
	if err != nil {
		return err
	}
	if err := f.punt.Put(k, uint32(1)); err != nil {
		return fmt.Errorf("fast path punt %v: %w", src, err)
	}
	return nil
}

// RemovePunt gives the fast path back packets from src (absent: no error).
func (f *FastPath) RemovePunt(src netip.AddrPort, proto uint8) error {
	k, err := puntKey(src, proto)
	if err != nil {
		return err
	}
	if err := f.punt.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("fast path unpunt %v: %w", src, err)
	}
	return nil
}

// Punted reports whether src over proto is punted (AddPunt).
func (f *FastPath) Punted(src netip.AddrPort, proto uint8) bool {
	k, err := puntKey(src, proto)
	if err != nil {
		return false
	}
	var v uint32
	return f.punt.Lookup(k, &v) == nil
}
