package ipam_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"sort"
	"testing"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/boltstore"
	"github.com/xvs-project/xvs/ipam/ipamtest"
	"github.com/xvs-project/xvs/ipam/memstore"
)

// noBatch hides a store's UpdateBlocks, so the allocator takes its
// one-block-at-a-time path, as it will on the Kubernetes store.
type noBatch struct{ ipam.Store }

// refPod is the reference allocator's record of one handle.
type refPod struct {
	node  string
	addrs map[bool]netip.Addr // by is6
}

// TestRandomAgainstReference runs random Assign, Release and GC calls of
// three nodes on small pools and checks each answer against a slow,
// obviously right model: a map of handles to addresses. It checks that no
// address is given twice, that repeated Assigns return the same
// addresses, that Release and GC free exactly what the model says, that a
// pool is exhausted exactly when the model holds all its addresses, and
// that a node claims a block only when its own are full and borrows only
// when the pool has no block left.
func TestRandomAgainstReference(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  int
		open func(t *testing.T) ipam.Store
	}{
		{"memstore", 4000, func(*testing.T) ipam.Store { return memstore.New() }},
		{"memstore without batches", 4000, func(*testing.T) ipam.Store { return noBatch{memstore.New()} }},
		{"boltstore", 2000, func(t *testing.T) ipam.Store {
			s, err := boltstore.Open(filepath.Join(t.TempDir(), "ipam.db"), boltstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runRandom(t, tc.open(t), tc.ops, rand.New(rand.NewPCG(1, uint64(tc.ops))))
		})
	}
}

func runRandom(t *testing.T, s ipam.Store, ops int, rng *rand.Rand) {
	nodes := []string{"n1", "n2", "n3"}
	al := map[string]*ipam.Allocator{}
	for _, n := range nodes {
		al[n] = newAllocator(t, s, n, nil)
	}
	p4 := ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/27"), BlockSize: 29}  // 4 blocks of 8
	p6 := ipam.Pool{Name: "v6", CIDR: pfx("fd00:18::/123"), BlockSize: 125} // 4 blocks of 8
	addPools(t, al["n1"], p4, p6)
	const poolSize, poolBlocks = 32, 4

	ref := map[ipam.Handle]*refPod{}
	used := map[netip.Addr]ipam.Handle{}
	count := map[bool]int{}
	var handles []ipam.Handle
	next := 0
	stats := map[string]int{} // how often each case the checks cover came up

	for op := 0; op < ops; op++ {
		r := rng.IntN(100)
		if op >= ops-ops/10 {
			// The last tenth only assigns, so the pools fill up and the
			// exhausted case is always covered (the allocator's own order
			// of work is not deterministic, so the mix alone may miss it).
			r = rng.IntN(65)
		}
		switch {
		case r < 65: // Assign, a new handle or a repeat
			var hd ipam.Handle
			if len(handles) > 0 && rng.IntN(4) == 0 {
				hd = handles[rng.IntN(len(handles))]
			} else {
				hd = ipam.Handle{ContainerID: fmt.Sprintf("c%d", next), IfName: "eth0"}
				next++
			}
			node := nodes[rng.IntN(len(nodes))]
			if p := ref[hd]; p != nil {
				node = p.node
			}
			v4, v6 := true, true
			switch rng.IntN(4) {
			case 0:
				v6 = false
			case 1:
				v4 = false
			}
			_, before, err := al[node].Usage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := al[node].Assign(ctx, ipam.AssignRequest{Handle: hd, IPv4: v4, IPv6: v6})
			p := ref[hd]
			// The model: exhausted iff a requested family the handle lacks is full.
			full := (v4 && (p == nil || !p.addrs[false].IsValid()) && count[false] == poolSize) ||
				(v6 && (p == nil || !p.addrs[true].IsValid()) && count[true] == poolSize)
			if full {
				if !errors.Is(err, ipam.ErrPoolExhausted) {
					t.Fatalf("op %d: Assign(%s) in a full pool: %v, %v; want ErrPoolExhausted", op, hd, got, err)
				}
				stats["exhausted"]++
				continue
			}
			if err != nil {
				t.Fatalf("op %d: Assign(%s) on %s: %v", op, hd, node, err)
			}
			if p == nil {
				p = &refPod{node: node, addrs: map[bool]netip.Addr{}}
				ref[hd] = p
				handles = append(handles, hd)
			}
			for _, a := range got {
				is6 := a.Addr.Is6()
				if old := p.addrs[is6]; old.IsValid() {
					if old != a.Addr {
						t.Fatalf("op %d: repeated Assign(%s) gave %s, before %s", op, hd, a.Addr, old)
					}
					continue
				}
				if other, dup := used[a.Addr]; dup {
					t.Fatalf("op %d: Assign(%s) gave %s, held by %s", op, hd, a.Addr, other)
				}
				if !a.Pool.CIDR.Contains(a.Addr) || !a.Block.Contains(a.Addr) {
					t.Fatalf("op %d: %s outside its pool %s or block %s", op, a.Addr, a.Pool.CIDR, a.Block)
				}
				stats[checkPlacement(t, op, node, a, before, poolBlocks)]++
				p.addrs[is6] = a.Addr
				used[a.Addr] = hd
				count[is6]++
			}
			if (v4 && !p.addrs[false].IsValid()) || (v6 && !p.addrs[true].IsValid()) {
				t.Fatalf("op %d: Assign(%s) v4=%v v6=%v gave %v", op, hd, v4, v6, addrs(got))
			}
		case r < 80: // Release, sometimes of an unknown or released handle
			var hd ipam.Handle
			if len(handles) > 0 && rng.IntN(5) != 0 {
				hd = handles[rng.IntN(len(handles))]
			} else {
				hd = ipam.Handle{ContainerID: fmt.Sprintf("c%d", rng.IntN(next+1)), IfName: "eth0"}
			}
			node := nodes[rng.IntN(len(nodes))]
			gone, err := al[node].Release(ctx, hd)
			if err != nil {
				t.Fatalf("op %d: Release(%s): %v", op, hd, err)
			}
			var want []netip.Addr
			if p := ref[hd]; p != nil {
				for _, a := range p.addrs {
					want = append(want, a)
				}
			}
			expectReleased(t, op, "Release", gone, want)
			forget(ref, used, count, &handles, func(x ipam.Handle, _ *refPod) bool { return x == hd })
		case r < 90: // GC of one node, keeping a random half of its pods
			node := nodes[rng.IntN(len(nodes))]
			var valid []ipam.Handle
			drop := map[ipam.Handle]bool{}
			var want []netip.Addr
			for hd, p := range ref {
				if rng.IntN(2) == 0 || p.node != node {
					valid = append(valid, hd)
				} else {
					drop[hd] = true
					for _, a := range p.addrs {
						want = append(want, a)
					}
				}
			}
			if rng.IntN(2) == 0 {
				valid = nil // GC keeps other nodes' pods whatever the list says
				for hd, p := range ref {
					if p.node == node && !drop[hd] {
						valid = append(valid, hd)
					}
				}
			}
			gone, err := al[node].GC(ctx, valid)
			if err != nil {
				t.Fatalf("op %d: GC(%s): %v", op, node, err)
			}
			expectReleased(t, op, "GC "+node, gone, want)
			forget(ref, used, count, &handles, func(x ipam.Handle, _ *refPod) bool { return drop[x] })
		case r < 91: // A node leaves its blocks: allocations stay, affinities go
			node := nodes[rng.IntN(len(nodes))]
			if _, err := al[node].ReleaseNodeBlocks(ctx, nodes[rng.IntN(len(nodes))]); err != nil {
				t.Fatalf("op %d: ReleaseNodeBlocks: %v", op, err)
			}
			stats["node blocks released"]++
		default: // Compare the whole store with the model
			compareStore(t, op, al["n1"], s, used)
		}
	}
	compareStore(t, ops, al["n1"], s, used)
	t.Logf("%d ops: %v", ops, stats)
	for _, k := range []string{"exhausted", "affine", "claimed", "borrowed"} {
		if stats[k] == 0 {
			t.Errorf("no %s case in %d ops: the test does not cover it", k, ops)
		}
	}
}

// checkPlacement checks where a new address landed against the blocks
// before the call: in an affine block with room; in a new block only if
// the node's blocks of the family were full; borrowed only if the pool had
// no block left to claim.
func checkPlacement(t *testing.T, op int, node string, a ipam.Assigned, before []ipam.BlockUsage, poolBlocks int) string {
	t.Helper()
	var target *ipam.BlockUsage
	affineFree, blocks := 0, 0
	for i, b := range before {
		if b.CIDR.Addr().Is6() != a.Addr.Is6() {
			continue
		}
		blocks++
		if b.Affinity == node {
			affineFree += b.Capacity - b.Allocated
		}
		if b.CIDR == a.Block {
			target = &before[i]
		}
	}
	switch {
	case target == nil && affineFree > 0:
		t.Fatalf("op %d: %s claimed block %s with %d addresses free in its own", op, node, a.Block, affineFree)
	case target != nil && target.Affinity != node && (affineFree > 0 || blocks < poolBlocks):
		t.Fatalf("op %d: %s borrowed %s from %q's block %s with %d free in its own and %d of %d blocks claimed",
			op, node, a.Addr, target.Affinity, a.Block, affineFree, blocks, poolBlocks)
	case target == nil:
		return "claimed"
	case target.Affinity != node:
		return "borrowed"
	}
	return "affine"
}

func expectReleased(t *testing.T, op int, what string, gone []ipam.Allocation, want []netip.Addr) {
	t.Helper()
	var g []netip.Addr
	for _, al := range gone {
		g = append(g, al.Addr)
	}
	sortAddrs(g)
	sortAddrs(want)
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("op %d: %s released (-want +got):\n-%v\n+%v", op, what, want, g)
	}
}

func forget(ref map[ipam.Handle]*refPod, used map[netip.Addr]ipam.Handle, count map[bool]int, handles *[]ipam.Handle, drop func(ipam.Handle, *refPod) bool) {
	kept := (*handles)[:0]
	for _, hd := range *handles {
		p := ref[hd]
		if !drop(hd, p) {
			kept = append(kept, hd)
			continue
		}
		for is6, a := range p.addrs {
			delete(used, a)
			count[is6]--
		}
		delete(ref, hd)
	}
	*handles = kept
}

func compareStore(t *testing.T, op int, a *ipam.Allocator, s ipam.Store, used map[netip.Addr]ipam.Handle) {
	t.Helper()
	if inner, ok := s.(noBatch); ok {
		s = inner.Store
	}
	ipamtest.CheckStore(t, s, false)
	all, err := a.Allocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]ipam.Handle{}
	for _, al := range all {
		got[al.Addr] = al.Handle
	}
	if fmt.Sprint(got) != fmt.Sprint(used) {
		t.Fatalf("op %d: store (-want +got):\n-%v\n+%v", op, used, got)
	}
	_, blocks, _ := a.Usage(ctx)
	for _, b := range blocks {
		n := 0
		for addr := range used {
			if b.CIDR.Contains(addr) {
				n++
			}
		}
		if n != b.Allocated {
			t.Fatalf("op %d: block %s says %d allocated, the model %d", op, b.CIDR, b.Allocated, n)
		}
	}
}

func sortAddrs(a []netip.Addr) { sort.Slice(a, func(i, j int) bool { return a[i].Less(a[j]) }) }
