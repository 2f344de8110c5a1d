package xdpprog

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// AttachMode is where the program runs.
type AttachMode uint8

const (
	// AttachAuto tries native (driver) XDP, then generic (skb) XDP.
	AttachAuto AttachMode = iota
	// AttachNative runs the program in the driver.
	AttachNative
	// AttachGeneric runs the program on the skb path (any device).
	AttachGeneric
)

func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachNative:
		return "native"
	case AttachGeneric:
		return "generic"
	}
	return "unknown"
}

// ErrAttached is returned by Attach on an already attached program.
var ErrAttached = errors.New("program already attached")

// attachment records how to undo an Attach. A BPF link detaches by closing
// its fd from any namespace; the netlink fallback (kernels without XDP BPF
// links, before 5.9) must talk to the namespace the device lives in, so it
// keeps a handle on it.
type attachment struct {
	ifindex int
	mode    AttachMode
	lnk     link.Link      // BPF link, or nil for the netlink fallback
	ns      netns.NsHandle // netlink fallback: namespace of the device
}

// Attach attaches the program to ifindex (in the calling thread's network
// namespace) and returns the mode it got. With AttachAuto it falls back from
// native to generic; a forced mode fails if unavailable. Attach does not
// replace a program someone else attached: the kernel refuses with EBUSY.
func (p *Program) Attach(ifindex int, mode AttachMode) (AttachMode, error) {
	if p.att != nil {
		return 0, ErrAttached
	}
	var tries []AttachMode
	switch mode {
	case AttachAuto:
		tries = []AttachMode{AttachNative, AttachGeneric}
	case AttachNative, AttachGeneric:
		tries = []AttachMode{mode}
	default:
		return 0, fmt.Errorf("attach xdp: unknown mode %d", mode)
	}
	var errs []error
	for _, m := range tries {
		a, err := p.attach(ifindex, m)
		if err == nil {
			p.att = a
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m, err))
	}
	return 0, fmt.Errorf("attach xdp to ifindex %d: %w", ifindex, errors.Join(errs...))
}

func (p *Program) attach(ifindex int, m AttachMode) (*attachment, error) {
	flags, nlFlags := link.XDPDriverMode, unix.XDP_FLAGS_DRV_MODE
	if m == AttachGeneric {
		flags, nlFlags = link.XDPGenericMode, unix.XDP_FLAGS_SKB_MODE
	}
	if !p.forceNetlink {
		l, err := link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: flags})
		if err == nil {
			return &attachment{ifindex: ifindex, mode: m, lnk: l}, nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return nil, err
		}
	}
	// No XDP BPF links: the netlink way, never replacing another program.
	ns, err := netns.Get()
	if err != nil {
		return nil, err
	}
	lk := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	if err := netlink.LinkSetXdpFdWithFlags(lk, p.prog.FD(), unix.XDP_FLAGS_UPDATE_IF_NOEXIST|nlFlags); err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &attachment{ifindex: ifindex, mode: m, ns: ns}, nil
}

// Attached returns the interface and mode the program is attached with, or
// ok=false.
func (p *Program) Attached() (ifindex int, mode AttachMode, ok bool) {
	if p.att == nil {
		return 0, 0, false
	}
	return p.att.ifindex, p.att.mode, true
}

// Detach removes the program from its interface. It never waits on the
// kernel: closing the BPF link (or one netlink request with the mode flag
// the program was attached with) detaches in every mode.
func (p *Program) Detach() error {
	a := p.att
	if a == nil {
		return nil
	}
	p.att = nil
	if a.lnk != nil {
		if err := a.lnk.Close(); err != nil {
			return fmt.Errorf("detach xdp from ifindex %d: %w", a.ifindex, err)
		}
		return nil
	}
	defer a.ns.Close()
	nlFlags := unix.XDP_FLAGS_DRV_MODE
	if a.mode == AttachGeneric {
		nlFlags = unix.XDP_FLAGS_SKB_MODE
	}
	err := inNS(a.ns, func() error {
		lk := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: a.ifindex}}
		return netlink.LinkSetXdpFdWithFlags(lk, -1, nlFlags)
	})
	if err != nil {
		return fmt.Errorf("detach xdp from ifindex %d: %w", a.ifindex, err)
	}
	return nil
}

// inNS runs fn on a thread in ns for the one netlink request it makes.
func inNS(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, err) // leave the thread locked: the runtime retires it
	}
	runtime.UnlockOSThread()
	return ferr
}
