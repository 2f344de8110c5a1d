package afpacket

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
)

// Options tune an AF_PACKET port.
type Options struct {
	// ID is stamped into port.Packet.Port of every received frame.
	ID uint16
	// Batch is the most frames one Receive or Transmit moves (default
	// port.MaxBatch); the iovec and mmsghdr arrays are built for it once.
	// With offloads on, Receive moves at most LargeSlots frames per call.
	Batch int
	// NoOffload turns PACKET_VNET_HDR off: the peer's GSO super-frames are
	// then truncated and dropped, and partial checksums pass unfinished.
	NoOffload bool
	// DropIngress keeps the kernel's stack from seeing what arrives on the
	// interface (a tc ingress drop behind the packet taps, see
	// xdpprog.IngressDrop): right for pod and host ports, whose frames are
	// all the switch's, wrong for an uplink. If it cannot attach, the port
	// still works and DropIngressErr says why.
	DropIngress bool
	// FastPath, with DropIngress, makes the tc ingress program forward
	// pod-to-pod frames itself (xdpprog.AttachIngress), and filters those
	// frames out of the socket. With Steer, the uplink's tc program
	// forwards frames from the network to the node's pods the same way.
	// If it cannot, the port drops as without it and FastPathErr says why.
	FastPath *xdpprog.FastPath
	// Steer, for an uplink, takes only the switch's frames off the
	// interface (xdpprog.UplinkIngress: pod prefixes and VXLAN for the
	// node, through the same maps as the XDP steering, set with
	// AddPrefix and SetVTEP) and leaves everything else to the host, whose
	// stack no longer sees what the switch takes. If it cannot attach,
	// the port sees copies of everything the host gets, as an unsteered
	// AF_PACKET uplink does, and SteerErr says why.
	Steer bool
}

const (
	// LargeSlots is how many frames one Receive of an offloading AF_PACKET
	// port takes: each has a spill buffer for a GSO super-frame.
	LargeSlots = 32
	// largeMax is the biggest frame a spill buffer holds: a 64 KiB IP
	// packet plus its Ethernet header (GSO without BIG TCP).
	largeMax = 65536 + 2*encap.EthernetLen
	// afPacketRcvBuf is the socket receive buffer of an offloading port.
	// Super-frames are charged at ~70 KiB each; the default (~208 KiB)
	// would drop the third one of a burst.
	afPacketRcvBuf = 16 << 20
)

// Port is the port where XDP cannot attach or must not (XDP on a
// veth takes the peer's TSO away): a raw packet socket bound to the
// interface, receiving with recvmmsg straight into Umem frames (at port.Headroom)
// and sending with sendmmsg from them.
//
// With offloads (PACKET_VNET_HDR, the default) every frame carries a
// virtio_net_hdr. A received frame with a partial checksum is completed
// before the pipeline sees it; a GSO super-frame, or a frame bigger than a
// Umem frame, spills into the message's spill buffer and is handed out by
// Large, so the switch can forward it whole to another offloading port.
type Port struct {
	name    string
	fd      int
	id      uint16
	umem    *xsk.Umem
	mem     []byte
	offload bool
	hdrLen  int // encap.VirtioNetHdrLen with offloads, else 0

	rxMsgs  []unix.Mmsghdr
	rxIov   []unix.Iovec // per message: [hdr, frame, spill] with offloads, else [frame]
	rxFrom  []unix.RawSockaddrLinklayer
	rxAddrs []uint64
	rxHdr   []byte // per message: its virtio_net_hdr
	spill   []byte // per message: room bytes for the frame's head, then largeMax
	large   []port.LargeFrame
	txMsgs  []unix.Mmsghdr
	txIov   []unix.Iovec                // per message: [hdr, frame] with offloads, else [frame]
	txHdr   [encap.VirtioNetHdrLen]byte // all zero: no offload asked
	lg      Sender                      // TransmitLarge, on fd

	drop      *xdpprog.IngressDrop   // keeps the kernel from seeing what arrives, if asked
	dropErr   error                  // why DropIngress is not in force
	fastErr   error                  // why FastPath is not in force
	fastAsked bool                   // FastPath was asked for on a port that drops its ingress
	up        *xdpprog.UplinkIngress // an uplink's steering, if Steer
	steerErr  error                  // why Steer is not in force

	txErrors     uint64 // frames dropped because the kernel refused them outright
	rxTruncated  uint64 // frames dropped because they did not fit (GSO super-frames without offloads)
	rxBadOffload uint64 // frames dropped because their virtio_net_hdr made no sense
	closed       bool
}

var _ port.LargePort = (*Port)(nil)

// Open opens an AF_PACKET port on ifname (in the calling
// thread's network namespace) over umem, the worker's Umem. The socket sees
// every protocol (ETH_P_ALL), bypasses the qdisc on send and ignores its own
// outgoing frames.
func Open(ifname string, umem *xsk.Umem, opts Options) (_ *Port, err error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("af_packet port %s: %w", ifname, err)
	}
	if opts.Batch <= 0 {
		opts.Batch = port.MaxBatch
	}
	// Protocol 0 until bind: the socket takes no frames, from any
	// interface, before its filter is in place and it is bound.
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("af_packet port %s: socket: %w", ifname, err)
	}
	p := &Port{name: ifname, fd: fd, id: opts.ID, umem: umem, mem: umem.Mem(), offload: !opts.NoOffload}
	defer func() {
		if err != nil {
			p.closed = true
			unix.Close(fd)
			p.drop.Close()
			p.up.Close()
			if p.spill != nil {
				unix.Munmap(p.spill)
			}
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return nil, fmt.Errorf("af_packet port %s: qdisc bypass: %w", ifname, err)
	}
	// Before 4.20 there is no PACKET_IGNORE_OUTGOING; Receive also drops
	// PACKET_OUTGOING by the sockaddr it gets.
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	rx := opts.Batch
	iovs := 1
	if p.offload {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return nil, fmt.Errorf("af_packet port %s: vnet header: %w", ifname, err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, afPacketRcvBuf); err != nil {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, afPacketRcvBuf)
		}
		p.hdrLen = encap.VirtioNetHdrLen
		rx = min(rx, LargeSlots)
		iovs = 3
		// Untouched spill pages cost nothing: only super-frames fault them in.
		p.spill, err = unix.Mmap(-1, 0, rx*p.slotSize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, fmt.Errorf("af_packet port %s: spill buffers: %w", ifname, err)
		}
		p.rxHdr = make([]byte, rx*encap.VirtioNetHdrLen)
		p.large = make([]port.LargeFrame, 0, rx)
	}
	if opts.Steer {
		p.up, p.steerErr = steerUplink(fd, opts.FastPath)
		if p.steerErr == nil {
			if p.steerErr = p.up.Attach(ifi.Index); p.steerErr != nil {
				unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_BPF, 0)
				p.up.Close()
				p.up = nil
			}
		}
		if opts.FastPath != nil && p.steerErr != nil {
			p.fastErr = p.steerErr
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return nil, fmt.Errorf("af_packet port %s: bind: %w", ifname, err)
	}
	if opts.DropIngress && opts.FastPath != nil {
		p.fastAsked = true
		p.drop, p.fastErr = attachFastIngress(fd, ifi.Index, opts.FastPath)
	}
	if opts.DropIngress && p.drop == nil {
		p.drop, p.dropErr = xdpprog.AttachIngressDrop(ifi.Index)
	}
	tx := opts.Batch
	txIovs := 1 + min(p.hdrLen, 1)
	p.rxMsgs, p.rxIov = make([]unix.Mmsghdr, rx), make([]unix.Iovec, rx*iovs)
	p.rxFrom, p.rxAddrs = make([]unix.RawSockaddrLinklayer, rx), make([]uint64, rx)
	p.txMsgs, p.txIov = make([]unix.Mmsghdr, tx), make([]unix.Iovec, tx*txIovs)
	room := p.umem.FrameSize() - port.Headroom
	for i := range rx {
		h := &p.rxMsgs[i].Hdr
		h.Iov = &p.rxIov[i*iovs]
		h.SetIovlen(iovs)
		h.Name = (*byte)(unsafe.Pointer(&p.rxFrom[i]))
		if p.offload {
			iov := p.rxIov[i*iovs : i*iovs+3]
			iov[0].Base = &p.rxHdr[i*encap.VirtioNetHdrLen]
			iov[0].SetLen(encap.VirtioNetHdrLen)
			iov[2].Base = &p.slot(i)[room]
			iov[2].SetLen(largeMax - room)
		}
	}
	for i := range tx {
		t := &p.txMsgs[i].Hdr
		t.Iov = &p.txIov[i*txIovs]
		t.SetIovlen(txIovs)
		if p.offload {
			p.txIov[i*2].Base = &p.txHdr[0]
			p.txIov[i*2].SetLen(encap.VirtioNetHdrLen)
		}
	}
	p.lg.init(fd)
	return p, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// slotSize is the size of one spill buffer, page aligned.
func (p *Port) slotSize() int {
	return (largeMax + 4095) &^ 4095
}

// slot returns message i's spill buffer.
func (p *Port) slot(i int) []byte {
	s := p.slotSize()
	return p.spill[i*s : (i+1)*s : (i+1)*s]
}

// Receive reads up to len(pkts) frames, each into a fresh Umem frame at
// port.Headroom. Without offloads, frames the kernel truncated (bigger than the
// frame) are dropped; with them, such frames and GSO super-frames are
// gathered in their spill buffers and returned by Large.
func (p *Port) Receive(pkts []port.Packet) int {
	p.large = p.large[:0]
	n := min(len(pkts), len(p.rxMsgs))
	room := p.umem.FrameSize() - port.Headroom
	iovs := 1
	if p.offload {
		iovs = 3
	}
	for i := 0; i < n; i++ {
		a, ok := p.umem.Alloc()
		if !ok {
			n = i
			break
		}
		p.rxAddrs[i] = a
		iov := &p.rxIov[i*iovs+iovs/2] // the frame: [0] alone, or [1] of three
		iov.Base = &p.mem[a+port.Headroom]
		iov.SetLen(room)
		p.rxMsgs[i].Hdr.Namelen = unix.SizeofSockaddrLinklayer
		p.rxMsgs[i].Hdr.Flags = 0
	}
	if n == 0 {
		return 0
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.rxMsgs[0])), uintptr(n), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
	got := int(r)
	if e != 0 {
		got = 0
	}
	k := 0
	for i := 0; i < got; i++ {
		m := &p.rxMsgs[i]
		a := p.rxAddrs[i]
		if p.rxFrom[i].Pkttype == unix.PACKET_OUTGOING {
			p.umem.Free(a)
			continue
		}
		size := int(m.Len) - p.hdrLen
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 || size < 0 || (!p.offload && size > room) {
			p.rxTruncated++
			p.umem.Free(a)
			continue
		}
		if !p.offload {
			pkts[k] = port.Packet{Addr: a + port.Headroom, Len: uint32(size), Port: p.id}
			k++
			continue
		}
		h := encap.VirtioNetHdr(p.rxHdr[i*encap.VirtioNetHdrLen : (i+1)*encap.VirtioNetHdrLen])
		if size > room || h.GSOType() != encap.GSONone {
			// The kernel wrote the first room bytes into the Umem frame and
			// the rest at room in the spill buffer: gather the head in
			// front, so the whole frame is contiguous there.
			s := p.slot(i)
			copy(s, p.mem[a+port.Headroom:a+port.Headroom+uint64(min(size, room))])
			p.umem.Free(a)
			p.large = append(p.large, port.LargeFrame{At: k, Frame: s[:size:size], Hdr: h})
			continue
		}
		if h.Flags()&encap.VirtioNetHdrFNeedsCsum != 0 {
			f := p.mem[a+port.Headroom : a+port.Headroom+uint64(size)]
			if encap.CompleteChecksum(f, int(h.CsumStart()), int(h.CsumOffset())) != nil {
				p.rxBadOffload++
				p.umem.Free(a)
				continue
			}
		}
		pkts[k] = port.Packet{Addr: a + port.Headroom, Len: uint32(size), Port: p.id}
		k++
	}
	for i := n - 1; i >= got; i-- {
		p.umem.Free(p.rxAddrs[i])
	}
	return k
}

// Large implements port.LargePort.
func (p *Port) Large() []port.LargeFrame { return p.large }

// Transmit sends pkts with one sendmmsg and frees the frames sent. A frame
// the kernel refuses outright (too big, link down) is freed and counted, so
// a bad frame cannot stall the ones behind it; a full socket buffer (EAGAIN)
// leaves the rest with the caller.
func (p *Port) Transmit(pkts []port.Packet) int {
	n := min(len(pkts), len(p.txMsgs))
	fi := 0
	if p.offload {
		fi = 1
	}
	for i := 0; i < n; i++ {
		iov := &p.txIov[i*(1+fi)+fi]
		iov.Base = &p.mem[pkts[i].Addr]
		iov.SetLen(int(pkts[i].Len))
	}
	done := 0
	for done < n {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.txMsgs[done])), uintptr(n-done), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.ENOBUFS || e == unix.EINTR {
			break
		}
		sent := int(r)
		if e != 0 || sent == 0 {
			sent = 1 // the first frame failed for good: drop it
			p.txErrors++
		}
		for i := done; i < done+sent; i++ {
			p.umem.Free(pkts[i].Addr)
		}
		done += sent
	}
	return done
}

// ErrNoOffload is returned by TransmitLarge on a port without offloads.
var ErrNoOffload = errors.New("port has no offloads")

// TransmitLarge implements port.LargePort: one sendmsg of hdr and frame.
func (p *Port) TransmitLarge(frame []byte, hdr encap.VirtioNetHdr) error {
	if !p.offload {
		return ErrNoOffload
	}
	return p.lg.Send(frame, hdr)
}

// Flush does nothing: sendmmsg already handed the frames to the driver.
func (p *Port) Flush() {}

func (p *Port) PollFD() int { return p.fd }

func (p *Port) Mode() spec.Mode { return spec.ModeAFPacket }

// TxErrors returns how many frames the kernel refused and the port dropped.
func (p *Port) TxErrors() uint64 { return p.txErrors + p.lg.Errors() }

// Sender sends one frame with its virtio_net_hdr per sendmsg on an
// AF_PACKET socket with PACKET_VNET_HDR: a GSO super-frame goes whole, to
// be cut by the interface (or the kernel's GSO).
type Sender struct {
	fd     int
	iov    [2]unix.Iovec
	msg    unix.Msghdr
	errors uint64 // frames the kernel refused outright
}

func (v *Sender) init(fd int) {
	v.fd = fd
	v.msg.Iov = &v.iov[0]
	v.msg.SetIovlen(2)
}

// OpenSender opens a send-only sender on ifindex (in the calling
// thread's namespace): protocol 0, so the socket receives nothing, and
// the qdisc bypassed, as the AF_XDP ring's frames bypass it.
func OpenSender(ifindex int) (*Sender, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("gso sender: socket: %w", err)
	}
	for _, o := range []struct {
		name string
		opt  int
	}{{"vnet header", unix.PACKET_VNET_HDR}, {"qdisc bypass", unix.PACKET_QDISC_BYPASS}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.opt, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("gso sender: %s: %w", o.name, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("gso sender: bind: %w", err)
	}
	v := &Sender{}
	v.init(fd)
	return v, nil
}

// Send hands frame and hdr to the kernel now. It fails with EAGAIN or
// ENOBUFS when the socket is full, or with what the kernel refused.
func (v *Sender) Send(frame []byte, hdr encap.VirtioNetHdr) error {
	if len(frame) == 0 || len(hdr) < encap.VirtioNetHdrLen {
		return unix.EINVAL
	}
	v.iov[0].Base = &hdr[0]
	v.iov[0].SetLen(encap.VirtioNetHdrLen)
	v.iov[1].Base = &frame[0]
	v.iov[1].SetLen(len(frame))
	_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(v.fd), uintptr(unsafe.Pointer(&v.msg)), unix.MSG_DONTWAIT)
	if e != 0 {
		if e != unix.EAGAIN && e != unix.ENOBUFS {
			v.errors++
		}
		return e
	}
	return nil
}

// Close closes the sender's socket.
func (v *Sender) Close() error { return unix.Close(v.fd) }

// Errors returns how many frames the kernel refused outright.
func (v *Sender) Errors() uint64 { return v.errors }

// RxTruncated returns how many received frames were too big and dropped:
// GSO super-frames from a peer with TSO/GSO on, when offloads are off.
func (p *Port) RxTruncated() uint64 { return p.rxTruncated }

// RxBadOffload returns how many received frames were dropped because their
// virtio_net_hdr did not fit the frame.
func (p *Port) RxBadOffload() uint64 { return p.rxBadOffload }

// DropIngressErr says why DropIngress was asked for and is not in force.
func (p *Port) DropIngressErr() error { return p.dropErr }

// FastPathErr says why FastPath was asked for and is not in force.
func (p *Port) FastPathErr() error { return p.fastErr }

// attachFastIngress puts the fast path's socket filter on fd, then its tc
// ingress program on ifindex. The filter goes first: until the program
// forwards, the frames it refuses reach the kernel (as before the port
// opened) rather than being handled twice. If the program cannot attach,
// the filter comes off again.
func attachFastIngress(fd, ifindex int, f *xdpprog.FastPath) (*xdpprog.IngressDrop, error) {
	filter, err := f.SocketFilter()
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, filter.FD()); err != nil {
		return nil, fmt.Errorf("attach socket filter: %w", err)
	}
	d, err := xdpprog.AttachIngress(ifindex, f)
	if err != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_BPF, 0)
		return nil, err
	}
	return d, nil
}

// steerUplink loads an uplink's steering and puts its socket filter on
// fd; the caller attaches the tc program once the filter is there.
func steerUplink(fd int, f *xdpprog.FastPath) (*xdpprog.UplinkIngress, error) {
	u, err := xdpprog.NewUplinkIngress(xdpprog.Options{FastPath: f})
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, u.Filter().FD()); err != nil {
		u.Close()
		return nil, fmt.Errorf("attach uplink socket filter: %w", err)
	}
	return u, nil
}

// SteerErr says why an uplink's steering (Options.Steer) is
// not in force; nil if it is, or was not asked for.
func (p *Port) SteerErr() error { return p.steerErr }

// Steered reports whether the port takes only the switch's frames (an
// uplink with its steering in force).
func (p *Port) Steered() bool { return p.up != nil }

var (
	_ port.PrefixSteerer = (*Port)(nil)
	_ port.VTEPSteerer   = (*Port)(nil)
	_ port.SteeredUplink = (*Port)(nil)
	_ port.FastPathPort  = (*Port)(nil)
)

// FastPath implements port.FastPathPort: the tc program forwards when the
// fast path was asked for and attached.
func (p *Port) FastPath() port.FastAttach {
	if p.drop != nil && p.fastAsked && p.fastErr == nil {
		return port.FastTC
	}
	return port.FastNone
}

// AddPrefix steers a pod prefix to the switch (a no-op on an unsteered
// port, which sees everything).
func (p *Port) AddPrefix(pfx netip.Prefix) error {
	if p.up == nil {
		return nil
	}
	return p.up.AddPrefix(pfx)
}

// RemovePrefix stops steering a pod prefix.
func (p *Port) RemovePrefix(pfx netip.Prefix) error {
	if p.up == nil {
		return nil
	}
	return p.up.RemovePrefix(pfx)
}

// SetVTEP steers VXLAN for the node's VTEP addresses to the switch.
func (p *Port) SetVTEP(port uint16, node4, node6 netip.Addr) error {
	if p.up == nil {
		return nil
	}
	return p.up.SetVTEP(port, node4, node6)
}

// SetDecap is recorded; the tc steering leaves VXLAN to the switch.
func (p *Port) SetDecap(vni uint32, mac [6]byte) error {
	if p.up == nil {
		return nil
	}
	return p.up.SetDecap(vni, mac)
}

// SetKernelVXLAN hands VXLAN for fast-path pods to the kernel's VXLAN
// device (xdpprog.UplinkIngress.SetKernelVXLAN).
func (p *Port) SetKernelVXLAN(on bool) error {
	if p.up == nil {
		return nil
	}
	return p.up.SetKernelVXLAN(on)
}

func (p *Port) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	p.drop.Close()
	p.up.Close()
	if p.spill != nil {
		unix.Munmap(p.spill)
		p.spill = nil
	}
	if err := unix.Close(p.fd); err != nil {
		return fmt.Errorf("close af_packet port %s: %w", p.name, err)
	}
	return nil
}
