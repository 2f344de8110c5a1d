package pktio

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// afPacket is one AF_PACKET socket with a batch of buffers and the message
// headers pointing at them, built once.
type afPacket struct {
	fd     int
	closed atomic.Bool
	bufs   [][]byte
	out    [][]byte // Receive's result, resliced bufs
	iov    []unix.Iovec
	msgs   []unix.Mmsghdr
	drops  uint64
}

func newAFPacket(ifname string, proto uint16, o Options) (*afPacket, error) {
	o.fill()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
	if err != nil {
		return nil, fmt.Errorf("af_packet socket: %w", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind af_packet to %s: %w", ifname, err)
	}
	p := &afPacket{fd: fd}
	mem := make([]byte, o.Batch*o.FrameCap)
	p.bufs = make([][]byte, o.Batch)
	p.out = make([][]byte, o.Batch)
	p.iov = make([]unix.Iovec, o.Batch)
	p.msgs = make([]unix.Mmsghdr, o.Batch)
	for i := range p.bufs {
		p.bufs[i] = mem[i*o.FrameCap : (i+1)*o.FrameCap : (i+1)*o.FrameCap]
		p.iov[i].Base = &p.bufs[i][0]
		p.iov[i].SetLen(o.FrameCap)
		p.msgs[i].Hdr.Iov = &p.iov[i]
		p.msgs[i].Hdr.SetIovlen(1)
	}
	return p, nil
}

func (p *afPacket) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return unix.Close(p.fd)
}

// AFPacketTx sends with sendmmsg, bypassing the qdisc.
type AFPacketTx struct {
	*afPacket
	next int // first buffer of the batch not sent yet
}

var _ Tx = (*AFPacketTx)(nil)

// NewAFPacketTx opens a sender on ifname in the caller's namespace.
func NewAFPacketTx(ifname string, o Options) (*AFPacketTx, error) {
	// Protocol 0: the socket receives nothing.
	p, err := newAFPacket(ifname, 0, o)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(p.fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		p.Close()
		return nil, fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	_ = unix.SetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	return &AFPacketTx{afPacket: p}, nil
}

func (t *AFPacketTx) Name() string { return "af_packet" }

func (t *AFPacketTx) Buffers(n int) [][]byte {
	n = min(n, len(t.bufs))
	t.next = 0
	for i := range n {
		t.out[i] = t.bufs[i]
	}
	return t.out[:n]
}

func (t *AFPacketTx) Send(bufs [][]byte) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	base := t.next
	if base+len(bufs) > len(t.bufs) {
		return 0, fmt.Errorf("send: %d frames past the batch", len(bufs))
	}
	for i, b := range bufs {
		t.iov[base+i].SetLen(len(b))
	}
	sent := 0
	defer func() { t.next += sent }()
	for sent < len(bufs) {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(t.fd),
			uintptr(unsafe.Pointer(&t.msgs[base+sent])), uintptr(len(bufs)-sent), 0, 0, 0)
		switch errno {
		case 0:
			sent += int(r)
		case unix.EINTR:
		case unix.ENOBUFS, unix.EAGAIN:
			// Device queue full: count what went, let the caller retry.
			return sent, nil
		default:
			return sent, fmt.Errorf("sendmmsg: %w", errno)
		}
	}
	return sent, nil
}

// AFPacketRx receives with recvmmsg.
type AFPacketRx struct{ *afPacket }

var _ Rx = (*AFPacketRx)(nil)

// NewAFPacketRx opens a receiver of every frame arriving on ifname (frames
// the host itself sends there are ignored).
func NewAFPacketRx(ifname string, o Options) (*AFPacketRx, error) {
	p, err := newAFPacket(ifname, unix.ETH_P_ALL, o)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(p.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.SetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
		_ = unix.SetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 32<<20)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		p.Close()
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	return &AFPacketRx{p}, nil
}

func (r *AFPacketRx) Name() string { return "af_packet" }

func (r *AFPacketRx) Receive() ([][]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	for i := range r.iov {
		r.iov[i].SetLen(len(r.bufs[i]))
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r.fd),
		uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(len(r.msgs)), unix.MSG_WAITFORONE, 0, 0)
	switch errno {
	case 0:
	case unix.EAGAIN, unix.EINTR:
		return nil, nil
	case unix.EBADF:
		return nil, ErrClosed
	default:
		if r.closed.Load() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("recvmmsg: %w", errno)
	}
	for i := 0; i < int(n); i++ {
		r.out[i] = r.bufs[i][:r.msgs[i].Len]
	}
	return r.out[:n], nil
}

// Drops reads and accumulates PACKET_STATISTICS (which resets on read).
func (r *AFPacketRx) Drops() uint64 {
	if r.closed.Load() {
		return r.drops
	}
	if st, err := unix.GetsockoptTpacketStats(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		r.drops += uint64(st.Drops)
	}
	return r.drops
}
