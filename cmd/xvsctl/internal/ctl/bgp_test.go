package ctl

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseBGP(t *testing.T) {
	for _, tc := range []struct {
		args    string
		want    *Command
		wantErr string
	}{
		{"node status", &Command{Op: OpNodeStatus}, ""},
		{"bgp routes", &Command{Op: OpBGPRoutes}, ""},
		{"bgp routes -family v4", &Command{Op: OpBGPRoutes, BGP: BGPQuery{Family: "ipv4"}}, ""},
		{"bgp routes -family v6 -peer fd00:18::2 -advertised", &Command{Op: OpBGPRoutes, BGP: BGPQuery{Family: "ipv6", Peer: "fd00:18::2", Advertised: true}}, ""},
		{"node", nil, `node: only "node status"`},
		{"node status now", nil, `node status: unexpected argument "now"`},
		{"bgp peers", nil, `bgp: only "bgp routes"`},
		{"bgp routes -family v5", nil, `-family "v5": want v4 or v6`},
		{"bgp routes -peer nope", nil, `-peer "nope": not an address`},
		{"bgp routes -advertised", nil, `-advertised needs -peer`},
		{"bgp routes extra", nil, `bgp routes: unexpected argument "extra"`},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := Parse(strings.Fields(tc.args))
			if tc.wantErr != "" {
				var ue *usageError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n-want %+v\n+got  %+v", tc.want, got)
			}
		})
	}
}
