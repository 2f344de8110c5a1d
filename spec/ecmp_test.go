package spec

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRouteECMPValidate(t *testing.T) {
	P, A := netip.MustParsePrefix, netip.MustParseAddr
	for _, tc := range []struct {
		name string
		r    Route
		want string // "" for valid
	}{
		{"ok", Route{Prefix: P("198.19.1.0/24"), Via: A("198.18.0.2"), ECMP: []netip.Addr{A("198.18.0.3")}}, ""},
		{"no via", Route{Prefix: P("198.19.1.0/24"), ECMP: []netip.Addr{A("198.18.0.3")}}, "ecmp"},
		{"with port", Route{Prefix: P("198.19.1.0/24"), Via: A("198.18.0.2"), Port: "eth0", ECMP: []netip.Addr{A("198.18.0.3")}}, "ecmp"},
		{"family", Route{Prefix: P("198.19.1.0/24"), Via: A("198.18.0.2"), ECMP: []netip.Addr{A("fd00:18::3")}}, "ecmp[0]"},
		{"link-local", Route{Prefix: P("fd00:19::/64"), Via: A("fd00:18::2"), ECMP: []netip.Addr{A("fe80::1")}}, "ecmp[0]"},
		{"twice", Route{Prefix: P("198.19.1.0/24"), Via: A("198.18.0.2"), ECMP: []netip.Addr{A("198.18.0.3"), A("198.18.0.2")}}, "ecmp[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.r.Validate()
			if tc.want == "" {
				if len(errs) != 0 {
					t.Fatalf("errors %v, want none", errs)
				}
				return
			}
			for _, err := range errs {
				if fe, ok := err.(*FieldError); ok && strings.HasPrefix(fe.Field, tc.want) {
					return
				}
			}
			t.Fatalf("errors %v, want one on %s", errs, tc.want)
		})
	}
}
