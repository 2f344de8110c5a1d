package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// steering holds an uplink's steering maps: which frames from the network
// are the switch's. The XDP uplink program (Program of kind Uplink) and
// the tc one of an AF_PACKET uplink (UplinkIngress) read the same maps,
// whose layouts are bpf/xvs.h's.
type steering struct {
	cfg  *ebpf.Map // ARRAY[1]: struct xvs_cfg
	pfx4 *ebpf.Map // LPM trie struct xvs_pfx4 -> u32
	pfx6 *ebpf.Map // LPM trie struct xvs_pfx6 -> u32

	cfgVal xdpXvsCfg // what the map holds, for the next setter
}

// The config's flags (enum xvs_cfg_flag).
const (
	cfgHas4   = uint32(xdpXvsCfgFlagXVS_CFG_HAS4)
	cfgHas6   = uint32(xdpXvsCfgFlagXVS_CFG_HAS6)
	cfgDecap  = uint32(xdpXvsCfgFlagXVS_CFG_DECAP)
	cfgKernel = uint32(xdpXvsCfgFlagXVS_CFG_KERNEL)
)

// newSteering creates the maps, with opts' defaults applied (MaxPrefixes,
// VXLANPort).
func newSteering(opts Options) (st *steering, err error) {
	st = &steering{}
	// The error returns set st to nil: the cleanup keeps its own.
	defer func(st *steering) {
		if err != nil {
			st.Close()
		}
	}(st)
	if st.cfg, err = newMap(xdpMapXvsCfg, 1); err != nil {
		return nil, err
	}
	if st.pfx4, err = newMap(xdpMapXvsPfx4, uint32(opts.MaxPrefixes)); err != nil {
		return nil, err
	}
	if st.pfx6, err = newMap(xdpMapXvsPfx6, uint32(opts.MaxPrefixes)); err != nil {
		return nil, err
	}
	if err := st.SetVTEP(opts.VXLANPort, netip.Addr{}, netip.Addr{}); err != nil {
		return nil, err
	}
	return st, nil
}

// be32 is the big-endian word b[i:i+4] as a host-order load sees it: how
// the C compares network-order fields.
func be32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

func (st *steering) prefixKey(pfx netip.Prefix) (*ebpf.Map, any, error) {
	if !pfx.IsValid() {
		return nil, nil, fmt.Errorf("invalid prefix %v", pfx)
	}
	pfx = pfx.Masked()
	a := pfx.Addr().Unmap()
	if a.Is4() {
		b := a.As4()
		return st.pfx4, &xdpXvsPfx4{Prefixlen: uint32(pfx.Bits()), Addr: be32(b[:])}, nil
	}
	b := a.As16()
	k := &xdpXvsPfx6{Prefixlen: uint32(pfx.Bits())}
	for i := range k.Addr {
		k.Addr[i] = be32(b[4*i:])
	}
	return st.pfx6, k, nil
}

// AddPrefix steers packets to pfx (a pod block or pod address) to the
// switch.
func (st *steering) AddPrefix(pfx netip.Prefix) error {
	m, key, err := st.prefixKey(pfx)
	if err != nil {
		return fmt.Errorf("add prefix %v: %w", pfx, err)
	}
	if err := m.Put(key, uint32(1)); err != nil {
		return fmt.Errorf("add prefix %v: %w", pfx, err)
	}
	return nil
}

// RemovePrefix stops steering pfx. Removing an absent prefix is not an error.
func (st *steering) RemovePrefix(pfx netip.Prefix) error {
	m, key, err := st.prefixKey(pfx)
	if err != nil {
		return fmt.Errorf("remove prefix %v: %w", pfx, err)
	}
	if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove prefix %v: %w", pfx, err)
	}
	return nil
}

// SetVTEP sets the node's VXLAN UDP port and addresses: UDP to port and to
// node4 or node6 is steered. An invalid address turns that family off;
// port 0 means DefaultVXLANPort.
func (st *steering) SetVTEP(port uint16, node4, node6 netip.Addr) error {
	if port == 0 {
		port = DefaultVXLANPort
	}
	// What SetDecap and SetKernelVXLAN set stays.
	v := xdpXvsCfg{Vni: st.cfgVal.Vni, Mac: st.cfgVal.Mac, Flags: st.cfgVal.Flags & (cfgDecap | cfgKernel)}
	if node4.IsValid() {
		if !node4.Unmap().Is4() {
			return fmt.Errorf("set vtep: %v is not IPv4", node4)
		}
		b := node4.Unmap().As4()
		v.Node4 = be32(b[:])
		v.Flags |= cfgHas4
	}
	if node6.IsValid() {
		if !node6.Is6() || node6.Is4In6() {
			return fmt.Errorf("set vtep: %v is not IPv6", node6)
		}
		b := node6.As16()
		for i := range v.Node6 {
			v.Node6[i] = be32(b[4*i:])
		}
		v.Flags |= cfgHas6
	}
	v.Port = binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, port))
	return st.store(v, "set vtep")
}

// store writes v as the config value, and keeps it for the next setter;
// what names the setter in the error.
func (st *steering) store(v xdpXvsCfg, what string) error {
	if err := st.cfg.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	st.cfgVal = v
	return nil
}

// SetDecap records the node's VNI and VTEP MAC for the XDP fast path's
// decapsulation (see Program.SetDecap); a zero MAC turns it off.
func (st *steering) SetDecap(vni uint32, mac [6]byte) error {
	if vni > 1<<24-1 {
		return fmt.Errorf("set decap: VNI %d out of range", vni)
	}
	v := st.cfgVal
	v.Flags &^= cfgDecap
	// The VXLAN header's second word: the VNI's three bytes, then zero.
	v.Vni = be32([]byte{byte(vni >> 16), byte(vni >> 8), byte(vni), 0})
	v.Mac = mac
	if mac != ([6]byte{}) {
		v.Flags |= cfgDecap
	}
	return st.store(v, "set decap")
}

// SetKernelVXLAN says whether VXLAN for a destination only tc reaches
// goes to the kernel's VXLAN device (see XVS_CFG_KERNEL): over IPv4 from
// the XDP uplink, over IPv4 and IPv6 from the tc one.
func (st *steering) SetKernelVXLAN(on bool) error {
	v := st.cfgVal
	v.Flags &^= cfgKernel
	if on {
		v.Flags |= cfgKernel
	}
	return st.store(v, "set kernel vxlan")
}

// Close releases the maps (a nil steering has none).
func (st *steering) Close() error {
	if st == nil {
		return nil
	}
	var errs []error
	for _, m := range []*ebpf.Map{st.cfg, st.pfx4, st.pfx6} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	st.cfg, st.pfx4, st.pfx6 = nil, nil, nil
	return errors.Join(errs...)
}
