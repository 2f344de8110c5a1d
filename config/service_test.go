package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/spec"
)

func TestServicesSection(t *testing.T) {
	f, err := Parse([]byte(`
ports:
  - {name: eth0, kind: uplink, addresses: [198.18.0.1/24, "fd00:1::1/64", "fe80::1/64"]}
services:
  - name: default/web
    clusterIPs: [198.19.128.10, "fd00:96::10"]
    sessionAffinity: ClientIP
    timeoutSeconds: 60
    internalTrafficPolicy: Local
    externalTrafficPolicy: Local
    ports:
      - name: http
        port: 80
        nodePort: 30080
        endpoints:
          - {addr: 198.18.1.5, port: 8080, local: true}
          - {addr: "fd00:10::5", port: 8080, ready: false, serving: true, terminating: true}
          - {addr: 198.18.1.6, port: 8080, ready: false}
      - {name: dns, protocol: UDP, port: 53}
  - name: v6only
    clusterIPs: ["fd00:96::11"]
    ports: [{port: 443}]
nat:
  portMin: 62000
  internal: [198.19.128.0/20, "fd00:96::/112"]
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.Service{{
		Name:       "default/web",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("198.19.128.10"), netip.MustParseAddr("fd00:96::10")},
		Affinity:   true, AffinityTimeout: time.Minute, InternalLocal: true, ExternalLocal: true,
		Ports: []spec.ServicePort{
			{Name: "http", Protocol: spec.ProtoTCP, Port: 80, NodePort: 30080, Endpoints: []spec.Endpoint{
				{Addr: netip.MustParseAddr("198.18.1.5"), Port: 8080, Local: true, Ready: true, Serving: true},
				{Addr: netip.MustParseAddr("fd00:10::5"), Port: 8080, Serving: true, Terminating: true},
				{Addr: netip.MustParseAddr("198.18.1.6"), Port: 8080},
			}},
			{Name: "dns", Protocol: spec.ProtoUDP, Port: 53},
		},
	}, {
		Name: "v6only", ClusterIPs: []netip.Addr{netip.MustParseAddr("fd00:96::11")},
		Ports: []spec.ServicePort{{Protocol: spec.ProtoTCP, Port: 443}},
	}}
	if d := cmp.Diff(want, c.Services, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("services (-want +got):\n%s", d)
	}
	pools := []ipam.Pool{
		{Name: "p4", CIDR: netip.MustParsePrefix("198.18.64.0/18"), NATOutgoing: true},
		{Name: "p6", CIDR: netip.MustParsePrefix("fd00:10::/48")},
	}
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	wantNAT := spec.NATConfig{
		Outgoing: pfx("198.18.64.0/18"),
		Internal: pfx("198.18.0.0/24", "198.18.64.0/18", "198.19.128.0/20", "fd00:1::/64", "fd00:10::/48", "fd00:96::/112"),
		PortMin:  62000, PortMax: DefaultNATPortMax,
	}
	if d := cmp.Diff(wantNAT, c.NATFor(pools), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("NATFor (-want +got):\n%s", d)
	}
}

func TestServicesSectionErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no name", `services: [{clusterIPs: [198.19.128.1], ports: [{port: 80}]}]`, `services[0].name: required`},
		{"bad clusterIP", `services: [{name: a, clusterIPs: [198.19.300.1], ports: [{port: 80}]}]`, `services[0].clusterIPs[0]: "198.19.300.1": not an IP address`},
		{"two v4", `services: [{name: a, clusterIPs: [198.19.128.1, 198.19.128.2], ports: [{port: 80}]}]`, `services[0].clusterIPs[1]: "198.19.128.2": a second ClusterIP of the same family`},
		{"sctp", `services: [{name: a, clusterIPs: [198.19.128.1], ports: [{port: 80, protocol: SCTP}]}]`, `services[0].ports[0].protocol: "SCTP": not supported (TCP or UDP)`},
		{"bad proto", `services: [{name: a, clusterIPs: [198.19.128.1], ports: [{port: 80, protocol: QUIC}]}]`, `services[0].ports[0].protocol: "QUIC": must be TCP or UDP`},
		{"port range", `services: [{name: a, clusterIPs: [198.19.128.1], ports: [{port: 70000}]}]`, `services[0].ports[0].port: 70000: must be 1..65535`},
		{"no port", `services: [{name: a, clusterIPs: [198.19.128.1], ports: [{name: x}]}]`, `services[0].ports[0].port: required (1-65535)`},
		{"no ports", `services: [{name: a, clusterIPs: [198.19.128.1]}]`, `services[0].ports: at least one port`},
		{"affinity", `services: [{name: a, clusterIPs: [198.19.128.1], sessionAffinity: Sticky, ports: [{port: 80}]}]`, `services[0].sessionAffinity: "Sticky": must be None or ClientIP`},
		{"timeout without affinity", `services: [{name: a, clusterIPs: [198.19.128.1], timeoutSeconds: 5, ports: [{port: 80}]}]`, `services[0].timeoutSeconds: 5: only with sessionAffinity: ClientIP`},
		{"timeout", `services: [{name: a, clusterIPs: [198.19.128.1], sessionAffinity: ClientIP, timeoutSeconds: 90000, ports: [{port: 80}]}]`, `services[0].timeoutSeconds: 90000: must be 1..86400`},
		{"policy", `services: [{name: a, clusterIPs: [198.19.128.1], externalTrafficPolicy: local, ports: [{port: 80}]}]`, `services[0].externalTrafficPolicy: "local": must be Cluster or Local`},
		{"endpoint family", `services: [{name: a, clusterIPs: [198.19.128.1], ports: [{port: 80, endpoints: [{addr: "fd00::5", port: 80}]}]}]`, `services[0].ports[0].endpoints[0].addr: "fd00::5": no ClusterIP of its family`},
		{"endpoint addr", `services: [{name: a, clusterIPs: [198.19.128.1], ports: [{port: 80, endpoints: [{addr: pod-a, port: 80}]}]}]`, `services[0].ports[0].endpoints[0].addr: "pod-a": not an IP address`},
		{"endpoint port", `services: [{name: a, clusterIPs: [198.19.128.1], ports: [{port: 80, endpoints: [{addr: 198.18.1.1}]}]}]`, `services[0].ports[0].endpoints[0].port: required (1-65535)`},
		{"dup name", "services: [{name: a, clusterIPs: [198.19.128.1], ports: [{port: 80}]}, {name: a, clusterIPs: [198.19.128.2], ports: [{port: 80}]}]", `services[1].name: "a": duplicate service name (also services[0])`},
		{"nat range", `nat: {portMin: 65000, portMax: 64000}`, `nat.portMin: "65000-64000": port range needs both ends, min <= max`},
		{"nat low", `nat: {portMin: 80, portMax: 1000}`, `nat.portMin: "80-1000": below 1024`},
		{"nat internal", `nat: {internal: [198.19.128.1/20]}`, `nat.internal[0]: "198.19.128.1/20": has host bits set (198.19.128.0/20?)`},
		{"unknown key", `services: [{name: a, clusterIP: 198.19.128.1}]`, `field clusterIP not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err == nil {
				_, err = f.Resolve(Options{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
