package fib

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentChurn has workers looking up while a writer churns routes.
// Stable routes are never deleted, so a worker must always find them; each
// churn batch moves a whole group of routes to one generation's next hop in
// one Apply, so every view must show a group entirely in one generation.
func TestConcurrentChurn(t *testing.T) {
	const groups, perGroup = 50, 40
	changes := 100_000
	if testing.Short() {
		changes = 20_000
	}
	f := New()
	// Stable: 10.s.0.0/16 and 2001:db8:s::/48 with label 1000+s.
	var stable []Route
	for s := range 64 {
		stable = append(stable,
			route(0, fmt.Sprintf("10.%d.0.0/16", s), 1000+uint32(s)),
			route(0, fmt.Sprintf("2001:db8:%x::/48", s), 2000+uint32(s)))
	}
	mustApply(t, f, stable, nil)
	// Churn prefixes nest under and beside the stable ones: group g holds
	// 10.s.g.x/32-ish and /24s, and IPv6 /64s and /128s.
	churn := func(g, i int) (netip.Prefix, netip.Addr) {
		s := (g*perGroup + i) % 64
		switch i % 4 {
		case 0:
			p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", s, 100+g))
			return p, p.Addr().Next()
		case 1:
			p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.%d/32", s, g, i))
			return p, p.Addr()
		case 2:
			p := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x::/64", s, g))
			return p, p.Addr().Next()
		}
		p := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x::%x/128", s, g, i))
		return p, p.Addr()
	}
	type probe struct {
		a      netip.Addr
		stable uint32 // label of the covering stable route
	}
	probes := make([][]probe, groups)
	for g := range groups {
		for i := range perGroup {
			p, a := churn(g, i)
			var st uint32
			if p.Addr().Is4() {
				st = 1000 + uint32(a.As4()[1])
			} else {
				st = 2000 + uint32(a.As16()[5])
			}
			probes[g] = append(probes[g], probe{a, st})
		}
		slices.SortStableFunc(probes[g], func(x, y probe) int { return x.a.BitLen() - y.a.BitLen() })
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]Index, perGroup)
			var a4 [][4]byte
			var a6 [][16]byte
			for n := w; !stop.Load(); n++ {
				v := f.View()
				g := n % groups
				ps := probes[g] // IPv4 first, then IPv6
				a4, a6 = a4[:0], a6[:0]
				for _, p := range ps {
					if p.a.Is4() {
						a4 = append(a4, p.a.As4())
					} else {
						a6 = append(a6, p.a.As16())
					}
				}
				got := make([]uint32, 0, len(ps))
				v.LookupBatch4(0, a4, out)
				for i := range a4 {
					got = append(got, labelOf(v, out[i]))
				}
				v.LookupBatch6(0, a6, out)
				for i := range a6 {
					got = append(got, labelOf(v, out[i]))
				}
				// Either every churn route of the group is absent (answers
				// are the stable routes) or all show one generation.
				var gen uint32
				for _, l := range got {
					if l < 1000 {
						gen = l
					}
				}
				for k, p := range ps {
					want := gen
					if gen == 0 {
						want = p.stable
					}
					if got[k] != want {
						errs <- fmt.Sprintf("view shows %s -> %d, group %d generation %d (stable %d)", p.a, got[k], g, gen, p.stable)
						return
					}
				}
				// The stable routes themselves.
				s := n % 64
				if l := labelOf(v, v.Lookup4(0, [4]byte{10, byte(s), 250, 1})); l != 1000+uint32(s) {
					errs <- fmt.Sprintf("stable 10.%d.0.0/16 missing: label %d", s, l)
					return
				}
			}
		}()
	}
	done := 0
	for round := 0; done < changes; round++ {
		g := round % groups
		var adds []Route
		var dels []RouteKey
		gen := uint32(round%900 + 1)
		present := (round/groups)%3 != 2
		for i := range perGroup {
			p, _ := churn(g, i)
			if present {
				adds = append(adds, Route{Prefix: p, NextHop: labelNH(gen), Origin: OriginBGP})
			} else if _, ok := f.Get(0, p); ok {
				dels = append(dels, RouteKey{Prefix: p})
			}
		}
		mustApply(t, f, adds, dels)
		done += len(adds) + len(dels)
		select {
		case e := <-errs:
			stop.Store(true)
			wg.Wait()
			t.Fatal(e)
		default:
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
