package spec

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestRouteValidate: the rules every route follows, with the field and
// value each error names.
func TestRouteValidate(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	mac := [6]byte{2, 0x58, 3, 0, 0, 2}
	for _, tc := range []struct {
		name string
		r    Route
		want []string // the errors, in order
	}{
		{"blackhole", Route{Prefix: p("198.19.0.0/16"), Blackhole: true}, nil},
		{"gateway", Route{Prefix: p("198.19.0.0/16"), Via: a("198.18.0.1")}, nil},
		{"port only", Route{Prefix: p("198.19.0.0/16"), Port: "eth0"}, nil},
		{"vxlan", Route{Prefix: p("198.19.0.0/16"), VXLAN: &VXLANRoute{Remote: a("198.18.0.12"), MAC: mac}}, nil},
		{"no prefix", Route{Blackhole: true}, []string{`prefix: required`}},
		{"host bits", Route{Prefix: p("198.19.1.0/16"), Blackhole: true}, []string{`prefix: "198.19.1.0/16": host bits set (did you mean 198.19.0.0/16?)`}},
		{"nothing", Route{Prefix: p("198.19.0.0/16")}, []string{`needs via, port or blackhole`}},
		{"family", Route{Prefix: p("198.19.0.0/16"), Via: a("fd00::1")}, []string{`via: "fd00::1": address family differs from prefix 198.19.0.0/16`}},
		{"link-local without port", Route{Prefix: p("::/0"), Via: a("fe80::1")}, []string{`via: "fe80::1": a link-local next hop needs port:`}},
		{"blackhole with gateway and port", Route{Prefix: p("198.19.0.0/16"), Blackhole: true, Via: a("198.18.0.1"), Port: "eth0"},
			[]string{`via: "198.18.0.1": a blackhole route has no next hop`, `port: "eth0": a blackhole route has no output port`}},
		{"vxlan with everything", Route{Prefix: p("198.19.0.0/16"), Via: a("198.18.0.1"), Port: "eth0", Blackhole: true, VXLAN: &VXLANRoute{Remote: a("198.18.0.12"), MAC: mac}},
			[]string{`via: "198.18.0.1": a vxlan route has no via`, `port: "eth0": a vxlan route has no output port`, `blackhole: "true": a route is either vxlan or blackhole`}},
		{"vxlan remote multicast", Route{Prefix: p("198.19.0.0/16"), VXLAN: &VXLANRoute{Remote: a("239.1.1.1"), MAC: mac}}, []string{`vxlan.remote: "239.1.1.1": not a unicast address`}},
		{"vxlan remote loopback", Route{Prefix: p("198.19.0.0/16"), VXLAN: &VXLANRoute{Remote: a("127.0.0.1"), MAC: mac}}, []string{`vxlan.remote: "127.0.0.1": not a unicast address`}},
		{"vxlan remote inside", Route{Prefix: p("198.19.0.0/16"), VXLAN: &VXLANRoute{Remote: a("198.19.0.9"), MAC: mac}}, []string{`vxlan.remote: "198.19.0.9": inside 198.19.0.0/16: the tunnel would route into itself`}},
		{"vxlan mac multicast", Route{Prefix: p("198.19.0.0/16"), VXLAN: &VXLANRoute{Remote: a("198.18.0.12"), MAC: [6]byte{1, 0, 0x5e, 0, 0, 1}}}, []string{`vxlan.mac: "01:00:5e:00:00:01": must be a unicast address`}},
		{"vxlan mac zero", Route{Prefix: p("198.19.0.0/16"), VXLAN: &VXLANRoute{Remote: a("198.18.0.12")}}, []string{`vxlan.mac: "00:00:00:00:00:00": must be a unicast address`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.r.Validate()
			var got []string
			for _, err := range errs {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("%v is no *FieldError", err)
				}
				got = append(got, err.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("(-want +got):\n-%q\n+%q", tc.want, got)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("(-want +got):\n-%q\n+%q", tc.want[i], got[i])
				}
			}
		})
	}
}

// TestRoutePort: a named port must hold the gateway; without one, an
// uplink's subnet must.
func TestRoutePort(t *testing.T) {
	ports := []PortConfig{
		{Name: "host", Kind: PortHost, Addrs: []netip.Prefix{netip.MustParsePrefix("169.254.2.1/30")}},
		{Name: "eth0", Kind: PortUplink, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}},
	}
	a := netip.MustParseAddr
	pfx := netip.MustParsePrefix("198.19.0.0/16")
	for _, tc := range []struct {
		name  string
		r     Route
		want  int
		wantE string
	}{
		{"on the uplink", Route{Prefix: pfx, Via: a("198.18.0.9")}, 1, ""},
		{"named port", Route{Prefix: pfx, Via: a("169.254.2.2"), Port: "host"}, 0, ""},
		{"host subnet without port", Route{Prefix: pfx, Via: a("169.254.2.2")}, 0, `via: "169.254.2.2": not on any connected subnet`},
		{"off the named port", Route{Prefix: pfx, Via: a("198.18.0.9"), Port: "host"}, 0, `via: "198.18.0.9": not on a connected subnet of port "host"`},
		{"no such port", Route{Prefix: pfx, Port: "eth9"}, 0, `port: "eth9": no such port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, _, err := tc.r.RoutePort(ports)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantE || (err == nil && i != tc.want) {
				t.Errorf("(-want +got):\n-%d %q\n+%d %q", tc.want, tc.wantE, i, got)
			}
		})
	}
}

// TestAddrConflict: one address on two ports clashes, except the node's
// on a host port and the uplink; two pods clash on any overlap.
func TestAddrConflict(t *testing.T) {
	p := netip.MustParsePrefix
	port := func(k PortKind, addrs ...string) PortConfig {
		pc := PortConfig{Kind: k}
		for _, a := range addrs {
			pc.Addrs = append(pc.Addrs, p(a))
		}
		return pc
	}
	for _, tc := range []struct {
		name  string
		a, b  PortConfig
		clash bool
	}{
		{"two pods, one address", port(PortPod, "198.18.10.1/32"), port(PortPod, "fd00::1/128", "198.18.10.1/32"), true},
		{"two pods apart", port(PortPod, "198.18.10.1/32"), port(PortPod, "198.18.10.2/32"), false},
		{"pod and uplink subnet", port(PortPod, "198.18.0.5/32"), port(PortUplink, "198.18.0.1/24"), false},
		{"pod on the uplink's address", port(PortPod, "198.18.0.1/32"), port(PortUplink, "198.18.0.1/24"), true},
		{"host lists the node's address", port(PortHost, "198.18.0.1/32"), port(PortUplink, "198.18.0.1/24"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, got := AddrConflict(tc.a, tc.b); got != tc.clash {
				t.Errorf("clash %v, want %v", got, tc.clash)
			}
		})
	}
}
