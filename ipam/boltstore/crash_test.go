package boltstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/boltstore"
	"github.com/xvs-project/xvs/ipam/ipamtest"
)

// The crash test re-executes this test binary as the child; these
// variables tell it so.
const (
	envChild  = "XVS_IPAM_CRASH_CHILD"  // the store file the child works on
	envBroken = "XVS_IPAM_CRASH_BROKEN" // "1": the child uses the split-transaction store
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envBenchChild); path != "" {
		if err := benchChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if path := os.Getenv(envChild); path != "" {
		if err := crashChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var crashPools = []ipam.Pool{
	{Name: "v4", CIDR: netipPrefix("198.18.0.0/26"), BlockSize: 29}, // 64 addresses, 8 blocks
	{Name: "v6", CIDR: netipPrefix("fd00:18::/122"), BlockSize: 125},
}

// crashChild assigns and releases dual-stack addresses for two nodes from
// four goroutines (so the allocators commit groups of requests) until
// killed, or, as a bound, for 30 s, writing one byte to stdout after each
// call that returned.
func crashChild(path string) error {
	ctx := context.Background()
	s, err := boltstore.Open(path, boltstore.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	if os.Getenv(envBroken) == "1" {
		boltstore.SetSplitTx(s)
	}
	var nodes []*ipam.Allocator
	for _, n := range []string{"n1", "n2"} {
		a, err := ipam.New(s, ipam.Options{Node: n})
		if err != nil {
			return err
		}
		nodes = append(nodes, a)
	}
	// Pick up the pods a killed predecessor left, so they get released too.
	all, err := nodes[0].Allocations(ctx)
	if err != nil {
		return err
	}
	const workers = 4
	lives := make([][]ipam.Handle, workers)
	seen := map[ipam.Handle]bool{}
	for _, al := range all {
		if !seen[al.Handle] {
			seen[al.Handle] = true
			lives[len(seen)%workers] = append(lives[len(seen)%workers], al.Handle)
		}
	}
	var (
		mu       sync.Mutex // guards registry and stdout
		registry = seen     // every handle some worker holds
		out      = bufio.NewWriterSize(os.Stdout, 1)
	)
	deadline := time.Now().Add(30 * time.Second)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			live := lives[w]
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())+uint64(w)))
			for i := 0; time.Now().Before(deadline); i++ {
				a := nodes[rng.IntN(2)]
				switch r := rng.IntN(20); {
				case r < 10 || len(live) == 0:
					hd := ipam.Handle{ContainerID: fmt.Sprintf("p%d-%d-%d", os.Getpid(), w, i), IfName: "eth0"}
					mu.Lock()
					registry[hd] = true
					mu.Unlock()
					if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: hd, Namespace: "ns", Pod: hd.ContainerID, IPv4: true, IPv6: true}); err == nil {
						live = append(live, hd)
					}
				case r < 19:
					j := rng.IntN(len(live))
					if _, err := a.Release(ctx, live[j]); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					delete(registry, live[j])
					mu.Unlock()
					live = append(live[:j], live[j+1:]...)
				default:
					// GC keeps every handle a worker holds or is assigning;
					// it rewrites every block of the node in one batch.
					mu.Lock()
					valid := make([]ipam.Handle, 0, len(registry))
					for hd := range registry {
						valid = append(valid, hd)
					}
					mu.Unlock()
					if _, err := a.GC(ctx, valid); err != nil {
						errs <- err
						return
					}
				}
				mu.Lock()
				out.WriteByte('.')
				out.Flush()
				mu.Unlock()
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// newCrashStore makes a store file with the crash test's pools.
func newCrashStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ipam.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := must(ipam.New(s, ipam.Options{Node: "n1"}))
	for _, p := range crashPools {
		if err := a.AddPool(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// killRounds starts the child on path, kills it with SIGKILL at a random
// moment, reopens the file and checks it, up to kills times or for limit.
// It returns the calls the children completed, and the first violation
// found (with the kill it followed).
func killRounds(t *testing.T, path string, broken bool, kills int, limit time.Duration) (int, error) {
	ctx := context.Background()
	start := time.Now()
	totalOps := 0
	for k := 0; k < kills && time.Since(start) < limit; k++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"="+path)
		if broken {
			cmd.Env = append(cmd.Env, envBroken+"=1")
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var ops atomic.Int64
		done := make(chan struct{})
		go func() {
			n, _ := io.Copy(io.Discard, stdout)
			ops.Store(n)
			close(done)
		}()
		// Let it get going (the first call opens the file), then kill it
		// at a random moment, mostly mid-run.
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		<-done
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("kill %d: child ended on its own (%v) before the kill", k, werr)
		}
		totalOps += int(ops.Load())

		s, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			return totalOps, fmt.Errorf("kill %d: reopen: %w", k, err)
		}
		errs := []error{s.Verify(ctx)}
		_, more := ipamtest.Check(s, true)
		s.Close()
		if err := errors.Join(append(errs, more...)...); err != nil {
			return totalOps, fmt.Errorf("after kill %d (%d calls in this child, %d in all): %w", k, ops.Load(), totalOps, err)
		}
	}
	return totalOps, nil
}

// TestCrashSafety kills a child assigning and releasing against a bbolt
// file with SIGKILL at random moments (20 kills, at most 30 s), and after
// each kill reopens the file and checks: it opens and decodes, no address
// is held twice, every allocation is found through its handle's index
// (Verify, ipamtest.Check) and every pod holds both of its addresses or
// neither (the store commits them in one transaction). At the end every
// handle left is re-assigned (the same addresses) and released, and the
// pools must be empty: nothing leaked.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the crash test runs a child for up to 30 s")
	}
	ctx := context.Background()
	path := newCrashStore(t)
	const kills = 20
	start := time.Now()
	totalOps, err := killRounds(t, path, false, kills, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if totalOps < kills {
		t.Fatalf("children completed only %d calls over %d kills: the test did not exercise the store", totalOps, kills)
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held := ipamtest.CheckStore(t, s, true)
	nodes := map[string]*ipam.Allocator{}
	all, _ := must(ipam.New(s, ipam.Options{Node: "n1"})).Allocations(ctx)
	for _, al := range all {
		if nodes[al.Node] == nil {
			nodes[al.Node] = must(ipam.New(s, ipam.Options{Node: al.Node}))
		}
	}
	for hd, addrs := range held {
		var node string
		for _, al := range all {
			if al.Handle == hd {
				node = al.Node
			}
		}
		got, err := nodes[node].Assign(ctx, ipam.AssignRequest{Handle: hd, IPv4: true, IPv6: true})
		if err != nil {
			t.Fatalf("re-assign %s: %v", hd, err)
		}
		if len(got) != 2 || got[0].Addr != addrs[0] || got[1].Addr != addrs[1] {
			t.Errorf("re-assign %s = %v, held %v", hd, got, addrs)
		}
		if _, err := nodes[node].Release(ctx, hd); err != nil {
			t.Fatal(err)
		}
	}
	a := must(ipam.New(s, ipam.Options{Node: "n1"}))
	pools, _, err := a.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if p.Allocated != 0 {
			t.Errorf("pool %s: %d addresses allocated after releasing every handle: leaked", p.Name, p.Allocated)
		}
	}
	t.Logf("%d kills in %v, %d calls completed by the children, %d pods alive at the end", kills, time.Since(start).Round(time.Millisecond), totalOps, len(held))
}

// TestCrashCatchesSplitTransactions runs the same kills against the
// deliberately broken store, which commits a block and its handle index,
// and a pod's two blocks, in separate transactions: the checks must find
// the damage (in practice within the first three kills; 20 kills make a
// miss very unlikely).
func TestCrashCatchesSplitTransactions(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the crash test runs a child for up to 30 s")
	}
	_, err := killRounds(t, newCrashStore(t), true, 20, 30*time.Second)
	if err == nil {
		t.Fatal("20 kills of the split-transaction store left it consistent: the crash checks are blind")
	}
	t.Logf("found, as it must: %v", err)
}

func must(a *ipam.Allocator, err error) *ipam.Allocator {
	if err != nil {
		panic(err)
	}
	return a
}
