package vswitch

import "github.com/xvs-project/xvs/vswitch/xsk"

// FakePort is a channel-backed Port for tests: frames written to In are
// received by the switch, frames the switch transmits appear on Out. It
// copies (it is for tests, not speed).
type FakePort struct {
	umem *xsk.Umem
	In   chan []byte
	Out  chan []byte
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
		b := append([]byte(nil), f.umem.Bytes(pkts[i].Addr, int(pkts[i].Len))...)
		select {
		case f.Out <- b:
			f.umem.Free(pkts[i].Addr)
		default:
			return i
		}
	}
	return len(pkts)
}

func (f *FakePort) Flush()       {}
func (f *FakePort) PollFD() int  { return -1 }
func (f *FakePort) Mode() Mode   { return ModeFake }
func (f *FakePort) Close() error { return nil }
