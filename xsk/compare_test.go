package xsk_test

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	asavie "github.com/asavie/xdp"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
	"github.com/xvs-project/xvs/xsk/xsktest"
	"golang.org/x/sys/unix"
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
//	  go test -run TestCompareAsavie -v -count=1 ./xsk/
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
		tx   func(*benchPair, int) result
		rx   func(*benchPair, int, bool) result
	}
	impls := []impl{{"xvs/xsk", oursTx, oursRx}, {"asavie/xdp", asavieTx, asavieRx}}
	scenarios := []string{"tx-only", "rx-drop", "rx-poll"}
	if v := os.Getenv("XVS_BENCH_SCENARIOS"); v != "" {
		scenarios = strings.Split(v, ",")
	}
	res := map[string]map[string][]result{}
	for r := 0; r < rounds; r++ {
		for _, im := range impls {
			for _, sc := range scenarios {
				bp := newBenchPair(t, a, b)
				var x result
				switch sc {
				case "tx-only":
					x = im.tx(bp, count)
				case "rx-drop":
					x = im.rx(bp, count, false)
				case "rx-poll":
					x = im.rx(bp, count, true)
				}
				bp.close()
				if res[sc] == nil {
					res[sc] = map[string][]result{}
				}
				res[sc][im.name] = append(res[sc][im.name], x)
				t.Logf("round %d %-10s %-8s %s", r, im.name, sc, x)
			}
		}
	}
	for _, sc := range scenarios {
		o, s := medianResult(res[sc]["xvs/xsk"]), medianResult(res[sc]["asavie/xdp"])
		t.Logf("%s: xvs/xsk %s | asavie/xdp %s | pps ratio %.2f, user-CPU ratio %.2f (medians of %d runs of %d frames)",
			sc, o, s, o.pps/s.pps, o.userNs/s.userNs, rounds, count)
	}
}

// result is one run: frames per second, and the measuring thread's user and
// system CPU per frame (getrusage RUSAGE_THREAD). CPU per frame is what the
// ring layer itself costs and holds up on a loaded machine, where pps
// swings with the scheduler.
type result struct{ pps, userNs, sysNs float64 }

func (r result) String() string {
	return fmt.Sprintf("%.3f Mpps, user %.0f ns/frame, sys %.0f ns/frame", r.pps/1e6, r.userNs, r.sysNs)
}

func medianResult(v []result) result {
	var p, u, s []float64
	for _, r := range v {
		p, u, s = append(p, r.pps), append(u, r.userNs), append(s, r.sysNs)
	}
	return result{median(p), median(u), median(s)}
}

type cpuMark struct {
	t         time.Time
	user, sys time.Duration
}

func mark() cpuMark {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return cpuMark{time.Now(), time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

func since(m cpuMark, frames int) result {
	e := mark()
	if frames == 0 {
		return result{}
	}
	f := float64(frames)
	return result{f / e.t.Sub(m.t).Seconds(), float64(e.user-m.user) / f, float64(e.sys-m.sys) / f}
}

// waitRx blocks in poll(2) until fd is readable or 100ms pass.
func waitRx(fd int) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	unix.Poll(pfd, 100)
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
// (limit 0: no limit) and returns the completions and the cost.
func oursSend(bp *benchPair, limit int, stop *atomic.Bool) result {
	u, err := xsk.NewUmem(4096, 2048)
	if err != nil {
		bp.t.Error(err)
		return result{}
	}
	defer u.Close()
	var s *xsk.Socket
	if err := bp.b.Do(func() (err error) {
		s, err = xsk.Open(u, bp.bIndex, 0, xsk.Config{TxSize: 2048, CompSize: 2048})
		return
	}); err != nil {
		bp.t.Error(err)
		return result{}
	}
	defer s.Close()
	for i := 0; i < u.Frames(); i++ {
		copy(u.Frame(uint64(i*2048)), bp.frame)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m := mark()
	done, queued := 0, 0
	for (limit == 0 || done < limit) && !stop.Load() && time.Since(m.t) < benchTimeout {
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
	return since(m, done)
}

func oursTx(bp *benchPair, count int) result {
	var stop atomic.Bool
	return oursSend(bp, count, &stop)
}

func asavieTx(bp *benchPair, count int) result {
	var xs *asavie.Socket
	if err := bp.b.Do(func() (err error) { xs, err = asavie.NewSocket(bp.bIndex, 0, asavieOpts); return }); err != nil {
		bp.t.Error(err)
		return result{}
	}
	defer xs.Close()
	for _, d := range xs.GetDescs(4096) {
		copy(xs.GetFrame(d), bp.frame)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m := mark()
	done, queued := 0, 0
	for done < count && time.Since(m.t) < benchTimeout {
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
	return since(m, done)
}

var asavieOpts = &asavie.SocketOptions{NumFrames: 4096, FrameSize: 2048, FillRingNumDescs: 2048, CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048}

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

// oursRx receives and drops count frames under a flood. With wait it sleeps
// in poll(2) when the ring is empty, else it busy-polls.
func oursRx(bp *benchPair, count int, wait bool) result {
	u, err := xsk.NewUmem(4096, 2048)
	if err != nil {
		bp.t.Error(err)
		return result{}
	}
	defer u.Close()
	var s *xsk.Socket
	if err := bp.a.Do(func() (err error) {
		s, err = xsk.Open(u, bp.aIndex, 0, xsk.Config{RxSize: 2048, FillSize: 2048})
		return
	}); err != nil {
		bp.t.Error(err)
		return result{}
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
	var m cpuMark
	deadline := time.Now().Add(benchTimeout)
	for got < count && time.Now().Before(deadline) {
		idx, n := s.Rx.Peek(256)
		if n == 0 {
			s.KickRx()
			if wait {
				waitRx(s.FD())
			} else {
				idle()
			}
			continue
		}
		if got == 0 {
			m = mark()
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
	return since(m, got)
}

func asavieRx(bp *benchPair, count int, wait bool) result {
	var xs *asavie.Socket
	if err := bp.a.Do(func() (err error) { xs, err = asavie.NewSocket(bp.aIndex, 0, asavieOpts); return }); err != nil {
		bp.t.Error(err)
		return result{}
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
	var m cpuMark
	deadline := time.Now().Add(benchTimeout)
	for got < count && time.Now().Before(deadline) {
		if n := xs.NumFreeFillSlots(); n > 0 {
			xs.Fill(xs.GetDescs(n))
		}
		n := xs.NumReceived()
		if n == 0 {
			if wait {
				waitRx(xs.FD())
			} else {
				idle()
			}
			continue
		}
		if got == 0 {
			m = mark()
		}
		got += len(xs.Receive(n))
	}
	return since(m, got)
}

// idle backs off an empty busy poll for about a microsecond, so the
// receiver does not keep pulling the ring's cache lines away from the
// kernel producing into them. Both implementations' loops use it.
func idle() {
	for t := time.Now(); time.Since(t) < time.Microsecond; {
	}
}
