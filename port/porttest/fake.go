package porttest

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xsk"
)

// FakePort is a channel-backed port.Port for tests: frames written to In are
// received by the switch, frames the switch transmits appear on Out. It
// copies (it is for tests, not speed).
type FakePort struct {
	umem *xsk.Umem
	In   chan []byte
	Out  chan []byte
	hdr  int // zero bytes Transmit puts in front of each frame (a virtio_net_hdr for FakeOffloadPort)
	// Fast is what FastPath reports: a test sets it to have the switch
	// take the port's program as forwarding (FastTC, FastXDP).
	Fast port.FastAttach
	// driver opened the port; it opens the port's further queues too.
	driver Driver
}

// FastPath implements port.FastPathPort.
func (f *FakePort) FastPath() port.FastAttach { return f.Fast }

// OpenQueue implements port.QueueOpener: the driver that opened the port
// opens the queue, so fake uplinks may have several.
func (f *FakePort) OpenQueue(req port.OpenRequest) (port.Opened, error) {
	if f.driver == nil {
		return port.Opened{}, errors.New("fake port opened outside a porttest.Driver has no queues")
	}
	return f.driver.Open(req)
}

var (
	_ port.Port         = (*FakePort)(nil)
	_ port.QueueOpener  = (*FakePort)(nil)
	_ port.FastPathPort = (*FakePort)(nil)
)

// NewFakePort returns a fake port over umem (the serving worker's, from
// the open request) with channels of the given depth.
func NewFakePort(umem *xsk.Umem, depth int) *FakePort {
	return &FakePort{umem: umem, In: make(chan []byte, depth), Out: make(chan []byte, depth)}
}

// Receive implements port.Port.
func (f *FakePort) Receive(pkts []port.Packet) int {
	n := 0
	for n < len(pkts) {
		select {
		case b := <-f.In:
			a, ok := f.umem.Alloc()
			if !ok {
				return n
			}
			fr := f.umem.Frame(a)
			m := copy(fr[port.Headroom:], b)
			pkts[n] = port.Packet{Addr: a + port.Headroom, Len: uint32(m)}
			n++
		default:
			return n
		}
	}
	return n
}

// Transmit implements port.Port.
func (f *FakePort) Transmit(pkts []port.Packet) int {
	for i := range pkts {
		b := make([]byte, f.hdr, f.hdr+int(pkts[i].Len))
		b = append(b, f.umem.Bytes(pkts[i].Addr, int(pkts[i].Len))...)
		select {
		case f.Out <- b:
			f.umem.Free(pkts[i].Addr)
		default:
			return i
		}
	}
	return len(pkts)
}

func (f *FakePort) Flush()      {}
func (f *FakePort) PollFD() int { return -1 }

// Mode reports ModeAuto: a test double runs in no mode of its own.
func (f *FakePort) Mode() spec.Mode { return spec.ModeAuto }
func (f *FakePort) Close() error    { return nil }

// FakeOffloadPort is a FakePort that carries offloads, as an AF_PACKET port
// with PACKET_VNET_HDR does: every frame on In and Out starts with a
// virtio_net_hdr (encap.VirtioNetHdrLen bytes). Frames with GSO, or too big
// for a Umem frame, come out of Large; partial checksums are completed.
type FakeOffloadPort struct {
	*FakePort
	// Discard makes TransmitLarge take frames without copying them to Out
	// (benchmarks of the switch's side).
	Discard bool
	// LargeErr, when set, is what TransmitLarge fails with (a full or
	// refusing socket).
	LargeErr error
	large    []port.LargeFrame
}

var _ port.LargePort = (*FakeOffloadPort)(nil)

// NewFakeOffloadPort returns an offloading fake port.
func NewFakeOffloadPort(umem *xsk.Umem, depth int) *FakeOffloadPort {
	fp := NewFakePort(umem, depth)
	fp.hdr = encap.VirtioNetHdrLen // frames go out behind an all-zero header
	return &FakeOffloadPort{FakePort: fp}
}

// Receive implements port.Port.
func (f *FakeOffloadPort) Receive(pkts []port.Packet) int {
	f.large = f.large[:0]
	n := 0
	room := f.umem.FrameSize() - port.Headroom
	for n < len(pkts) {
		var b []byte
		select {
		case b = <-f.In:
		default:
			return n
		}
		if len(b) < encap.VirtioNetHdrLen {
			continue
		}
		h, frame := encap.VirtioNetHdr(b[:encap.VirtioNetHdrLen]), b[encap.VirtioNetHdrLen:]
		if h.GSOType() != encap.GSONone || len(frame) > room {
			f.large = append(f.large, port.LargeFrame{At: n, Frame: frame, Hdr: h})
			continue
		}
		if h.Flags()&encap.VirtioNetHdrFNeedsCsum != 0 &&
			encap.CompleteChecksum(frame, int(h.CsumStart()), int(h.CsumOffset())) != nil {
			continue
		}
		a, ok := f.umem.Alloc()
		if !ok {
			return n
		}
		m := copy(f.umem.Frame(a)[port.Headroom:], frame)
		pkts[n] = port.Packet{Addr: a + port.Headroom, Len: uint32(m)}
		n++
	}
	return n
}

// Large implements port.LargePort.
func (f *FakeOffloadPort) Large() []port.LargeFrame { return f.large }

// TransmitLarge implements port.LargePort.
func (f *FakeOffloadPort) TransmitLarge(frame []byte, hdr encap.VirtioNetHdr) error {
	if f.LargeErr != nil {
		return f.LargeErr
	}
	if f.Discard {
		return nil
	}
	b := make([]byte, 0, encap.VirtioNetHdrLen+len(frame))
	b = append(append(b, hdr[:encap.VirtioNetHdrLen]...), frame...)
	select {
	case f.Out <- b:
		return nil
	default:
		return unix.EAGAIN
	}
}
