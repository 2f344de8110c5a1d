package xdpprog

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Kind selects the steering policy.
type Kind uint8

const (
	// Pod redirects every frame of the queue to its socket.
	Pod Kind = iota
	// Uplink redirects only frames for pod prefixes and VXLAN to the node;
	// everything else goes to the host stack (XDP_PASS).
	Uplink
)

func (k Kind) String() string {
	switch k {
	case Pod:
		return "pod"
	case Uplink:
		return "uplink"
	}
	return "unknown"
}

// XDP verdicts, for MissAction and tests.
const (
	Aborted  = 0
	Drop     = 1
	Pass     = 2
	TX       = 3
	Redirect = 4
)

// DefaultVXLANPort is the IANA VXLAN port the uplink steers by default.
const DefaultVXLANPort = 4789

// Options tune a Program. Zero values take the defaults.
type Options struct {
	// Queues is the XSKMAP size: the highest rx queue index plus one
	// (default 64).
	Queues int
	// MaxPrefixes bounds each pod-prefix trie (default 16384).
	MaxPrefixes int
	// MissAction is returned for a frame the program would redirect to a
	// queue that has no socket (default Pass: the host sees it).
	MissAction uint32
	// VXLANPort is the node's VTEP UDP port (default 4789).
	VXLANPort uint16
	// FastPath, for a pod program, forwards pod-to-pod frames in XDP
	// (see FastPath); nil sends every frame to the socket. For an uplink
	// program it forwards frames from the network to the node's pods the
	// same way, ahead of the steering.
	FastPath *FastPath
}

// Program is a loaded steering program and its maps. It may be attached to
// one interface at a time. Map updates (sockets, prefixes, VTEP) are safe
// from any goroutine (the kernel serialises them); Attach, Detach and Close
// belong to the port's owner.
type Program struct {
	kind Kind
	prog *ebpf.Program
	xsks *ebpf.Map // XSKMAP: rx queue -> socket
	st   *steering // an uplink's maps; nil for a pod program

	att *attachment
	// forceNetlink makes Attach skip BPF links (tests of the fallback).
	forceNetlink bool
}

// New creates the maps and loads the program for kind.
func New(kind Kind, opts Options) (p *Program, err error) {
	if opts.Queues == 0 {
		opts.Queues = 64
	}
	if opts.MaxPrefixes == 0 {
		opts.MaxPrefixes = 16384
	}
	if opts.MissAction == 0 {
		opts.MissAction = Pass
	}
	if opts.VXLANPort == 0 {
		opts.VXLANPort = DefaultVXLANPort
	}
	p = &Program{kind: kind}
	// The error returns set p to nil: the cleanup keeps its own.
	defer func(p *Program) {
		if err != nil {
			p.Close()
		}
	}(p)
	if p.xsks, err = newMap(xdpMapXvsXsks, uint32(opts.Queues)); err != nil {
		return nil, err
	}
	miss := map[string]any{xdpVarMissAction: opts.MissAction}
	switch {
	case kind == Uplink:
		if p.st, err = newSteering(opts); err != nil {
			return nil, err
		}
		maps := p.st.maps(opts.FastPath)
		maps[xdpMapXvsXsks] = p.xsks
		prog := xdpProgXvsUplink
		if opts.FastPath != nil {
			prog = xdpProgXvsUplinkFast
		}
		p.prog, err = loadProgram(xdpSpec, prog, maps, miss)
	case opts.FastPath != nil:
		maps := opts.FastPath.maps()
		maps[xdpMapXvsXsks] = p.xsks
		p.prog, err = loadProgram(xdpSpec, xdpProgXvsPodFast, maps, miss)
	default:
		p.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xvs_pod", Type: ebpf.XDP, License: "GPL", Instructions: podProgram(p.xsks, opts.MissAction)})
	}
	if err != nil {
		return nil, fmt.Errorf("load %s xdp program: %w", kind, err)
	}
	return p, nil
}

// Kind returns the program's policy.
func (p *Program) Kind() Kind { return p.kind }

// Prog returns the loaded program (for tests and BPF_PROG_TEST_RUN).
func (p *Program) Prog() *ebpf.Program { return p.prog }

// SetSocket directs rx queue queue to the AF_XDP socket fd.
func (p *Program) SetSocket(queue, fd int) error {
	if err := p.xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("xskmap set queue %d: %w", queue, err)
	}
	return nil
}

// ClearSocket removes queue's socket; its frames then get MissAction.
func (p *Program) ClearSocket(queue int) error {
	if err := p.xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xskmap clear queue %d: %w", queue, err)
	}
	return nil
}

// ErrNotUplink is returned by steering calls on a pod program.
var ErrNotUplink = errors.New("not an uplink program")

// AddPrefix steers packets to pfx (a pod block or pod address) to the
// sockets.
func (p *Program) AddPrefix(pfx netip.Prefix) error {
	if p.st == nil {
		return fmt.Errorf("add prefix %v: %w", pfx, ErrNotUplink)
	}
	return p.st.AddPrefix(pfx)
}

// RemovePrefix stops steering pfx. Removing an absent prefix is not an error.
func (p *Program) RemovePrefix(pfx netip.Prefix) error {
	if p.st == nil {
		return fmt.Errorf("remove prefix %v: %w", pfx, ErrNotUplink)
	}
	return p.st.RemovePrefix(pfx)
}

// SetVTEP sets the node's VXLAN UDP port and addresses: UDP to port and to
// node4 or node6 is steered. An invalid address turns that family off;
// port 0 means DefaultVXLANPort.
func (p *Program) SetVTEP(port uint16, node4, node6 netip.Addr) error {
	if p.st == nil {
		return fmt.Errorf("set vtep: %w", ErrNotUplink)
	}
	return p.st.SetVTEP(port, node4, node6)
}

// SetDecap lets an uplink program with a fast path decapsulate VXLAN over
// IPv4 itself when the inner frame carries the node's VNI and VTEP MAC and
// goes to a fast-path pod (see vxlan_decap in bpf/xdp.c for what it checks, and what it
// leaves to the inner packet's checksums); everything else, VXLAN over
// IPv6 among it, still goes to the socket whole. A zero MAC turns it off.
func (p *Program) SetDecap(vni uint32, mac [6]byte) error {
	if p.st == nil {
		return fmt.Errorf("set decap: %w", ErrNotUplink)
	}
	return p.st.SetDecap(vni, mac)
}

// SetKernelVXLAN lets an uplink program with a fast path hand VXLAN over
// IPv4 for the node whose inner frame goes to a destination only tc
// reaches (an af-packet pod) to the kernel whole, for the switch's
// collect_md VXLAN device to decapsulate and merge (TunnelIngress takes
// it from there). Off, such VXLAN goes to the socket.
func (p *Program) SetKernelVXLAN(on bool) error {
	if p.st == nil {
		return fmt.Errorf("set kernel vxlan: %w", ErrNotUplink)
	}
	return p.st.SetKernelVXLAN(on)
}

// Close detaches the program if attached and releases the maps.
func (p *Program) Close() error {
	var errs []error
	if p.att != nil {
		errs = append(errs, p.Detach())
	}
	if p.prog != nil {
		errs = append(errs, p.prog.Close())
	}
	if p.xsks != nil {
		errs = append(errs, p.xsks.Close())
	}
	errs = append(errs, p.st.Close())
	p.prog, p.xsks, p.st = nil, nil, nil
	return errors.Join(errs...)
}
