package xsk

import (
	"testing"

	"golang.org/x/sys/unix"
)

// fakeRing builds a ring over plain memory so the index arithmetic can be
// checked without a kernel; the test plays the kernel's side.
func fakeRing(size uint32) (ring, *uint32, *uint32) {
	var prod, cons, flags uint32
	return ring{prod: &prod, cons: &cons, flags: &flags, size: size, mask: size - 1}, &prod, &cons
}

func TestProducerRing(t *testing.T) {
	r, prod, cons := fakeRing(8)
	f := FillRing{ring: r, addrs: make([]uint64, 8)}
	// Start near the wrap of the 32-bit indices.
	*prod, *cons = ^uint32(0)-2, ^uint32(0)-2
	f.cachedProd, f.cachedCons = *prod, *cons
	next, expect := uint64(0), uint64(0)
	for round := 0; round < 50; round++ {
		idx, got := f.Reserve(5)
		for i := uint32(0); i < got; i++ {
			f.Set(idx+i, next)
			next++
		}
		f.Submit()
		if *prod != f.cachedProd {
			t.Fatalf("round %d: producer %d not published (%d)", round, *prod, f.cachedProd)
		}
		if inFlight := *prod - *cons; inFlight > 8 {
			t.Fatalf("round %d: %d entries in an 8-slot ring", round, inFlight)
		}
		// Kernel consumes 3 per round, checking order.
		for k := 0; k < 3 && *cons != *prod; k++ {
			if got := f.addrs[*cons&7]; got != expect {
				t.Fatalf("round %d: slot %d holds %d, want %d", round, *cons&7, got, expect)
			}
			expect++
			*cons++
		}
	}
	// Full ring: Reserve gives what is free and no more.
	*cons = *prod
	f.cachedCons = *cons - 8 // stale on purpose (looks full): Reserve must reload
	if _, got := f.Reserve(100); got != 8 {
		t.Fatalf("reserve on empty ring got %d, want 8", got)
	}
	if _, got := f.Reserve(1); got != 0 {
		t.Fatalf("reserve on full ring got %d", got)
	}
	f.Cancel(8)
	if _, got := f.Reserve(3); got != 3 {
		t.Fatalf("reserve after cancel got %d", got)
	}
}

func TestConsumerRing(t *testing.T) {
	r, prod, cons := fakeRing(4)
	rx := RxRing{ring: r, descs: make([]unix.XDPDesc, 4)}
	*prod, *cons = ^uint32(0)-1, ^uint32(0)-1
	rx.cachedProd, rx.cachedCons = *prod, *cons
	seq := uint64(0)
	want := uint64(0)
	for round := 0; round < 30; round++ {
		// Kernel produces up to 3.
		for k := 0; k < 3 && *prod-*cons < 4; k++ {
			rx.descs[*prod&3] = unix.XDPDesc{Addr: seq, Len: uint32(seq)}
			seq++
			*prod++
		}
		idx, got := rx.Peek(2)
		for i := uint32(0); i < got; i++ {
			a, n := rx.Get(idx + i)
			if a != want || n != uint32(want) {
				t.Fatalf("round %d: got %d/%d, want %d", round, a, n, want)
			}
			want++
		}
		rx.Release(got)
		if *cons != rx.cachedCons {
			t.Fatalf("consumer not published")
		}
	}
	if idx, got := rx.Peek(100); got != *prod-*cons || idx != *cons {
		t.Fatalf("peek all: idx %d got %d, want %d %d", idx, got, *cons, *prod-*cons)
	}
}

func TestRingAllocs(t *testing.T) {
	r, prod, cons := fakeRing(64)
	f := FillRing{ring: r, addrs: make([]uint64, 64)}
	allocs := testing.AllocsPerRun(100, func() {
		idx, got := f.Reserve(32)
		for i := uint32(0); i < got; i++ {
			f.Set(idx+i, uint64(i))
		}
		f.Submit()
		*cons = *prod
		_ = f.NeedWakeup()
	})
	if allocs != 0 {
		t.Fatalf("ring ops allocate %v", allocs)
	}
}

func TestUmemFreeStack(t *testing.T) {
	u, err := NewUmem(16, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	seen := map[uint64]bool{}
	for {
		a, ok := u.Alloc()
		if !ok {
			break
		}
		if a%2048 != 0 || seen[a] {
			t.Fatalf("bad or duplicate frame %#x", a)
		}
		seen[a] = true
	}
	if len(seen) != 16 || u.FreeCount() != 0 {
		t.Fatalf("allocated %d, %d left", len(seen), u.FreeCount())
	}
	u.Free(5*2048 + 300) // an address inside a frame frees the frame
	if a, _ := u.Alloc(); a != 5*2048 {
		t.Fatalf("got %#x back", a)
	}
	if u.index(7*2048+5) != 7 {
		t.Fatal("index")
	}
}

// fakeSocket wires a Socket's fill and rx rings to plain memory; the
// benchmark plays the kernel by moving fill entries to the rx ring.
func fakeSocket(b testing.TB, u *Umem, size uint32) *Socket {
	s := &Socket{id: 1, umem: u}
	fr, _, _ := fakeRing(size)
	s.Fill = FillRing{ring: fr, addrs: make([]uint64, size)}
	rr, _, _ := fakeRing(size)
	s.Rx = RxRing{ring: rr, descs: make([]unix.XDPDesc, size)}
	return s
}

// kernelRx moves up to n frames from the fill ring to the rx ring.
func kernelRx(s *Socket, n uint32) {
	for i := uint32(0); i < n; i++ {
		if *s.Fill.cons == *s.Fill.prod || *s.Rx.prod-*s.Rx.cons == s.Rx.size {
			return
		}
		a := s.Fill.addrs[*s.Fill.cons&s.Fill.mask]
		*s.Fill.cons++
		s.Rx.descs[*s.Rx.prod&s.Rx.mask] = unix.XDPDesc{Addr: a + 256, Len: 64}
		*s.Rx.prod++
	}
}

// BenchmarkRxCycle is the user-space cost of receiving one frame: peek,
// take, free to the Umem, release, refill. The "kernel" side is included.
func BenchmarkRxCycle(b *testing.B) {
	u, err := NewUmem(4096, 2048)
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	s := fakeSocket(b, u, 2048)
	s.Refill(2048)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		kernelRx(s, 64)
		idx, n := s.Rx.Peek(256)
		for i := uint32(0); i < n; i++ {
			a, _ := s.RxTake(idx + i)
			u.Free(a)
		}
		s.Rx.Release(n)
		s.Refill(2048)
		done += int(n)
	}
}
