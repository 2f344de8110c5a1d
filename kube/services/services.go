package services

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/xvs-project/xvs/spec"
)

// Sink takes the whole set of services; xvsd's switch is one.
type Sink interface {
	SetServices([]spec.Service) error
}

// Defaults.
const (
	DefaultDebounce      = 100 * time.Millisecond
	DefaultRetryInterval = 5 * time.Second
)

// Options configure a Watcher.
type Options struct {
	Client kubernetes.Interface
	// Node is this node's name: endpoints on it are Local.
	Node string
	Sink Sink
	// Debounce gathers a burst of changes into one SetServices
	// (default DefaultDebounce).
	Debounce time.Duration
	// RetryInterval is how soon a refused set is tried again without a
	// change (default DefaultRetryInterval).
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// Stats are the watcher's counters.
type Stats struct {
	Services     int   `json:"services"`     // in the last set applied
	Applies      int64 `json:"applies"`      // SetServices calls that succeeded
	ApplyErrors  int64 `json:"applyErrors"`  // SetServices calls refused
	SkippedPorts int64 `json:"skippedPorts"` // SCTP ports left out (once per Service version)
	Refused      int64 `json:"refused"`      // services Validate refused (once per version)
	Synced       bool  `json:"synced"`
}

// Watcher runs the informers and applies their state.
type Watcher struct {
	opt     Options
	log     *slog.Logger
	factory informers.SharedInformerFactory
	svcs    cache.SharedIndexInformer
	eps     cache.SharedIndexInformer
	kick    chan struct{}

	services     atomic.Int64
	applies      atomic.Int64
	applyErrors  atomic.Int64
	skippedPorts atomic.Int64
	refused      atomic.Int64
	synced       atomic.Bool

	mu     sync.Mutex
	warned map[string]bool // "ns/name@resourceVersion" already logged
}

// New builds a watcher; Run starts it.
func New(opt Options) (*Watcher, error) {
	if opt.Client == nil || opt.Sink == nil {
		return nil, errors.New("services: Client and Sink are required")
	}
	if opt.Debounce <= 0 {
		opt.Debounce = DefaultDebounce
	}
	if opt.RetryInterval <= 0 {
		opt.RetryInterval = DefaultRetryInterval
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{opt: opt, log: opt.Logger, kick: make(chan struct{}, 1), warned: map[string]bool{}}
	w.factory = informers.NewSharedInformerFactory(opt.Client, 0)
	w.svcs = w.factory.Core().V1().Services().Informer()
	w.eps = w.factory.Discovery().V1().EndpointSlices().Informer()
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{w.svcs, w.eps} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *Watcher) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Stats reads the counters.
func (w *Watcher) Stats() Stats {
	return Stats{
		Services: int(w.services.Load()), Applies: w.applies.Load(), ApplyErrors: w.applyErrors.Load(),
		SkippedPorts: w.skippedPorts.Load(), Refused: w.refused.Load(), Synced: w.synced.Load(),
	}
}

// Run watches until ctx is done. The first set is applied once both
// caches synced.
func (w *Watcher) Run(ctx context.Context) {
	w.factory.Start(ctx.Done())
	defer w.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), w.svcs.HasSynced, w.eps.HasSynced) {
		return
	}
	w.synced.Store(true)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		if err := w.apply(); err != nil {
			w.applyErrors.Add(1)
			w.log.Warn("services refused by the switch, retrying", "err", err, "in", w.opt.RetryInterval)
			retry.Reset(w.opt.RetryInterval)
		} else {
			retry.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry.C:
		}
		// Debounce: let a burst (a Service and its slices) settle.
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.opt.Debounce):
		}
		select {
		case <-w.kick:
		default:
		}
	}
}

// apply converts the caches and hands the set to the sink.
func (w *Watcher) apply() error {
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, o := range w.eps.GetStore().List() {
		es, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		k := es.Namespace + "/" + name
		bySvc[k] = append(bySvc[k], es)
	}
	var out []spec.Service
	for _, o := range w.svcs.GetStore().List() {
		svc, ok := o.(*corev1.Service)
		if !ok {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		s, skipped, ok := Convert(svc, bySvc[key], w.opt.Node)
		if !ok {
			continue
		}
		first := w.firstTime(key + "@" + svc.ResourceVersion)
		for _, p := range skipped {
			if first {
				w.skippedPorts.Add(1)
				w.log.Warn("service port skipped", "service", key, "port", p, "reason", "SCTP is not translated by xvs")
			}
		}
		if errs := s.Validate(); len(errs) > 0 {
			if first {
				w.refused.Add(1)
				w.log.Warn("service refused", "service", key, "err", errors.Join(errs...))
			}
			continue
		}
		if len(s.Ports) == 0 {
			continue // every port skipped
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b spec.Service) int { return cmp.Compare(a.Name, b.Name) })
	if err := w.opt.Sink.SetServices(out); err != nil {
		return err
	}
	w.services.Store(int64(len(out)))
	w.applies.Add(1)
	return nil
}

func (w *Watcher) firstTime(k string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.warned[k] {
		return false
	}
	if len(w.warned) > 10000 {
		clear(w.warned)
	}
	w.warned[k] = true
	return true
}

// Convert turns one Service and its EndpointSlices into a spec.Service.
// ok is false for a Service xvs ignores (headless, ExternalName, no
// ClusterIP); skipped names the SCTP ports left out ("name/SCTP:port").
// The result is not validated.
func Convert(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, node string) (s spec.Service, skipped []string, ok bool) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return s, nil, false
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	s.Name = svc.Namespace + "/" + svc.Name
	var has4, has6 bool
	for _, ip := range ips {
		if ip == corev1.ClusterIPNone {
			return s, nil, false
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			continue // the API server validates; nothing to translate to
		}
		s.ClusterIPs = append(s.ClusterIPs, a)
		has4, has6 = has4 || a.Is4(), has6 || a.Is6()
	}
	if len(s.ClusterIPs) == 0 {
		return s, nil, false
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		s.Affinity = true
		s.AffinityTimeout = spec.DefaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			s.AffinityTimeout = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil && *p == corev1.ServiceInternalTrafficPolicyLocal {
		s.InternalLocal = true
	}
	nodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if nodePorts && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		s.ExternalLocal = true
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		var sp spec.ServicePort
		switch proto {
		case corev1.ProtocolTCP:
			sp.Protocol = spec.ProtoTCP
		case corev1.ProtocolUDP:
			sp.Protocol = spec.ProtoUDP
		default:
			skipped = append(skipped, fmt.Sprintf("%s/%s:%d", p.Name, proto, p.Port))
			continue
		}
		sp.Name, sp.Port = p.Name, uint16(p.Port)
		if nodePorts {
			sp.NodePort = uint16(p.NodePort)
		}
		sp.Endpoints = endpoints(eps, p.Name, proto, has4, has6, node)
		s.Ports = append(s.Ports, sp)
	}
	return s, skipped, true
}

// endpoints are the backends of one service port: every endpoint of a
// slice of a ClusterIP's family, on the slice port of the service port's
// name and protocol, once per address and port, sorted.
func endpoints(eps []*discoveryv1.EndpointSlice, name string, proto corev1.Protocol, has4, has6 bool, node string) []spec.Endpoint {
	var out []spec.Endpoint
	for _, es := range eps {
		switch es.AddressType {
		case discoveryv1.AddressTypeIPv4:
			if !has4 {
				continue
			}
		case discoveryv1.AddressTypeIPv6:
			if !has6 {
				continue
			}
		default:
			continue
		}
		port := uint16(0)
		for _, sp := range es.Ports {
			spProto := corev1.ProtocolTCP
			if sp.Protocol != nil {
				spProto = *sp.Protocol
			}
			spName := ""
			if sp.Name != nil {
				spName = *sp.Name
			}
			if spName == name && spProto == proto && sp.Port != nil && *sp.Port > 0 && *sp.Port <= 65535 {
				port = uint16(*sp.Port)
				break
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range es.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(e.Addresses[0])
			if err != nil || a.Is4() != (es.AddressType == discoveryv1.AddressTypeIPv4) {
				continue
			}
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			serving := ready
			if e.Conditions.Serving != nil {
				serving = *e.Conditions.Serving
			}
			term := e.Conditions.Terminating != nil && *e.Conditions.Terminating
			out = append(out, spec.Endpoint{
				Addr: a, Port: port, Local: e.NodeName != nil && *e.NodeName == node,
				Ready: ready, Serving: serving, Terminating: term,
			})
		}
	}
	slices.SortFunc(out, func(a, b spec.Endpoint) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.Port, b.Port)
	})
	// The same endpoint in two slices (during a slice's rebalancing)
	// counts once.
	return slices.CompactFunc(out, func(a, b spec.Endpoint) bool { return a.Addr == b.Addr && a.Port == b.Port })
}
