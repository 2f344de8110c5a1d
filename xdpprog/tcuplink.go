package xdpprog

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// UplinkIngress is the steering of an uplink the switch drives with
// AF_PACKET instead of AF_XDP. XDP on a veth takes the peer's TSO and GSO
// away, so everything the network sends arrives segment by segment; an
// AF_PACKET uplink with this program keeps them: TCP comes in as the
// network's (or the kernel's GRO's) super-frames.
//
// Two programs read the same maps as the XDP uplink program (pod prefixes,
// the VXLAN port and VTEP addresses):
//   - a tc (TCX) ingress program: with a FastPath it first forwards frames
//     for the node's pods itself (the decision and rewrite of the AF_PACKET
//     pods' tc fast path, with bpf_redirect, super-frames whole); of the
//     rest it drops what the switch takes (the socket's tap has seen it)
//     and leaves everything else to the host;
//   - a socket filter (Filter, for the port's socket): it passes exactly
//     the frames the tc program drops, so the switch sees neither the
//     host's traffic nor what the fast path forwarded.
//
// Both decide through the same functions (fast_decide_skb, kernel_vxlan,
// steer in bpf/) on a copy of the headers, so they agree frame by frame. SetDecap is
// recorded for the maps' sake, but the tc program does not decapsulate:
// VXLAN goes to the switch.
type UplinkIngress struct {
	st     *steering
	prog   *ebpf.Program // tc ingress
	filter *ebpf.Program // socket filter
	lnk    link.Link
}

// NewUplinkIngress creates the maps and loads both programs (Options:
// MaxPrefixes, VXLANPort, FastPath).
func NewUplinkIngress(opts Options) (u *UplinkIngress, err error) {
	if opts.MaxPrefixes == 0 {
		opts.MaxPrefixes = 16384
	}
	if opts.VXLANPort == 0 {
		opts.VXLANPort = DefaultVXLANPort
	}
	u = &UplinkIngress{}
	// The error returns set u to nil: the cleanup keeps its own.
	defer func(u *UplinkIngress) {
		if err != nil {
			u.Close()
		}
	}(u)
	if u.st, err = newSteering(opts); err != nil {
		return nil, err
	}
	tc, filter := tcProgXvsUplinkTc, tcProgXvsUplinkFlt
	if opts.FastPath != nil {
		tc, filter = tcProgXvsUplinkTcfp, tcProgXvsUplinkFltfp
	}
	maps := u.st.maps(opts.FastPath)
	if u.prog, err = loadProgram(tcSpec, tc, maps, nil); err != nil {
		return nil, fmt.Errorf("load uplink tc program: %w", err)
	}
	if u.filter, err = loadProgram(tcSpec, filter, maps, nil); err != nil {
		return nil, fmt.Errorf("load uplink socket filter: %w", err)
	}
	return u, nil
}

// Filter is the socket filter the port's AF_PACKET socket must carry
// (SO_ATTACH_BPF) before the tc program is attached.
func (u *UplinkIngress) Filter() *ebpf.Program { return u.filter }

// Prog is the tc program (for tests).
func (u *UplinkIngress) Prog() *ebpf.Program { return u.prog }

// Attach attaches the tc program to ifindex's ingress (in the calling
// thread's network namespace) through a BPF link, which goes away with the
// process.
func (u *UplinkIngress) Attach(ifindex int) error {
	if u.lnk != nil {
		return errors.New("uplink tc program already attached")
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: u.prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("attach uplink tc program to ifindex %d: %w", ifindex, err)
	}
	u.lnk = l
	return nil
}

// Close detaches the tc program and releases the programs and maps.
func (u *UplinkIngress) Close() error {
	if u == nil {
		return nil
	}
	var errs []error
	if u.lnk != nil {
		errs = append(errs, u.lnk.Close())
		u.lnk = nil
	}
	for _, p := range []*ebpf.Program{u.prog, u.filter} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	u.prog, u.filter = nil, nil
	errs = append(errs, u.st.Close())
	return errors.Join(errs...)
}

// AddPrefix steers packets to pfx to the switch.
func (u *UplinkIngress) AddPrefix(pfx netip.Prefix) error { return u.st.AddPrefix(pfx) }

// RemovePrefix stops steering pfx.
func (u *UplinkIngress) RemovePrefix(pfx netip.Prefix) error {
	return u.st.RemovePrefix(pfx)
}

// SetVTEP sets the VXLAN port and node addresses steered to the switch.
func (u *UplinkIngress) SetVTEP(port uint16, node4, node6 netip.Addr) error {
	return u.st.SetVTEP(port, node4, node6)
}

// SetDecap records the node's VNI and VTEP MAC; the tc program leaves
// VXLAN to the switch, which decapsulates it.
func (u *UplinkIngress) SetDecap(vni uint32, mac [6]byte) error { return u.st.SetDecap(vni, mac) }

// SetKernelVXLAN says whether VXLAN for a fast-path pod goes to the
// kernel's VXLAN device (xdpprog.Program.SetKernelVXLAN; here over IPv4
// and IPv6) rather than to the switch.
func (u *UplinkIngress) SetKernelVXLAN(on bool) error { return u.st.SetKernelVXLAN(on) }
