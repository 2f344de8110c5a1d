package ipamstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/xvs-project/xvs/e2e/kubeapi"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/ipamtest"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
	"github.com/xvs-project/xvs/kube/ipamstore"
	"github.com/xvs-project/xvs/kube/kubetest"
)

// TestAPIServer runs every test that needs the API server against one
// real etcd and kube-apiserver (e2e/kubeapi), one after the other: each
// starts from an empty set of pools and blocks.
func TestAPIServer(t *testing.T) {
	s := kubetest.Start(t)
	for _, tc := range []struct {
		name string
		f    func(*testing.T, *rest.Config)
	}{
		{"Conformance", testConformance},
		{"ReadYourWrites", testReadYourWrites},
		{"LastBlockRace", testLastBlockRace},
		{"Restart", testRestart},
		{"InvalidPools", testInvalidPools},
		{"Reclaim", testReclaim},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clean(t, s.Config)
			tc.f(t, s.Config)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clean deletes every pool and block.
func clean(t *testing.T, cfg *rest.Config) {
	t.Helper()
	cs := clientset(t, cfg)
	ctx := ctxFor(t)
	if err := cs.IPAMBlocks().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.IPPools().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
}

// clientset is a client of its own: a separate connection, as another
// node would have.
func clientset(t *testing.T, cfg *rest.Config) *client.Clientset {
	t.Helper()
	cs, err := client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func open(t *testing.T, cfg *rest.Config, opts ipamstore.Options) *ipamstore.Store {
	t.Helper()
	st, err := ipamstore.New(ctxFor(t), clientset(t, cfg), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testConformance(t *testing.T, cfg *rest.Config) {
	ipamtest.TestStore(t, func(t *testing.T) ipam.Store {
		clean(t, cfg)
		return open(t, cfg, ipamstore.Options{})
	})
}

// testReadYourWrites: a second store (another node) sees the first's
// writes once its informer has them; the writer sees them at once, and
// a write against the stale view of the second fails with ErrConflict
// and succeeds on the next read.
func testReadYourWrites(t *testing.T, cfg *rest.Config) {
	ctx := ctxFor(t)
	a, b := open(t, cfg, ipamstore.Options{}), open(t, cfg, ipamstore.Options{})
	pfx := netip.MustParsePrefix("198.18.10.0/26")
	h := ipam.Handle{ContainerID: "c1", IfName: "eth0"}
	for i := range 20 {
		blk, err := a.CreateBlock(ctx, ipam.Block{CIDR: pfx, Affinity: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		blk.Allocations = []ipam.Allocation{{Addr: pfx.Addr(), Handle: h, Node: "n1"}}
		if _, err := a.UpdateBlock(ctx, blk); err != nil {
			t.Fatal(err)
		}
		// At once, without waiting for the watch.
		if got, err := a.BlocksByHandle(ctx, h.String()); err != nil || len(got) != 1 {
			t.Fatalf("round %d: BlocksByHandle right after the write: %v, %v", i, got, err)
		}
		cur, err := a.GetBlock(ctx, pfx)
		if err != nil || cur.Used() != 1 {
			t.Fatalf("round %d: GetBlock right after the write: %+v, %v", i, cur, err)
		}
		if err := a.DeleteBlock(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if _, err := a.GetBlock(ctx, pfx); !errors.Is(err, ipam.ErrNotFound) {
			t.Fatalf("round %d: GetBlock right after the delete: %v", i, err)
		}
		if got, _ := a.ListBlocks(ctx); len(got) != 0 {
			t.Fatalf("round %d: ListBlocks right after the delete: %v", i, got)
		}
	}
	// b follows a through its informer.
	blk, err := a.CreateBlock(ctx, ipam.Block{CIDR: pfx, Affinity: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := kubeapi.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		g, err := b.GetBlock(ctx, pfx)
		return err == nil && g.Revision == blk.Revision, err
	}); err != nil {
		t.Fatalf("the other store never saw the block: %v", err)
	}
	stale, _ := b.GetBlock(ctx, pfx)
	blk.Affinity = "n2"
	if _, err := a.UpdateBlock(ctx, blk); err != nil {
		t.Fatal(err)
	}
	stale.Allocations = []ipam.Allocation{{Addr: pfx.Addr(), Handle: h, Node: "n2"}}
	if _, err := b.UpdateBlock(ctx, stale); !errors.Is(err, ipam.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	// The conflict read the winner: the next read shows it.
	fresh, err := b.GetBlock(ctx, pfx)
	if err != nil || fresh.Affinity != "n2" {
		t.Fatalf("read after the conflict: %+v, %v", fresh, err)
	}
	if _, err := b.CreateBlock(ctx, ipam.Block{CIDR: pfx}); !errors.Is(err, ipam.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
}

func addPools(t *testing.T, cfg *rest.Config, pools ...xvsv1.IPPoolSpec) {
	t.Helper()
	cs := clientset(t, cfg)
	for i, p := range pools {
		if _, err := cs.IPPools().Create(ctxFor(t), &xvsv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pool%d", i)}, Spec: p}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func allocator(t *testing.T, st ipam.Store, node string) *ipam.Allocator {
	t.Helper()
	a, err := ipam.New(st, ipam.Options{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitPools waits until the store's informer has the pools.
func waitPools(t *testing.T, st ipam.Store, n int) {
	t.Helper()
	if err := kubeapi.WaitFor(ctxFor(t), func(ctx context.Context) (bool, error) {
		ps, err := st.ListPools(ctx)
		return len(ps) == n, err
	}); err != nil {
		t.Fatalf("pools: %v", err)
	}
}

// testLastBlockRace: a pool of two /30 blocks, the first claimed and
// filled by n0. Six nodes, each with its own client and store, each
// Assign at once: exactly one claims the last block, three borrow its
// other addresses, two report exhaustion; no address is given twice.
func testLastBlockRace(t *testing.T, cfg *rest.Config) {
	ctx := ctxFor(t)
	addPools(t, cfg, xvsv1.IPPoolSpec{CIDR: "198.18.20.0/29", BlockSize: 30})
	st0 := open(t, cfg, ipamstore.Options{})
	waitPools(t, st0, 1)
	a0 := allocator(t, st0, "n0")
	for i := range 4 {
		if _, err := a0.Assign(ctx, ipam.AssignRequest{Handle: ipam.Handle{ContainerID: fmt.Sprintf("p0-%d", i), IfName: "eth0"}, IPv4: true}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 6
	type result struct {
		node string
		addr netip.Addr
		err  error
	}
	allocs := make([]*ipam.Allocator, n)
	for i := range allocs {
		st := open(t, cfg, ipamstore.Options{})
		if err := kubeapi.WaitFor(ctx, func(ctx context.Context) (bool, error) {
			bs, err := st.ListBlocks(ctx)
			return len(bs) == 1 && bs[0].Used() == 4, err
		}); err != nil {
			t.Fatal(err)
		}
		waitPools(t, st, 1)
		allocs[i] = allocator(t, st, fmt.Sprintf("n%d", i+1))
	}
	results := make([]result, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i, a := range allocs {
		done.Go(func() {
			start.Wait()
			got, err := a.Assign(ctx, ipam.AssignRequest{Handle: ipam.Handle{ContainerID: fmt.Sprintf("p%d", i+1), IfName: "eth0"}, Pod: "p", Namespace: "ns", IPv4: true})
			results[i] = result{node: a.Node(), err: err}
			if err == nil {
				results[i].addr = got[0].Addr
			}
		})
	}
	start.Done()
	done.Wait()
	ok, exhausted := 0, 0
	seen := map[netip.Addr]string{}
	for _, r := range results {
		switch {
		case r.err == nil:
			ok++
			if o, dup := seen[r.addr]; dup {
				t.Errorf("%s given to %s and %s", r.addr, o, r.node)
			}
			seen[r.addr] = r.node
		case errors.Is(r.err, ipam.ErrPoolExhausted):
			exhausted++
		default:
			t.Errorf("%s: %v", r.node, r.err)
		}
	}
	blocks, err := st0.ListBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// st0's informer may lag: read through a fresh store.
	blocks, _ = open(t, cfg, ipamstore.Options{}).ListBlocks(ctx)
	var winners []string
	for _, b := range blocks {
		if b.Affinity != "n0" {
			winners = append(winners, b.Affinity+" "+b.CIDR.String())
		}
	}
	if len(winners) != 1 || ok != 4 || exhausted != 2 {
		t.Errorf("claims %v, %d assigned, %d exhausted; want one claim, 4 assigned, 2 exhausted (results %+v)", winners, ok, exhausted, results)
	}
	t.Logf("last block went to %v; results %+v", winners, results)
	ipamtest.CheckStore(t, open(t, cfg, ipamstore.Options{}), false)
}

// testRestart: a node's pods are in its blocks with their pod names; a
// new store and allocator (xvsd restarted) find them (the CNI server's
// re-adoption reads Allocations), and a repeated Assign returns the same
// addresses.
func testRestart(t *testing.T, cfg *rest.Config) {
	ctx := ctxFor(t)
	addPools(t, cfg, xvsv1.IPPoolSpec{CIDR: "198.18.32.0/24"}, xvsv1.IPPoolSpec{CIDR: "fd00:18:32::/64"})
	st := open(t, cfg, ipamstore.Options{})
	waitPools(t, st, 2)
	a := allocator(t, st, "n1")
	want := map[string][]netip.Addr{}
	for i := range 3 {
		h := ipam.Handle{ContainerID: fmt.Sprintf("pod%d", i), IfName: "eth0"}
		got, err := a.Assign(ctx, ipam.AssignRequest{Handle: h, Namespace: "default", Pod: fmt.Sprintf("web-%d", i), IPv4: true, IPv6: true})
		if err != nil {
			t.Fatal(err)
		}
		want[h.String()] = []netip.Addr{got[0].Addr, got[1].Addr}
	}
	st.Close()

	st2 := open(t, cfg, ipamstore.Options{})
	waitPools(t, st2, 2)
	a2 := allocator(t, st2, "n1")
	als, err := a2.Allocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(als) != 6 {
		t.Fatalf("after restart: %d allocations, want 6: %+v", len(als), als)
	}
	for _, al := range als {
		if al.Node != "n1" || al.Namespace != "default" || !strings.HasPrefix(al.Pod, "web-") {
			t.Errorf("allocation lost its owner: %+v", al)
		}
	}
	for hs, addrs := range want {
		cid, ifn, _ := strings.Cut(hs, "/")
		got, err := a2.Assign(ctx, ipam.AssignRequest{Handle: ipam.Handle{ContainerID: cid, IfName: ifn}, IPv4: true, IPv6: true})
		if err != nil || got[0].Addr != addrs[0] || got[1].Addr != addrs[1] {
			t.Errorf("%s after restart: %v, %v; want %v", hs, got, err, addrs)
		}
	}
}

// testInvalidPools: a pool with a selector that does not parse and one
// overlapping an older pool are left out with an Event naming the field;
// the good pools still give addresses.
func testInvalidPools(t *testing.T, cfg *rest.Config) {
	ctx := ctxFor(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs := clientset(t, cfg)
	mk := func(name string, spec xvsv1.IPPoolSpec) {
		t.Helper()
		if _, err := cs.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("good4", xvsv1.IPPoolSpec{CIDR: "198.18.40.0/24"})
	// Created in the same second or later: good4 is the older by
	// creationTimestamp, then by name.
	mk("overlap", xvsv1.IPPoolSpec{CIDR: "198.18.40.128/25"})
	mk("badsel", xvsv1.IPPoolSpec{CIDR: "198.18.41.0/24", NodeSelector: `zone == `})
	// The API server refuses a bad block size itself (CEL).
	if _, err := cs.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "badsize"}, Spec: xvsv1.IPPoolSpec{CIDR: "198.18.42.0/24", BlockSize: 118}}, metav1.CreateOptions{}); err == nil {
		t.Error("the API server accepted blockSize 118 for an IPv4 pool")
	}

	st := open(t, cfg, ipamstore.Options{Kube: kube, Node: "n1"})
	waitPools(t, st, 1)
	pools, _ := st.ListPools(ctx)
	if len(pools) != 1 || pools[0].Name != "good4" {
		t.Fatalf("pools %+v, want good4 only", pools)
	}
	ref := map[string]string{}
	for _, e := range st.Refused() {
		ref[e.Pool] = e.Field
	}
	if ref["overlap"] != "spec.cidr" || ref["badsel"] != "spec.nodeSelector" || len(ref) != 2 {
		t.Errorf("refused %v, want overlap: spec.cidr, badsel: spec.nodeSelector", ref)
	}
	for pool, field := range map[string]string{"overlap": "spec.cidr", "badsel": "spec.nodeSelector"} {
		if err := kubeapi.WaitFor(ctx, func(ctx context.Context) (bool, error) {
			evs, err := kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pool})
			if err != nil {
				return false, err
			}
			for _, ev := range evs.Items {
				if ev.Reason == "InvalidIPPool" && ev.Type == corev1.EventTypeWarning && ev.InvolvedObject.Kind == "IPPool" && strings.Contains(ev.Message, field) {
					t.Logf("event on %s: %s", pool, ev.Message)
					return true, nil
				}
			}
			return false, fmt.Errorf("events %+v", evs.Items)
		}); err != nil {
			t.Errorf("no InvalidIPPool event naming %s on %s: %v", field, pool, err)
		}
	}
	a := allocator(t, st, "n1")
	got, err := a.Assign(ctx, ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "c", IfName: "eth0"}, IPv4: true})
	if err != nil || !netip.MustParsePrefix("198.18.40.0/24").Contains(got[0].Addr) {
		t.Errorf("assign from the good pool: %v, %v", got, err)
	}
	if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "d", IfName: "eth0"}, IPv4: true, IPv4Pools: []string{"badsel"}}); !errors.Is(err, ipam.ErrUnknownPool) {
		t.Errorf("assign from the refused pool: %v, want ErrUnknownPool", err)
	}
}
