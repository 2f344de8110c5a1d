package vswitch

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
)

// routeSet is the FIB's table 0 as prefix -> origin and next hop, to
// compare before and after.
func routeSet(sw *Switch) map[netip.Prefix]string {
	out := map[netip.Prefix]string{}
	for _, r := range sw.Routes() {
		out[r.Prefix] = r.Origin + " " + r.NextHop
	}
	return out
}

func sameRoutes(t *testing.T, want, got map[netip.Prefix]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w {
			t.Errorf("%s: (-want +got):\n-%q\n+%q", p, w, g)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: (-want +got):\n-\n+%q", p, g)
		}
	}
}

// TestApplyRoutesAtomic: a batch with one bad route changes nothing, not
// even the good routes before it, and publishes no view; a good batch
// publishes exactly one.
func TestApplyRoutesAtomic(t *testing.T) {
	l := newVXLANLab(t, nil)
	good := spec.Route{Prefix: netip.MustParsePrefix("198.19.7.0/24"), Via: remote4}
	for _, tc := range []struct {
		name string
		bad  spec.Route
		dels []netip.Prefix
		want error
	}{
		{"host bits", spec.Route{Prefix: netip.MustParsePrefix("198.19.8.1/24"), Blackhole: true}, nil, ErrRouteInvalid},
		{"gateway off every subnet", spec.Route{Prefix: netip.MustParsePrefix("198.19.8.0/24"), Via: netip.MustParseAddr("192.0.2.1")}, nil, ErrRouteInvalid},
		{"no such port", spec.Route{Prefix: netip.MustParsePrefix("198.19.8.0/24"), Port: "eth9"}, nil, ErrPortNotFound},
		{"vxlan remote inside", spec.Route{Prefix: netip.MustParsePrefix("198.19.8.0/24"), VXLAN: &spec.VXLANRoute{Remote: netip.MustParseAddr("198.19.8.1"), MAC: peerVTEP}}, nil, ErrRouteInvalid},
		{"delete of nothing", spec.Route{Prefix: netip.MustParsePrefix("198.19.8.0/24"), Blackhole: true}, []netip.Prefix{netip.MustParsePrefix("198.19.9.0/24")}, fib.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, pubs := routeSet(l.sw), l.sw.fib.Stats().Publishes
			err := l.sw.ApplyRoutes(fib.OriginStatic, []spec.Route{good, tc.bad}, tc.dels)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var re *RouteError
			if wantIdx := map[bool]int{true: 0, false: 1}[tc.dels != nil]; !errors.As(err, &re) || re.Index != wantIdx {
				t.Errorf("error %v does not name the refused route (index %d)", err, wantIdx)
			}
			sameRoutes(t, before, routeSet(l.sw))
			if p := l.sw.fib.Stats().Publishes; p != pubs {
				t.Errorf("%d views published by a refused batch", p-pubs)
			}
		})
	}
	pubs := l.sw.fib.Stats().Publishes
	more := spec.Route{Prefix: netip.MustParsePrefix("fd00:19:7::/64"), Via: remote6}
	if err := l.sw.ApplyRoutes(fib.OriginStatic, []spec.Route{good, more}, nil); err != nil {
		t.Fatal(err)
	}
	if p := l.sw.fib.Stats().Publishes; p != pubs+1 {
		t.Errorf("a batch of two published %d views, want 1", p-pubs)
	}
	got := routeSet(l.sw)
	if got[good.Prefix] == "" || got[more.Prefix] == "" {
		t.Errorf("routes of the batch missing: %v", got)
	}
}

// TestApplyRoutesOwner: an origin deletes its own routes only: neither
// another source's route nor a pod's goes when the operator's origin asks.
func TestApplyRoutesOwner(t *testing.T) {
	l := newVXLANLab(t, nil)
	bgp := spec.Route{Prefix: netip.MustParsePrefix("198.19.7.0/24"), Via: remote4}
	if err := l.sw.ApplyRoutes(fib.OriginBGP, []spec.Route{bgp}, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{bgp.Prefix, netip.PrefixFrom(pod1v4, 32)} {
		before := routeSet(l.sw)
		if err := l.sw.ApplyRoutes(fib.OriginStatic, nil, []netip.Prefix{p}); !errors.Is(err, ErrNotOwner) {
			t.Errorf("static deleting %s: %v, want ErrNotOwner", p, err)
		}
		if err := l.sw.DelRoute(p); !errors.Is(err, ErrNotOwner) {
			t.Errorf("DelRoute %s: %v, want ErrNotOwner", p, err)
		}
		sameRoutes(t, before, routeSet(l.sw))
	}
	if err := l.sw.ApplyRoutes(fib.OriginBGP, nil, []netip.Prefix{bgp.Prefix}); err != nil {
		t.Errorf("the owner deleting its route: %v", err)
	}
	if _, ok := routeSet(l.sw)[bgp.Prefix]; ok {
		t.Error("route still there after its owner deleted it")
	}
}

// TestDelPortRoutes: deleting a port takes every route that leaves by it
// (its own, static routes of any origin, neighbours' host routes) and the
// node's addresses it brought, and nothing else.
func TestDelPortRoutes(t *testing.T) {
	l := newVXLANLab(t, nil)
	if err := l.sw.ApplyRoutes(fib.OriginBGP, []spec.Route{{Prefix: netip.MustParsePrefix("198.19.7.0/24"), Via: remote4}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.sw.AddRoute(spec.Route{Prefix: netip.MustParsePrefix("198.19.8.0/24"), Port: "pod1"}); err != nil {
		t.Fatal(err)
	}
	upID, podID := l.up.ID, l.sw.byName["pod1"].ID
	leaves := func(id uint16) []netip.Prefix {
		var ps []netip.Prefix
		l.sw.fib.Routes(0, func(r fib.Route) bool {
			if (r.NextHop.Kind == fib.KindAdjacency || r.NextHop.Kind == fib.KindPort) && r.NextHop.Port == id {
				ps = append(ps, r.Prefix)
			}
			return true
		})
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		return ps
	}
	if n := len(leaves(upID)); n < 4 { // two subnets, two neighbours' host routes, the BGP route
		t.Fatalf("%d routes out of the uplink before, want at least 4: %v", n, leaves(upID))
	}
	if err := l.sw.DelPort("pod1"); err != nil {
		t.Fatal(err)
	}
	if ps := leaves(podID); len(ps) != 0 {
		t.Errorf("routes still out of the deleted pod: %v", ps)
	}
	if _, ok := routeSet(l.sw)[netip.MustParsePrefix("198.19.7.0/24")]; !ok {
		t.Error("deleting a pod took an uplink route")
	}
	if err := l.sw.DelPort("up"); err != nil {
		t.Fatal(err)
	}
	if ps := leaves(upID); len(ps) != 0 {
		t.Errorf("routes still out of the deleted uplink: %v", ps)
	}
	for _, p := range []netip.Prefix{netip.PrefixFrom(local4, 32), netip.PrefixFrom(local6, 128)} {
		if _, ok := routeSet(l.sw)[p]; ok {
			t.Errorf("the uplink's address %s still routed", p)
		}
	}
	if len(l.sw.routes.byPort) != 0 || len(l.sw.routes.portOf) != 0 {
		t.Errorf("route index not empty with no port left: %v", l.sw.routes.byPort)
	}
}

// TestSubscribeFIB: two readers subscribed to the switch's FIB both see
// one change.
func TestSubscribeFIB(t *testing.T) {
	l := newVXLANLab(t, nil)
	a, cancelA := l.sw.SubscribeFIB()
	defer cancelA()
	b, cancelB := l.sw.SubscribeFIB()
	defer cancelB()
	if err := l.sw.AddRoute(spec.Route{Prefix: netip.MustParsePrefix("198.19.7.0/24"), Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]<-chan struct{}{"first": a, "second": b} {
		select {
		case <-c:
		default:
			t.Errorf("the %s subscriber did not see the change", name)
		}
	}
}
