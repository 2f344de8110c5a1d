package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

func mustApply(t *testing.T, f *FIB, adds []Route, dels []RouteKey) {
	t.Helper()
	if err := f.Apply(adds, dels); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func route(table uint32, p string, label uint32) Route {
	return Route{Table: table, Prefix: netip.MustParsePrefix(p), NextHop: labelNH(label), Origin: OriginStatic}
}

var caseRoutes = []Route{
	route(0, "0.0.0.0/0", 1),
	route(0, "10.0.0.0/8", 2),
	route(0, "10.1.0.0/16", 3),
	route(0, "10.1.2.0/24", 4),
	route(0, "10.1.2.3/32", 5),
	route(0, "10.1.2.128/25", 6),
	route(0, "192.168.0.0/23", 7),
	route(0, "172.16.0.0/12", 16),
	route(0, "172.16.0.0/13", 17),
	route(7, "10.0.0.0/8", 8),
	route(0, "::/0", 11),
	route(0, "2001:db8::/32", 12),
	route(0, "2001:db8:1::/48", 13),
	route(0, "2001:db8:1::1/128", 14),
	route(0, "2001:db8:1:2::/63", 15),
	route(70000, "2001:db8::/32", 9),
}

func TestLookup(t *testing.T) {
	f := New()
	mustApply(t, f, caseRoutes, nil)
	tests := []struct {
		table uint32
		addr  string
		want  string // prefix, "" for no route
		label uint32
	}{
		{0, "1.2.3.4", "0.0.0.0/0", 1},
		{0, "10.200.0.1", "10.0.0.0/8", 2},
		{0, "10.1.200.1", "10.1.0.0/16", 3},
		{0, "10.1.2.4", "10.1.2.0/24", 4},
		{0, "10.1.2.3", "10.1.2.3/32", 5},
		{0, "10.1.2.200", "10.1.2.128/25", 6},
		{0, "192.168.1.255", "192.168.0.0/23", 7},
		{0, "192.168.2.0", "0.0.0.0/0", 1},
		{0, "172.20.0.1", "172.16.0.0/13", 17},
		{0, "172.24.0.1", "172.16.0.0/12", 16},
		{7, "10.1.2.3", "10.0.0.0/8", 8},
		{7, "11.0.0.1", "", 0},
		{3, "10.1.2.3", "", 0}, // no such table
		{0, "2001:db8:ffff::1", "2001:db8::/32", 12},
		{0, "2001:db8:1::2", "2001:db8:1::/48", 13},
		{0, "2001:db8:1::1", "2001:db8:1::1/128", 14},
		{0, "2001:db8:1:3::1", "2001:db8:1:2::/63", 15},
		{0, "2001:db8:1:4::1", "2001:db8:1::/48", 13},
		{0, "fe80::1", "::/0", 11},
		{70000, "2001:db8::1", "2001:db8::/32", 9},
		{70000, "10.0.0.1", "", 0},
	}
	v := f.View()
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", tt.table, tt.addr), func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			var idx Index
			if a.Is4() {
				idx = v.Lookup4(tt.table, a.As4())
				out := []Index{99}
				v.LookupBatch4(tt.table, [][4]byte{a.As4()}, out)
				if out[0] != idx {
					t.Errorf("LookupBatch4 (-want +got):\n-%d\n+%d", idx, out[0])
				}
			} else {
				idx = v.Lookup6(tt.table, a.As16())
				out := []Index{99}
				v.LookupBatch6(tt.table, [][16]byte{a.As16()}, out)
				if out[0] != idx {
					t.Errorf("LookupBatch6 (-want +got):\n-%d\n+%d", idx, out[0])
				}
			}
			if got := labelOf(v, idx); got != tt.label {
				t.Errorf("label (-want +got):\n-%d\n+%d", tt.label, got)
			}
			p, pidx, ok := v.LookupPrefix(tt.table, a)
			gotP := ""
			if ok {
				gotP = p.String()
			}
			if gotP != tt.want || pidx != idx {
				t.Errorf("LookupPrefix (-want +got):\n-%s %d\n+%s %d", tt.want, idx, gotP, pidx)
			}
			r, ok := f.Lookup(tt.table, a)
			if ok != (tt.want != "") || (ok && (r.Prefix.String() != tt.want || r.NextHop.VNI != tt.label || r.Origin != OriginStatic || r.Table != tt.table)) {
				t.Errorf("FIB.Lookup (-want +got):\n-%s %d\n+%v %+v", tt.want, tt.label, r.Prefix, r.NextHop)
			}
		})
	}
}

func TestRoutesOrderAndResume(t *testing.T) {
	f := New()
	mustApply(t, f, caseRoutes, nil)
	want := []string{"0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "10.1.2.128/25",
		"172.16.0.0/12", "172.16.0.0/13", "192.168.0.0/23", "::/0", "2001:db8::/32", "2001:db8:1::/48",
		"2001:db8:1::1/128", "2001:db8:1:2::/63"}
	defer func(n int) { routesBatch = n }(routesBatch)
	for _, batch := range []int{1, 2, 3, 5, 1024} {
		t.Run(fmt.Sprint("batch", batch), func(t *testing.T) {
			routesBatch = batch
			var got []netip.Prefix
			f.Routes(0, func(r Route) bool {
				got = append(got, r.Prefix)
				return true
			})
			var w []netip.Prefix
			for _, s := range want {
				w = append(w, netip.MustParsePrefix(s))
			}
			if d := diffPrefixes(w, got); d != "" {
				t.Errorf("Routes (-want +got):\n%s", d)
			}
			n := 0
			f.Routes(0, func(Route) bool { n++; return n < 4 })
			if n != 4 {
				t.Errorf("Routes stopped after %d calls, want 4", n)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	f := New()
	mustApply(t, f, caseRoutes[:3], nil)
	tests := []struct {
		name string
		adds []Route
		dels []RouteKey
		want error
	}{
		{"delete missing", []Route{route(0, "9.9.9.0/24", 9)}, []RouteKey{{Prefix: netip.MustParsePrefix("10.9.0.0/16")}}, ErrNotFound},
		{"delete missing table", nil, []RouteKey{{Table: 5, Prefix: netip.MustParsePrefix("10.0.0.0/8")}}, ErrNotFound},
		{"delete invalid", nil, []RouteKey{{}}, ErrNotFound},
		{"invalid prefix", []Route{{NextHop: labelNH(1)}}, nil, ErrBadNextHop},
		{"bad kind", []Route{{Prefix: netip.MustParsePrefix("9.0.0.0/8"), NextHop: NextHop{Kind: 99}}}, nil, ErrBadNextHop},
		{"empty ecmp", []Route{{Prefix: netip.MustParsePrefix("9.0.0.0/8"), NextHop: NextHop{Kind: KindECMP}}}, nil, ErrBadNextHop},
		{"dead ecmp member", []Route{route(0, "9.9.9.0/24", 9), {Prefix: netip.MustParsePrefix("9.0.0.0/8"), NextHop: NextHop{Kind: KindECMP, Group: []Index{77}}}}, nil, ErrBadNextHop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.View()
			s0 := f.Stats()
			err := f.Apply(tt.adds, tt.dels)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply error (-want +got):\n-%v\n+%v", tt.want, err)
			}
			if f.View() != before {
				t.Errorf("a failed Apply published a view")
			}
			if s := f.Stats(); s.Routes4 != s0.Routes4 || s.NextHops != s0.NextHops {
				t.Errorf("a failed Apply changed the FIB (-want +got):\n-%+v\n+%+v", s0, s)
			}
		})
	}
	if err := f.Delete(0, netip.MustParsePrefix("10.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(0, netip.MustParsePrefix("10.0.0.0/8")); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete (-want +got):\n-%v\n+%v", ErrNotFound, err)
	}
}

func TestNextHopLifecycle(t *testing.T) {
	f := New()
	a := route(0, "10.0.0.0/8", 1)
	b := route(0, "11.0.0.0/8", 1)
	c := route(0, "2001:db8::/32", 1)
	mustApply(t, f, []Route{a, b, c}, nil)
	v := f.View()
	i1, i2, i3 := v.Lookup4(0, [4]byte{10}), v.Lookup4(0, [4]byte{11}), v.Lookup6(0, netip.MustParseAddr("2001:db8::1").As16())
	if i1 != i2 || i2 != i3 || i1 == NoRoute {
		t.Fatalf("one next hop for three routes, got indices %d %d %d", i1, i2, i3)
	}
	if n := f.Stats().NextHops; n != 2 {
		t.Errorf("NextHops (-want +got):\n-2\n+%d", n)
	}
	mustApply(t, f, nil, []RouteKey{{Prefix: a.Prefix}, {Prefix: c.Prefix}})
	if n := f.Stats().NextHops; n != 2 {
		t.Errorf("NextHops with one route left (-want +got):\n-2\n+%d", n)
	}
	// Replacing the last route's next hop kills the old one.
	mustApply(t, f, []Route{route(0, "11.0.0.0/8", 2)}, nil)
	v2 := f.View()
	if n := f.Stats().NextHops; n != 2 {
		t.Errorf("NextHops after replace (-want +got):\n-2\n+%d", n)
	}
	if got := labelOf(v, i1); got != 1 {
		t.Errorf("the old view lost its next hop: label %d", got)
	}
	if got := labelOf(v2, v2.Lookup4(0, [4]byte{11})); got != 2 {
		t.Errorf("label after replace (-want +got):\n-2\n+%d", got)
	}
	// Pod ports differ by MAC.
	p1 := Route{Prefix: netip.MustParsePrefix("10.9.0.1/32"), NextHop: NextHop{Kind: KindPort, Port: 3, DstMAC: [6]byte{1}}}
	p2 := Route{Prefix: netip.MustParsePrefix("10.9.0.2/32"), NextHop: NextHop{Kind: KindPort, Port: 3, DstMAC: [6]byte{2}}}
	mustApply(t, f, []Route{p1, p2}, nil)
	v3 := f.View()
	x1, x2 := v3.Lookup4(0, [4]byte{10, 9, 0, 1}), v3.Lookup4(0, [4]byte{10, 9, 0, 2})
	if x1 == x2 || !v3.NextHop(x1).Resolved {
		t.Errorf("pod next hops: %d %+v, %d %+v", x1, *v3.NextHop(x1), x2, *v3.NextHop(x2))
	}
}

func TestSetRewrite(t *testing.T) {
	f := New()
	gw := netip.MustParseAddr("192.0.2.1")
	adj := NextHop{Kind: KindAdjacency, Port: 2, Via: gw, SrcMAC: [6]byte{0xa}}
	mustApply(t, f, []Route{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHop: adj}, {Prefix: netip.MustParsePrefix("::/0"), NextHop: adj}}, nil)
	v0 := f.View()
	idx := v0.Lookup4(0, [4]byte{8, 8, 8, 8})
	if v0.NextHop(idx).Resolved {
		t.Fatal("adjacency resolved before SetRewrite")
	}
	dst, src := [6]byte{1, 2, 3, 4, 5, 6}, [6]byte{0xa}
	if n := f.SetRewrite(2, gw, Rewrite{DstMAC: dst, SrcMAC: src, Resolved: true}); n != 1 {
		t.Errorf("SetRewrite (-want +got):\n-1\n+%d", n)
	}
	if n := f.SetRewrite(3, gw, Rewrite{DstMAC: dst, SrcMAC: src, Resolved: true}); n != 0 {
		t.Errorf("SetRewrite of an unknown neighbour (-want +got):\n-0\n+%d", n)
	}
	v1 := f.View()
	if got := v1.NextHop(v1.Lookup4(0, [4]byte{8, 8, 8, 8})); got.DstMAC != dst || !got.Resolved {
		t.Errorf("after SetRewrite: %+v", *got)
	}
	if v0.NextHop(idx).Resolved {
		t.Error("SetRewrite changed an old view")
	}
	if v1.Lookup4(0, [4]byte{8, 8, 8, 8}) != idx {
		t.Error("SetRewrite changed the route's index")
	}
}

func TestECMP(t *testing.T) {
	f := New()
	var m []Index
	for i := range 5 {
		idx, err := f.Acquire(NextHop{Kind: KindAdjacency, Port: 1, Via: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})})
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, idx)
	}
	groupOf := func(ms ...Index) map[uint32]Index {
		p := netip.MustParsePrefix("198.51.100.0/24")
		mustApply(t, f, []Route{{Prefix: p, NextHop: NextHop{Kind: KindECMP, Group: ms}}}, nil)
		v := f.View()
		g := v.Lookup4(0, p.Addr().As4())
		if v.NextHop(g).Kind != KindECMP {
			t.Fatalf("route next hop %v", v.NextHop(g))
		}
		out := map[uint32]Index{}
		for h := uint32(0); h < 4096; h++ {
			out[h] = v.SelectECMP(g, h*2654435761)
		}
		return out
	}
	four := groupOf(m[:4]...)
	seen := map[Index]int{}
	for _, x := range four {
		seen[x]++
	}
	for _, x := range m[:4] {
		if seen[x] < 4096/4/2 {
			t.Errorf("member %d got %d of 4096 flows", x, seen[x])
		}
	}
	five := groupOf(m...)
	three := groupOf(m[0], m[1], m[3])
	for h, x := range four {
		if y := five[h]; y != x && y != m[4] {
			t.Errorf("adding a member moved flow %d from %d to %d", h, x, y)
		}
		if x != m[2] && three[h] != x {
			t.Errorf("removing a member moved flow %d from %d to %d", h, x, three[h])
		}
	}
	// The group holds its members: releasing them keeps them alive.
	for _, x := range m {
		if err := f.Release(x); err != nil {
			t.Fatal(err)
		}
	}
	v := f.View()
	if nh := v.NextHop(m[0]); nh.Kind != KindAdjacency {
		t.Errorf("member 0 died under its group: %+v", *nh)
	}
	if err := f.Delete(0, netip.MustParsePrefix("198.51.100.0/24")); err != nil {
		t.Fatal(err)
	}
	if n := f.Stats().NextHops; n != 1 {
		t.Errorf("NextHops after the group's last route (-want +got):\n-1\n+%d", n)
	}
	if v.SelectECMP(m[0], 7) != m[0] {
		t.Error("SelectECMP of a plain next hop is not itself")
	}
}

// TestOldViewSurvivesReuse holds a view while the table churns and the GC
// reclaims trie nodes: the held view must keep answering as it did.
func TestOldViewSurvivesReuse(t *testing.T) {
	f := New()
	g := newPrefixGen(5, false, 50)
	ref := slowTable{}
	var rs []Route
	for i := range 3000 {
		p := g.prefix()
		ref[p] = uint32(i%40 + 1)
		rs = append(rs, Route{Prefix: p, NextHop: labelNH(ref[p])})
	}
	for p, l := range ref {
		rs = append(rs, Route{Prefix: p, NextHop: labelNH(l)}) // last write wins, as in ref
	}
	mustApply(t, f, rs, nil)
	held := f.View()
	probes := make([]netip.Addr, 2000)
	for i := range probes {
		probes[i] = g.near()
	}
	for round := range 300 {
		var churn []Route
		for p := range ref {
			churn = append(churn, Route{Prefix: p, NextHop: labelNH(uint32(round%40 + 41))})
			if len(churn) == 500 {
				break
			}
		}
		mustApply(t, f, churn, nil)
		if round%20 == 0 {
			runtime.GC()
		}
	}
	for _, a := range probes {
		_, want, _ := ref.lookup(a)
		if got := labelOf(held, held.Lookup4(0, a.As4())); got != want {
			t.Fatalf("held view Lookup(%s) (-want +got):\n-%d\n+%d", a, want, got)
		}
	}
	runtime.KeepAlive(held)
	// Without held views the churn reuses nodes rather than growing.
	held = nil
	for range 3 {
		runtime.GC()
	}
	mustApply(t, f, nil, nil)
	before := f.Stats().MemoryBytes
	for round := range 300 {
		var churn []Route
		for p := range ref {
			churn = append(churn, Route{Prefix: p, NextHop: labelNH(uint32(round%40 + 41))})
			if len(churn) == 500 {
				break
			}
		}
		mustApply(t, f, churn, nil)
		if round%10 == 0 {
			runtime.GC()
		}
	}
	if after := f.Stats().MemoryBytes; after > before+before/2 {
		t.Errorf("memory grew from %d to %d bytes under churn without held views", before, after)
	}
}

func TestLookupAllocs(t *testing.T) {
	f := New()
	mustApply(t, f, caseRoutes, nil)
	a4 := make([][4]byte, 64)
	a6 := make([][16]byte, 64)
	for i := range a4 {
		a4[i] = [4]byte{10, 1, 2, byte(i * 4)}
		a6[i] = netip.MustParseAddr("2001:db8:1::1").As16()
	}
	out := make([]Index, 64)
	tests := []struct {
		name string
		fn   func()
	}{
		{"Lookup4", func() { f.View().Lookup4(0, a4[3]) }},
		{"Lookup6", func() { f.View().Lookup6(0, a6[3]) }},
		{"LookupBatch4", func() { f.View().LookupBatch4(0, a4, out) }},
		{"LookupBatch6", func() { f.View().LookupBatch6(0, a6, out) }},
		{"NextHop+SelectECMP", func() { v := f.View(); _ = v.NextHop(v.SelectECMP(out[0], 12345)) }},
		{"other table", func() { f.View().LookupBatch6(70000, a6, out) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
				t.Errorf("allocs per run (-want +got):\n-0\n+%v", n)
			}
		})
	}
}

func TestStats(t *testing.T) {
	f := New()
	mustApply(t, f, caseRoutes, nil)
	s := f.Stats()
	want := Stats{Tables: 3, Routes4: 10, Routes6: 6, NextHops: 17, Updates: uint64(len(caseRoutes)), Publishes: 2}
	got := Stats{Tables: s.Tables, Routes4: s.Routes4, Routes6: s.Routes6, NextHops: s.NextHops, Updates: s.Updates, Publishes: s.Publishes}
	if got != want {
		t.Errorf("Stats (-want +got):\n-%+v\n+%+v", want, got)
	}
	if s.MemoryBytes <= 0 || s.Nodes <= 0 || s.UpdateRate <= 0 {
		t.Errorf("Stats: memory %d nodes %d rate %v", s.MemoryBytes, s.Nodes, s.UpdateRate)
	}
}

// TestSubscribe: every subscriber is signalled by a change, however many
// there are, Changed's receiver too; a cancelled one no longer is.
func TestSubscribe(t *testing.T) {
	f := New()
	<-f.Changed() // the first view's publication
	a, cancelA := f.Subscribe()
	b, cancelB := f.Subscribe()
	defer cancelB()
	signalled := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	if err := f.Add(Route{Prefix: netip.MustParsePrefix("198.18.0.0/24"), NextHop: NextHop{Kind: KindDrop}}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]<-chan struct{}{"first subscriber": a, "second subscriber": b, "Changed": f.Changed()} {
		if !signalled(c) {
			t.Errorf("%s not signalled by a change", name)
		}
	}
	cancelA()
	if err := f.Delete(0, netip.MustParsePrefix("198.18.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if signalled(a) {
		t.Error("a cancelled subscriber was signalled")
	}
	if !signalled(b) {
		t.Error("the remaining subscriber was not signalled")
	}
}
