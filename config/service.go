package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/spec"
)

// Service is one entry of services:, a load-balanced service set in the
// file (for the lab and for users without a cluster), with Kubernetes'
// field names. See spec.Service for what each field does.
type Service struct {
	Name       string   `yaml:"name"`
	ClusterIPs []string `yaml:"clusterIPs"`
	// SessionAffinity is None (default) or ClientIP.
	SessionAffinity string `yaml:"sessionAffinity"`
	// TimeoutSeconds is sessionAffinityConfig.clientIP.timeoutSeconds
	// (default 10800; ClientIP only).
	TimeoutSeconds int `yaml:"timeoutSeconds"`
	// InternalTrafficPolicy and ExternalTrafficPolicy are Cluster
	// (default) or Local.
	InternalTrafficPolicy string        `yaml:"internalTrafficPolicy"`
	ExternalTrafficPolicy string        `yaml:"externalTrafficPolicy"`
	Ports                 []ServicePort `yaml:"ports"`
}

// ServicePort is one port of a service and its backends.
type ServicePort struct {
	Name      string            `yaml:"name"`
	Protocol  string            `yaml:"protocol"` // TCP (default) or UDP
	Port      int               `yaml:"port"`
	NodePort  int               `yaml:"nodePort"`
	Endpoints []ServiceEndpoint `yaml:"endpoints"`
}

// ServiceEndpoint is one backend with its EndpointSlice conditions.
type ServiceEndpoint struct {
	Addr  string `yaml:"addr"`
	Port  int    `yaml:"port"`
	Local bool   `yaml:"local"`
	// Ready defaults to true; Serving defaults to Ready (Kubernetes'
	// rule for a missing serving condition).
	Ready       *bool `yaml:"ready"`
	Serving     *bool `yaml:"serving"`
	Terminating bool  `yaml:"terminating"`
}

// NAT is the nat: section: the SNAT port range and the prefixes, beyond
// the IPAM pools and the uplinks' subnets, that natOutgoing never
// translates traffic to (the service CIDRs, other node subnets).
type NAT struct {
	PortMin  int      `yaml:"portMin"`
	PortMax  int      `yaml:"portMax"`
	Internal []string `yaml:"internal"`
}

// ResolveServices validates and converts a services: list; field
// prefixes the errors ("services"). The API server uses it for
// SetServices so the file and the API refuse the same values with the
// same words.
func ResolveServices(field string, in []Service) ([]spec.Service, []error) {
	var e errs
	out := make([]spec.Service, 0, len(in))
	names := map[string]int{}
	for i, s := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		svc, ok := resolveService(f, s, &e)
		if s.Name != "" {
			if j, dup := names[s.Name]; dup {
				e.str(f+".name", s.Name, "duplicate service name (also %s[%d])", field, j)
				ok = false
			}
			names[s.Name] = i
		}
		if ok {
			out = append(out, svc)
		}
	}
	return out, e
}

func resolveService(f string, s Service, e *errs) (spec.Service, bool) {
	n := len(*e)
	svc := spec.Service{Name: s.Name}
	raw := map[string]string{}
	for i, a := range s.ClusterIPs {
		af := fmt.Sprintf("%s.clusterIPs[%d]", f, i)
		ip, err := netip.ParseAddr(a)
		if err != nil {
			e.str(af, a, "not an IP address")
			continue
		}
		raw[fmt.Sprintf("clusterIPs[%d]", i)] = a
		svc.ClusterIPs = append(svc.ClusterIPs, ip)
	}
	switch s.SessionAffinity {
	case "", "None":
		if s.TimeoutSeconds != 0 {
			e.num(f+".timeoutSeconds", s.TimeoutSeconds, "only with sessionAffinity: ClientIP")
		}
	case "ClientIP":
		svc.Affinity = true
		switch {
		case s.TimeoutSeconds < 0 || s.TimeoutSeconds > 86400:
			e.num(f+".timeoutSeconds", s.TimeoutSeconds, "must be 1..86400 (Kubernetes' bounds)")
		case s.TimeoutSeconds == 0:
			svc.AffinityTimeout = spec.DefaultAffinityTimeout
		default:
			svc.AffinityTimeout = time.Duration(s.TimeoutSeconds) * time.Second
		}
	default:
		e.str(f+".sessionAffinity", s.SessionAffinity, "must be None or ClientIP")
	}
	policy := func(name, v string) bool {
		switch v {
		case "", "Cluster":
			return false
		case "Local":
			return true
		}
		e.str(f+"."+name, v, "must be Cluster or Local")
		return false
	}
	svc.InternalLocal = policy("internalTrafficPolicy", s.InternalTrafficPolicy)
	svc.ExternalLocal = policy("externalTrafficPolicy", s.ExternalTrafficPolicy)
	for i, p := range s.Ports {
		pf := fmt.Sprintf("%s.ports[%d]", f, i)
		sp := spec.ServicePort{Name: p.Name, Protocol: spec.ProtoTCP}
		if p.Protocol != "" {
			proto, err := spec.ParseProtocol(p.Protocol)
			if err != nil {
				e.str(pf+".protocol", p.Protocol, "must be TCP or UDP")
			}
			sp.Protocol = proto
		}
		if p.Port < 0 || p.Port > 65535 {
			e.num(pf+".port", p.Port, "must be 1..65535")
		} else {
			sp.Port = uint16(p.Port)
		}
		if p.NodePort < 0 || p.NodePort > 65535 {
			e.num(pf+".nodePort", p.NodePort, "must be 1..65535")
		} else {
			sp.NodePort = uint16(p.NodePort)
		}
		for j, ep := range p.Endpoints {
			ef := fmt.Sprintf("%s.endpoints[%d]", pf, j)
			a, err := netip.ParseAddr(ep.Addr)
			if ep.Addr == "" {
				e.missing(ef+".addr", "required")
			} else if err != nil {
				e.str(ef+".addr", ep.Addr, "not an IP address")
			}
			raw[fmt.Sprintf("ports[%d].endpoints[%d].addr", i, j)] = ep.Addr
			se := spec.Endpoint{Addr: a, Local: ep.Local, Ready: true, Terminating: ep.Terminating}
			if ep.Ready != nil {
				se.Ready = *ep.Ready
			}
			se.Serving = se.Ready
			if ep.Serving != nil {
				se.Serving = *ep.Serving
			}
			if ep.Port < 0 || ep.Port > 65535 {
				e.num(ef+".port", ep.Port, "must be 1..65535")
			} else {
				se.Port = uint16(ep.Port)
			}
			sp.Endpoints = append(sp.Endpoints, se)
		}
		svc.Ports = append(svc.Ports, sp)
	}
	if len(*e) > n {
		return svc, false // spec's rules would repeat what is already said
	}
	e.shared(f, svc.Validate(), raw)
	return svc, len(*e) == n
}

// DefaultNATPortMin and DefaultNATPortMax are spec.NATConfig's default
// SNAT port range.
const (
	DefaultNATPortMin = 61000
	DefaultNATPortMax = 65535
)

func resolveNAT(n *NAT, e *errs) spec.NATConfig {
	var c spec.NATConfig
	if n == nil {
		return c
	}
	bad := false
	for _, x := range []struct {
		name string
		v    int
	}{{"nat.portMin", n.PortMin}, {"nat.portMax", n.PortMax}} {
		if x.v < 0 || x.v > 65535 {
			e.num(x.name, x.v, "must be 1024..65535")
			bad = true
		}
	}
	if !bad {
		c.PortMin, c.PortMax = uint16(n.PortMin), uint16(n.PortMax)
		if c.PortMin != 0 || c.PortMax != 0 {
			if c.PortMin == 0 {
				c.PortMin = DefaultNATPortMin
			}
			if c.PortMax == 0 {
				c.PortMax = DefaultNATPortMax
			}
		}
		for _, err := range (spec.NATConfig{PortMin: c.PortMin, PortMax: c.PortMax}).Validate() {
			e.str("nat.portMin", fmt.Sprintf("%d-%d", c.PortMin, c.PortMax), "%s", err.(*spec.FieldError).Msg)
		}
	}
	for i, s := range n.Internal {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			e.str(fmt.Sprintf("nat.internal[%d]", i), s, "want a CIDR such as 198.19.128.0/20")
		case p != p.Masked():
			e.str(fmt.Sprintf("nat.internal[%d]", i), s, "has host bits set (%s?)", p.Masked())
		default:
			c.Internal = append(c.Internal, p)
		}
	}
	return c
}

// NATFor is the switch's NAT policy for the pools in force: the pools
// with natOutgoing are the Outgoing sources; every pool, the nat:
// section's internal prefixes and the uplinks' subnets are Internal
// (never SNATed to). The daemon calls it at start and whenever the
// pools change (the Kubernetes agent's IPPools).
func (c *Config) NATFor(pools []ipam.Pool) spec.NATConfig {
	n := c.NAT
	n.Outgoing = nil
	n.Internal = slices.Clone(c.NAT.Internal)
	for _, p := range pools {
		if p.NATOutgoing {
			n.Outgoing = append(n.Outgoing, p.CIDR.Masked())
		}
		n.Internal = append(n.Internal, p.CIDR.Masked())
	}
	for _, p := range c.Switch.Ports {
		if p.Kind != spec.PortUplink {
			continue
		}
		for _, a := range p.Addrs {
			if !a.Addr().IsLinkLocalUnicast() {
				n.Internal = append(n.Internal, a.Masked())
			}
		}
	}
	sortPrefixes := func(ps []netip.Prefix) []netip.Prefix {
		slices.SortFunc(ps, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		return slices.Compact(ps)
	}
	n.Outgoing = sortPrefixes(n.Outgoing)
	n.Internal = sortPrefixes(n.Internal)
	return n
}
