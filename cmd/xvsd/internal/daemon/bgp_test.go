package daemon

import (
	"log/slog"
	"net/netip"
	"reflect"
	"testing"

	"github.com/xvs-project/xvs/bgp"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/netmon/netmontest"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// sinkSwitch is a real switch (not started) with fake ports: an uplink on
// 198.18.0.0/24 and fd00:18::/64, a VTEP, a static route.
func sinkSwitch(t *testing.T) *vswitch.Switch {
	t.Helper()
	opener := func(req port.OpenRequest) (port.Opened, error) {
		return port.Opened{Port: porttest.NewFakePort(req.Umem, 64), MAC: [6]byte{2, 0xff, 0, 0, 0, 1}, MTU: 1500}, nil
	}
	cfg := vswitch.Config{
		Ports: []spec.PortConfig{{Name: "uplink0", Kind: spec.PortUplink, Addrs: []netip.Prefix{
			netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("fd00:18::1/64")}}},
		Routes: []spec.Route{{Prefix: netip.MustParsePrefix("198.19.9.0/24"), Blackhole: true}},
		VXLAN:  &vswitch.VXLANConfig{},
	}
	sw, err := vswitch.New(cfg, nil, vswitch.WithDrivers(porttest.Registry(opener)),
		vswitch.WithMonitor(&netmontest.Monitor{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw
}

// bgpFIB is the switch's bgp routes: prefix → next hop kind and via.
func bgpFIB(sw *vswitch.Switch) map[string]string {
	out := map[string]string{}
	for _, r := range sw.Routes() {
		if r.Origin == fib.OriginBGP.String() {
			out[r.Prefix.String()] = r.Kind + " " + r.Via.String()
		}
	}
	return out
}

func TestRouteSink(t *testing.T) {
	sw := sinkSwitch(t)
	vtep := spec.VXLANRoute{Remote: netip.MustParseAddr("198.18.5.1"), MAC: [6]byte{2, 0x58, 3, 0, 5, 1}}
	vx := map[netip.Addr]spec.VXLANRoute{netip.MustParseAddr("198.18.5.1"): vtep, netip.MustParseAddr("fd00:18:5::1"): vtep}
	s := newRouteSink(sw, sw.FIB, vx, slog.New(slog.DiscardHandler))
	P, A := netip.MustParsePrefix, netip.MustParseAddr
	r := func(p, nh string) bgp.Route {
		return bgp.Route{Prefix: P(p), NextHops: []netip.Addr{A(nh)}, Peer: A(nh)}
	}
	steps := []struct {
		name     string
		blocks   []string
		adds     []bgp.Route
		dels     []string
		want     map[string]string
		refused  uint64
		shadowed uint64
	}{{
		name:   "node blocks blackholed",
		blocks: []string{"198.19.0.0/24", "fd00:19::/64"},
		want:   map[string]string{"198.19.0.0/24": "drop invalid IP", "fd00:19::/64": "drop invalid IP"},
	}, {
		name: "native, vxlan, off-link refused, static wins, own block ignored",
		adds: []bgp.Route{
			r("198.19.1.0/24", "198.18.0.2"), r("fd00:19:1::/64", "fd00:18::2"),
			r("198.19.5.0/24", "198.18.5.1"),
			// IPv6 over the IPv4 session: the peer names the VTEP.
			{Prefix: P("fd00:19:5::/64"), NextHops: []netip.Addr{A("fd00:18:5::99")}, Peer: A("198.18.5.1")},
			r("198.19.7.0/24", "203.0.113.1"), // on no port's subnet
			r("198.19.9.0/24", "198.18.0.2"),  // the static route's
			r("198.19.0.0/24", "198.18.0.2"),  // this node's own block
			{Prefix: P("198.19.3.0/24"), NextHops: []netip.Addr{A("198.18.0.2"), A("198.18.0.3")}, Peer: A("198.18.0.2")},
		},
		want: map[string]string{
			"198.19.0.0/24": "drop invalid IP", "fd00:19::/64": "drop invalid IP",
			"198.19.1.0/24": "adjacency 198.18.0.2", "fd00:19:1::/64": "adjacency fd00:18::2",
			"198.19.5.0/24": "vxlan invalid IP", "fd00:19:5::/64": "vxlan invalid IP",
			"198.19.3.0/24": "ecmp invalid IP",
		},
		refused: 1, shadowed: 1,
	}, {
		name: "a next hop moving off-link takes the route out; withdraws",
		adds: []bgp.Route{r("198.19.1.0/24", "203.0.113.2")},
		dels: []string{"fd00:19:5::/64", "198.19.7.0/24", "198.19.9.0/24", "198.19.3.0/24"},
		want: map[string]string{
			"198.19.0.0/24": "drop invalid IP", "fd00:19::/64": "drop invalid IP",
			"fd00:19:1::/64": "adjacency fd00:18::2", "198.19.5.0/24": "vxlan invalid IP",
		},
		refused: 2, shadowed: 1,
	}, {
		name:   "a block removed leaves the FIB",
		blocks: []string{"198.19.0.0/24"},
		want: map[string]string{
			"198.19.0.0/24":  "drop invalid IP",
			"fd00:19:1::/64": "adjacency fd00:18::2", "198.19.5.0/24": "vxlan invalid IP",
		},
		refused: 2, shadowed: 1,
	}}
	for _, st := range steps {
		if st.blocks != nil {
			var ps []netip.Prefix
			for _, b := range st.blocks {
				ps = append(ps, P(b))
			}
			if err := s.SetBlocks(ps); err != nil {
				t.Fatalf("%s: SetBlocks: %v", st.name, err)
			}
		}
		if st.adds != nil || st.dels != nil {
			var dels []netip.Prefix
			for _, d := range st.dels {
				dels = append(dels, P(d))
			}
			if err := s.ApplyRoutes(st.adds, dels); err != nil {
				t.Fatalf("%s: ApplyRoutes: %v", st.name, err)
			}
		}
		if got := bgpFIB(sw); !reflect.DeepEqual(got, st.want) {
			t.Errorf("%s: bgp routes\n-want %v\n+got  %v", st.name, st.want, got)
		}
		if got := s.refused.Load(); got != st.refused {
			t.Errorf("%s: refused = %d, want %d", st.name, got, st.refused)
		}
		if got := s.shadowed.Load(); got != st.shadowed {
			t.Errorf("%s: shadowed = %d, want %d", st.name, got, st.shadowed)
		}
	}
	// The static route is still the operator's.
	if r, ok := sw.FIB().Get(0, P("198.19.9.0/24")); !ok || r.Origin != fib.OriginStatic {
		t.Errorf("198.19.9.0/24 = %+v, %v; want the static route", r, ok)
	}
}
