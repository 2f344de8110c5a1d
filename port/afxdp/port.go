package afxdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/afpacket"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
)

// Options tune an AF_XDP port. Zero values take the defaults.
type Options struct {
	// ID is stamped into port.Packet.Port of every received frame.
	ID uint16
	// RingSize is the rx and tx ring size (power of two, default 2048).
	RingSize uint32
	// FillSize and CompSize size the fill and completion rings (default
	// RingSize).
	FillSize, CompSize uint32
	// FillTarget is how many Umem frames the port keeps posted in its fill
	// ring (default: UplinkFill for an uplink, PodFill for other ports;
	// never more than FillSize). Every port of a worker draws on the same
	// Umem, and a port holds its target whether traffic comes or not: the
	// kernel gives fill-ring frames back only by receiving into them. Open
	// fails (xsk.ErrNoFrames) when the Umem cannot fill the target.
	FillTarget int
	// Program, when set, is an already attached steering program shared by
	// every queue of a multi-queue uplink: the port only puts its socket in
	// the program's XSKMAP and leaves attach/detach to the caller. When nil
	// the port creates, attaches and owns a program of the right kind.
	Program *xdpprog.Program
	// FastPath, for a port's own program, forwards frames to the node's
	// pods in XDP (see xdpprog.FastPath): a pod port's from its pod, an
	// uplink's from the network.
	FastPath *xdpprog.FastPath
	// VXLANPort and VTEP addresses for an uplink's own program (default
	// port 4789, no VTEP until SetVTEP).
	VXLANPort    uint16
	VTEP4, VTEP6 netip.Addr
	// LargeTx opens a send-only AF_PACKET socket with PACKET_VNET_HDR next
	// to the AF_XDP one, through which the port sends GSO super-frames
	// whole (TransmitLarge): the interface (a NIC's TSO, or the kernel's
	// GSO) cuts them, or a pod's stack takes them whole, not the switch.
	// The switch asks for it on every AF_XDP port.
	// If the socket cannot be had the port works without it and
	// LargeTxErr says why.
	LargeTx bool
}

// Port is an AF_XDP socket on one device queue, over the worker's shared
// Umem, with the steering program that feeds it.
type Port struct {
	name   string
	queue  int
	kind   spec.PortKind
	mode   spec.Mode
	id     uint16
	umem   *xsk.Umem
	sock   *xsk.Socket
	prog   *xdpprog.Program
	owned  bool // prog was created and attached by this port
	target int  // frames to keep posted in the fill ring
	posted int  // frames given to the fill ring not yet received back
	queued bool // tx descriptors submitted since the last kick
	closed bool

	lg    *afpacket.Sender // GSO super-frames out, if LargeTx
	lgErr error            // why LargeTx is not in force
}

var (
	_ port.Port          = (*Port)(nil)
	_ port.LargePort     = (*largeTxPort)(nil)
	_ port.PrefixSteerer = (*Port)(nil)
	_ port.KernelStats   = (*Port)(nil)
	_ port.FastPathPort  = (*Port)(nil)
	_ port.QueueOpener   = (*Port)(nil)
)

// Fill targets. A pod's veth receives at most a NAPI budget (64 frames)
// per poll and the worker tops the ring up after every receive, but the
// ring must also cover the time the worker is off the CPU: at 256 frames
// e2e TestCrossNodeFastPath lost 111 of 4,000 datagrams at 20 kpps on a
// loaded 2-core machine, so pods keep 1024 (13 AF_XDP pods per worker
// at the default 16384 frames; past that, mode auto falls back to
// AF_PACKET and says why, and `frames` buys more). The uplink carries
// every pod's traffic.
const (
	PodFill    = 1024
	UplinkFill = 2048
)

// DefaultFillTarget is the fill target of a port of kind over a Umem of
// frames frames: UplinkFill (at most a quarter of the Umem) for an
// uplink, PodFill (at most an eighth) for pod and host ports.
func DefaultFillTarget(kind spec.PortKind, frames int) int {
	if kind == spec.PortUplink {
		return min(UplinkFill, frames/4)
	}
	return min(PodFill, frames/8)
}

// maxKicks bounds the sendto calls one Flush makes to drain the tx ring.
const maxKicks = 16

// refillBatch is the smallest fill-ring top-up Receive bothers with.
const refillBatch = 32

// Open opens an AF_XDP port on ifname's rx/tx queue over umem (the
// worker's shared Umem). kind picks the steering: spec.PortPod and spec.PortHost
// redirect everything, spec.PortUplink only pod prefixes and VXLAN to the node.
// mode is spec.ModeAuto (zero-copy, then native copy, then generic) or one of
// spec.ModeXDPZC, spec.ModeXDPDrv, spec.ModeXDPSKB, which fail with port.ErrModeUnavailable when
// the device cannot do them. Interface lookup, attach and bind happen in the
// calling thread's network namespace. The port is the worker's; Mode reports
// what was achieved.
func Open(ifname string, queue int, kind spec.PortKind, mode spec.Mode, umem *xsk.Umem, opts Options) (_ *Port, err error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("xdp port %s: %w", ifname, err)
	}
	if opts.RingSize == 0 {
		opts.RingSize = 2048
	}
	if opts.FillSize == 0 {
		opts.FillSize = opts.RingSize
	}
	if opts.CompSize == 0 {
		opts.CompSize = opts.RingSize
	}
	if opts.FillTarget == 0 {
		opts.FillTarget = DefaultFillTarget(kind, umem.Frames())
	}
	opts.FillTarget = min(opts.FillTarget, int(opts.FillSize))

	var attach xdpprog.AttachMode
	var bind xsk.BindMode
	switch mode {
	case spec.ModeAuto:
		attach, bind = xdpprog.AttachAuto, xsk.BindAuto
	case spec.ModeXDPZC:
		attach, bind = xdpprog.AttachNative, xsk.BindZeroCopy
	case spec.ModeXDPDrv:
		attach, bind = xdpprog.AttachNative, xsk.BindCopy
	case spec.ModeXDPSKB:
		attach, bind = xdpprog.AttachGeneric, xsk.BindCopy
	default:
		return nil, fmt.Errorf("xdp port %s: mode %s is not an XDP mode", ifname, mode)
	}

	p := &Port{name: ifname, queue: queue, kind: kind, id: opts.ID, umem: umem, target: opts.FillTarget}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	cfg := xsk.Config{
		RxSize: opts.RingSize, TxSize: opts.RingSize,
		FillSize: opts.FillSize, CompSize: opts.CompSize,
		Bind: bind,
	}
	var got xdpprog.AttachMode
	if opts.Program != nil {
		p.prog = opts.Program
		var ok bool
		if _, got, ok = p.prog.Attached(); !ok {
			return nil, fmt.Errorf("xdp port %s: shared steering program is not attached", ifname)
		}
		if attach != xdpprog.AttachAuto && got != attach {
			return nil, fmt.Errorf("xdp port %s mode %s: %w: shared program runs in %s mode", ifname, mode, port.ErrModeUnavailable, got)
		}
		if got == xdpprog.AttachGeneric {
			cfg.Bind = xsk.BindCopy // zero-copy needs the driver hook
		}
		if p.sock, err = xsk.Open(umem, ifi.Index, queue, cfg); err != nil {
			if mode == spec.ModeXDPZC {
				err = fmt.Errorf("%w: %w", port.ErrModeUnavailable, err)
			}
			return nil, fmt.Errorf("xdp port %s queue %d: %w", ifname, queue, err)
		}
	} else {
		pk := xdpprog.Pod
		if kind == spec.PortUplink {
			pk = xdpprog.Uplink
		}
		if p.prog, err = xdpprog.New(pk, xdpprog.Options{VXLANPort: opts.VXLANPort, FastPath: opts.FastPath}); err != nil {
			return nil, fmt.Errorf("xdp port %s: %w", ifname, err)
		}
		p.owned = true
		if kind == spec.PortUplink && (opts.VTEP4.IsValid() || opts.VTEP6.IsValid()) {
			if err = p.prog.SetVTEP(opts.VXLANPort, opts.VTEP4, opts.VTEP6); err != nil {
				return nil, fmt.Errorf("xdp port %s: %w", ifname, err)
			}
		}
		// ModeAuto: native hook (zero-copy, else copy), then generic; a
		// forced mode gets one try.
		tries := []xdpprog.AttachMode{attach}
		if mode == spec.ModeAuto {
			tries = []xdpprog.AttachMode{xdpprog.AttachNative, xdpprog.AttachGeneric}
		}
		var errs []error
		for _, am := range tries {
			if am == xdpprog.AttachGeneric {
				if err := genericFits(ifi, umem); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if got, err = p.prog.Attach(ifi.Index, am); err != nil {
				errs = append(errs, err)
				continue
			}
			if got == xdpprog.AttachGeneric {
				cfg.Bind = xsk.BindCopy // zero-copy needs the driver hook
			}
			if p.sock, err = xsk.Open(umem, ifi.Index, queue, cfg); err == nil {
				break
			}
			errs = append(errs, fmt.Errorf("%s hook: %w", got, err))
			p.prog.Detach()
		}
		if p.sock == nil {
			err = joined(errs)
			if mode != spec.ModeAuto {
				err = fmt.Errorf("%w: %w", port.ErrModeUnavailable, err)
			}
			return nil, fmt.Errorf("xdp port %s queue %d mode %s: %w", ifname, queue, mode, err)
		}
	}
	switch {
	case p.sock.ZeroCopy():
		p.mode = spec.ModeXDPZC
	case got == xdpprog.AttachGeneric:
		p.mode = spec.ModeXDPSKB
	default:
		p.mode = spec.ModeXDPDrv
	}
	p.posted += p.sock.Refill(p.target)
	if p.posted < p.target {
		// A port with an empty fill ring receives nothing: refuse it
		// rather than run it dead.
		return nil, fmt.Errorf("xdp port %s: fill ring: %d of %d frames, the worker's Umem has no more free (%d frames, %d ports' rings hold them): %w",
			ifname, p.posted, p.target, umem.Frames(), umem.Sockets(), xsk.ErrNoFrames)
	}
	if err = p.prog.SetSocket(queue, p.sock.FD()); err != nil {
		return nil, fmt.Errorf("xdp port %s: %w", ifname, err)
	}
	if opts.LargeTx {
		p.lg, p.lgErr = afpacket.OpenSender(ifi.Index)
	}
	return p, nil
}

// xdpPacketHeadroom is the headroom the kernel keeps in front of a frame
// it copies into the Umem (XDP_PACKET_HEADROOM; the Umem registers none
// of its own).
const xdpPacketHeadroom = 256

// ErrFrameTooSmall is wrapped when the interface's MTU is more than an
// AF_XDP frame of the Umem holds.
var ErrFrameTooSmall = errors.New("mtu above what an AF_XDP frame holds")

// genericFits refuses generic (skb) XDP on an interface whose frames are
// bigger than a Umem frame holds: the kernel would drop each frame longer
// than that on its way to the socket, where no counter of ours sees it.
// The driver hook needs no such check: a driver refuses an XDP program
// when its MTU is more than a page holds (a veth: ERANGE, "Peer MTU is
// too large to set XDP"), which is less than a 4096-byte Umem frame.
func genericFits(ifi *net.Interface, u *xsk.Umem) error {
	// Ethernet header and one VLAN tag on top of the MTU.
	if need, room := ifi.MTU+18, u.FrameSize()-xdpPacketHeadroom; need > room {
		return fmt.Errorf("generic: mtu %d of %s needs %d-byte frames, a %d-byte Umem frame holds %d: %w",
			ifi.MTU, ifi.Name, need, u.FrameSize(), room, ErrFrameTooSmall)
	}
	return nil
}

// joined is errors.Join on one line: the error ends up in a port's
// reason, which `xvsctl show` prints in a table.
type joined []error

func (j joined) Error() string {
	s := make([]string, len(j))
	for i, e := range j {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (j joined) Unwrap() []error { return j }

// largeTxPort is a Port with its GSO sender (Options.LargeTx): the view
// of it that takes super-frames, so that a port without a sender is no
// port.LargePort and gets segments.
type largeTxPort struct{ *Port }

// Large returns nothing: an AF_XDP ring takes no super-frames in.
func (p *largeTxPort) Large() []port.LargeFrame { return nil }

// TransmitLarge sends a super-frame whole through the port's AF_PACKET
// socket.
func (p *largeTxPort) TransmitLarge(frame []byte, hdr encap.VirtioNetHdr) error {
	return p.lg.Send(frame, hdr)
}

// AsPort returns the port as the switch should see it: a port.LargePort
// when it has its GSO sender.
func (p *Port) AsPort() port.Port {
	if p.lg != nil {
		return &largeTxPort{p}
	}
	return p
}

// FastPath implements port.FastPathPort: an AF_XDP port's program carries
// the fast path, and other programs redirect to it.
func (p *Port) FastPath() port.FastAttach { return port.FastXDP }

// LargeTxErr says why LargeTx was asked for and is not in force.
func (p *Port) LargeTxErr() error { return p.lgErr }

// Receive takes up to len(pkts) frames from the rx ring and tops the fill
// ring back up.
func (p *Port) Receive(pkts []port.Packet) int {
	s := p.sock
	idx, n := s.Rx.Peek(uint32(len(pkts)))
	for i := uint32(0); i < n; i++ {
		addr, l := s.RxTake(idx + i)
		pkts[i] = port.Packet{Addr: addr, Len: l, Port: p.id}
	}
	if n > 0 {
		s.Rx.Release(n)
		p.posted -= int(n)
	}
	// Refill in batches: one fill-ring publish per batch, not per frame.
	if d := p.target - p.posted; d >= refillBatch || d == p.target {
		p.posted += s.Refill(d)
	}
	return int(n)
}

// Transmit puts as many frames as the tx ring has room for; Flush sends.
func (p *Port) Transmit(pkts []port.Packet) int {
	s := p.sock
	idx, n := s.Tx.Reserve(uint32(len(pkts)))
	if n < uint32(len(pkts)) && p.queued {
		// Ring full of unsent frames: copy mode sends only when kicked.
		s.Tx.Cancel(n)
		s.KickTx()
		idx, n = s.Tx.Reserve(uint32(len(pkts)))
	}
	for i := uint32(0); i < n; i++ {
		s.TxPut(idx+i, pkts[i].Addr, pkts[i].Len)
	}
	if n > 0 {
		s.Tx.Submit()
		p.queued = true
	}
	return int(n)
}

// Flush kicks the kernel when it asked for it (need_wakeup), reclaims
// completed frames and keeps the fill ring stocked.
func (p *Port) Flush() {
	s := p.sock
	if p.queued {
		// Copy mode sends at most 32 descriptors per kick: kick until the
		// ring is drained (bounded), or what is left would wait for the
		// next packet.
		for i := 0; i < maxKicks && s.KickTx() && s.TxPending() > 0; i++ {
		}
		p.queued = s.TxPending() > 0
	}
	s.Reclaim()
	if p.posted < p.target {
		p.posted += s.Refill(p.target - p.posted)
	}
	s.KickRx()
}

// FillTarget returns how many Umem frames the port keeps posted.
func (p *Port) FillTarget() int { return p.target }

func (p *Port) PollFD() int { return p.sock.FD() }

func (p *Port) Mode() spec.Mode { return p.mode }

// Stats returns the socket's kernel counters (drops, ring full, ...).
func (p *Port) Stats() (xsk.Stats, error) { return p.sock.Stats() }

// AddPrefix steers a pod prefix to the uplink's sockets.
func (p *Port) AddPrefix(pfx netip.Prefix) error { return p.prog.AddPrefix(pfx) }

// RemovePrefix stops steering a pod prefix.
func (p *Port) RemovePrefix(pfx netip.Prefix) error { return p.prog.RemovePrefix(pfx) }

var _ port.VTEPSteerer = (*Port)(nil)

// SetVTEP sets the VXLAN port and node addresses the uplink steers.
func (p *Port) SetVTEP(port uint16, node4, node6 netip.Addr) error {
	return p.prog.SetVTEP(port, node4, node6)
}

// SetDecap lets the uplink's fast path decapsulate VXLAN over IPv4 for the
// node's VNI and VTEP MAC (xdpprog.Program.SetDecap).
func (p *Port) SetDecap(vni uint32, mac [6]byte) error {
	return p.prog.SetDecap(vni, mac)
}

// SetKernelVXLAN lets the uplink's fast path hand VXLAN for pods only tc
// reaches to the kernel's VXLAN device (xdpprog.Program.SetKernelVXLAN).
func (p *Port) SetKernelVXLAN(on bool) error { return p.prog.SetKernelVXLAN(on) }

// Close takes the socket out of the XSKMAP, detaches and frees an owned
// program, closes the socket and returns every frame the kernel held to the
// Umem.
func (p *Port) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.prog != nil && p.sock != nil {
		errs = append(errs, p.prog.ClearSocket(p.queue))
	}
	if p.prog != nil && p.owned {
		errs = append(errs, p.prog.Close())
	}
	if p.sock != nil {
		errs = append(errs, p.sock.Close())
	}
	if p.lg != nil {
		errs = append(errs, p.lg.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close xdp port %s: %w", p.name, err)
	}
	return nil
}
