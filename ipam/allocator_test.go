package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/ipamtest"
	"github.com/xvs-project/xvs/ipam/memstore"
)

var ctx = context.Background()

type ctxT = context.Context

func newAllocator(t testing.TB, s ipam.Store, node string, labels map[string]string) *ipam.Allocator {
	t.Helper()
	a, err := ipam.New(s, ipam.Options{Node: node, NodeLabels: labels})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func addPools(t testing.TB, a *ipam.Allocator, pools ...ipam.Pool) {
	t.Helper()
	for _, p := range pools {
		if err := a.AddPool(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func h(id string) ipam.Handle { return ipam.Handle{ContainerID: id, IfName: "eth0"} }

func addrs(as []ipam.Assigned) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Addr.String())
	}
	return strings.Join(s, " ")
}

var (
	pool4 = ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/24"), BlockSize: 30}
	pool6 = ipam.Pool{Name: "v6", CIDR: pfx("fd00:18::/120"), BlockSize: 126, Encapsulation: ipam.EncapVXLAN}
)

func TestAssign(t *testing.T) {
	type step struct {
		node    string
		req     ipam.AssignRequest
		want    string // addresses, space-separated
		wantErr error
		wantMsg string
	}
	req := func(id string, v4, v6 bool) ipam.AssignRequest {
		return ipam.AssignRequest{Handle: h(id), Namespace: "default", Pod: id, IPv4: v4, IPv6: v6}
	}
	withPools := func(r ipam.AssignRequest, p4, p6 []string) ipam.AssignRequest {
		r.IPv4Pools, r.IPv6Pools = p4, p6
		return r
	}
	for _, tc := range []struct {
		name  string
		pools []ipam.Pool
		steps []step
	}{
		{"dual-stack", []ipam.Pool{pool4, pool6}, []step{
			{node: "n1", req: req("a", true, true), want: "198.18.0.0 fd00:18::"},
			{node: "n1", req: req("b", true, true), want: "198.18.0.1 fd00:18::1"},
		}},
		{"IPv4 only", []ipam.Pool{pool4, pool6}, []step{{node: "n1", req: req("a", true, false), want: "198.18.0.0"}}},
		{"IPv6 only", []ipam.Pool{pool4, pool6}, []step{{node: "n1", req: req("a", false, true), want: "fd00:18::"}}},
		{"IPv6-only cluster", []ipam.Pool{pool6}, []step{
			{node: "n1", req: req("a", false, true), want: "fd00:18::"},
			{node: "n1", req: req("b", true, true), wantErr: ipam.ErrUnknownPool, wantMsg: `no enabled IPv4 pool selects node "n1"`},
		}},
		{"repeated assign returns the same", []ipam.Pool{pool4, pool6}, []step{
			{node: "n1", req: req("a", true, true), want: "198.18.0.0 fd00:18::"},
			{node: "n1", req: req("a", true, true), want: "198.18.0.0 fd00:18::"},
			{node: "n1", req: req("b", true, true), want: "198.18.0.1 fd00:18::1"},
		}},
		{"repeat completes a missing family", []ipam.Pool{pool4, pool6}, []step{
			{node: "n1", req: req("a", true, false), want: "198.18.0.0"},
			{node: "n1", req: req("a", true, true), want: "198.18.0.0 fd00:18::"},
		}},
		{"same container, second interface", []ipam.Pool{pool4}, []step{
			{node: "n1", req: req("a", true, false), want: "198.18.0.0"},
			{node: "n1", req: ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "a", IfName: "net1"}, IPv4: true}, want: "198.18.0.1"},
		}},
		{"full block claims the next", []ipam.Pool{pool4}, []step{
			{node: "n1", req: req("a", true, false), want: "198.18.0.0"},
			{node: "n1", req: req("b", true, false), want: "198.18.0.1"},
			{node: "n1", req: req("c", true, false), want: "198.18.0.2"},
			{node: "n1", req: req("d", true, false), want: "198.18.0.3"},
			{node: "n1", req: req("e", true, false), want: "198.18.0.4"},
			{node: "n2", req: req("f", true, false), want: "198.18.0.8"},
		}},
		{"pool by name", []ipam.Pool{pool4, {Name: "other", CIDR: pfx("198.19.0.0/24")}}, []step{
			{node: "n1", req: withPools(req("a", true, false), []string{"other"}, nil), want: "198.19.0.0"},
			// Without a list every pool may serve, and the node's affine block in
			// "other" comes before claiming a block in "v4".
			{node: "n1", req: req("b", true, false), want: "198.19.0.1"},
		}},
		{"pool by CIDR", []ipam.Pool{pool4, {Name: "other", CIDR: pfx("198.19.0.0/24")}}, []step{
			{node: "n1", req: withPools(req("a", true, false), []string{"198.19.0.0/24"}, nil), want: "198.19.0.0"},
		}},
		{"unknown pool", []ipam.Pool{pool4}, []step{
			{node: "n1", req: withPools(req("a", true, false), []string{"nope"}, nil), wantErr: ipam.ErrUnknownPool, wantMsg: `pool "nope"`},
			{node: "n1", req: withPools(req("a", true, false), []string{"198.18.0.0/25"}, nil), wantErr: ipam.ErrUnknownPool, wantMsg: `pool "198.18.0.0/25"`},
		}},
		{"disabled pool", []ipam.Pool{{Name: "off", CIDR: pfx("198.18.0.0/24"), Disabled: true}, pool6}, []step{
			{node: "n1", req: withPools(req("a", true, false), []string{"off"}, nil), wantErr: ipam.ErrPoolDisabled, wantMsg: `pool "off"`},
			{node: "n1", req: req("a", true, false), wantErr: ipam.ErrUnknownPool, wantMsg: "no enabled IPv4 pool"},
			{node: "n1", req: req("a", false, true), want: "fd00:18::"},
		}},
		{"wrong family", []ipam.Pool{pool4, pool6}, []step{
			{node: "n1", req: withPools(req("a", true, true), []string{"v6"}, nil), wantErr: ipam.ErrPoolConflict, wantMsg: `pool "v6": listed in IPv4 pools, but it is an IPv6 pool`},
			{node: "n1", req: withPools(req("a", true, true), nil, []string{"198.18.0.0/24"}), wantErr: ipam.ErrPoolConflict, wantMsg: `pool "198.18.0.0/24"`},
		}},
		{"node selector", []ipam.Pool{{Name: "za", CIDR: pfx("198.18.0.0/24"), NodeSelector: `zone == "a"`}, {Name: "zb", CIDR: pfx("198.19.0.0/24"), NodeSelector: `zone == "b"`}}, []step{
			{node: "na", req: req("a", true, false), want: "198.18.0.0"},
			{node: "nb", req: req("b", true, false), want: "198.19.0.0"},
			{node: "na", req: withPools(req("c", true, false), []string{"zb"}, nil), wantErr: ipam.ErrPoolNotSelected, wantMsg: `pool "zb": nodeSelector zone == "b": node "na"`},
			{node: "nx", req: req("d", true, false), wantErr: ipam.ErrUnknownPool, wantMsg: `selects node "nx"`},
		}},
		{"exhausted", []ipam.Pool{{Name: "tiny", CIDR: pfx("198.18.0.0/31"), BlockSize: 31}}, []step{
			{node: "n1", req: req("a", true, false), want: "198.18.0.0"},
			{node: "n1", req: req("b", true, false), want: "198.18.0.1"},
			{node: "n1", req: req("c", true, false), wantErr: ipam.ErrPoolExhausted, wantMsg: `pool "tiny": no free IPv4 address`},
			{node: "n2", req: req("c", true, false), wantErr: ipam.ErrPoolExhausted},
		}},
		{"bad request", []ipam.Pool{pool4}, []step{
			{node: "n1", req: ipam.AssignRequest{Handle: h("a")}, wantErr: ipam.ErrInvalidRequest},
			{node: "n1", req: ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "a"}, IPv4: true}, wantErr: ipam.ErrInvalidRequest},
			{node: "n1", req: ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "a/b", IfName: "eth0"}, IPv4: true}, wantErr: ipam.ErrInvalidRequest, wantMsg: `containerID "a/b"`},
			{node: "n1", req: ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "a\x00", IfName: "eth0"}, IPv4: true}, wantErr: ipam.ErrInvalidRequest},
			{node: "n1", req: ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "a", IfName: "eth0/x"}, IPv4: true}, wantErr: ipam.ErrInvalidRequest, wantMsg: `ifName "eth0/x"`},
			{node: "n1", req: ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "a", IfName: "a-very-long-ifname"}, IPv4: true}, wantErr: ipam.ErrInvalidRequest},
			{node: "n1", req: ipam.AssignRequest{Handle: ipam.Handle{ContainerID: "0123abc_.-x", IfName: "net1"}, IPv4: true}, want: "198.18.0.0"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := memstore.New()
			labels := map[string]map[string]string{"na": {"zone": "a"}, "nb": {"zone": "b"}}
			allocs := map[string]*ipam.Allocator{}
			get := func(node string) *ipam.Allocator {
				if allocs[node] == nil {
					allocs[node] = newAllocator(t, s, node, labels[node])
				}
				return allocs[node]
			}
			addPools(t, get("n1"), tc.pools...)
			for i, st := range tc.steps {
				got, err := get(st.node).Assign(ctx, st.req)
				if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
					t.Fatalf("step %d: Assign(%s) error %v, want %v", i, st.req.Handle, err, st.wantErr)
				}
				if err != nil {
					if !strings.Contains(err.Error(), st.wantMsg) {
						t.Errorf("step %d: error %q, want it to contain %q", i, err, st.wantMsg)
					}
					continue
				}
				if g := addrs(got); g != st.want {
					t.Errorf("step %d: Assign(%s) (-want +got):\n-%s\n+%s", i, st.req.Handle, st.want, g)
				}
			}
			ipamtest.CheckStore(t, s, false)
		})
	}
}

func TestAssignedPool(t *testing.T) {
	s := memstore.New()
	a := newAllocator(t, s, "n1", nil)
	addPools(t, a, pool4, pool6)
	got, err := a.Assign(ctx, ipam.AssignRequest{Handle: h("a"), IPv4: true, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Pool.Name != "v4" || got[1].Pool.Name != "v6" || got[1].Pool.Encapsulation != ipam.EncapVXLAN ||
		got[0].Block != pfx("198.18.0.0/30") || got[1].Block != pfx("fd00:18::/126") || got[0].Pool.Encapsulation != ipam.EncapNone {
		t.Errorf("Assign = %+v", got)
	}
	// A repeat reports the same pools and blocks.
	again, _ := a.Assign(ctx, ipam.AssignRequest{Handle: h("a"), IPv4: true, IPv6: true})
	if fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("repeated Assign (-want +got):\n-%+v\n+%+v", got, again)
	}
}

// Borrowing happens only once no requested pool can give a block; the
// lender keeps the block's affinity.
func TestBorrow(t *testing.T) {
	s := memstore.New()
	n1 := newAllocator(t, s, "n1", nil)
	n2 := newAllocator(t, s, "n2", nil)
	addPools(t, n1, ipam.Pool{Name: "p", CIDR: pfx("198.18.0.0/29"), BlockSize: 30}) // two blocks of 4
	mustAssign := func(a *ipam.Allocator, id string) string {
		t.Helper()
		got, err := a.Assign(ctx, ipam.AssignRequest{Handle: h(id), IPv4: true})
		if err != nil {
			t.Fatal(err)
		}
		return addrs(got)
	}
	var got []string
	got = append(got, mustAssign(n1, "a"), mustAssign(n2, "b"), mustAssign(n2, "c"), mustAssign(n2, "d"), mustAssign(n2, "e"))
	// n2's block is full and no block is left: n2 borrows from n1's.
	got = append(got, mustAssign(n2, "f"), mustAssign(n1, "g"))
	want := "198.18.0.0 198.18.0.4 198.18.0.5 198.18.0.6 198.18.0.7 198.18.0.1 198.18.0.2"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("addresses (-want +got):\n-%s\n+%s", want, g)
	}
	b1, _ := n1.NodeBlocks(ctx, "n1")
	b2, _ := n1.NodeBlocks(ctx, "n2")
	if fmt.Sprint(b1, b2) != "[198.18.0.0/30] [198.18.0.4/30]" {
		t.Errorf("NodeBlocks n1, n2 = %v %v", b1, b2)
	}
	all, _ := n1.Allocations(ctx)
	for _, al := range all {
		if al.Addr.String() == "198.18.0.1" && al.Node != "n2" {
			t.Errorf("borrowed allocation %+v: want Node n2", al)
		}
	}
	// n1's GC must not release n2's borrowed address.
	if gone, _ := n1.GC(ctx, []ipam.Handle{h("a"), h("g")}); len(gone) != 0 {
		t.Errorf("n1 GC released %v", gone)
	}
	mustAssign(n1, "h")
	if _, err := n1.Assign(ctx, ipam.AssignRequest{Handle: h("i"), IPv4: true}); !errors.Is(err, ipam.ErrPoolExhausted) {
		t.Errorf("Assign in a full pool: %v, want ErrPoolExhausted", err)
	}
	ipamtest.CheckStore(t, s, false)
}

func TestReleaseAndGC(t *testing.T) {
	s := memstore.New()
	a := newAllocator(t, s, "n1", nil)
	addPools(t, a, pool4, pool6)
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: h(id), Namespace: "ns", Pod: "pod-" + id, IPv4: true, IPv6: true}); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := a.Release(ctx, h("b"))
	if err != nil {
		t.Fatal(err)
	}
	if g := fmt.Sprintf("%d %s %s %s", len(gone), gone[0].Addr, gone[1].Addr, gone[0].Pod); g != "2 198.18.0.1 fd00:18::1 pod-b" {
		t.Errorf("Release = %s", g)
	}
	again, err := a.Release(ctx, h("b"))
	if err != nil || len(again) != 0 {
		t.Errorf("second Release = %v, %v; want nothing, nil", again, err)
	}
	if got, _ := a.Release(ctx, h("never")); len(got) != 0 {
		t.Errorf("Release of an unknown handle = %v", got)
	}
	// A released address is the next one given.
	got, _ := a.Assign(ctx, ipam.AssignRequest{Handle: h("e"), IPv4: true, IPv6: true})
	if addrs(got) != "198.18.0.1 fd00:18::1" {
		t.Errorf("Assign after Release = %s", addrs(got))
	}
	// GC with a, e valid releases c and d.
	gone, err = a.GC(ctx, []ipam.Handle{h("a"), h("e")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, al := range gone {
		ids = append(ids, al.Handle.ContainerID+"="+al.Addr.String())
	}
	if g, w := strings.Join(ids, " "), "c=198.18.0.2 d=198.18.0.3 c=fd00:18::2 d=fd00:18::3"; g != w {
		t.Errorf("GC released (-want +got):\n-%s\n+%s", w, g)
	}
	rest, _ := a.Allocations(ctx)
	if len(rest) != 4 {
		t.Errorf("after GC %d allocations, want 4: %v", len(rest), rest)
	}
	if g, _ := a.Get(ctx, h("e")); len(g) != 2 || g[0].Addr.String() != "198.18.0.1" {
		t.Errorf("Get(e) = %v", g)
	}
	ipamtest.CheckStore(t, s, true)
}

func TestUsage(t *testing.T) {
	s := memstore.New()
	a := newAllocator(t, s, "n1", nil)
	addPools(t, a, pool4, pool6, ipam.Pool{Name: "big6", CIDR: pfx("fd00:19::/48")})
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: h(id), IPv4: true, IPv6: true, IPv6Pools: []string{"v6"}}); err != nil {
			t.Fatal(err)
		}
	}
	pools, blocks, err := a.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pg, bg []string
	for _, p := range pools {
		pg = append(pg, fmt.Sprintf("%s size=%s blocks=%d cap=%d used=%d", p.Name, p.Size, p.Blocks, p.Capacity, p.Allocated))
	}
	for _, b := range blocks {
		bg = append(bg, fmt.Sprintf("%s %s %s %d/%d", b.CIDR, b.Pool, b.Affinity, b.Allocated, b.Capacity))
	}
	wantP := "big6 size=1208925819614629174706176 blocks=0 cap=0 used=0|v4 size=256 blocks=2 cap=8 used=5|v6 size=256 blocks=2 cap=8 used=5"
	wantB := "198.18.0.0/30 v4 n1 4/4|198.18.0.4/30 v4 n1 1/4|fd00:18::/126 v6 n1 4/4|fd00:18::4/126 v6 n1 1/4"
	if g := strings.Join(pg, "|"); g != wantP {
		t.Errorf("pools (-want +got):\n-%s\n+%s", wantP, g)
	}
	if g := strings.Join(bg, "|"); g != wantB {
		t.Errorf("blocks (-want +got):\n-%s\n+%s", wantB, g)
	}
}

func TestPoolLifecycle(t *testing.T) {
	s := memstore.New()
	a := newAllocator(t, s, "n1", nil)
	addPools(t, a, pool4)
	for _, tc := range []struct {
		name    string
		pool    ipam.Pool
		wantErr error
		wantMsg string
	}{
		{"overlap", ipam.Pool{Name: "x", CIDR: pfx("198.18.0.128/25")}, ipam.ErrPoolOverlap, `pool "x": cidr 198.18.0.128/25: overlaps pool "v4"`},
		{"bad block size", ipam.Pool{Name: "x", CIDR: pfx("198.19.0.0/16"), BlockSize: 8}, ipam.ErrBadBlockSize, "blockSize 8"},
		{"update in place", ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/24"), BlockSize: 30, NATOutgoing: true}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.AddPool(ctx, tc.pool)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("AddPool = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
	if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: h("a"), IPv4: true}); err != nil {
		t.Fatal(err)
	}
	err := a.AddPool(ctx, ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/24"), BlockSize: 28})
	if !errors.Is(err, ipam.ErrPoolInUse) || !strings.Contains(err.Error(), "blockSize 28") {
		t.Errorf("changing blockSize under a block: %v", err)
	}
	err = a.DeletePool(ctx, "v4")
	if !errors.Is(err, ipam.ErrPoolInUse) || !strings.Contains(err.Error(), "198.18.0.0/30 holds 1") {
		t.Errorf("DeletePool in use: %v", err)
	}
	// The failed delete left the pool disabled: no new addresses.
	if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: h("b"), IPv4: true, IPv4Pools: []string{"v4"}}); !errors.Is(err, ipam.ErrPoolDisabled) {
		t.Errorf("Assign from a pool being deleted: %v, want ErrPoolDisabled", err)
	}
	a.Release(ctx, h("a"))
	if err := a.DeletePool(ctx, "v4"); err != nil {
		t.Fatal(err)
	}
	if bs, _ := s.ListBlocks(ctx); len(bs) != 0 {
		t.Errorf("blocks left after DeletePool: %v", bs)
	}
	if err := a.DeletePool(ctx, "v4"); !errors.Is(err, ipam.ErrUnknownPool) {
		t.Errorf("DeletePool twice: %v, want ErrUnknownPool", err)
	}
}

func TestReleaseNodeBlocks(t *testing.T) {
	s := memstore.New()
	n1 := newAllocator(t, s, "n1", nil)
	n2 := newAllocator(t, s, "n2", nil)
	addPools(t, n1, ipam.Pool{Name: "p", CIDR: pfx("198.18.0.0/29"), BlockSize: 30})
	if _, err := n1.Assign(ctx, ipam.AssignRequest{Handle: h("a"), IPv4: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Assign(ctx, ipam.AssignRequest{Handle: h("b"), IPv4: true}); err != nil {
		t.Fatal(err)
	}
	n2.Release(ctx, h("b"))
	changed, err := n1.ReleaseNodeBlocks(ctx, "n2")
	if err != nil || fmt.Sprint(changed) != "[198.18.0.4/30]" {
		t.Fatalf("ReleaseNodeBlocks(n2) = %v, %v", changed, err)
	}
	changed, err = n2.ReleaseNodeBlocks(ctx, "n1")
	if err != nil || fmt.Sprint(changed) != "[198.18.0.0/30]" {
		t.Fatalf("ReleaseNodeBlocks(n1) = %v, %v", changed, err)
	}
	_, blocks, _ := n1.Usage(ctx)
	if fmt.Sprintf("%+v", blocks) != "[{CIDR:198.18.0.0/30 Pool:p Affinity: Capacity:4 Allocated:1}]" {
		t.Errorf("blocks = %+v", blocks)
	}
	// n2 claims the freed block before borrowing from the unaffined one.
	got, _ := n2.Assign(ctx, ipam.AssignRequest{Handle: h("c"), IPv4: true})
	if addrs(got) != "198.18.0.4" {
		t.Errorf("Assign after release = %s, want 198.18.0.4", addrs(got))
	}
}

func TestNew(t *testing.T) {
	if _, err := ipam.New(memstore.New(), ipam.Options{}); !errors.Is(err, ipam.ErrInvalidRequest) {
		t.Errorf("New without a node: %v", err)
	}
}

// An IPv6 pool with more blocks than a uint64 counts (2^120 here) gives
// blocks from its start like any other.
func TestLargeIPv6Pool(t *testing.T) {
	s := memstore.New()
	a := newAllocator(t, s, "n1", nil)
	addPools(t, a, ipam.Pool{Name: "v6", CIDR: pfx("fd00::/8"), BlockSize: 128})
	for i := 0; i < 3; i++ {
		got, err := a.Assign(ctx, ipam.AssignRequest{Handle: h(fmt.Sprint(i)), IPv6: true})
		if err != nil {
			t.Fatal(err)
		}
		if w := netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(i)}).String(); addrs(got) != w {
			t.Errorf("Assign %d = %s, want %s", i, addrs(got), w)
		}
	}
	bs, _ := a.NodeBlocks(ctx, "n1")
	if fmt.Sprint(bs) != "[fd00::/128 fd00::1/128 fd00::2/128]" {
		t.Errorf("NodeBlocks = %v", bs)
	}
}
