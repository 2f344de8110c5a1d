package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// steering holds an uplink's steering maps: which frames from the network
// are the switch's. The XDP uplink program (Program of kind Uplink) and
// the tc one of an AF_PACKET uplink (UplinkIngress) read the same layout.
type steering struct {
	cfg  *ebpf.Map // ARRAY[1]: cfg* layout
	pfx4 *ebpf.Map // LPM trie {prefixlen u32, addr [4]byte} -> u32
	pfx6 *ebpf.Map // LPM trie {prefixlen u32, addr [16]byte} -> u32

	cfgVal [cfgSize]byte
}

// newSteering creates the maps, with opts' defaults applied (MaxPrefixes,
// VXLANPort).
func newSteering(opts Options) (st *steering, err error) {
	st = &steering{}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if st.cfg, err = ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_cfg", Type: ebpf.Array, KeySize: 4, ValueSize: cfgSize, MaxEntries: 1}); err != nil {
		return nil, fmt.Errorf("create config map: %w", err)
	}
	for _, m := range []struct {
		pp  **ebpf.Map
		n   string
		key uint32
	}{{&st.pfx4, "xvs_pfx4", 8}, {&st.pfx6, "xvs_pfx6", 20}} {
		if *m.pp, err = ebpf.NewMap(&ebpf.MapSpec{Name: m.n, Type: ebpf.LPMTrie, KeySize: m.key, ValueSize: 4, MaxEntries: uint32(opts.MaxPrefixes), Flags: unix.BPF_F_NO_PREALLOC}); err != nil {
			return nil, fmt.Errorf("create %s: %w", m.n, err)
		}
	}
	if err := st.SetVTEP(opts.VXLANPort, netip.Addr{}, netip.Addr{}); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *steering) prefixKey(pfx netip.Prefix) (*ebpf.Map, []byte, error) {
	if !pfx.IsValid() {
		return nil, nil, fmt.Errorf("invalid prefix %v", pfx)
	}
	pfx = pfx.Masked()
	a := pfx.Addr().Unmap()
	var key []byte
	m := st.pfx4
	if a.Is4() {
		b := a.As4()
		key = append(binary.LittleEndian.AppendUint32(nil, uint32(pfx.Bits())), b[:]...)
	} else {
		b := a.As16()
		key = append(binary.LittleEndian.AppendUint32(nil, uint32(pfx.Bits())), b[:]...)
		m = st.pfx6
	}
	return m, key, nil
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
	var v [cfgSize]byte
	var flags uint32
	if node4.IsValid() {
		if !node4.Unmap().Is4() {
			return fmt.Errorf("set vtep: %v is not IPv4", node4)
		}
		b := node4.Unmap().As4()
		copy(v[cfgNode4:], b[:])
		flags |= cfgHas4
	}
	if node6.IsValid() {
		if !node6.Is6() || node6.Is4In6() {
			return fmt.Errorf("set vtep: %v is not IPv6", node6)
		}
		b := node6.As16()
		copy(v[cfgNode6:], b[:])
		flags |= cfgHas6
	}
	// What SetDecap and SetKernelVXLAN set stays.
	copy(v[cfgVNI:], st.cfgVal[cfgVNI:])
	flags |= binary.LittleEndian.Uint32(st.cfgVal[cfgFlags:]) & (cfgDecap | cfgKernel)
	binary.BigEndian.PutUint16(v[cfgPort:], port)
	return st.store(v, flags, "set vtep")
}

// store writes v, with flags, as the config value, and keeps it for the
// next setter; what names the setter in the error.
func (st *steering) store(v [cfgSize]byte, flags uint32, what string) error {
	binary.LittleEndian.PutUint32(v[cfgFlags:], flags)
	if err := st.cfg.Put(uint32(0), v[:]); err != nil {
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
	flags := binary.LittleEndian.Uint32(v[cfgFlags:]) &^ cfgDecap
	v[cfgVNI], v[cfgVNI+1], v[cfgVNI+2], v[cfgVNI+3] = byte(vni>>16), byte(vni>>8), byte(vni), 0
	copy(v[cfgMAC:], mac[:])
	if mac != ([6]byte{}) {
		flags |= cfgDecap
	}
	return st.store(v, flags, "set decap")
}

// SetKernelVXLAN says whether VXLAN for a destination only tc reaches
// goes to the kernel's VXLAN device (see cfgKernel): over IPv4 from the
// XDP uplink, over IPv4 and IPv6 from the tc one.
func (st *steering) SetKernelVXLAN(on bool) error {
	flags := binary.LittleEndian.Uint32(st.cfgVal[cfgFlags:]) &^ cfgKernel
	if on {
		flags |= cfgKernel
	}
	return st.store(st.cfgVal, flags, "set kernel vxlan")
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
