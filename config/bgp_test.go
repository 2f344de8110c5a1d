package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/spec"
)

func TestBGPSection(t *testing.T) {
	f, err := Parse([]byte(`
vxlan: {}
bgp:
  asNumber: 64513
  nodeIPv4: 198.18.0.1
  nodeIPv6: fd00:18::1
  meshMembers: [198.18.0.2, "fd00:18::2"]
  advertise: [198.19.0.0/26, "fd00:19::/122"]
  vxlan:
    - {addresses: [198.18.0.2, "fd00:18::2"], mac: "02:58:03:00:01:01"}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.BGP == nil {
		t.Fatal("no BGP config")
	}
	if got := c.BGP.Speaker.LocalAS(); got != 64513 {
		t.Errorf("local AS = %d, want 64513", got)
	}
	wantAdv := []netip.Prefix{netip.MustParsePrefix("198.19.0.0/26"), netip.MustParsePrefix("fd00:19::/122")}
	if !reflect.DeepEqual(wantAdv, c.BGP.Advertise) {
		t.Errorf("advertise:\n-want %v\n+got  %v", wantAdv, c.BGP.Advertise)
	}
	v := spec.VXLANRoute{Remote: netip.MustParseAddr("198.18.0.2"), MAC: [6]byte{2, 0x58, 3, 0, 1, 1}}
	wantVX := map[netip.Addr]spec.VXLANRoute{netip.MustParseAddr("198.18.0.2"): v, netip.MustParseAddr("fd00:18::2"): v}
	if !reflect.DeepEqual(wantVX, c.BGP.VXLAN) {
		t.Errorf("vxlan:\n-want %v\n+got  %v", wantVX, c.BGP.VXLAN)
	}

	f, _ = Parse([]byte("ports: []\n"))
	if c, err := f.Resolve(Options{}); err != nil || c.BGP != nil {
		t.Errorf("no bgp section: BGP = %v, err %v; want nil, nil", c.BGP, err)
	}
}

func TestBGPSectionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"bad AS", "bgp: {nodeIPv4: 198.18.0.1, asNumber: 65535}", `bgp.asNumber: "65535": not a usable AS number`},
		{"no node address", "bgp: {asNumber: 64512}", `bgp.nodeIPv4: a node address is required`},
		{"duplicate peer", "bgp: {nodeIPv4: 198.18.0.1, peers: [{peerIP: 198.18.0.9, asNumber: 65001}, {peerIP: 198.18.0.9, asNumber: 65001}]}", `bgp.peers[1]`},
		{"RR without cluster ID", "bgp: {nodeIPv4: 198.18.0.1, peers: [{peerIP: 198.18.0.9, asNumber: 64512, routeReflectorClient: true}]}", `routeReflector`},
		{"bad prefix", "bgp: {nodeIPv4: 198.18.0.1, advertise: [198.19.0.0/33]}", `bgp.advertise[0]: "198.19.0.0/33": not a prefix`},
		{"host bits", "bgp: {nodeIPv4: 198.18.0.1, advertise: [198.19.0.1/26]}", `bgp.advertise[0]: "198.19.0.1/26": host bits set (want 198.19.0.0/26)`},
		{"dup prefix", "bgp: {nodeIPv4: 198.18.0.1, advertise: [198.19.0.0/26, 198.19.0.0/26]}", `bgp.advertise[1]: "198.19.0.0/26": also bgp.advertise[0]`},
		{"vxlan without vxlan", "bgp: {nodeIPv4: 198.18.0.1, vxlan: [{addresses: [198.18.0.2], mac: '02:00:00:00:00:01'}]}", `vxlan: bgp.vxlan needs the node's vxlan: section`},
		{"vxlan bad mac", "vxlan: {}\nbgp: {nodeIPv4: 198.18.0.1, vxlan: [{addresses: [198.18.0.2], mac: 'zz'}]}", `bgp.vxlan[0].mac: "zz": not a MAC address`},
		{"vxlan bad address", "vxlan: {}\nbgp: {nodeIPv4: 198.18.0.1, vxlan: [{addresses: [fe80::1], mac: '02:00:00:00:00:01'}]}", `bgp.vxlan[0].addresses[0]: "fe80::1": not a unicast address`},
		{"vxlan no address", "vxlan: {}\nbgp: {nodeIPv4: 198.18.0.1, vxlan: [{mac: '02:00:00:00:00:01'}]}", `bgp.vxlan[0].addresses: at least one node address is required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Resolve(Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
