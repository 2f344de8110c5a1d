package spec

import (
	"net/netip"
	"strings"
	"testing"
)

func TestServiceValidate(t *testing.T) {
	ok := Service{
		Name:       "default/web",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("198.19.0.10"), netip.MustParseAddr("fd00:96::10")},
		Ports: []ServicePort{{Name: "http", Protocol: ProtoTCP, Port: 80, NodePort: 30080, Endpoints: []Endpoint{
			{Addr: netip.MustParseAddr("198.18.1.5"), Port: 8080, Ready: true},
			{Addr: netip.MustParseAddr("fd00:1::5"), Port: 8080, Ready: true},
		}}, {Name: "dns", Protocol: ProtoUDP, Port: 80}},
	}
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatalf("valid service refused: %v", errs)
	}
	for _, c := range []struct {
		name string
		mod  func(*Service)
		want string
	}{
		{"no name", func(s *Service) { s.Name = "" }, "name: required"},
		{"two v4", func(s *Service) { s.ClusterIPs = append(s.ClusterIPs, netip.MustParseAddr("198.19.0.11")) }, `clusterIPs[2]: "198.19.0.11": a second ClusterIP`},
		{"mapped", func(s *Service) { s.ClusterIPs[0] = netip.MustParseAddr("::ffff:198.19.0.10") }, "clusterIPs[0]"},
		{"sctp", func(s *Service) { s.Ports[1].Protocol = ProtoSCTP }, `ports[1].protocol: "SCTP": not supported`},
		{"dup port", func(s *Service) { s.Ports[1].Protocol = ProtoTCP }, "ports[1].port: 80: TCP port already used"},
		{"no port", func(s *Service) { s.Ports[0].Port = 0 }, "ports[0].port: required"},
		{"cross family", func(s *Service) { s.ClusterIPs = s.ClusterIPs[:1] }, `ports[0].endpoints[1].addr: "fd00:1::5": no ClusterIP of its family`},
		{"endpoint port", func(s *Service) { s.Ports[0].Endpoints[0].Port = 0 }, "ports[0].endpoints[0].port: required"},
	} {
		s := ok
		s.ClusterIPs = append([]netip.Addr(nil), ok.ClusterIPs...)
		s.Ports = append([]ServicePort(nil), ok.Ports...)
		s.Ports[0].Endpoints = append([]Endpoint(nil), ok.Ports[0].Endpoints...)
		c.mod(&s)
		errs := s.Validate()
		var all []string
		for _, e := range errs {
			all = append(all, e.Error())
		}
		if !strings.Contains(strings.Join(all, "\n"), c.want) {
			t.Errorf("%s: errors %q, want one containing %q", c.name, all, c.want)
		}
	}
}

func TestNATConfigValidate(t *testing.T) {
	if errs := (NATConfig{Outgoing: []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18")}}).Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	for _, c := range []NATConfig{
		{Outgoing: []netip.Prefix{netip.MustParsePrefix("198.18.64.1/18")}},
		{PortMin: 61000},
		{PortMin: 100, PortMax: 200},
		{PortMin: 2000, PortMax: 1000},
	} {
		if len(c.Validate()) == 0 {
			t.Errorf("%+v accepted", c)
		}
	}
}
