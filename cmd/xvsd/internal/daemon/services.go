package daemon

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/kube/services"
	"github.com/xvs-project/xvs/spec"
)

// ServiceSwitch is the switch's NAT stage; *vswitch.Switch is one. A
// dataplane without it runs no services (the API says so).
type ServiceSwitch interface {
	SetServices([]spec.Service) error
	Services() []spec.Service
	SetNATConfig(spec.NATConfig) error
	NATConfig() spec.NATConfig
	Conntrack() *conntrack.Table
}

// svcState merges the three service sources (the file, the API, the
// Kubernetes agent) into the switch's one set, and keeps the pools the
// NAT policy follows.
type svcState struct {
	sw ServiceSwitch

	mu      sync.Mutex
	bySrc   map[string][]spec.Service
	kpools  []ipam.Pool // the Kubernetes agent's IPPools
	natSet  bool        // SetNATConfig was called once (the table exists)
	natLast spec.NATConfig
}

// startServices applies the file's services and NAT policy.
func (d *Daemon) startServices() error {
	sw, ok := d.sw.(ServiceSwitch)
	if !ok {
		if len(d.cfg.Services) > 0 {
			return errors.New("services: this dataplane has no NAT stage")
		}
		return nil
	}
	d.svc = &svcState{sw: sw, bySrc: map[string][]spec.Service{}}
	if len(d.cfg.Services) > 0 {
		if err := d.svc.set(api.SourceFile, d.cfg.Services); err != nil {
			return fmt.Errorf("services: %w", err)
		}
	}
	if err := d.applyNAT(); err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	return nil
}

// set replaces one source's services; on an error the switch keeps the
// set it had.
func (s *svcState) set(src string, svcs []spec.Service) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.bySrc[src]
	s.bySrc[src] = svcs
	if err := s.sw.SetServices(s.allLocked()); err != nil {
		s.bySrc[src] = old
		return err
	}
	return nil
}

func (s *svcState) allLocked() []spec.Service {
	var all []spec.Service
	for _, src := range []string{api.SourceFile, api.SourceAPI, api.SourceKube} {
		all = append(all, s.bySrc[src]...)
	}
	return all
}

// applyNAT computes the NAT policy from the file's and the agent's pools
// and hands it to the switch when it changed. A node without a
// natOutgoing pool never allocates the conntrack table for NAT alone.
func (d *Daemon) applyNAT() error {
	s := d.svc
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var pools []ipam.Pool
	if d.cfg.IPAM != nil {
		pools = slices.Clone(d.cfg.IPAM.Pools)
	}
	for _, p := range s.kpools {
		if !slices.ContainsFunc(pools, func(q ipam.Pool) bool { return q.Name == p.Name }) {
			pools = append(pools, p)
		}
	}
	n := d.cfg.NATFor(pools)
	if !s.natSet && len(n.Outgoing) == 0 {
		return nil
	}
	if s.natSet && natEqual(n, s.natLast) {
		return nil
	}
	if err := s.sw.SetNATConfig(n); err != nil {
		return err
	}
	s.natSet, s.natLast = true, n
	d.log.Info("nat policy set", "outgoing", n.Outgoing, "internal", n.Internal)
	return nil
}

func natEqual(a, b spec.NATConfig) bool {
	return slices.Equal(a.Outgoing, b.Outgoing) && slices.Equal(a.Internal, b.Internal) && a.PortMin == b.PortMin && a.PortMax == b.PortMax
}

// setKubePools is the agent's pool change: the NAT policy follows.
func (d *Daemon) setKubePools(ps []ipam.Pool) error {
	if d.svc == nil {
		return nil
	}
	d.svc.mu.Lock()
	d.svc.kpools = slices.Clone(ps)
	d.svc.mu.Unlock()
	return d.applyNAT()
}

// svcBackend is the services API's view of the daemon.
type svcBackend struct{ d *Daemon }

func (b svcBackend) SetAPIServices(svcs []spec.Service) error {
	return b.d.svc.set(api.SourceAPI, svcs)
}

func (b svcBackend) AllServices() []api.SourcedService {
	s := b.d.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []api.SourcedService
	for _, src := range []string{api.SourceFile, api.SourceAPI, api.SourceKube} {
		for _, v := range s.bySrc[src] {
			out = append(out, api.SourcedService{Service: v, Source: src})
		}
	}
	return out
}

func (b svcBackend) NATConfig() spec.NATConfig   { return b.d.svc.sw.NATConfig() }
func (b svcBackend) Conntrack() *conntrack.Table { return b.d.svc.sw.Conntrack() }

// kubeSvcSink is the Kubernetes watcher's sink.
type kubeSvcSink struct{ s *svcState }

func (k kubeSvcSink) SetServices(svcs []spec.Service) error { return k.s.set(api.SourceKube, svcs) }

// newKubeServices builds the Services/EndpointSlices watcher when the
// agent runs and the switch has a NAT stage.
func (d *Daemon) newKubeServices(kc kubernetes.Interface, node string) (*services.Watcher, error) {
	if d.svc == nil {
		return nil, nil
	}
	return services.New(services.Options{Client: kc, Node: node, Sink: kubeSvcSink{d.svc}, Logger: d.log.With("component", "kube-services")})
}
