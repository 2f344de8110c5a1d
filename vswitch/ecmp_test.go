package vswitch

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
)

// TestApplyRoutesECMP: a route with equal-cost gateways becomes one ECMP
// group over their adjacencies; deleting it frees the members; a member
// off every subnet refuses the route and leaks no member.
func TestApplyRoutesECMP(t *testing.T) {
	l := newVXLANLab(t, nil)
	first, second := remote4.Next(), remote4.Next().Next() // no next hop of the lab's
	p := netip.MustParsePrefix("198.19.7.0/24")
	base := l.sw.fib.Stats().NextHops
	if err := l.sw.ApplyRoutes(fib.OriginBGP, []spec.Route{{Prefix: p, Via: first, ECMP: []netip.Addr{second}}}, nil); err != nil {
		t.Fatal(err)
	}
	r, ok := l.sw.fib.Get(0, p)
	if !ok || r.NextHop.Kind != fib.KindECMP || len(r.NextHop.Group) != 2 {
		t.Fatalf("route = %+v, %v; want an ECMP group of two", r, ok)
	}
	v := l.sw.fib.View()
	for i, want := range []netip.Addr{first, second} {
		if m := v.NextHop(r.NextHop.Group[i]); m.Kind != fib.KindAdjacency || m.Via != want {
			t.Errorf("member %d = %v via %s, want adjacency via %s", i, m.Kind, m.Via, want)
		}
	}
	if got := l.sw.fib.Stats().NextHops; got != base+3 {
		t.Errorf("next hops = %d, want %d (two members and the group)", got, base+3)
	}
	if err := l.sw.ApplyRoutes(fib.OriginBGP, nil, []netip.Prefix{p}); err != nil {
		t.Fatal(err)
	}
	if got := l.sw.fib.Stats().NextHops; got != base {
		t.Errorf("next hops after delete = %d, want %d", got, base)
	}
	err := l.sw.ApplyRoutes(fib.OriginBGP, []spec.Route{{Prefix: p, Via: first, ECMP: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}}, nil)
	if !errors.Is(err, ErrRouteInvalid) {
		t.Fatalf("off-subnet member: error %v, want ErrRouteInvalid", err)
	}
	if got := l.sw.fib.Stats().NextHops; got != base {
		t.Errorf("next hops after a refused group = %d, want %d", got, base)
	}
}
