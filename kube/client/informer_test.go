package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
)

// testInformer: the typed client's REST client feeds a client-go shared
// informer, as the node agent will use it: the cache syncs with what
// exists and then follows adds, updates and deletes.
func testInformer(t *testing.T, cs *client.Clientset) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cs.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: om("inf-before"), Spec: xvsv1.IPPoolSpec{CIDR: "198.18.128.0/20"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lw := cache.NewListWatchFromClient(cs.RESTClient(), xvsv1.ResourceIPPools, "", fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &xvsv1.IPPool{}, 0, cache.Indexers{})
	events := make(chan string, 16)
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { events <- "add " + o.(*xvsv1.IPPool).Name },
		UpdateFunc: func(_, o any) { events <- "update " + o.(*xvsv1.IPPool).Name },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			events <- "delete " + o.(*xvsv1.IPPool).Name
		},
	}); err != nil {
		t.Fatal(err)
	}
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	expect := func(want string) {
		t.Helper()
		for {
			select {
			case got := <-events:
				if got == want {
					return
				}
				// Objects of the other subtests are seen too.
			case <-ctx.Done():
				t.Fatalf("informer: never saw %q", want)
			}
		}
	}
	expect("add inf-before")
	p, err := cs.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: om("inf-after"), Spec: xvsv1.IPPoolSpec{CIDR: "198.18.144.0/20"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect("add inf-after")
	p.Spec.Disabled = true
	if _, err := cs.IPPools().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("update inf-after")
	if err := cs.IPPools().Delete(ctx, "inf-after", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete inf-after")
	if _, ok, _ := inf.GetStore().GetByKey("inf-before"); !ok {
		t.Error("cache lost inf-before")
	}
}

// testFullBlocks: a /26 and a /122 with every address allocated are
// accepted, so the allocation list is compact enough for the default
// blocks; the size is logged.
func testFullBlocks(t *testing.T, cs *client.Clientset) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range []string{"198.19.66.0/26", "fd00:10:244:1::/122"} {
		pfx := netip.MustParsePrefix(s)
		b := &xvsv1.IPAMBlock{ObjectMeta: om(xvsv1.BlockName(pfx)), Spec: xvsv1.IPAMBlockSpec{CIDR: s, Affinity: "node-with-a-long-name-0001"}}
		for a, i := pfx.Addr(), 0; pfx.Contains(a); a, i = a.Next(), i+1 {
			b.Spec.Allocations = append(b.Spec.Allocations, xvsv1.IPAMAllocation{
				Addr:        a.String(),
				ContainerID: fmt.Sprintf("%064x", i), // a runtime's 64-hex-digit ID
				IfName:      "eth0",
				Namespace:   "default",
				Pod:         fmt.Sprintf("web-%d", i),
				Node:        "node-with-a-long-name-0001",
			})
		}
		got, err := cs.IPAMBlocks().Create(ctx, b, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("full block %s: %v", s, err)
		}
		if n := len(got.Spec.Allocations); n != 64 {
			t.Errorf("block %s stored %d allocations, want 64", s, n)
		}
		js, _ := json.Marshal(got)
		t.Logf("full block %s: %d allocations, %d bytes of JSON", s, len(got.Spec.Allocations), len(js))
	}

	// One more than the largest block can hold is refused.
	pfx := netip.MustParsePrefix("198.18.240.0/20")
	b := &xvsv1.IPAMBlock{ObjectMeta: om(xvsv1.BlockName(pfx)), Spec: xvsv1.IPAMBlockSpec{CIDR: pfx.String()}}
	a := pfx.Addr()
	for i := range xvsv1.MaxBlockAddresses + 1 {
		b.Spec.Allocations = append(b.Spec.Allocations, xvsv1.IPAMAllocation{Addr: a.String(), ContainerID: fmt.Sprint(i), IfName: "eth0", Node: "n"})
		a = a.Next()
	}
	_, err := cs.IPAMBlocks().Create(ctx, b, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("block with %d allocations: err = %v, want Invalid", len(b.Spec.Allocations), err)
	}
}
