package vswitch

import (
	"fmt"
	"net"
	"unsafe"

	"github.com/xvs-project/xvs/vswitch/xsk"
	"golang.org/x/sys/unix"
)

// AFPacketPortOptions tune an AF_PACKET port.
type AFPacketPortOptions struct {
	// ID is stamped into Packet.Port of every received frame.
	ID uint16
	// Batch is the most frames one Receive or Transmit moves (default
	// MaxBatchSize); the iovec and mmsghdr arrays are built for it once.
	Batch int
}

// afPacketPort is the fallback where XDP cannot attach: a raw packet socket
// bound to the interface, receiving with recvmmsg straight into Umem frames
// (at Headroom) and sending with sendmmsg from them. It keeps no frames
// between calls.
type afPacketPort struct {
	name string
	fd   int
	id   uint16
	umem *xsk.Umem
	mem  []byte

	rxMsgs  []unix.Mmsghdr
	rxIov   []unix.Iovec
	rxFrom  []unix.RawSockaddrLinklayer
	rxAddrs []uint64
	txMsgs  []unix.Mmsghdr
	txIov   []unix.Iovec

	txErrors    uint64 // frames dropped because the kernel refused them outright
	rxTruncated uint64 // frames dropped because they did not fit a frame (GSO super-frames)
	closed      bool
}

var _ Port = (*afPacketPort)(nil)

// openAFPacketPort opens an AF_PACKET port on ifname (in the calling
// thread's network namespace) over umem, the worker's Umem. The socket sees
// every protocol (ETH_P_ALL), bypasses the qdisc on send and ignores its own
// outgoing frames.
func openAFPacketPort(ifname string, umem *xsk.Umem, opts AFPacketPortOptions) (_ *afPacketPort, err error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("af_packet port %s: %w", ifname, err)
	}
	if opts.Batch <= 0 {
		opts.Batch = MaxBatchSize
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("af_packet port %s: socket: %w", ifname, err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return nil, fmt.Errorf("af_packet port %s: qdisc bypass: %w", ifname, err)
	}
	// Before 4.20 there is no PACKET_IGNORE_OUTGOING; Receive also drops
	// PACKET_OUTGOING by the sockaddr it gets.
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return nil, fmt.Errorf("af_packet port %s: bind: %w", ifname, err)
	}
	n := opts.Batch
	p := &afPacketPort{
		name: ifname, fd: fd, id: opts.ID, umem: umem, mem: umem.Mem(),
		rxMsgs: make([]unix.Mmsghdr, n), rxIov: make([]unix.Iovec, n),
		rxFrom: make([]unix.RawSockaddrLinklayer, n), rxAddrs: make([]uint64, n),
		txMsgs: make([]unix.Mmsghdr, n), txIov: make([]unix.Iovec, n),
	}
	for i := range n {
		h := &p.rxMsgs[i].Hdr
		h.Iov = &p.rxIov[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&p.rxFrom[i]))
		t := &p.txMsgs[i].Hdr
		t.Iov = &p.txIov[i]
		t.SetIovlen(1)
	}
	return p, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Receive reads up to len(pkts) frames, each into a fresh Umem frame at
// Headroom. Frames the kernel truncated (bigger than the frame) are dropped.
func (p *afPacketPort) Receive(pkts []Packet) int {
	n := min(len(pkts), len(p.rxMsgs))
	room := p.umem.FrameSize() - Headroom
	for i := 0; i < n; i++ {
		a, ok := p.umem.Alloc()
		if !ok {
			n = i
			break
		}
		p.rxAddrs[i] = a
		p.rxIov[i].Base = &p.mem[a+Headroom]
		p.rxIov[i].SetLen(room)
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
		if p.rxFrom[i].Pkttype == unix.PACKET_OUTGOING {
			p.umem.Free(p.rxAddrs[i])
			continue
		}
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 || int(m.Len) > room {
			p.rxTruncated++
			p.umem.Free(p.rxAddrs[i])
			continue
		}
		pkts[k] = Packet{Addr: p.rxAddrs[i] + Headroom, Len: m.Len, Port: p.id}
		k++
	}
	for i := n - 1; i >= got; i-- {
		p.umem.Free(p.rxAddrs[i])
	}
	return k
}

// Transmit sends pkts with one sendmmsg and frees the frames sent. A frame
// the kernel refuses outright (too big, link down) is freed and counted, so
// a bad frame cannot stall the ones behind it; a full socket buffer (EAGAIN)
// leaves the rest with the caller.
func (p *afPacketPort) Transmit(pkts []Packet) int {
	n := min(len(pkts), len(p.txMsgs))
	for i := 0; i < n; i++ {
		p.txIov[i].Base = &p.mem[pkts[i].Addr]
		p.txIov[i].SetLen(int(pkts[i].Len))
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

// Flush does nothing: sendmmsg already handed the frames to the driver.
func (p *afPacketPort) Flush() {}

func (p *afPacketPort) PollFD() int { return p.fd }

func (p *afPacketPort) Mode() Mode { return ModeAFPacket }

// TxErrors returns how many frames the kernel refused and the port dropped.
func (p *afPacketPort) TxErrors() uint64 { return p.txErrors }

// RxTruncated returns how many received frames were too big for a Umem
// frame and dropped: GSO super-frames from a peer with TSO/GSO on.
func (p *afPacketPort) RxTruncated() uint64 { return p.rxTruncated }

func (p *afPacketPort) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	if err := unix.Close(p.fd); err != nil {
		return fmt.Errorf("close af_packet port %s: %w", p.name, err)
	}
	return nil
}
