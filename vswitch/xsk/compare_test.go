package xsk_test

import (
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	asavie "github.com/asavie/xdp"
	"github.com/xvs-project/xvs/vswitch/xdpprog"
	"github.com/xvs-project/xvs/vswitch/xsk"
	"github.com/xvs-project/xvs/vswitch/xsk/xsktest"
)

// TestCompareAsavie measures this package's rings against asavie/xdp v0.3.3
// on the same veth, alternating A B A B in one run:
//
//   - tx-only: the implementation under test sends count 64-byte frames from
//     one end (AF_XDP copy mode); the other end drops them in native XDP.
//   - rx-drop: a fixed sender (this package) floods one end; the
//     implementation under test receives and drops count frames at the
//     other, through the same steering program (native XDP, XSKMAP).
//
// Both sides busy-poll. Every run gets a fresh veth pair: asavie's Close
// leaves its ring mappings (and so the socket, bound to the queue) behind
// until the process exits.
//
//	XVS_BENCH_XSK=1 [XVS_BENCH_COUNT=1000000] [XVS_BENCH_ROUNDS=2] \
//	  go test -run TestCompareAsavie -v -count=1 ./vswitch/xsk/
func TestCompareAsavie(t *testing.T) {
	if os.Getenv("XVS_BENCH_XSK") == "" {
		t.Skip("benchmark: set XVS_BENCH_XSK=1")
	}
	count := envInt("XVS_BENCH_COUNT", 1_000_000)
	rounds := envInt("XVS_BENCH_ROUNDS", 2)
	a, b := xsktest.NewNS(t), xsktest.NewNS(t)
	xsktest.RequireRoot(t)

	type impl struct {
		name string
		tx   func(*benchPair, int) float64
		rx   func(*benchPair, int) float64
	}
	impls := []impl{{"xvs/xsk", oursTx, oursRx}, {"asavie/xdp", asavieTx, asavieRx}}
	res := map[string]map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, im := range impls {
			for _, sc := range []string{"tx-only", "rx-drop"} {
				bp := newBenchPair(t, a, b)
				var pps float64
				if sc == "tx-only" {
					pps = im.tx(bp, count)
				} else {
					pps = im.rx(bp, count)
				}
				bp.close()
				if res[sc] == nil {
					res[sc] = map[string][]float64{}
				}
				res[sc][im.name] = append(res[sc][im.name], pps)
				t.Logf("round %d %-10s %-8s %.3f Mpps", r, im.name, sc, pps/1e6)
			}
		}
	}
	for _, sc := range []string{"tx-only", "rx-drop"} {
		o, s := median(res[sc]["xvs/xsk"]), median(res[sc]["asavie/xdp"])
		t.Logf("%s: xvs/xsk %.3f Mpps, asavie/xdp %.3f Mpps, ratio %.2f (median of %d, %d frames each)", sc, o/1e6, s/1e6, o/s, rounds, count)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type benchPair struct {
	t              *testing.T
	a, b           *xsktest.NS
	aIf, bIf       string
	aIndex, bIndex int
	frame          []byte
	prog           *xdpprog.Program
}

const benchTimeout = 60 * time.Second

func newBenchPair(t *testing.T, a, b *xsktest.NS) *benchPair {
	bp := &benchPair{t: t, a: a, b: b}
	bp.aIf, bp.bIf = xsktest.Veth(t, a, b, nil, nil)
	bp.aIndex, bp.bIndex = a.Ifindex(t, bp.aIf), b.Ifindex(t, bp.bIf)
	la, _ := a.NL.LinkByName(bp.aIf)
	lb, _ := b.NL.LinkByName(bp.bIf)
	bp.frame = frame(la.Attrs().HardwareAddr, lb.Attrs().HardwareAddr, 0)
	// Drop what has no socket, so tx-only measures the sender, not the
	// receiving stack.
	var err error
	if bp.prog, err = xdpprog.New(xdpprog.Pod, xdpprog.Options{MissAction: xdpprog.Drop}); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(func() error { _, err := bp.prog.Attach(bp.aIndex, xdpprog.AttachNative); return err }); err != nil {
		t.Fatal(err)
	}
	return bp
}

func (bp *benchPair) close() {
	bp.prog.Close()
	if l, err := bp.a.NL.LinkByName(bp.aIf); err == nil {
		bp.a.NL.LinkDel(l)
	}
}

// oursSend sends frames until stop is set or limit completions are seen
// (limit 0: no limit) and returns completions and elapsed time.
func oursSend(bp *benchPair, limit int, stop *atomic.Bool) (int, time.Duration) {
	u, err := xsk.NewUmem(4096, 2048)
	if err != nil {
		bp.t.Error(err)
		return 0, 0
	}
	defer u.Close()
	var s *xsk.Socket
	if err := bp.b.Do(func() (err error) {
		s, err = xsk.Open(u, bp.bIndex, 0, xsk.Config{TxSize: 2048, CompSize: 2048})
		return
	}); err != nil {
		bp.t.Error(err)
		return 0, 0
	}
	defer s.Close()
	for i := 0; i < u.Frames(); i++ {
		copy(u.Frame(uint64(i*2048)), bp.frame)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	done, queued := 0, 0
	for (limit == 0 || done < limit) && !stop.Load() && time.Since(start) < benchTimeout {
		done += s.Reclaim()
		want := uint32(64)
		if limit > 0 && limit-queued < 64 {
			want = uint32(limit - queued)
		}
		if want > 0 {
			idx, got := s.Tx.Reserve(want)
			for i := uint32(0); i < got; i++ {
				a, ok := u.Alloc()
				if !ok {
					s.Tx.Cancel(got - i)
					got = i
					break
				}
				s.TxPut(idx+i, a, uint32(len(bp.frame)))
			}
			if got > 0 {
				s.Tx.Submit()
				queued += int(got)
			}
		}
		s.KickTx()
	}
	return done, time.Since(start)
}

func oursTx(bp *benchPair, count int) float64 {
	var stop atomic.Bool
	n, d := oursSend(bp, count, &stop)
	return float64(n) / d.Seconds()
}

func asavieTx(bp *benchPair, count int) float64 {
	var xs *asavie.Socket
	opts := &asavie.SocketOptions{NumFrames: 4096, FrameSize: 2048, FillRingNumDescs: 2048, CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048}
	if err := bp.b.Do(func() (err error) { xs, err = asavie.NewSocket(bp.bIndex, 0, opts); return }); err != nil {
		bp.t.Error(err)
		return 0
	}
	defer xs.Close()
	for _, d := range xs.GetDescs(4096) {
		copy(xs.GetFrame(d), bp.frame)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	done, queued := 0, 0
	for done < count && time.Since(start) < benchTimeout {
		if c := xs.NumCompleted(); c > 0 {
			xs.Complete(c)
			done += c
		}
		n := min(64, xs.NumFreeTxSlots(), count-queued)
		descs := xs.GetDescs(n)
		for i := range descs {
			descs[i].Len = uint32(len(bp.frame))
		}
		queued += xs.Transmit(descs)
	}
	return float64(done) / time.Since(start).Seconds()
}

// flood runs the fixed sender until stopped.
func flood(bp *benchPair) (stop func()) {
	var s atomic.Bool
	ch := make(chan struct{})
	go func() {
		oursSend(bp, 0, &s)
		close(ch)
	}()
	return func() { s.Store(true); <-ch }
}

func oursRx(bp *benchPair, count int) float64 {
	u, err := xsk.NewUmem(4096, 2048)
	if err != nil {
		bp.t.Error(err)
		return 0
	}
	defer u.Close()
	var s *xsk.Socket
	if err := bp.a.Do(func() (err error) {
		s, err = xsk.Open(u, bp.aIndex, 0, xsk.Config{RxSize: 2048, FillSize: 2048})
		return
	}); err != nil {
		bp.t.Error(err)
		return 0
	}
	defer s.Close()
	defer bp.prog.ClearSocket(0)
	s.Refill(2048)
	bp.prog.SetSocket(0, s.FD())
	stop := flood(bp)
	defer stop()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	got := 0
	var empty, kicks, batches int
	var start time.Time
	deadline := time.Now().Add(benchTimeout)
	for got < count && time.Now().Before(deadline) {
		idx, n := s.Rx.Peek(256)
		if n == 0 {
			if s.KickRx() {
				kicks++
			}
			empty++
			idle()
			continue
		}
		batches++
		if got == 0 {
			start = time.Now()
		}
		for i := uint32(0); i < n; i++ {
			a, _ := s.RxTake(idx + i)
			u.Free(a)
		}
		s.Rx.Release(n)
		// Keep the fill ring full from the free frames, as the asavie loop
		// does: both then buffer up to all 4096 frames when descheduled.
		s.Refill(2048)
		got += int(n)
	}
	if st, err := s.Stats(); err == nil {
		bp.t.Logf("xvs/xsk rx stats: dropped %d, fill empty %d, rx ring full %d; polls empty %d (kicks %d), batches %d", st.Rx_dropped, st.Rx_fill_ring_empty_descs, st.Rx_ring_full, empty, kicks, batches)
	}
	return float64(got) / time.Since(start).Seconds()
}

func asavieRx(bp *benchPair, count int) float64 {
	var xs *asavie.Socket
	opts := &asavie.SocketOptions{NumFrames: 4096, FrameSize: 2048, FillRingNumDescs: 2048, CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048}
	if err := bp.a.Do(func() (err error) { xs, err = asavie.NewSocket(bp.aIndex, 0, opts); return }); err != nil {
		bp.t.Error(err)
		return 0
	}
	defer xs.Close()
	defer bp.prog.ClearSocket(0)
	xs.Fill(xs.GetDescs(xs.NumFreeFillSlots()))
	bp.prog.SetSocket(0, xs.FD())
	stop := flood(bp)
	defer stop()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	got := 0
	var start time.Time
	deadline := time.Now().Add(benchTimeout)
	for got < count && time.Now().Before(deadline) {
		if n := xs.NumFreeFillSlots(); n > 0 {
			xs.Fill(xs.GetDescs(n))
		}
		n := xs.NumReceived()
		if n == 0 {
			idle()
			continue
		}
		if got == 0 {
			start = time.Now()
		}
		got += len(xs.Receive(n))
	}
	if st, err := xs.Stats(); err == nil {
		bp.t.Logf("asavie/xdp rx stats: dropped %d, fill empty %d, rx ring full %d", st.KernelStats.Rx_dropped, st.KernelStats.Rx_fill_ring_empty_descs, st.KernelStats.Rx_ring_full)
	}
	return float64(got) / time.Since(start).Seconds()
}

// idle backs off an empty busy poll for about a microsecond, so the
// receiver does not keep pulling the ring's cache lines away from the
// kernel producing into them. Both implementations' loops use it.
func idle() {
	for t := time.Now(); time.Since(t) < time.Microsecond; {
	}
}
