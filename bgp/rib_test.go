package bgp

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// batchSink records every batch.
type batchSink struct {
	mu      sync.Mutex
	batches [][2]any
	fail    int // fail this many calls first
}

func (s *batchSink) ApplyRoutes(adds []Route, dels []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("sink full")
	}
	a := slices.Clone(adds)
	for i := range a {
		a[i].NextHops = slices.Clone(a[i].NextHops)
	}
	s.batches = append(s.batches, [2]any{a, slices.Clone(dels)})
	return nil
}

func (s *batchSink) take() (adds []Route, dels []netip.Prefix, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.batches {
		adds = append(adds, b[0].([]Route)...)
		dels = append(dels, b[1].([]netip.Prefix)...)
	}
	n = len(s.batches)
	s.batches = nil
	slices.SortFunc(adds, func(a, b Route) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return adds, dels, n
}

func mkPath(t *testing.T, pfx, peer string, withdraw bool, nhs ...string) *apiutil.Path {
	t.Helper()
	p := netip.MustParsePrefix(pfx)
	nlri, err := gbgp.NewIPAddrPrefix(p)
	if err != nil {
		t.Fatal(err)
	}
	path := &apiutil.Path{Nlri: nlri, Withdrawal: withdraw}
	if peer != "" {
		path.PeerAddress = netip.MustParseAddr(peer)
	}
	var addrs []netip.Addr
	for _, s := range nhs {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	if p.Addr().Is4() {
		path.Family = gbgp.RF_IPv4_UC
		if len(addrs) > 0 {
			a, _ := gbgp.NewPathAttributeNextHop(addrs[0])
			path.Attrs = append(path.Attrs, a)
		}
	} else {
		path.Family = gbgp.RF_IPv6_UC
		if len(addrs) > 0 {
			mp, err := gbgp.NewPathAttributeMpReachNLRI(gbgp.RF_IPv6_UC, []gbgp.PathNLRI{{NLRI: nlri}}, addrs...)
			if err != nil {
				t.Fatal(err)
			}
			path.Attrs = append(path.Attrs, mp)
		}
	}
	return path
}

func runRIB(t *testing.T, sink RouteSink, maxPaths int) *rib {
	r := newRIB(slog.New(slog.DiscardHandler), sink, maxPaths, time.Millisecond, 1000)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { r.run(stop); close(done) }()
	t.Cleanup(func() { close(stop); <-done })
	return r
}

func settle(t *testing.T, r *rib) {
	t.Helper()
	// The flusher has nothing dirty and is not mid-call.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		n := len(r.dirty)
		r.mu.Unlock()
		if n == 0 {
			time.Sleep(20 * time.Millisecond)
			return
		}
	}
	t.Fatal("rib did not settle")
}

func TestRIBAdapter(t *testing.T) {
	a := netip.MustParseAddr
	pp := netip.MustParsePrefix
	type step struct {
		paths    []*apiutil.Path
		wantAdds []Route
		wantDels []netip.Prefix
	}
	tests := []struct {
		name     string
		maxPaths int
		steps    func(t *testing.T) []step
	}{
		{"announce, ECMP, withdraw", 8, func(t *testing.T) []step {
			return []step{
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.1", false, "198.18.0.1")},
					[]Route{{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.1")}, Peer: a("198.18.0.1")}}, nil},
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.3", false, "198.18.0.3")},
					[]Route{{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.1"), a("198.18.0.3")}, Peer: a("198.18.0.1")}}, nil},
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.1", true)},
					[]Route{{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.3")}, Peer: a("198.18.0.3")}}, nil},
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.3", true)}, nil, []netip.Prefix{pp("198.19.1.0/24")}},
			}
		}},
		{"ECMP trimmed", 2, func(t *testing.T) []step {
			return []step{
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.3", false, "198.18.0.3"), mkPath(t, "198.19.1.0/24", "198.18.0.1", false, "198.18.0.1"),
					mkPath(t, "198.19.1.0/24", "198.18.0.2", false, "198.18.0.2")},
					[]Route{{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.1"), a("198.18.0.2")}, Peer: a("198.18.0.3")}}, nil},
			}
		}},
		{"no multipath: the new best replaces", 1, func(t *testing.T) []step {
			return []step{
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.1", false, "198.18.0.1")},
					[]Route{{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.1")}, Peer: a("198.18.0.1")}}, nil},
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.3", false, "198.18.0.3")},
					[]Route{{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.3")}, Peer: a("198.18.0.3")}}, nil},
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.3", true)}, nil, []netip.Prefix{pp("198.19.1.0/24")}},
			}
		}},
		{"IPv6 global and link-local: the global one", 8, func(t *testing.T) []step {
			return []step{
				{[]*apiutil.Path{mkPath(t, "fd00:fe::/48", "198.18.0.1", false, "fd00:18::1", "fe80::1")},
					[]Route{{Prefix: pp("fd00:fe::/48"), NextHops: []netip.Addr{a("fd00:18::1")}, Peer: a("198.18.0.1")}}, nil},
			}
		}},
		{"IPv6 link-local only", 8, func(t *testing.T) []step {
			return []step{
				{[]*apiutil.Path{mkPath(t, "fd00:fe::/48", "fe80::1", false, "fe80::1")},
					[]Route{{Prefix: pp("fd00:fe::/48"), NextHops: []netip.Addr{a("fe80::1")}, Peer: a("fe80::1")}}, nil},
			}
		}},
		{"IPv4-mapped next hop unmapped", 8, func(t *testing.T) []step {
			return []step{
				{[]*apiutil.Path{mkPath(t, "fd00:fe::/48", "198.18.0.1", false, "::ffff:198.18.0.1")},
					[]Route{{Prefix: pp("fd00:fe::/48"), NextHops: []netip.Addr{a("198.18.0.1")}, Peer: a("198.18.0.1")}}, nil},
			}
		}},
		{"local paths ignored", 8, func(t *testing.T) []step {
			return []step{{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "", false, "198.18.0.2")}, nil, nil}}
		}},
		{"announced and withdrawn in one burst: nothing", 8, func(t *testing.T) []step {
			return []step{{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.1", false, "198.18.0.1"), mkPath(t, "198.19.1.0/24", "198.18.0.1", true)}, nil, nil}}
		}},
		{"next hop replaced by the same peer", 1, func(t *testing.T) []step {
			return []step{
				{[]*apiutil.Path{mkPath(t, "198.19.1.0/24", "198.18.0.1", false, "198.18.0.1"), mkPath(t, "198.19.1.0/24", "198.18.0.1", false, "198.18.0.9")},
					[]Route{{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.9")}, Peer: a("198.18.0.1")}}, nil},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &batchSink{}
			r := runRIB(t, sink, tt.maxPaths)
			for i, st := range tt.steps(t) {
				r.onBest(st.paths, time.Now())
				settle(t, r)
				adds, dels, _ := sink.take()
				if !slices.EqualFunc(adds, st.wantAdds, func(x, y Route) bool {
					return x.Prefix == y.Prefix && x.Peer == y.Peer && slices.Equal(x.NextHops, y.NextHops)
				}) || !slices.Equal(dels, st.wantDels) {
					t.Errorf("step %d (-want +got):\n- adds %v dels %v\n+ adds %v dels %v", i, st.wantAdds, st.wantDels, adds, dels)
				}
			}
		})
	}
}

// TestRIBBatching: a burst of events reaches the sink in few calls, and a
// failing sink gets the routes again.
func TestRIBBatching(t *testing.T) {
	sink := &batchSink{fail: 1}
	r := runRIB(t, sink, 8)
	var paths []*apiutil.Path
	for i := range 500 {
		paths = append(paths, mkPath(t, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 32).String(), "198.18.0.1", false, "198.18.0.1"))
	}
	for i := 0; i < len(paths); i += 50 {
		r.onBest(paths[i:i+50], time.Now()) // ten UPDATEs
	}
	time.Sleep(1100 * time.Millisecond) // past the retry delay
	settle(t, r)
	adds, _, n := sink.take()
	if len(adds) != 500 {
		t.Fatalf("sink got %d routes, want 500", len(adds))
	}
	if n > 3 {
		t.Errorf("500 routes in ten UPDATEs took %d batches", n)
	}
	if c := r.counters(); c.SinkErrors != 1 || c.Installed != 500 || c.RoutesAdded != 500 {
		t.Errorf("counters: %+v", c)
	}
}

// TestRIBNextHopTracking: prefixes through a next hop that becomes
// unusable leave the sink (an ECMP set loses the member), come back when
// it is usable again, and a withdrawal while held costs the sink nothing.
func TestRIBNextHopTracking(t *testing.T) {
	a := netip.MustParseAddr
	pp := netip.MustParsePrefix
	var mu sync.Mutex
	down := map[netip.Addr]bool{}
	setDown := func(nh string, d bool) {
		mu.Lock()
		down[a(nh)] = d
		mu.Unlock()
	}
	sink := &batchSink{}
	r := runRIB(t, sink, 8)
	r.usable = func(nh, _ netip.Addr) bool {
		mu.Lock()
		defer mu.Unlock()
		return !down[nh]
	}
	check := func(step string, wantAdds []Route, wantDels []netip.Prefix) {
		t.Helper()
		settle(t, r)
		adds, dels, _ := sink.take()
		slices.SortFunc(dels, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
		if !slices.EqualFunc(adds, wantAdds, func(x, y Route) bool {
			return x.Prefix == y.Prefix && x.Peer == y.Peer && slices.Equal(x.NextHops, y.NextHops)
		}) || !slices.Equal(dels, wantDels) {
			t.Errorf("%s (-want +got):\n- adds %v dels %v\n+ adds %v dels %v", step, wantAdds, wantDels, adds, dels)
		}
	}
	r.onBest([]*apiutil.Path{
		mkPath(t, "198.19.1.0/24", "198.18.0.1", false, "198.18.0.1"),
		mkPath(t, "198.19.1.0/24", "198.18.0.2", false, "198.18.0.2"),
		mkPath(t, "198.19.2.0/24", "198.18.0.1", false, "198.18.0.1"),
		mkPath(t, "198.19.3.0/24", "198.18.0.2", false, "198.18.0.2"),
	}, time.Now())
	check("learned", []Route{
		{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.1"), a("198.18.0.2")}, Peer: a("198.18.0.1")},
		{Prefix: pp("198.19.2.0/24"), NextHops: []netip.Addr{a("198.18.0.1")}, Peer: a("198.18.0.1")},
		{Prefix: pp("198.19.3.0/24"), NextHops: []netip.Addr{a("198.18.0.2")}, Peer: a("198.18.0.2")},
	}, nil)
	if n := r.recheck(); n != 0 {
		t.Errorf("recheck with nothing changed: %d next hops changed", n)
	}
	check("nothing changed", nil, nil)

	setDown("198.18.0.1", true)
	if n := r.recheck(); n != 1 {
		t.Errorf("recheck: %d next hops changed, want 1", n)
	}
	check("198.18.0.1 unusable", []Route{
		{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.2")}, Peer: a("198.18.0.2")},
	}, []netip.Prefix{pp("198.19.2.0/24")})
	if c := r.counters(); c.Held != 1 || c.UnusableNextHops != 1 || c.Installed != 3 {
		t.Errorf("counters %+v, want held 1, unusableNextHops 1, installed 3", c)
	}
	// A new prefix through the unusable next hop is held at once.
	r.onBest([]*apiutil.Path{mkPath(t, "198.19.4.0/24", "198.18.0.1", false, "198.18.0.1")}, time.Now())
	check("new prefix via an unusable next hop", nil, nil)

	setDown("198.18.0.1", false)
	r.recheck()
	check("198.18.0.1 usable again", []Route{
		{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.1"), a("198.18.0.2")}, Peer: a("198.18.0.1")},
		{Prefix: pp("198.19.2.0/24"), NextHops: []netip.Addr{a("198.18.0.1")}, Peer: a("198.18.0.1")},
		{Prefix: pp("198.19.4.0/24"), NextHops: []netip.Addr{a("198.18.0.1")}, Peer: a("198.18.0.1")},
	}, nil)

	// Held, then withdrawn: the sink never hears of it again.
	setDown("198.18.0.2", true)
	r.recheck()
	check("198.18.0.2 unusable", []Route{
		{Prefix: pp("198.19.1.0/24"), NextHops: []netip.Addr{a("198.18.0.1")}, Peer: a("198.18.0.1")},
	}, []netip.Prefix{pp("198.19.3.0/24")})
	r.onBest([]*apiutil.Path{mkPath(t, "198.19.3.0/24", "198.18.0.2", true)}, time.Now())
	check("held prefix withdrawn", nil, nil)
	if c := r.counters(); c.Held != 0 || c.Installed != 3 {
		t.Errorf("counters %+v, want held 0, installed 3", c)
	}
	if hs := r.nextHops(); len(hs) != 2 || hs[0].NextHop != a("198.18.0.1") || !hs[0].Usable || hs[1].Usable {
		t.Errorf("next hops %+v", hs)
	}
}
