package ipamstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/ipamtest"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/ipamstore"
)

// clock is a test clock the reclaimers read.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testReclaim: n2's Node object is deleted; two agents' reclaimers (n1,
// n3) sweep at once; nothing happens within the grace period, then n2's
// addresses and blocks are released by whichever wins, and n1's stay.
func testReclaim(t *testing.T, cfg *rest.Config) {
	ctx := ctxFor(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if _, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kube.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{}) })
	}
	addPools(t, cfg, xvsv1.IPPoolSpec{CIDR: "198.18.50.0/24"}, xvsv1.IPPoolSpec{CIDR: "fd00:18:50::/64"})
	for _, n := range []string{"n1", "n2"} {
		st := open(t, cfg, ipamstore.Options{})
		waitPools(t, st, 2)
		a := allocator(t, st, n)
		if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "pod-" + n, IfName: "eth0"}, IPv4: true, IPv6: true}); err != nil {
			t.Fatal(err)
		}
	}
	// n2 also borrowed an address from n1's block? Not needed: GC
	// covers borrowed addresses the same way.
	if err := kube.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	clk := &clock{t: time.Unix(1_000_000, 0)}
	const grace = time.Minute
	var rs []*ipamstore.Reclaimer
	for _, self := range []string{"n1", "n3"} {
		r := ipamstore.NewReclaimer(kube, open(t, cfg, ipamstore.Options{}), self, ipamstore.ReclaimOptions{Grace: grace, Now: clk.now})
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	// Both stores' informers must have n2's blocks before the sweeps count.
	check := open(t, cfg, ipamstore.Options{})
	affinities := func() []string {
		bs, _ := check.ListBlocks(ctx)
		var out []string
		for _, b := range bs {
			out = append(out, b.Affinity)
		}
		return out
	}
	sweepAll := func() []string {
		t.Helper()
		var mu sync.Mutex
		var all []string
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Go(func() {
				done, err := r.Sweep(ctx)
				if err != nil {
					t.Errorf("sweep: %v", err)
				}
				mu.Lock()
				all = append(all, done...)
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(all)
		return all
	}
	if got := sweepAll(); len(got) != 0 {
		t.Fatalf("first sweep reclaimed %v", got)
	}
	clk.add(grace - time.Second)
	if got := sweepAll(); len(got) != 0 {
		t.Fatalf("sweep within the grace period reclaimed %v", got)
	}
	if got, want := affinities(), []string{"n1", "n2", "n1", "n2"}; !slices.Equal(got, want) {
		t.Fatalf("blocks within the grace period: %v, want %v", got, want)
	}
	clk.add(2 * time.Second)
	if got := sweepAll(); len(got) == 0 || slices.ContainsFunc(got, func(n string) bool { return n != "n2" }) {
		t.Fatalf("sweep after the grace period reclaimed %v, want n2", got)
	}
	st := open(t, cfg, ipamstore.Options{})
	bs, _ := st.ListBlocks(ctx)
	for _, b := range bs {
		if b.Affinity != "n1" || b.Used() != 1 {
			t.Errorf("after reclaim: block %+v, want only n1's, each with its pod", b)
		}
	}
	if len(bs) != 2 {
		t.Errorf("after reclaim: %d blocks, want n1's 2", len(bs))
	}
	ipamtest.CheckStore(t, st, true)
	// n2's blocks can be claimed again: a new node takes the lowest free.
	a := allocator(t, st, "n3")
	got, err := a.Assign(ctx, ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "pod-n3", IfName: "eth0"}, IPv4: true})
	if err != nil || got[0].Block.String() != "198.18.50.64/26" {
		t.Errorf("n3 after reclaim: %v, %v; want n2's old block 198.18.50.64/26", got, err)
	}
}
