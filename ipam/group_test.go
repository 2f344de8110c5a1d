package ipam_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/ipamtest"
	"github.com/xvs-project/xvs/ipam/memstore"
)

// slowCommits makes each block write take a while and counts the writes,
// so that concurrent Assigns queue behind the one committing.
type slowCommits struct {
	ipam.Store
	writes *atomic.Int32
}

func (s slowCommits) UpdateBlock(c ctxT, b ipam.Block) (ipam.Block, error) {
	s.writes.Add(1)
	time.Sleep(30 * time.Millisecond)
	return s.Store.UpdateBlock(c, b)
}

type slowBatchCommits struct{ slowCommits }

func (s slowBatchCommits) UpdateBlocks(c ctxT, bs []ipam.Block) ([]ipam.Block, error) {
	s.writes.Add(1)
	time.Sleep(30 * time.Millisecond)
	return s.Store.(ipam.BatchStore).UpdateBlocks(c, bs)
}

// Concurrent Assigns on one allocator are committed in groups, and each
// request in a group still succeeds or fails on its own: a dual-stack pod
// whose IPv6 pool is full leaves no IPv4 address behind, a request for an
// unknown pool fails alone, a handle asked for twice at once gets one
// address.
func TestGroupCommit(t *testing.T) {
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch store %v", batch), func(t *testing.T) {
			var writes atomic.Int32
			mem := memstore.New()
			var s ipam.Store = slowCommits{mem, &writes}
			if batch {
				s = slowBatchCommits{slowCommits{mem, &writes}}
			}
			a := newAllocator(t, s, "n1", nil)
			addPools(t, a, ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/29"), BlockSize: 29},
				ipam.Pool{Name: "v6", CIDR: pfx("fd00:18::/127"), BlockSize: 127})
			type result struct {
				id   string
				addr string
				err  error
			}
			var reqs []ipam.AssignRequest
			for i := 0; i < 6; i++ { // 2 get IPv6, 4 find it exhausted
				reqs = append(reqs, ipam.AssignRequest{Handle: h(fmt.Sprintf("dual%d", i)), IPv4: true, IPv6: true})
			}
			for i := 0; i < 4; i++ {
				reqs = append(reqs, ipam.AssignRequest{Handle: h(fmt.Sprintf("v4-%d", i)), IPv4: true})
			}
			reqs = append(reqs, ipam.AssignRequest{Handle: h("v4-0"), IPv4: true}) // the same handle again
			for i := 0; i < 2; i++ {
				reqs = append(reqs, ipam.AssignRequest{Handle: h(fmt.Sprintf("bad%d", i)), IPv4: true, IPv4Pools: []string{"nope"}})
			}
			start := make(chan struct{})
			results := make([]result, len(reqs))
			var wg sync.WaitGroup
			for i, r := range reqs {
				wg.Add(1)
				go func(i int, r ipam.AssignRequest) {
					defer wg.Done()
					<-start
					got, err := a.Assign(ctx, r)
					results[i] = result{r.Handle.ContainerID, addrs(got), err}
				}(i, r)
			}
			close(start)
			wg.Wait()

			var ok, exhausted, unknown int
			v4of := map[string]string{}
			for _, r := range results {
				switch {
				case r.err == nil:
					ok++
					if prev, dup := v4of[r.id]; dup && prev != r.addr {
						t.Errorf("handle %s asked twice got %s and %s", r.id, prev, r.addr)
					}
					v4of[r.id] = r.addr
				case errors.Is(r.err, ipam.ErrPoolExhausted):
					exhausted++
				case errors.Is(r.err, ipam.ErrUnknownPool):
					unknown++
				default:
					t.Errorf("%s: %v", r.id, r.err)
				}
			}
			if ok != 7 || exhausted != 4 || unknown != 2 {
				t.Errorf("results: %d ok, %d exhausted, %d unknown; want 7, 4, 2: %v", ok, exhausted, unknown, results)
			}
			all, _ := a.Allocations(ctx)
			if len(all) != 2*2+4 {
				t.Errorf("%d allocations, want 8 (2 dual-stack pods, 4 IPv4-only): %v", len(all), all)
			}
			held := ipamtest.CheckStore(t, mem, false)
			if len(held) != 6 {
				t.Errorf("%d handles hold addresses, want 6: %v", len(held), held)
			}
			// 13 requests: without grouping there would be a write per
			// success (7), or more with the dual-stack pods' two blocks.
			if n := writes.Load(); n >= 7 {
				t.Errorf("%d block writes for 7 successful Assigns: no group commit", n)
			}
			t.Logf("%d block writes for %d requests", writes.Load(), len(reqs))
		})
	}
}

// raceOnCreate makes the first CreateBlock after arm lose to another
// node, which claims the same block just before it.
type raceOnCreate struct {
	ipam.Store
	armed   *atomic.Bool
	creates *atomic.Int32 // CreateBlock calls, the injected one not counted
}

func (r raceOnCreate) CreateBlock(c ctxT, b ipam.Block) (ipam.Block, error) {
	r.creates.Add(1)
	if r.armed.CompareAndSwap(true, false) {
		if _, err := r.Store.CreateBlock(c, ipam.Block{CIDR: b.CIDR, Affinity: "other"}); err != nil {
			return ipam.Block{}, err
		}
	}
	return r.Store.CreateBlock(c, b)
}

// inOneRound runs blocker, then each request, each in its own goroutine
// and 20 ms apart, while the blocker's 150 ms commit holds the allocator:
// the requests queue in order and the next leader commits them as one
// round.
func inOneRound(t *testing.T, a *ipam.Allocator, blocker ipam.AssignRequest, reqs ...ipam.AssignRequest) ([]string, []error) {
	t.Helper()
	got := make([]string, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := a.Assign(ctx, blocker); err != nil {
			t.Errorf("blocker: %v", err)
		}
	}()
	for i, r := range reqs {
		time.Sleep(20 * time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := a.Assign(ctx, r)
			got[i], errs[i] = addrs(res), err
		}()
	}
	wg.Wait()
	return got, errs
}

type slowWrites struct {
	ipam.Store
	on *atomic.Bool
}

func (s slowWrites) UpdateBlock(c ctxT, b ipam.Block) (ipam.Block, error) {
	if s.on.Load() {
		time.Sleep(150 * time.Millisecond)
	}
	return s.Store.UpdateBlock(c, b)
}

// Within one round: a request that claimed a block and then failed leaves
// the block to the next request (not claimed twice, not lost); a block
// another node claims under the round makes it take the next one, without
// forgetting what earlier requests of the round allocated.
func TestGroupCommitRound(t *testing.T) {
	t.Run("failed request's claimed block is used", func(t *testing.T) {
		mem := memstore.New()
		var slow, armed atomic.Bool
		var creates atomic.Int32
		a := newAllocator(t, slowWrites{raceOnCreate{mem, &armed, &creates}, &slow}, "n1", nil)
		addPools(t, a, ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/29"), BlockSize: 29},
			ipam.Pool{Name: "v6", CIDR: pfx("fd00:18::/127"), BlockSize: 127})
		if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: h("pre"), IPv6: true}); err != nil {
			t.Fatal(err)
		}
		slow.Store(true)
		got, errs := inOneRound(t, a, ipam.AssignRequest{Handle: h("blocker"), IPv6: true}, // the last IPv6 address
			ipam.AssignRequest{Handle: h("dual"), IPv4: true, IPv6: true}, // claims the IPv4 block, finds no IPv6
			ipam.AssignRequest{Handle: h("v4"), IPv4: true})
		if !errors.Is(errs[0], ipam.ErrPoolExhausted) || errs[1] != nil || got[1] != "198.18.0.0" {
			t.Errorf("dual: %q %v, v4: %q %v; want exhausted, and 198.18.0.0", got[0], errs[0], got[1], errs[1])
		}
		// Two claims: the IPv6 block, and the IPv4 block once; the round
		// remembers the block its failed request claimed.
		if n := creates.Load(); n != 2 {
			t.Errorf("%d CreateBlock calls, want 2", n)
		}
		ipamtest.CheckStore(t, mem, false)
	})
	t.Run("block claimed by another node under the round", func(t *testing.T) {
		mem := memstore.New()
		var slow, armed atomic.Bool
		var creates atomic.Int32
		a := newAllocator(t, slowWrites{raceOnCreate{mem, &armed, &creates}, &slow}, "n1", nil)
		addPools(t, a, ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/28"), BlockSize: 30},
			ipam.Pool{Name: "v6", CIDR: pfx("fd00:18::/120")})
		for _, r := range []ipam.AssignRequest{{Handle: h("p0"), IPv4: true}, {Handle: h("p1"), IPv4: true}, {Handle: h("p2"), IPv4: true}, {Handle: h("p6"), IPv6: true}} {
			if _, err := a.Assign(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		slow.Store(true)
		armed.Store(true)
		got, errs := inOneRound(t, a, ipam.AssignRequest{Handle: h("blocker"), IPv6: true},
			ipam.AssignRequest{Handle: h("last"), IPv4: true}, // the last address of block 0
			ipam.AssignRequest{Handle: h("next"), IPv4: true}) // block 1 goes to "other": block 2
		if errs[0] != nil || errs[1] != nil || got[0] != "198.18.0.3" || got[1] != "198.18.0.8" {
			t.Errorf("got %q, %v; want 198.18.0.3 and 198.18.0.8", got, errs)
		}
		all, _ := a.Allocations(ctx)
		if len(all) != 7 {
			t.Errorf("%d allocations, want 7: %v", len(all), all)
		}
		ipamtest.CheckStore(t, mem, false)
	})
}
