package vswitch

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/maglev"
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

// publishNATLocked builds the NAT stage's state from the services, the
// NAT policy and the uplinks' addresses (NodePorts, SNAT replies), hands
// it to every worker, and deletes the flows of backends that left.
func (s *Switch) publishNATLocked() error {
	ct := s.ct.Load()
	if ct == nil {
		return nil
	}
	if s.aff == nil {
		a, err := maglev.NewAffinity(max(ct.Size()/4, 64))
		if err != nil {
			return err
		}
		s.aff = a
	}
	n := &dataplane.NAT{
		CT: ct, Affinity: s.aff,
		Addrs:    map[dataplane.NATAddrKey]uint8{},
		VIPs:     map[dataplane.NATVIPKey]*dataplane.NATService{},
		Outgoing: s.natCfg.Outgoing, Internal: s.natCfg.Internal,
		PortMin: s.natCfg.PortMin, PortMax: s.natCfg.PortMax,
	}
	if n.PortMin == 0 {
		n.PortMin, n.PortMax = DefaultSNATPortMin, DefaultSNATPortMax
	}
	nodes := s.nodeAddrs()
	for _, a := range nodes {
		n.Addrs[addrKey(a)] |= dataplane.NATAddrNode
	}
	if s.backendIDs == nil {
		s.backendIDs, s.serviceIDs = map[string]uint32{}, map[string]uint32{}
	}
	used := map[uint32]bool{}
	punts := map[puntKey]bool{}
	for _, sv := range s.services {
		for pi, sp := range sv.Ports {
			key := fmt.Sprintf("%s/%s/%d", sv.Name, sp.Protocol, sp.Port)
			sid := s.serviceIDs[key]
			if sid == 0 {
				sid = uint32(len(s.serviceIDs) + 1)
				s.serviceIDs[key] = sid
			}
			timeout := sv.AffinityTimeout
			if timeout == 0 {
				timeout = spec.DefaultAffinityTimeout
			}
			for _, fam := range []bool{true, false} { // IPv4, IPv6
				svc := &dataplane.NATService{
					Name: fmt.Sprintf("%s:%s", sv.Name, portName(sp, pi)), ID: sid,
					Affinity: sv.Affinity, AffTimeout: uint32(timeout / time.Second),
					InternalLocal: sv.InternalLocal, ExternalLocal: sv.ExternalLocal,
				}
				var ready, fallback []dataplane.NATBackend
				for _, e := range sp.Endpoints {
					if e.Addr.Is4() != fam {
						continue
					}
					bk := fmt.Sprintf("%s/%s", sp.Protocol, netip.AddrPortFrom(e.Addr, e.Port))
					id := s.backendIDs[bk]
					if id == 0 {
						id = uint32(len(s.backendIDs) + 1)
						s.backendIDs[bk] = id
					}
					used[id] = true
					be := dataplane.NATBackend{Addr: addr16(e.Addr), Port: e.Port, ID: id, Local: e.Local}
					n.Addrs[addrKey(e.Addr)] |= dataplane.NATAddrBackend
					punts[puntKey{netip.AddrPortFrom(e.Addr, e.Port), uint8(sp.Protocol)}] = true
					switch {
					case e.Ready:
						ready = append(ready, be)
					case e.Serving && e.Terminating:
						fallback = append(fallback, be)
					}
				}
				var err error
				if svc.Ready, err = natPool(ready, false); err == nil {
					if svc.Fallback, err = natPool(fallback, false); err == nil {
						if svc.ReadyLocal, err = natPool(ready, true); err == nil {
							svc.FallbackLocal, err = natPool(fallback, true)
						}
					}
				}
				if err != nil {
					return fmt.Errorf("service %s: %w", sv.Name, err)
				}
				for _, vip := range sv.ClusterIPs {
					if vip.Is4() != fam {
						continue
					}
					n.Addrs[addrKey(vip)] |= dataplane.NATAddrVIP
					n.VIPs[vipKey(vip, sp)] = svc
				}
				if sp.NodePort != 0 {
					np := *svc
					np.NodePort = true
					for _, a := range nodes {
						if a.Is4() == fam {
							k := vipKey(a, sp)
							k.Port = sp.NodePort
							n.VIPs[k] = &np
						}
					}
				}
			}
		}
	}
	n.Index()
	for _, w := range s.workers {
		w.SetNAT(n)
	}
	s.syncPuntsLocked(punts)
	// Flows to backends that left: deleted (their next packets find no
	// flow; a TCP client's retransmissions create none and time out, as
	// behind kube-proxy). The table's marks are backend IDs; 0 is SNAT.
	removed := map[uint32]bool{}
	for k, id := range s.backendIDs {
		if !used[id] {
			removed[id] = true
			delete(s.backendIDs, k)
		}
	}
	if len(removed) > 0 {
		ct.DeleteFunc(ct.Now(), func(e *conntrack.Entry) bool { return removed[e.Mark] })
	}
	return nil
}

// Default natOutgoing SNAT ports (spec.NATConfig).
const (
	DefaultSNATPortMin = 61000
	DefaultSNATPortMax = 65535
)

func portName(sp spec.ServicePort, i int) string {
	if sp.Name != "" {
		return sp.Name
	}
	return fmt.Sprintf("ports[%d]", i)
}

func natPool(all []dataplane.NATBackend, local bool) (dataplane.NATPool, error) {
	var p dataplane.NATPool
	var names []string
	p.ByID = map[uint32]int{}
	for _, b := range all {
		if local && !b.Local {
			continue
		}
		p.ByID[b.ID] = len(p.Backends)
		p.Backends = append(p.Backends, b)
		names = append(names, fmt.Sprint(b.ID))
	}
	t, err := maglev.New(names, 0)
	if err != nil {
		return p, err
	}
	p.Table = t
	return p, nil
}

func addr16(a netip.Addr) [16]byte {
	var b [16]byte
	if a.Is4() {
		v := a.As4()
		copy(b[:4], v[:])
	} else {
		b = a.As16()
	}
	return b
}

func fam8(a netip.Addr) uint8 {
	if a.Is4() {
		return conntrack.IPv4
	}
	return conntrack.IPv6
}

func addrKey(a netip.Addr) dataplane.NATAddrKey {
	return dataplane.NATAddrKey{Addr: addr16(a), Fam: fam8(a)}
}

func vipKey(a netip.Addr, sp spec.ServicePort) dataplane.NATVIPKey {
	return dataplane.NATVIPKey{Addr: addr16(a), Port: sp.Port, Proto: uint8(sp.Protocol), Fam: fam8(a)}
}

// nodeAddrs are the uplinks' global addresses: where NodePorts are and
// what natOutgoing translates to.
func (s *Switch) nodeAddrs() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.Addr
	for _, ps := range s.ports {
		if ps.Kind != spec.PortUplink || ps.primary != nil {
			continue
		}
		for _, a := range ps.cfg.Addrs {
			if a.Addr().IsGlobalUnicast() {
				out = append(out, a.Addr())
			}
		}
	}
	return out
}

// natRefresh rebuilds the NAT state after the uplinks changed (their
// addresses are the node's); from the event loop.
func (s *Switch) natRefresh() {
	s.natMu.Lock()
	defer s.natMu.Unlock()
	if err := s.publishNATLocked(); err != nil {
		s.log.Warn("nat: republish after an uplink change", "err", err)
	}
}

// natSweep expires flows; from the event loop, every second.
func (s *Switch) natSweep() {
	if ct := s.ct.Load(); ct != nil {
		ct.Sweep(ct.Now(), max(ct.Size()/8, 1024))
	}
}

// puntKey is a backend the fast path must leave to the workers.
type puntKey struct {
	src   netip.AddrPort
	proto uint8
}

// syncPuntsLocked makes the fast path's punted sources the backends in
// want: their packets (replies to DNAT) go to the workers, never
// straight from pod to pod (or uplink to pod) in BPF.
func (s *Switch) syncPuntsLocked(want map[puntKey]bool) {
	if s.fast == nil {
		return
	}
	if s.punted == nil {
		s.punted = map[puntKey]bool{}
	}
	for k := range want {
		if s.punted[k] {
			continue
		}
		if err := s.fast.AddPunt(k.src, k.proto); err != nil {
			s.log.Warn("fast path: punt a service backend", "backend", k.src, "err", err)
			continue
		}
		s.punted[k] = true
	}
	for k := range s.punted {
		if want[k] {
			continue
		}
		if err := s.fast.RemovePunt(k.src, k.proto); err != nil {
			s.log.Warn("fast path: unpunt a service backend", "backend", k.src, "err", err)
		}
		delete(s.punted, k)
	}
}
