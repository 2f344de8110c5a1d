package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/ipam"
)

func TestIPAMSection(t *testing.T) {
	f, err := Parse([]byte(`
ipam:
  store: /tmp/x.db
  node: n1
  node_labels: {zone: a}
  pools:
    - {name: p4, cidr: 198.18.0.0/16, blockSize: 26, vxlanMode: Always, natOutgoing: true}
    - {name: p6, cidr: "fd00::/48", nodeSelector: "zone == 'a'", disabled: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := &IPAMConfig{Store: "/tmp/x.db", Node: "n1", NodeLabels: map[string]string{"zone": "a"}, Pools: []ipam.Pool{
		{Name: "p4", CIDR: netip.MustParsePrefix("198.18.0.0/16"), BlockSize: 26, Encapsulation: ipam.EncapVXLAN, NATOutgoing: true},
		{Name: "p6", CIDR: netip.MustParsePrefix("fd00::/48"), Encapsulation: ipam.EncapNone, NodeSelector: "zone == 'a'", Disabled: true},
	}}
	if !reflect.DeepEqual(want, c.IPAM) {
		t.Errorf("ipam (-want +got):\n-%+v\n+%+v", want, c.IPAM)
	}
}

func TestIPAMSectionErrors(t *testing.T) {
	tests := []struct{ name, pools, want string }{
		{"bad cidr", `[{name: a, cidr: 300.0.0.0/8}]`, `ipam.pools[0].cidr: "300.0.0.0/8"`},
		{"no cidr", `[{name: a}]`, `ipam.pools[0].cidr: ""`},
		{"vxlan mode", `[{name: a, cidr: 198.18.0.0/16, vxlanMode: Sometimes}]`, `ipam.pools[0].vxlanMode: "Sometimes"`},
		{"block size", `[{name: a, cidr: 198.18.0.0/16, blockSize: 33}]`, `ipam.pools[0]: pool "a": blockSize 33`},
		{"v6 block size", `[{name: a, cidr: "fd00::/48", blockSize: 100}]`, `blockSize 100`},
		{"name", `[{name: "Bad_Name", cidr: 198.18.0.0/16}]`, `ipam.pools[0]: pool "Bad_Name": name`},
		{"selector", `[{name: a, cidr: 198.18.0.0/16, nodeSelector: "zone =="}]`, `nodeSelector`},
		{"overlap", `[{name: a, cidr: 198.18.0.0/16}, {name: b, cidr: 198.18.1.0/24}]`, `ipam.pools: pool "b": cidr 198.18.1.0/24`},
		{"same name", `[{name: a, cidr: 198.18.0.0/16}, {name: a, cidr: 198.19.0.0/16}]`, `two pools have this name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte("ipam:\n  node: n\n  pools: " + tc.pools + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Resolve(Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
