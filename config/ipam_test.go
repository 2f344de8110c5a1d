package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

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

// TestKubeIPAM: with a kubernetes: section the pools are the API's
// IPPools, so ipam.pools is refused naming the field; the allocator's
// node is the Node object's name, and a different ipam.node is refused.
func TestKubeIPAM(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	resolve := func(y string) (*Config, error) {
		t.Helper()
		f, err := Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return f.Resolve(Options{})
	}
	c, err := resolve("ipam: {store: /tmp/x.db}\nkubernetes: {kubeconfig: /k, node: n1, reclaim_grace: 30s}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.IPAM.Node != "n1" || c.Kube.Node != "n1" || c.Kube.ReclaimGrace != 30*time.Second {
		t.Errorf("ipam node %q, kube node %q, grace %v", c.IPAM.Node, c.Kube.Node, c.Kube.ReclaimGrace)
	}
	if c, err := resolve("ipam: {node: n2}\nkubernetes: {kubeconfig: /k}\n"); err != nil || c.Kube.Node != "n2" || c.IPAM.Node != "n2" {
		t.Errorf("ipam.node alone: %v, %+v", err, c)
	}
	for _, tc := range []struct{ y, want string }{
		{"ipam: {pools: [{name: a, cidr: 198.18.0.0/16}]}\nkubernetes: {kubeconfig: /k, node: n1}\n", `ipam.pools: 1: with a kubernetes: section the pools are the API server's IPPool objects`},
		{"ipam: {node: n2}\nkubernetes: {kubeconfig: /k, node: n1}\n", `ipam.node: "n2": differs from kubernetes.node "n1"`},
		{"kubernetes: {kubeconfig: /k, node: n1, reclaim_grace: 10ms}\n", `kubernetes.reclaim_grace: "10ms"`},
		{"kubernetes: {kubeconfig: /k, node: n1, reclaim_grace: soon}\n", `kubernetes.reclaim_grace: "soon"`},
	} {
		if _, err := resolve(tc.y); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.y, err, tc.want)
		}
	}
}
