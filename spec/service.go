package spec

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Protocol is a service port's transport protocol, by its IP protocol
// number.
type Protocol uint8

const (
	ProtoTCP  Protocol = 6
	ProtoUDP  Protocol = 17
	ProtoSCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	}
	return "protocol " + strconv.Itoa(int(p))
}

// ParseProtocol reads a protocol as Kubernetes spells it (TCP, UDP, SCTP;
// also lower case).
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "TCP", "tcp":
		return ProtoTCP, nil
	case "UDP", "udp":
		return ProtoUDP, nil
	case "SCTP", "sctp":
		return ProtoSCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (TCP or UDP)", s)
}

// DefaultAffinityTimeout is Kubernetes' default
// sessionAffinityConfig.clientIP.timeoutSeconds.
const DefaultAffinityTimeout = 10800 * time.Second

// Service is a load-balanced service as a service source (the config
// file, the API, the Kubernetes agent from Services and EndpointSlices)
// hands it to the switch (Switch.SetServices): its virtual addresses,
// its ports and, per port, the backends a new flow may go to. The switch
// translates (DNAT) a packet to a ClusterIP (or to a node address on a
// NodePort) to one backend of the same family, and the replies back.
type Service struct {
	// Name identifies the service ("namespace/name" for Kubernetes'); it
	// keys the backend choice (Maglev) and the affinity table, and names
	// the service in errors and in `xvsctl show services`.
	Name string
	// ClusterIPs are the virtual addresses, at most one per family
	// (dual-stack, IPv4-only, IPv6-only). A packet to one is only ever
	// translated to a backend of its family.
	ClusterIPs []netip.Addr
	Ports      []ServicePort
	// Affinity is sessionAffinity: ClientIP: a client's new flows go to
	// the backend its last flow went to, until AffinityTimeout passes
	// without one (zero: DefaultAffinityTimeout).
	Affinity        bool
	AffinityTimeout time.Duration
	// InternalLocal is internalTrafficPolicy: Local: flows from this
	// node's pods to a ClusterIP go only to this node's backends (none:
	// refused as if the service had no endpoints).
	InternalLocal bool
	// ExternalLocal is externalTrafficPolicy: Local: NodePort flows go
	// only to this node's backends and keep the client's address (no
	// SNAT); otherwise to any backend, SNATed to the node for remote ones.
	ExternalLocal bool
}

// ServicePort is one port of a service and its backends.
type ServicePort struct {
	Name     string // the port's name (may be empty for a single port)
	Protocol Protocol
	Port     uint16 // the port on the ClusterIPs
	// NodePort, when not zero, is the port on the node's addresses.
	NodePort  uint16
	Endpoints []Endpoint
}

// Endpoint is one backend of a service port: an address (of one of the
// service's families) and the port it listens on, with the conditions
// Kubernetes' EndpointSlice gives it.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
	// Local: the backend is on this node (a pod of this switch).
	Local bool
	// Ready, Serving, Terminating are the EndpointSlice conditions. New
	// flows go to ready endpoints; when a service has none, to serving
	// terminating ones (Kubernetes' rule for terminating endpoints).
	// Established flows to an endpoint that leaves the list are reset or
	// time out, as kube-proxy's are.
	Ready, Serving, Terminating bool
}

// Validate checks the rules a service follows on its own: a name; at
// most one ClusterIP per family, each a unicast address; ports with TCP
// or UDP (SCTP is refused: the NAT stage does not translate it), a port
// number, no protocol and port twice; endpoints of a ClusterIP's family
// with a port. It returns every rule broken, as *FieldError, the field
// relative to the service ("ports[1].endpoints[0].addr").
func (s Service) Validate() []error {
	var errs []error
	add := func(field, value, format string, a ...any) {
		errs = append(errs, fieldErr(field, value, format, a...))
	}
	if s.Name == "" {
		add("name", "", "required")
	}
	var has4, has6 bool
	for i, a := range s.ClusterIPs {
		f := fmt.Sprintf("clusterIPs[%d]", i)
		switch {
		case !a.IsValid() || a.Zone() != "" || a.Is4In6() || !a.IsGlobalUnicast():
			add(f, a.String(), "not a unicast address")
			continue
		case a.Is4() && has4, a.Is6() && has6:
			add(f, a.String(), "a second ClusterIP of the same family")
		}
		has4 = has4 || a.Is4()
		has6 = has6 || a.Is6()
	}
	if len(s.Ports) == 0 {
		add("ports", "", "at least one port")
	}
	type pp struct {
		p    Protocol
		port uint16
	}
	seen := map[pp]bool{}
	seenNode := map[pp]bool{}
	for i, p := range s.Ports {
		f := fmt.Sprintf("ports[%d]", i)
		switch p.Protocol {
		case ProtoTCP, ProtoUDP:
		case ProtoSCTP:
			add(f+".protocol", "SCTP", "not supported (TCP or UDP)")
		default:
			add(f+".protocol", p.Protocol.String(), "not TCP or UDP")
		}
		if p.Port == 0 {
			add(f+".port", "", "required (1-65535)")
		} else if seen[pp{p.Protocol, p.Port}] {
			errs = append(errs, &FieldError{Field: f + ".port", Value: strconv.Itoa(int(p.Port)), Num: true,
				Msg: fmt.Sprintf("%s port already used by another port of the service", p.Protocol)})
		}
		seen[pp{p.Protocol, p.Port}] = true
		if p.NodePort != 0 {
			if seenNode[pp{p.Protocol, p.NodePort}] {
				errs = append(errs, &FieldError{Field: f + ".nodePort", Value: strconv.Itoa(int(p.NodePort)), Num: true,
					Msg: "already used by another port of the service"})
			}
			seenNode[pp{p.Protocol, p.NodePort}] = true
		}
		for j, e := range p.Endpoints {
			ef := fmt.Sprintf("%s.endpoints[%d]", f, j)
			switch {
			case !e.Addr.IsValid() || e.Addr.Zone() != "" || e.Addr.Is4In6() || !e.Addr.IsGlobalUnicast():
				add(ef+".addr", e.Addr.String(), "not a unicast address")
			case len(s.ClusterIPs) > 0 && (e.Addr.Is4() && !has4 || e.Addr.Is6() && !has6):
				add(ef+".addr", e.Addr.String(), "no ClusterIP of its family (never translated across families)")
			}
			if e.Port == 0 {
				add(ef+".port", "", "required (1-65535)")
			}
		}
	}
	if s.AffinityTimeout < 0 {
		add("affinityTimeout", s.AffinityTimeout.String(), "negative")
	}
	return errs
}

// NATConfig is the switch's source-NAT policy (Switch.SetNATConfig):
// which pod traffic natOutgoing translates to the node's address, and the
// ports it uses.
type NATConfig struct {
	// Outgoing are the pool CIDRs with natOutgoing: traffic from a source
	// in one to a destination outside every Internal prefix is SNATed to
	// the node's address of its family on the uplink it leaves by.
	Outgoing []netip.Prefix
	// Internal are the prefixes never SNATed to: every pool (NAT or not),
	// the service CIDRs and the node (underlay) CIDRs.
	Internal []netip.Prefix
	// PortMin and PortMax bound the SNAT source ports (zero: 61000-65535,
	// above Linux's default ephemeral range 32768-60999, so that the
	// node's own connections and SNATed flows never share a port).
	PortMin, PortMax uint16
}

// Validate checks the NAT config's prefixes and port range.
func (c NATConfig) Validate() []error {
	var errs []error
	for i, p := range c.Outgoing {
		if !p.IsValid() || p != p.Masked() {
			errs = append(errs, fieldErr(fmt.Sprintf("outgoing[%d]", i), p.String(), "not a prefix without host bits"))
		}
	}
	for i, p := range c.Internal {
		if !p.IsValid() || p != p.Masked() {
			errs = append(errs, fieldErr(fmt.Sprintf("internal[%d]", i), p.String(), "not a prefix without host bits"))
		}
	}
	if (c.PortMin == 0) != (c.PortMax == 0) || c.PortMin > c.PortMax {
		errs = append(errs, &FieldError{Field: "portMin", Value: fmt.Sprintf("%d-%d", c.PortMin, c.PortMax),
			Msg: "port range needs both ends, min <= max"})
	} else if c.PortMin != 0 && c.PortMin < 1024 {
		errs = append(errs, &FieldError{Field: "portMin", Value: strconv.Itoa(int(c.PortMin)), Num: true,
			Msg: "below 1024"})
	}
	return errs
}
