package ipam_test

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/boltstore"
	"github.com/xvs-project/xvs/ipam/ipamtest"
	"github.com/xvs-project/xvs/ipam/memstore"
)

func openBolt(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "ipam.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// 50 goroutines assign and release dual-stack addresses at once, through
// one allocator, four nodes' allocators sharing the store (they meet in
// the store's compare-and-swap when they claim and borrow), or four
// allocators of the same node (two xvsd processes during a restart: they
// race for the same blocks on every call, which only the compare-and-swap
// keeps apart). No address may be held by two live handles at any moment,
// and nothing may remain at the end.
func TestConcurrentAssignRelease(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nodes    int
		sameNode bool
		open     func(t *testing.T) ipam.Store
	}{
		{"memstore one node", 1, false, func(*testing.T) ipam.Store { return memstore.New() }},
		{"memstore four nodes", 4, false, func(*testing.T) ipam.Store { return memstore.New() }},
		{"memstore four allocators of one node", 4, true, func(*testing.T) ipam.Store { return memstore.New() }},
		{"memstore four allocators of one node without batches", 4, true, func(*testing.T) ipam.Store { return noBatch{memstore.New()} }},
		{"boltstore one node", 1, false, func(t *testing.T) ipam.Store { return openBolt(t) }},
		{"boltstore four nodes", 4, false, func(t *testing.T) ipam.Store { return openBolt(t) }},
		{"boltstore four allocators of one node", 4, true, func(t *testing.T) ipam.Store { return openBolt(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conflicts atomic.Int32
			s := conflictCounter(tc.open(t), &conflicts)
			var nodes []*ipam.Allocator
			for i := 0; i < tc.nodes; i++ {
				name := fmt.Sprintf("n%d", i)
				if tc.sameNode {
					name = "n0"
				}
				nodes = append(nodes, newAllocator(t, s, name, nil))
			}
			// Eight blocks of 16 in a pool of 128, up to 100 pods at once:
			// the nodes claim every block and borrow from each other.
			addPools(t, nodes[0], ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/25"), BlockSize: 28},
				ipam.Pool{Name: "v6", CIDR: pfx("fd00:18::/121"), BlockSize: 124})
			// bbolt's commits take a millisecond: fewer rounds there.
			workers, rounds := 50, 40
			if strings.HasPrefix(tc.name, "boltstore") {
				rounds = 6
			}
			var (
				mu   sync.Mutex
				live = map[netip.Addr]string{}
				wg   sync.WaitGroup
				errs = make(chan error, workers)
			)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					a := nodes[w%len(nodes)]
					for r := 0; r < rounds; r++ {
						hd := ipam.Handle{ContainerID: fmt.Sprintf("w%d-r%d", w, r), IfName: "eth0"}
						got, err := a.Assign(ctx, ipam.AssignRequest{Handle: hd, IPv4: true, IPv6: true})
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						for _, g := range got {
							if o, dup := live[g.Addr]; dup {
								mu.Unlock()
								errs <- fmt.Errorf("%s given to %s while %s holds it", g.Addr, hd, o)
								return
							}
							live[g.Addr] = hd.String()
						}
						mu.Unlock()
						if r == rounds-1 {
							continue // keep the last pod until the end
						}
						mu.Lock()
						for _, g := range got {
							delete(live, g.Addr)
						}
						mu.Unlock()
						if _, err := a.Release(ctx, hd); err != nil {
							errs <- err
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			held := ipamtest.CheckStore(t, s, !tc.sameNode || !strings.Contains(tc.name, "without batches"))
			if len(held) != workers {
				t.Errorf("%d handles hold addresses, want %d", len(held), workers)
			}
			if tc.sameNode && conflicts.Load() == 0 {
				t.Error("no compare-and-swap conflict: the allocators did not race")
			}
			t.Logf("%d compare-and-swap conflicts", conflicts.Load())
			for _, n := range nodes {
				if _, err := n.GC(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			if all, _ := nodes[0].Allocations(ctx); len(all) != 0 {
				t.Errorf("%d allocations left after GC of every node", len(all))
			}
		})
	}
}

type counted struct {
	ipam.Store
	n *atomic.Int32
}

func (c counted) UpdateBlock(x ctxT, b ipam.Block) (ipam.Block, error) {
	nb, err := c.Store.UpdateBlock(x, b)
	if errors.Is(err, ipam.ErrConflict) {
		c.n.Add(1)
	}
	return nb, err
}

type countedBatch struct{ counted }

func (c countedBatch) UpdateBlocks(x ctxT, bs []ipam.Block) ([]ipam.Block, error) {
	nbs, err := c.Store.(ipam.BatchStore).UpdateBlocks(x, bs)
	if errors.Is(err, ipam.ErrConflict) {
		c.n.Add(1)
	}
	return nbs, err
}

// conflictCounter counts the compare-and-swap conflicts of s, keeping
// its BatchStore capability if it has it.
func conflictCounter(s ipam.Store, n *atomic.Int32) ipam.Store {
	if _, ok := s.(ipam.BatchStore); ok {
		return countedBatch{counted{s, n}}
	}
	return counted{s, n}
}

// gated makes the first ListBlocks of each racer wait until every racer
// has read, so all of them see the same free block and try to claim it.
type gated struct {
	ipam.Store
	once    sync.Once
	arrive  *sync.WaitGroup
	creates *atomic.Int32
	exists  *atomic.Int32
}

func (g *gated) ListBlocks(c ctxT) ([]ipam.Block, error) {
	bs, err := g.Store.ListBlocks(c)
	g.once.Do(func() { g.arrive.Done(); g.arrive.Wait() })
	return bs, err
}

func (g *gated) CreateBlock(c ctxT, b ipam.Block) (ipam.Block, error) {
	g.creates.Add(1)
	nb, err := g.Store.CreateBlock(c, b)
	if errors.Is(err, ipam.ErrExists) {
		g.exists.Add(1)
	}
	return nb, err
}

// Two nodes race for the pool's last free block: exactly one claims it;
// the other claims the block after it if there is one, and otherwise
// reports exhaustion (the blocks here hold one address, so there is
// nothing to borrow either).
func TestTwoNodesRaceForLastBlock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pool   ipam.Pool
		loser  string // "exhausted" or the loser's address
		stores func(t *testing.T) ipam.Store
	}{
		{"last block, memstore", ipam.Pool{Name: "p", CIDR: pfx("198.18.0.0/31"), BlockSize: 32}, "exhausted", func(*testing.T) ipam.Store { return memstore.New() }},
		{"last block, boltstore", ipam.Pool{Name: "p", CIDR: pfx("198.18.0.0/31"), BlockSize: 32}, "exhausted", func(t *testing.T) ipam.Store { return openBolt(t) }},
		{"next block, boltstore", ipam.Pool{Name: "p", CIDR: pfx("198.18.0.0/30"), BlockSize: 32}, "198.18.0.2", func(t *testing.T) ipam.Store { return openBolt(t) }},
		{"last IPv6 block, boltstore", ipam.Pool{Name: "p", CIDR: pfx("fd00:18::/127"), BlockSize: 128}, "exhausted", func(t *testing.T) ipam.Store { return openBolt(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 10; round++ {
				s := tc.stores(t)
				n0 := newAllocator(t, s, "n0", nil)
				addPools(t, n0, tc.pool)
				is6 := tc.pool.Is6()
				req := func(id string) ipam.AssignRequest {
					return ipam.AssignRequest{Handle: h(id), IPv4: !is6, IPv6: is6}
				}
				if _, err := n0.Assign(ctx, req("first")); err != nil {
					t.Fatal(err)
				}
				var arrive sync.WaitGroup
				arrive.Add(2)
				var creates, exists atomic.Int32
				results := make([]string, 2)
				var wg sync.WaitGroup
				for i := 0; i < 2; i++ {
					g := &gated{Store: s, arrive: &arrive, creates: &creates, exists: &exists}
					a := newAllocator(t, g, fmt.Sprintf("n%d", i+1), nil)
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						got, err := a.Assign(ctx, req(fmt.Sprintf("pod%d", i)))
						switch {
						case errors.Is(err, ipam.ErrPoolExhausted):
							results[i] = "exhausted"
						case err != nil:
							results[i] = err.Error()
						default:
							results[i] = addrs(got)
						}
					}(i)
				}
				wg.Wait()
				winner := tc.pool.CIDR.Addr().Next().String()
				if !(results[0] == winner && results[1] == tc.loser) && !(results[1] == winner && results[0] == tc.loser) {
					t.Fatalf("round %d: results %q, want one %s and one %s", round, results, winner, tc.loser)
				}
				if exists.Load() != 1 {
					t.Fatalf("round %d: %d claims lost, want exactly 1 (the nodes did not race)", round, exists.Load())
				}
				ipamtest.CheckStore(t, s, false)
				bs, _ := s.ListBlocks(ctx)
				owners := map[string]int{}
				for _, b := range bs {
					owners[b.Affinity]++
				}
				if owners["n1"]+owners["n2"] != 1+btoi(tc.loser != "exhausted") {
					t.Fatalf("round %d: blocks by node %v", round, owners)
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
