package lab

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/config"
)

// TestPlanBGP checks the BGP labs' plan: native routing puts every node
// on one bridged segment, no lab routes a pod block in the outside, and
// each node's bgp: section resolves with its peers and blocks.
func TestPlanBGP(t *testing.T) {
	for _, tc := range []struct {
		encap       string
		wantBridge  bool
		wantInCfg   []string
		wantMissing []string
	}{
		{"", true,
			[]string{`nodeIPv4: "198.18.0.1"`, `nodeIPv6: "fd00:18::1"`, `advertise: ["198.19.0.0/24", "fd00:19::/64"]`, `- "198.18.0.3"`, `- "fd00:18::3"`, `via: "198.18.0.254"`},
			[]string{"vxlan"}},
		{EncapVXLAN, false,
			[]string{`nodeToNodeMeshEnabled: false`, `{peerIP: "198.18.1.1", asNumber: 64512, families: [ipv4, ipv6]}`, `{addresses: ["198.18.1.1", "fd00:18:1::1"], remote: "198.18.1.1", mac: "02:58:03:00:01:01"}`},
			[]string{`{prefix: "198.19.1.0/24", vxlan`}},
	} {
		t.Run("encap="+tc.encap, func(t *testing.T) {
			top, err := Plan(Options{Prefix: "xltest", Nodes: 3, BGP: true, Encap: tc.encap})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(top.Bridges) == 1; got != tc.wantBridge {
				t.Fatalf("bridged segment = %v, want %v", got, tc.wantBridge)
			}
			if tc.wantBridge {
				if got, want := strings.Join(top.Bridges[0].Members, ","), "node1,node2,node3"; got != want {
					t.Errorf("bridge members = %s, want %s", got, want)
				}
				if got, want := top.Nodes[2].UplinkV4, netip.MustParsePrefix("198.18.0.3/24"); got != want {
					t.Errorf("node3 uplink = %s, want %s", got, want)
				}
			}
			for _, r := range top.Routes {
				for _, n := range top.Nodes {
					if r.NS == top.Outside && (r.Dst.Overlaps(n.PodsV4) || r.Dst.Overlaps(n.PodsV6)) {
						t.Errorf("the outside routes a pod block: %+v", r)
					}
				}
			}
			cfg := XVSDConfig(top, top.Nodes[0], 1)
			for _, want := range tc.wantInCfg {
				if !strings.Contains(string(cfg), want) {
					t.Errorf("config lacks %s:\n%s", want, cfg)
				}
			}
			for _, bad := range tc.wantMissing {
				if strings.Contains(string(cfg), bad) {
					t.Errorf("config has %s:\n%s", bad, cfg)
				}
			}
			f, err := config.Parse(cfg)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, cfg)
			}
			c, err := f.Resolve(config.Options{})
			if err != nil {
				t.Fatalf("resolve: %v\n%s", err, cfg)
			}
			if c.BGP == nil || len(c.BGP.Advertise) != 2 {
				t.Fatalf("bgp = %+v, want two advertised blocks", c.BGP)
			}
		})
	}
}
