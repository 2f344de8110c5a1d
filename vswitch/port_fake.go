package vswitch

import (
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xsk"
)

// FakePort is a channel-backed Port for tests: frames written to In are
// received by the switch, frames the switch transmits appear on Out. It
// copies (it is for tests, not speed).
type FakePort struct {
	umem *xsk.Umem
	In   chan []byte
	Out  chan []byte
	hdr  int // zero bytes Transmit puts in front of each frame (a virtio_net_hdr for FakeOffloadPort)
}

var _ Port = (*FakePort)(nil)

// NewFakePort returns a fake port with channels of the given depth. The Umem
// is set when the switch opens the port (see FakeOpener).
func NewFakePort(depth int) *FakePort {
	return &FakePort{In: make(chan []byte, depth), Out: make(chan []byte, depth)}
}

// Receive implements Port.
func (f *FakePort) Receive(pkts []Packet) int {
	n := 0
	for n < len(pkts) {
		select {
		case b := <-f.In:
			a, ok := f.umem.Alloc()
			if !ok {
				return n
			}
			fr := f.umem.Frame(a)
			m := copy(fr[Headroom:], b)
			pkts[n] = Packet{Addr: a + Headroom, Len: uint32(m)}
			n++
		default:
			return n
		}
	}
	return n
}

// Transmit implements Port.
func (f *FakePort) Transmit(pkts []Packet) int {
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

func (f *FakePort) Flush()          {}
func (f *FakePort) PollFD() int     { return -1 }
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
	large    []LargeFrame
}

var _ LargePort = (*FakeOffloadPort)(nil)

// NewFakeOffloadPort returns an offloading fake port.
func NewFakeOffloadPort(depth int) *FakeOffloadPort {
	fp := NewFakePort(depth)
	fp.hdr = encap.VirtioNetHdrLen // frames go out behind an all-zero header
	return &FakeOffloadPort{FakePort: fp}
}

// Receive implements Port.
func (f *FakeOffloadPort) Receive(pkts []Packet) int {
	f.large = f.large[:0]
	n := 0
	room := f.umem.FrameSize() - Headroom
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
			f.large = append(f.large, LargeFrame{At: n, Frame: frame, Hdr: h})
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
		m := copy(f.umem.Frame(a)[Headroom:], frame)
		pkts[n] = Packet{Addr: a + Headroom, Len: uint32(m)}
		n++
	}
	return n
}

// Large implements LargePort.
func (f *FakeOffloadPort) Large() []LargeFrame { return f.large }

// TransmitLarge implements LargePort.
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
