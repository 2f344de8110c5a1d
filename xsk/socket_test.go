package xsk_test

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
	"github.com/xvs-project/xvs/xsk/xsktest"
	"golang.org/x/sys/unix"
)

// pair is a veth between namespace a (AF_XDP side) and b (the traffic
// side), with MACs.
type pair struct {
	a, b           *xsktest.NS
	aIf, bIf       string
	aMAC, bMAC     net.HardwareAddr
	aIndex, bIndex int
}

func newPair(t testing.TB) *pair {
	t.Helper()
	xsktest.RequireRoot(t)
	xsktest.CheckGoroutines(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skipf("memlock: %v", err)
	}
	p := &pair{a: xsktest.NewNS(t), b: xsktest.NewNS(t)}
	p.aIf, p.bIf = xsktest.Veth(t, p.a, p.b, nil, nil)
	p.aIndex, p.bIndex = p.a.Ifindex(t, p.aIf), p.b.Ifindex(t, p.bIf)
	for _, x := range []struct {
		ns   *xsktest.NS
		name string
		mac  *net.HardwareAddr
	}{{p.a, p.aIf, &p.aMAC}, {p.b, p.bIf, &p.bMAC}} {
		l, err := x.ns.NL.LinkByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		*x.mac = l.Attrs().HardwareAddr
	}
	return p
}

// attachPod attaches a redirect-all program to a's interface.
func (p *pair) attachPod(t testing.TB, mode xdpprog.AttachMode) *xdpprog.Program {
	t.Helper()
	prog, err := xdpprog.New(xdpprog.Pod, xdpprog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	if err := p.a.Do(func() error { _, err := prog.Attach(p.aIndex, mode); return err }); err != nil {
		t.Fatal(err)
	}
	return prog
}

func (p *pair) open(t testing.TB, ns *xsktest.NS, u *xsk.Umem, ifindex int, cfg xsk.Config) (*xsk.Socket, error) {
	t.Helper()
	var s *xsk.Socket
	err := ns.Do(func() (err error) { s, err = xsk.Open(u, ifindex, 0, cfg); return })
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func rawSend(t testing.TB, ns *xsktest.NS, ifindex int, frames [][]byte) {
	t.Helper()
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6}
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, sa); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw send: %v", err)
	}
}

func frame(dst, src net.HardwareAddr, seq uint32) []byte {
	b := make([]byte, 64)
	copy(b, dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], 0x88b5)
	binary.BigEndian.PutUint32(b[14:], seq)
	return b
}

func TestSocketReceiveStatsClose(t *testing.T) {
	for _, mode := range []xdpprog.AttachMode{xdpprog.AttachNative, xdpprog.AttachGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			p := newPair(t)
			prog := p.attachPod(t, mode)
			u, err := xsk.NewUmem(1024, 2048)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			s, err := p.open(t, p.a, u, p.aIndex, xsk.Config{RxSize: 256, TxSize: 256, FillSize: 256, CompSize: 256})
			if err != nil {
				t.Fatal(err)
			}
			if s.ZeroCopy() {
				t.Error("veth bound in zero-copy")
			}
			if err := prog.SetSocket(0, s.FD()); err != nil {
				t.Fatal(err)
			}
			// Only 8 frames in the fill ring: the rest of 32 are dropped and
			// show up in the statistics.
			if n := s.Refill(8); n != 8 {
				t.Fatalf("refill %d", n)
			}
			var frames [][]byte
			for i := range 32 {
				frames = append(frames, frame(p.aMAC, p.bMAC, uint32(i)))
			}
			rawSend(t, p.b, p.bIndex, frames)
			got := 0
			xsktest.WaitFor(2*time.Second, func() bool {
				idx, n := s.Rx.Peek(64)
				for i := uint32(0); i < n; i++ {
					addr, l := s.RxTake(idx + i)
					if addr%2048 != unix.XDP_PACKET_HEADROOM || l != 64 {
						t.Errorf("desc addr %#x len %d", addr, l)
					}
					u.Free(addr)
				}
				s.Rx.Release(n)
				got += int(n)
				return got >= 8
			})
			if got != 8 {
				t.Errorf("received %d, want 8", got)
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Rx_dropped+st.Rx_fill_ring_empty_descs == 0 {
				t.Errorf("stats show no drops with an empty fill ring: %+v", st)
			}
			// Frames the kernel holds come back on Close.
			s.Refill(100)
			if s.InKernel() != 100 {
				t.Errorf("in kernel %d, want 100", s.InKernel())
			}
			prog.ClearSocket(0)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if u.FreeCount() != u.Frames() {
				t.Errorf("%d of %d frames free after close", u.FreeCount(), u.Frames())
			}
		})
	}
}

func TestSocketForcedZeroCopy(t *testing.T) {
	p := newPair(t)
	p.attachPod(t, xdpprog.AttachNative)
	u, err := xsk.NewUmem(64, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, err = p.open(t, p.a, u, p.aIndex, xsk.Config{RxSize: 64, Bind: xsk.BindZeroCopy})
	if !errors.Is(err, xsk.ErrZeroCopy) {
		t.Fatalf("zero-copy on veth: %v, want ErrZeroCopy", err)
	}
}

// TestSharedUmemTwoDevices: one Umem, sockets on both ends of the pair (two
// devices in two namespaces); frames sent by one arrive at the other, and
// each socket has its own fill and completion rings.
func TestSharedUmemTwoDevices(t *testing.T) {
	p := newPair(t)
	prog := p.attachPod(t, xdpprog.AttachNative)
	u, err := xsk.NewUmem(256, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := xsk.Config{RxSize: 64, TxSize: 64}
	rx, err := p.open(t, p.a, u, p.aIndex, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.open(t, p.b, u, p.bIndex, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !tx.Shared() || rx.Shared() {
		t.Errorf("shared: rx %v tx %v, want false true", rx.Shared(), tx.Shared())
	}
	if err := u.Close(); err == nil {
		t.Fatal("umem closed under open sockets")
	}
	prog.SetSocket(0, rx.FD())
	rx.Refill(32)
	idx, n := tx.Tx.Reserve(16)
	for i := uint32(0); i < n; i++ {
		a, _ := u.Alloc()
		copy(u.Frame(a), frame(p.aMAC, p.bMAC, i))
		tx.TxPut(idx+i, a, 64)
	}
	tx.Tx.Submit()
	if !tx.KickTx() {
		t.Error("copy-mode tx did not ask for a wakeup")
	}
	got, done := 0, 0
	xsktest.WaitFor(2*time.Second, func() bool {
		idx, n := rx.Rx.Peek(64)
		for i := uint32(0); i < n; i++ {
			a, _ := rx.RxTake(idx + i)
			if seq := binary.BigEndian.Uint32(u.Bytes(a, 64)[14:]); seq != uint32(got) {
				t.Errorf("frame %d has seq %d", got, seq)
			}
			got++
			u.Free(a)
		}
		rx.Rx.Release(n)
		done += tx.Reclaim()
		return got == 16 && done == 16
	})
	if got != 16 || done != 16 {
		t.Errorf("received %d, completed %d, want 16", got, done)
	}
	prog.ClearSocket(0)
	rx.Close()
	tx.Close()
	if u.FreeCount() != u.Frames() {
		t.Errorf("%d of %d frames free", u.FreeCount(), u.Frames())
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSocketHotPathAllocs(t *testing.T) {
	p := newPair(t)
	prog := p.attachPod(t, xdpprog.AttachNative)
	u, err := xsk.NewUmem(512, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	s, err := p.open(t, p.a, u, p.aIndex, xsk.Config{RxSize: 128, TxSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	prog.SetSocket(0, s.FD())
	var frames [][]byte
	for i := range 200 {
		frames = append(frames, frame(p.aMAC, p.bMAC, uint32(i)))
	}
	rawSend(t, p.b, p.bIndex, frames)
	allocs := testing.AllocsPerRun(200, func() {
		s.Refill(64)
		idx, n := s.Rx.Peek(32)
		for i := uint32(0); i < n; i++ {
			a, l := s.RxTake(idx + i)
			tidx, got := s.Tx.Reserve(1)
			if got == 1 {
				s.TxPut(tidx, a, l)
			} else {
				u.Free(a)
			}
		}
		s.Rx.Release(n)
		s.Tx.Submit()
		s.KickTx()
		s.KickRx()
		s.Reclaim()
	})
	if allocs != 0 {
		t.Errorf("hot path allocates %v times per round", allocs)
	}
	prog.ClearSocket(0)
}
