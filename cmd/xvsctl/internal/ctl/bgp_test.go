package ctl

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/bgp"
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
		{"bgp peers", nil, `bgp: "bgp routes", "bgp peer"`},
		{"bgp peer list", &Command{Op: OpBGPPeerList}, ""},
		{"bgp peer add 198.18.0.9 -as 65009 -families ipv4,ipv6 -scope node -hold 9s", &Command{Op: OpBGPPeerAdd, BGPPeer: bgp.Peer{
			Address: netip.MustParseAddr("198.18.0.9"), ASNumber: 65009, Families: []bgp.Family{bgp.IPv4, bgp.IPv6}, Scope: bgp.ScopeNode, HoldTime: 9 * time.Second}}, ""},
		{"bgp peer add 198.18.0.9", nil, `-as 0: want 1..4294967295`},
		{"bgp peer add nope -as 1", nil, `"nope": not an IP address`},
		{"bgp peer del fd00:18::9", &Command{Op: OpBGPPeerDel, BGPPeer: bgp.Peer{Address: netip.MustParseAddr("fd00:18::9")}}, ""},
		{"bgp peer del", nil, `bgp peer del: one peer address`},
		{"bgp mesh off", &Command{Op: OpBGPMesh}, ""},
		{"bgp mesh on 198.18.0.1 fd00:18::1", &Command{Op: OpBGPMesh, BGPMeshOn: true, BGPAddrs: []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00:18::1")}}, ""},
		{"bgp mesh maybe", nil, `bgp mesh: on or off`},
		{"bgp advertise 198.19.1.0/26", &Command{Op: OpBGPAdvertise, BGPPrefixes: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/26")}}, ""},
		{"bgp advertise 198.19.1.1/26", nil, `"198.19.1.1/26": not a network prefix`},
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
