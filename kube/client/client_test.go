package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
	"github.com/xvs-project/xvs/kube/kubetest"
)

// TestAPIServer runs every check that needs the API server against one:
// the CRDs' validation, a round trip of each type, and the optimistic
// concurrency the IPAM store builds on.
func TestAPIServer(t *testing.T) {
	s := kubetest.Start(t)
	cs, err := client.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Validation", func(t *testing.T) { testValidation(t, cs) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, cs) })
	t.Run("ClaimRace", func(t *testing.T) { testClaimRace(t, cs) })
	t.Run("UpdateRace", func(t *testing.T) { testUpdateRace(t, cs) })
	t.Run("Informer", func(t *testing.T) { testInformer(t, cs) })
	t.Run("FullBlocks", func(t *testing.T) { testFullBlocks(t, cs) })
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func om(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

func u32(v uint32) *uint32 { return &v }

// errFields lists the fields an Invalid answer names.
func errFields(err error) []string {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil {
		return nil
	}
	var fs []string
	for _, c := range st.Status().Details.Causes {
		fs = append(fs, c.Field)
	}
	return fs
}

func testValidation(t *testing.T, cs *client.Clientset) {
	ctx := ctxFor(t)
	pool := func(name string, spec xvsv1.IPPoolSpec) func() error {
		return func() error {
			_, err := cs.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: om(name), Spec: spec}, metav1.CreateOptions{})
			return err
		}
	}
	peer := func(name string, spec xvsv1.BGPPeerSpec) func() error {
		return func() error {
			_, err := cs.BGPPeers().Create(ctx, &xvsv1.BGPPeer{ObjectMeta: om(name), Spec: spec}, metav1.CreateOptions{})
			return err
		}
	}
	block := func(name string, spec xvsv1.IPAMBlockSpec) func() error {
		return func() error {
			_, err := cs.IPAMBlocks().Create(ctx, &xvsv1.IPAMBlock{ObjectMeta: om(name), Spec: spec}, metav1.CreateOptions{})
			return err
		}
	}
	bgpconf := func(name string, spec xvsv1.BGPConfigurationSpec) func() error {
		return func() error {
			_, err := cs.BGPConfigurations().Create(ctx, &xvsv1.BGPConfiguration{ObjectMeta: om(name), Spec: spec}, metav1.CreateOptions{})
			return err
		}
	}
	alloc := func(addr, id string) xvsv1.IPAMAllocation {
		return xvsv1.IPAMAllocation{Addr: addr, ContainerID: id, IfName: "eth0", Node: "node-a"}
	}
	for _, tc := range []struct {
		name      string
		create    func() error
		wantField string // "" means accepted
		wantMsg   string
	}{
		{"pool v4", pool("v4", xvsv1.IPPoolSpec{CIDR: "198.19.0.0/17", BlockSize: 26, VXLANMode: xvsv1.VXLANAlways, NATOutgoing: true}), "", ""},
		{"pool v6 default block", pool("v6", xvsv1.IPPoolSpec{CIDR: "fd00:10:244::/56", VXLANMode: xvsv1.VXLANCrossSubnet}), "", ""},
		{"pool v4 /32 blocks", pool("v4-32", xvsv1.IPPoolSpec{CIDR: "198.18.200.0/24", BlockSize: 32}), "", ""},
		{"pool blockSize 40", pool("bs40", xvsv1.IPPoolSpec{CIDR: "198.19.0.0/17", BlockSize: 40}), "spec.blockSize", "20 to 32 for an IPv4 pool"},
		{"pool blockSize 19", pool("bs19", xvsv1.IPPoolSpec{CIDR: "198.18.0.0/16", BlockSize: 19}), "spec.blockSize", "greater than or equal to 20"},
		{"pool blockSize 129", pool("bs129", xvsv1.IPPoolSpec{CIDR: "fd00:10::/48", BlockSize: 129}), "spec.blockSize", "less than or equal to 128"},
		{"pool v6 blockSize 26", pool("v6bs26", xvsv1.IPPoolSpec{CIDR: "fd00:10::/48", BlockSize: 26}), "spec.blockSize", "116 to 128 for an IPv6 pool"},
		{"pool block wider than pool", pool("wide", xvsv1.IPPoolSpec{CIDR: "198.18.0.0/24", BlockSize: 22}), "spec.blockSize", "not be shorter"},
		{"pool vxlanMode Sometimes", pool("sometimes", xvsv1.IPPoolSpec{CIDR: "198.19.0.0/17", VXLANMode: "Sometimes"}), "spec.vxlanMode", `Unsupported value: "Sometimes"`},
		{"pool bad cidr", pool("badcidr", xvsv1.IPPoolSpec{CIDR: "198.19.0.0/33"}), "spec.cidr", "must be an IPv4 or IPv6 prefix"},
		{"pool not a cidr", pool("notcidr", xvsv1.IPPoolSpec{CIDR: "pods"}), "spec.cidr", "must be an IPv4 or IPv6 prefix"},
		{"pool host bits", pool("hostbits", xvsv1.IPPoolSpec{CIDR: "198.19.0.1/17"}), "spec.cidr", "host bits must be zero"},
		{"pool no cidr", pool("nocidr", xvsv1.IPPoolSpec{}), "spec.cidr", ""},
		{"peer global v4", peer("tor-v4", xvsv1.BGPPeerSpec{PeerIP: "198.18.0.254", ASNumber: 65001}), "", ""},
		{"peer node v6 4-byte AS", peer("tor-v6", xvsv1.BGPPeerSpec{PeerIP: "fd00:18::fe", ASNumber: 4200000000, Node: "node-a",
			Password: &xvsv1.BGPPassword{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "bgp"}, Key: "tor"}}}), "", ""},
		{"peer selector", peer("rr", xvsv1.BGPPeerSpec{PeerIP: "198.18.0.253", ASNumber: 64512, NodeSelector: `rack == "a"`}), "", ""},
		{"peer bad ip", peer("badip", xvsv1.BGPPeerSpec{PeerIP: "198.18.0.300", ASNumber: 65001}), "spec.peerIP", "must be an IPv4 or IPv6 address"},
		{"peer node and selector", peer("both", xvsv1.BGPPeerSpec{PeerIP: "198.18.0.1", ASNumber: 65001, Node: "n", NodeSelector: "all()"}), "spec.nodeSelector", "not both"},
		{"peer AS 0", peer("as0", xvsv1.BGPPeerSpec{PeerIP: "198.18.0.1"}), "spec.asNumber", ""},
		{"bgpconfig default", bgpconf("default", xvsv1.BGPConfigurationSpec{ASNumber: u32(64512), ListenPort: 179,
			ServiceClusterIPs: []xvsv1.ServiceClusterIPBlock{{CIDR: "198.19.128.0/20"}, {CIDR: "fd00:96::/112"}}}), "", ""},
		{"bgpconfig node", bgpconf("node.node-a", xvsv1.BGPConfigurationSpec{ASNumber: u32(65010)}), "", ""},
		{"bgpconfig bad name", bgpconf("global", xvsv1.BGPConfigurationSpec{}), "", "metadata.name must be default"},
		{"bgpconfig bad service cidr", bgpconf("node.node-b", xvsv1.BGPConfigurationSpec{ServiceClusterIPs: []xvsv1.ServiceClusterIPBlock{{CIDR: "services"}}}), "spec.serviceClusterIPs[0].cidr", ""},
		{"bgpconfig port 0x10000", bgpconf("node.node-c", xvsv1.BGPConfigurationSpec{ListenPort: 65536}), "spec.listenPort", ""},
		{"block", block(xvsv1.BlockName(netip.MustParsePrefix("198.19.0.0/26")), xvsv1.IPAMBlockSpec{CIDR: "198.19.0.0/26", Affinity: "node-a",
			Allocations: []xvsv1.IPAMAllocation{alloc("198.19.0.0", "c1"), alloc("198.19.0.1", "c2")}}), "", ""},
		{"block duplicate addr", block("dup", xvsv1.IPAMBlockSpec{CIDR: "198.19.0.64/26",
			Allocations: []xvsv1.IPAMAllocation{alloc("198.19.0.64", "c1"), alloc("198.19.0.64", "c2")}}), "spec.allocations[1]", "Duplicate value"},
		{"block bad addr", block("badaddr", xvsv1.IPAMBlockSpec{CIDR: "fd00:10:244::/122",
			Allocations: []xvsv1.IPAMAllocation{alloc("fd00:10:244::g", "c1")}}), "spec.allocations[0].addr", "must be an IPv4 or IPv6 address"},
		{"block bad ifName", block("badif", xvsv1.IPAMBlockSpec{CIDR: "fd00:10:244::40/122",
			Allocations: []xvsv1.IPAMAllocation{{Addr: "fd00:10:244::40", ContainerID: "c", IfName: "an-interface-name", Node: "n"}}}), "spec.allocations[0].ifName", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.create()
			if tc.wantField == "" && tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("refused a valid object: %v", err)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("err = %v, want Invalid", err)
			}
			if tc.wantField != "" && !slices.Contains(errFields(err), tc.wantField) {
				t.Errorf("err = %v\nnames fields %q, want %q", err, errFields(err), tc.wantField)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %v, want it to say %q", err, tc.wantMsg)
			}
		})
	}

	// The defaults and immutability the CRD declares.
	got, err := cs.IPPools().Get(ctx, "v6", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.VXLANMode != xvsv1.VXLANCrossSubnet {
		t.Errorf("v6 vxlanMode = %q, want CrossSubnet as created", got.Spec.VXLANMode)
	}
	if bs, ok := got.Spec.EffectiveBlockSize(); !ok || bs != 122 {
		t.Errorf("v6 EffectiveBlockSize = %d, %v; want 122", bs, ok)
	}
	v4, err := cs.IPPools().Get(ctx, "v4-32", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v4.Spec.VXLANMode != xvsv1.VXLANNever {
		t.Errorf("vxlanMode left out = %q, want the default Never", v4.Spec.VXLANMode)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*xvsv1.IPPoolSpec)
		field  string
	}{
		{"cidr", func(s *xvsv1.IPPoolSpec) { s.CIDR = "198.18.201.0/24" }, "spec.cidr"},
		{"blockSize", func(s *xvsv1.IPPoolSpec) { s.BlockSize = 28 }, "spec.blockSize"},
		{"blockSize removed", func(s *xvsv1.IPPoolSpec) { s.BlockSize = 0 }, "spec.blockSize"},
	} {
		p := v4.DeepCopy()
		tc.mutate(&p.Spec)
		_, err := cs.IPPools().Update(ctx, p, metav1.UpdateOptions{})
		if !apierrors.IsInvalid(err) || !slices.Contains(errFields(err), tc.field) {
			t.Errorf("update %s: err = %v (fields %q), want Invalid naming %s", tc.name, err, errFields(err), tc.field)
		}
	}
	p := v4.DeepCopy()
	p.Spec.Disabled = true
	if _, err := cs.IPPools().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Errorf("disable a pool: %v", err)
	}
}

// ignoreTypeMeta: single objects come back without kind and apiVersion
// (the decoder strips them), list items and watch events with them.
var ignoreTypeMeta = cmpopts.IgnoreTypes(metav1.TypeMeta{})

// object is what the typed clients hold.
type object interface {
	runtime.Object
	metav1.Object
}

// roundTrip creates obj, reads it back, updates it, fails an update from
// the stale resourceVersion with Conflict, lists it, sees the update and
// the delete in a watch, and deletes it.
func roundTrip[T object, L runtime.Object](t *testing.T, r client.Resource[T, L], obj T, mutate func(T)) {
	ctx := ctxFor(t)
	name := obj.GetName()
	created, err := r.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.GetResourceVersion() == "" || created.GetUID() == "" {
		t.Fatalf("created object has no resourceVersion or uid: %+v", created)
	}
	w, err := r.Watch(ctx, metav1.ListOptions{ResourceVersion: created.GetResourceVersion()})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	got, err := r.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff(created, got, ignoreTypeMeta); diff != "" {
		t.Errorf("get (-created +got):\n%s", diff)
	}

	upd := got.DeepCopyObject().(T)
	mutate(upd)
	updated, err := r.Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.GetResourceVersion() == got.GetResourceVersion() {
		t.Errorf("update kept resourceVersion %s", got.GetResourceVersion())
	}
	stale := got.DeepCopyObject().(T)
	stale.SetLabels(map[string]string{"stale": "true"})
	if _, err := r.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update from stale resourceVersion %s: err = %v, want Conflict", got.GetResourceVersion(), err)
	}

	list, err := r.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	var found T
	for _, it := range items {
		if o := it.(T); o.GetName() == name {
			found = o
		}
	}
	if any(found) == nil || found.GetName() == "" {
		t.Fatalf("list: %s missing from %d items", name, len(items))
	}
	if diff := cmp.Diff(updated, found, ignoreTypeMeta); diff != "" {
		t.Errorf("listed (-updated +listed):\n%s", diff)
	}

	if err := r.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := r.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: err = %v, want NotFound", err)
	}

	// The watch began at the create: it sees the update, then the delete.
	var seen []string
	for len(seen) < 2 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", seen)
			}
			o, isObj := ev.Object.(T)
			if !isObj || o.GetName() != name {
				continue
			}
			seen = append(seen, fmt.Sprintf("%s %s", ev.Type, o.GetResourceVersion()))
			if ev.Type == watch.Modified {
				if diff := cmp.Diff(updated, o, ignoreTypeMeta); diff != "" {
					t.Errorf("watched update (-updated +watched):\n%s", diff)
				}
			}
		case <-ctx.Done():
			t.Fatalf("watch: saw %v, want MODIFIED and DELETED", seen)
		}
	}
	want := []string{fmt.Sprintf("%s %s", watch.Modified, updated.GetResourceVersion()), string(watch.Deleted)}
	if !strings.HasPrefix(seen[1], string(watch.Deleted)) || seen[0] != want[0] {
		t.Errorf("watch saw %v, want %v", seen, want)
	}
}

func testRoundTrip(t *testing.T, cs *client.Clientset) {
	t.Run("IPPool", func(t *testing.T) {
		roundTrip(t, cs.IPPools(), &xvsv1.IPPool{ObjectMeta: om("rt-pool"), Spec: xvsv1.IPPoolSpec{CIDR: "198.18.64.0/18"}},
			func(p *xvsv1.IPPool) { p.Spec.NATOutgoing = true; p.Spec.VXLANMode = xvsv1.VXLANAlways })
	})
	t.Run("BGPConfiguration", func(t *testing.T) {
		roundTrip(t, cs.BGPConfigurations(), &xvsv1.BGPConfiguration{ObjectMeta: om("node.rt"), Spec: xvsv1.BGPConfigurationSpec{ASNumber: u32(65000)}},
			func(c *xvsv1.BGPConfiguration) { f := false; c.Spec.NodeToNodeMeshEnabled = &f })
	})
	t.Run("BGPPeer", func(t *testing.T) {
		roundTrip(t, cs.BGPPeers(), &xvsv1.BGPPeer{ObjectMeta: om("rt-peer"), Spec: xvsv1.BGPPeerSpec{PeerIP: "fd00:18::1", ASNumber: 65002}},
			func(p *xvsv1.BGPPeer) { p.Spec.Node = "node-b" })
	})
	t.Run("IPAMBlock", func(t *testing.T) {
		pfx := netip.MustParsePrefix("fd00:10:244::80/122")
		roundTrip(t, cs.IPAMBlocks(), &xvsv1.IPAMBlock{ObjectMeta: om(xvsv1.BlockName(pfx)), Spec: xvsv1.IPAMBlockSpec{CIDR: pfx.String(), Affinity: "node-a"}},
			func(b *xvsv1.IPAMBlock) {
				b.Spec.Allocations = append(b.Spec.Allocations, xvsv1.IPAMAllocation{Addr: "fd00:10:244::80", ContainerID: "c0", IfName: "eth0", Namespace: "default", Pod: "web-0", Node: "node-a"})
			})
	})
}

// testClaimRace: two nodes Create the same block at once, over and over;
// each time exactly one wins and the other is told AlreadyExists, and the
// stored block is the winner's.
func testClaimRace(t *testing.T, cs *client.Clientset) {
	ctx := ctxFor(t)
	const rounds = 20
	for i := range rounds {
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 64, byte(i * 4)}), 30)
		name := xvsv1.BlockName(pfx)
		errs := make([]error, 2)
		var start, done sync.WaitGroup
		start.Add(1)
		for n := range 2 {
			done.Add(1)
			go func() {
				defer done.Done()
				b := &xvsv1.IPAMBlock{ObjectMeta: om(name), Spec: xvsv1.IPAMBlockSpec{CIDR: pfx.String(), Affinity: fmt.Sprintf("node-%d", n)}}
				start.Wait()
				_, errs[n] = cs.IPAMBlocks().Create(ctx, b, metav1.CreateOptions{})
			}()
		}
		start.Done()
		done.Wait()
		winner := -1
		for n, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both nodes created block %s", i, name)
				}
				winner = n
			case apierrors.IsAlreadyExists(err):
			default:
				t.Fatalf("round %d: node-%d: %v, want success or AlreadyExists", i, n, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither node created %s: %v", i, name, errs)
		}
		got, err := cs.IPAMBlocks().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("node-%d", winner); got.Spec.Affinity != want {
			t.Errorf("round %d: block %s affinity %q, want the winner %s", i, name, got.Spec.Affinity, want)
		}
	}
}

// testUpdateRace: two nodes allocate from one block read at the same
// resourceVersion; exactly one Update wins, the other gets Conflict,
// re-reads and retries, as the IPAM store does, and both allocations are
// kept with no address given twice.
func testUpdateRace(t *testing.T, cs *client.Clientset) {
	ctx := ctxFor(t)
	pfx := netip.MustParsePrefix("198.19.65.0/26")
	if _, err := cs.IPAMBlocks().Create(ctx, &xvsv1.IPAMBlock{ObjectMeta: om(xvsv1.BlockName(pfx)), Spec: xvsv1.IPAMBlockSpec{CIDR: pfx.String(), Affinity: "node-0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// allocate takes the block's first free address for id, from blk.
	allocate := func(blk *xvsv1.IPAMBlock, node, id string) *xvsv1.IPAMBlock {
		b := blk.DeepCopy()
		used := map[string]bool{}
		for _, a := range b.Spec.Allocations {
			used[a.Addr] = true
		}
		for a := pfx.Addr(); pfx.Contains(a); a = a.Next() {
			if !used[a.String()] {
				b.Spec.Allocations = append(b.Spec.Allocations, xvsv1.IPAMAllocation{Addr: a.String(), ContainerID: id, IfName: "eth0", Node: node})
				return b
			}
		}
		t.Fatalf("block %s full", pfx)
		return nil
	}
	const rounds = 20
	for i := range rounds {
		base, err := cs.IPAMBlocks().Get(ctx, xvsv1.BlockName(pfx), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		var start, done sync.WaitGroup
		start.Add(1)
		for n := range 2 {
			done.Add(1)
			go func() {
				defer done.Done()
				b := allocate(base, fmt.Sprintf("node-%d", n), fmt.Sprintf("r%d-n%d", i, n))
				start.Wait()
				_, errs[n] = cs.IPAMBlocks().Update(ctx, b, metav1.UpdateOptions{})
			}()
		}
		start.Done()
		done.Wait()
		loser := -1
		for n, err := range errs {
			switch {
			case err == nil:
			case apierrors.IsConflict(err):
				if loser >= 0 {
					t.Fatalf("round %d: both updates conflicted", i)
				}
				loser = n
			default:
				t.Fatalf("round %d: node-%d: %v, want success or Conflict", i, n, err)
			}
		}
		if loser < 0 {
			t.Fatalf("round %d: both updates from resourceVersion %s succeeded: one address given twice", i, base.ResourceVersion)
		}
		// The loser reads again and retries, as the IPAM store will.
		cur, err := cs.IPAMBlocks().Get(ctx, base.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.IPAMBlocks().Update(ctx, allocate(cur, fmt.Sprintf("node-%d", loser), fmt.Sprintf("r%d-n%d", i, loser)), metav1.UpdateOptions{}); err != nil {
			t.Fatalf("round %d: retry: %v", i, err)
		}
	}
	final, err := cs.IPAMBlocks().Get(ctx, xvsv1.BlockName(pfx), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for _, a := range final.Spec.Allocations {
		if prev, dup := addrs[a.Addr]; dup {
			t.Errorf("%s given to %s and %s", a.Addr, prev, a.ContainerID)
		}
		addrs[a.Addr] = a.ContainerID
	}
	if len(final.Spec.Allocations) != 2*rounds {
		t.Errorf("block holds %d allocations, want %d (every claim kept)", len(final.Spec.Allocations), 2*rounds)
	}
}
