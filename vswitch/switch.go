package vswitch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/maglev"
	"github.com/xvs-project/xvs/netmon"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
)

// Errors the API maps to status codes.
var (
	ErrPortExists   = errors.New("port already exists")
	ErrPortNotFound = errors.New("no such port")
	ErrRouteInvalid = errors.New("invalid route")
	ErrNotOwner     = errors.New("route belongs to another origin")
	ErrConfig       = errors.New("invalid switch config")
)

// Option changes how New builds the switch.
type Option func(*Switch)

// WithDrivers replaces the port drivers (DefaultDrivers) the switch opens
// ports with: tests hand it porttest's.
func WithDrivers(r *port.Registry) Option { return func(s *Switch) { s.drivers = r } }

// WithFastPath makes the switch forward with f (and close it) as its XDP
// fast path, rather than load one of its own, when Config.XDPFastPath is
// on.
func WithFastPath(f *xdpprog.FastPath) Option { return func(s *Switch) { s.fast = f } }

// WithMonitor replaces the monitor that follows the kernel's neighbour
// table and links (netmon.Netlink): a netmontest.Monitor leaves the kernel
// alone.
func WithMonitor(m netmon.Monitor) Option { return func(s *Switch) { s.mon = m } }

// WithoutKernelTunnel keeps the switch from creating the kernel's VXLAN
// device under the fast path (tunnel.go): VXLAN then stays with the
// workers.
func WithoutKernelTunnel() Option { return func(s *Switch) { s.noKernelTunnel = true } }

// Switch is the dataplane: ports, workers, the FIB and the control state
// around them. Its methods are safe for concurrent use; they serialize on one
// mutex and change worker state only through the workers' control queues.
type Switch struct {
	cfg     Config
	log     *slog.Logger
	fib     *fib.FIB
	workers []*dataplane.Worker
	drivers *port.Registry
	// mon follows the kernel's neighbours and links; noKernelTunnel
	// keeps the kernel's VXLAN device from being made.
	mon            netmon.Monitor
	noKernelTunnel bool
	events         chan dataplane.Request
	linkCh         chan struct{} // a port.LinkNotifier port changed (links.go)
	ready          atomic.Bool
	closing        atomic.Bool // set first thing in Close: monitors stop complaining
	started        bool
	closed         bool
	stopCh         chan struct{}
	wg             sync.WaitGroup
	nbr            *neighbors
	fast           *xdpprog.FastPath // nil unless cfg.XDPFastPath
	// remotes are the other nodes' destinations in the tc fast path
	// (remote.go); only the event loop touches the map.
	remotes    map[netip.Addr]remoteFast
	remoteAdds atomic.Uint64
	// ktun is the kernel's VXLAN device under the tc fast path (tunnel.go),
	// set once under mu; ktunIndex its ifindex for the event loop.
	ktun      *kernelTunnel
	ktunIndex atomic.Int32
	ktunSrc   atomic.Pointer[tunnelSource] // the device's source addresses, for the event loop
	vx        dataplane.VXLAN              // the node's VTEP once an uplink made it (guarded by mu)

	mu    sync.Mutex // guards ports, byName, routes, frames
	ports map[uint16]*portState
	// frames[w] is how many of worker w's Umem frames its ports keep in
	// their fill rings (the sum of their portState.frames).
	frames []int
	byName map[string]*portState
	routes routeIndex // the FIB's routes by output port

	// fibChanged is the remote fast path's subscription to FIB changes
	// (remote.go); other readers take their own (SubscribeFIB).
	fibChanged <-chan struct{}

	// NAT (service.go): natMu guards services and natCfg; ct is the
	// connection-tracking table, nil until NAT is configured.
	natMu    sync.Mutex
	services []spec.Service
	natCfg   spec.NATConfig
	ct       atomic.Pointer[conntrack.Table]
	aff      *maglev.Affinity
	// backendIDs and serviceIDs keep an endpoint's and a service port's
	// number stable across SetServices (flow marks, affinity keys).
	backendIDs, serviceIDs map[string]uint32
	natCh                  chan struct{}    // an uplink changed: republish (event loop)
	punted                 map[puntKey]bool // the backends in the fast path's punt map
}

// New validates cfg, opens its ports and installs its routes. Call Start to
// begin forwarding and Close to release everything.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Switch, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Switch{
		cfg: cfg, log: log, fib: fib.New(), drivers: defaultDrivers(log), mon: &netmon.Netlink{},
		events: make(chan dataplane.Request, 1024), stopCh: make(chan struct{}), linkCh: make(chan struct{}, 1), natCh: make(chan struct{}, 1),
		remotes: make(map[netip.Addr]remoteFast),
		ports:   make(map[uint16]*portState), byName: make(map[string]*portState),
		routes: newRouteIndex(), frames: make([]int, cfg.Workers),
	}
	for _, o := range opts {
		o(s)
	}
	s.fibChanged, _ = s.fib.Subscribe() // lives as long as the FIB
	s.nbr = newNeighbors(s)
	if !cfg.XDPFastPath && s.fast != nil {
		s.fast.Close()
		s.fast = nil
	}
	if cfg.XDPFastPath && s.fast == nil {
		f, err := xdpprog.NewFastPath(0)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("xdp_fast_path: %w", err)
		}
		s.fast = f
	}
	for i := 0; i < cfg.Workers; i++ {
		w, err := dataplane.NewWorker(i, s.cfg.workerConfig(), s.fib, s.events, log.With("worker", i))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		s.workers = append(s.workers, w)
	}
	dataplane.Connect(s.workers, cfg.FrameSize)
	// Local gateway addresses: echo answered, nothing forwarded to them.
	s.mu.Lock()
	s.applyLocked([]fib.Route{
		{Prefix: netip.PrefixFrom(cfg.GatewayV4, 32), NextHop: fib.NextHop{Kind: fib.KindLocal}, Origin: fib.OriginLocal},
		{Prefix: netip.PrefixFrom(cfg.GatewayV6, 128), NextHop: fib.NextHop{Kind: fib.KindLocal}, Origin: fib.OriginLocal},
	}, nil)
	s.mu.Unlock()
	for i, pc := range cfg.Ports {
		if _, err := s.AddPort(pc); err != nil {
			s.Close()
			return nil, fmt.Errorf("ports[%d] (%s): %w", i, pc.Name, err)
		}
	}
	// The file's routes go in as one batch: all of them or none.
	if err := s.ApplyRoutes(fib.OriginStatic, cfg.Routes, nil); err != nil {
		s.Close()
		var re *RouteError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("routes[%d] (%s): %w", re.Index, re.Prefix, re.Err)
		}
		return nil, err
	}
	return s, nil
}

func (c *Config) validate() error {
	if c.Workers < 1 || c.Workers > 256 {
		return fmt.Errorf("%w: workers: %d: must be 1..256", ErrConfig, c.Workers)
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		return fmt.Errorf("%w: batch_size: %d: must be 1..%d", ErrConfig, c.BatchSize, MaxBatchSize)
	}
	if c.Frames < 2*c.BatchSize*4 {
		return fmt.Errorf("%w: frames: %d: too few for batch size %d", ErrConfig, c.Frames, c.BatchSize)
	}
	if !c.GatewayV4.Is4() {
		return fmt.Errorf("%w: gateway_v4: %s: not an IPv4 address", ErrConfig, c.GatewayV4)
	}
	if !c.GatewayV6.Is6() || c.GatewayV6.Is4In6() {
		return fmt.Errorf("%w: gateway_v6: %s: not an IPv6 address", ErrConfig, c.GatewayV6)
	}
	if len(c.WorkerCPUs) > c.Workers {
		return fmt.Errorf("%w: worker_cpus: %v: %d CPUs for %d workers", ErrConfig, c.WorkerCPUs, len(c.WorkerCPUs), c.Workers)
	}
	for i, cpu := range c.WorkerCPUs {
		if cpu < 0 || cpu >= runtime.NumCPU() {
			return fmt.Errorf("%w: worker_cpus[%d]: %d: this machine has CPUs 0..%d", ErrConfig, i, cpu, runtime.NumCPU()-1)
		}
	}
	if c.ConntrackSize < 0 || c.ConntrackSize > 1<<24 {
		return fmt.Errorf("%w: conntrack_size: %d: must be 0 (default %d) to %d", ErrConfig, c.ConntrackSize, DefaultConntrackSize, 1<<24)
	}
	if c.VXLAN != nil {
		return c.VXLAN.validate()
	}
	return nil
}

// FIB returns the switch's forwarding table.
func (s *Switch) FIB() *fib.FIB { return s.fib }

// SubscribeFIB returns a channel signalled after every change of the
// FIB (fib.FIB.Subscribe): a reader that keeps something in step with the
// routes takes one, as the remote fast path does. cancel ends it.
func (s *Switch) SubscribeFIB() (changed <-chan struct{}, cancel func()) { return s.fib.Subscribe() }

// Ready reports whether the workers run and every configured port is open.
func (s *Switch) Ready() bool { return s.ready.Load() }

// Start starts the workers and the control goroutines.
func (s *Switch) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	s.started = true
	err := s.mon.Start(netmon.Handler{
		Neighbor: s.nbr.update,
		LinkGone: func(ifindex int) { s.portDown(ifindex, "link deleted") },
		Error: func(err error) {
			if !s.closing.Load() {
				s.log.Warn("kernel monitor", "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("kernel monitor: %w", err)
	}
	s.wg.Add(1)
	go s.eventLoop()
	for _, w := range s.workers {
		w.Start()
	}
	s.ready.Store(true)
	return nil
}

// Close stops the workers and closes every port, detaching every XDP
// program the switch attached. It is safe to call more than once.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.closing.Store(true)
	s.ready.Store(false)
	s.mu.Unlock()
	close(s.stopCh)
	s.mon.Close()
	for _, w := range s.workers {
		w.Stop()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, ps := range s.ports {
		if ps.Dev != nil {
			if err := ps.Dev.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close port %s: %w", ps.Name, err))
			}
			ps.Dev, ps.Large = nil, nil
		}
	}
	for _, w := range s.workers {
		w.Close()
	}
	if err := s.ktun.close(); err != nil {
		errs = append(errs, fmt.Errorf("close %s: %w", kernelTunnelName, err))
	}
	s.ktun = nil
	if s.fast != nil {
		errs = append(errs, s.fast.Close())
		s.fast = nil
	}
	return errors.Join(errs...)
}

func (s *Switch) eventLoop() {
	defer s.wg.Done()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-sweep.C:
			s.natSweep()
		case <-s.natCh:
			s.natRefresh()
		case ev := <-s.events:
			switch ev.Kind {
			case dataplane.ReqResolve:
				s.nbr.resolve(ev.Port, ev.Addr)
			case dataplane.ReqLearn:
				s.learned(ev.Port, ev.MAC)
			case dataplane.ReqRemote:
				s.addRemote(ev.Addr)
			}
		case <-s.fibChanged:
			s.recheckRemotes()
		case <-s.linkCh:
			s.applyLinks()
		}
	}
}

// AddPort opens a port and installs its routes.
func (s *Switch) AddPort(pc spec.PortConfig) (spec.PortStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return spec.PortStatus{}, errors.New("switch closed")
	}
	if pc.Name == "" {
		return spec.PortStatus{}, fmt.Errorf("name: empty: %w", ErrConfig)
	}
	if _, ok := s.byName[pc.Name]; ok {
		return spec.PortStatus{}, fmt.Errorf("port %s: %w", pc.Name, ErrPortExists)
	}
	if err := checkMemif(pc); err != nil {
		return spec.PortStatus{}, err
	}
	for i, a := range pc.Addrs {
		if fe := spec.ValidatePortAddr(pc.Kind, a); fe != nil {
			return spec.PortStatus{}, fmt.Errorf("addresses[%d]: %s: %s: %w", i, a, fe.Msg, ErrConfig)
		}
	}
	for _, o := range s.ports {
		if i, j, clash := spec.AddrConflict(pc, o.cfg); clash && o.primary == nil {
			return spec.PortStatus{}, fmt.Errorf("addresses[%d]: %s: overlaps %s of port %s: %w", i, pc.Addrs[i], o.cfg.Addrs[j], o.Name, ErrConfig)
		}
	}
	id := s.freeIDLocked()
	w := s.pickWorkerLocked(pc)
	req := port.OpenRequest{Config: pc, Umem: w.Umem(), Log: s.log.With("port", pc.Name), FrameBudget: s.frameBudgetLocked(w.ID())}
	if pc.Kind == spec.PortPod || pc.Kind == spec.PortUplink {
		// An uplink's program forwards to the node's pods too: frames
		// from the network to a pod skip the socket and the worker.
		req.FastPath = s.fast
	}
	ps := &portState{Port: &dataplane.Port{ID: id, Name: pc.Name, Kind: pc.Kind, Worker: w.ID(), PeerMAC: pc.PeerMAC}, cfg: pc}
	var op port.Opened
	var err error
	w.Do(func() { op, err = s.drivers.Open(req) })
	if err != nil {
		return spec.PortStatus{}, fmt.Errorf("open port %s: %w", pc.Name, err)
	}
	ps.Dev, ps.ifindex, ps.MTU = op.Port, op.Ifindex, op.MTU
	ps.frames = op.Frames
	s.frames[w.ID()] += op.Frames
	if lp, ok := op.Port.(port.LargePort); ok {
		ps.Large = lp
	}
	if pc.MTU > 0 {
		ps.MTU = pc.MTU
	}
	if ps.MTU == 0 {
		ps.MTU = 1500
	}
	ps.MAC = op.MAC
	ps.ICMPSrc4, ps.ICMPSrc6 = s.cfg.GatewayV4.As4(), s.cfg.GatewayV6.As16()
	switch pc.Kind {
	case spec.PortHost:
		ps.MAC = s.cfg.GatewayMAC
		ps.Gateway = true
		ps.NeedLearn = pc.PeerMAC == [6]byte{}
	case spec.PortPod:
		ps.MAC = s.cfg.GatewayMAC
		ps.Gateway = true
		ps.NeedLearn = pc.PeerMAC == [6]byte{}
		if fp, ok := op.Port.(port.FastPathPort); ok && s.fast != nil {
			ps.TCFast = fp.FastPath() == port.FastTC
		}
		for _, a := range pc.Addrs {
			if a.Addr().Is4() {
				ps.Own4 = a.Addr().As4()
			} else {
				ps.Own6 = a.Addr().As16()
			}
		}
	case spec.PortUplink:
		// An AF_PACKET uplink without its tc steering sees copies of
		// what the host gets: it must leave alone what is not its own.
		if st, ok := op.Port.(port.SteeredUplink); ok {
			ps.Passive = !st.Steered()
		}
		for _, a := range pc.Addrs {
			if a.Addr().Is4() && ps.ICMPSrc4 == s.cfg.GatewayV4.As4() {
				ps.ICMPSrc4 = a.Addr().As4()
			}
			if a.Addr().Is6() && !a.Addr().IsLinkLocalUnicast() && ps.ICMPSrc6 == s.cfg.GatewayV6.As16() {
				ps.ICMPSrc6 = a.Addr().As16()
			}
		}
	}
	ps.setStatus(true, op.Port.Mode(), op.Reason)
	s.watchLinkLocked(ps)
	if !ps.linkDown {
		if err := s.installPortRoutesLocked(ps); err != nil {
			op.Port.Close()
			s.frames[w.ID()] -= ps.frames
			return spec.PortStatus{}, err
		}
	}
	s.fastAddLocked(ps)
	s.onAllWorkers(func(x *dataplane.Worker) {
		x.AddPort(ps.Port)
		if ps.Kind == spec.PortHost {
			x.SetHost(ps.ID, ps.PeerMAC)
		}
	})
	s.ports[id] = ps
	s.byName[pc.Name] = ps
	if pc.Kind == spec.PortUplink && pc.Queues > 1 {
		if err := s.addQueuesLocked(ps); err != nil {
			s.delPortLocked(ps)
			return spec.PortStatus{}, err
		}
	}
	s.steerLocked(ps, true)
	if err := s.vxlanUplinkLocked(ps); err != nil {
		s.delPortLocked(ps)
		return spec.PortStatus{}, err
	}
	if pc.Kind == spec.PortUplink {
		s.natChanged()
	}
	s.log.Info("port added", "port", pc.Name, "id", id, "kind", pc.Kind, "mode", op.Port.Mode(), "reason", op.Reason)
	return ps.snapshot(), nil
}

func (s *Switch) freeIDLocked() uint16 {
	for id := uint16(0); ; id++ {
		if _, ok := s.ports[id]; !ok {
			return id
		}
	}
}

// onAllWorkers runs fn on every worker's goroutine, one after another.
func (s *Switch) onAllWorkers(fn func(*dataplane.Worker)) {
	for _, x := range s.workers {
		x.Do(func() { fn(x) })
	}
}

// pickWorkerLocked picks the worker that serves a new port: an uplink's
// by its queue, any other port the worker with the most Umem frames not
// committed to ports' fill rings (fewest ports on a tie).
func (s *Switch) pickWorkerLocked(pc spec.PortConfig) *dataplane.Worker {
	if pc.Kind == spec.PortUplink {
		return s.workers[pc.Queue%len(s.workers)]
	}
	count := make([]int, len(s.workers))
	for _, ps := range s.ports {
		count[ps.Worker]++
	}
	best := 0
	for i := range count {
		if s.frames[i] < s.frames[best] || s.frames[i] == s.frames[best] && count[i] < count[best] {
			best = i
		}
	}
	return s.workers[best]
}

// frameBudgetLocked is how many of worker w's Umem frames a new port may
// keep posted: what its ports' fill rings do not hold, less the worker's
// own working set (workerReserve). Ports hold their fill rings whether
// traffic comes or not, so a worker serves as many ports as its Umem
// has rings for, and a port beyond that is refused, never opened dead.
func (s *Switch) frameBudgetLocked(w int) int {
	if b := s.cfg.Frames - s.workerReserve() - s.frames[w]; b > 0 {
		return b
	}
	return -1 // none left (0 would be no limit)
}

// workerReserve is the frames a worker keeps out of its ports' fill
// rings: the vectors in flight, frames queued in tx rings until their
// completion, replies and segments it builds.
func (s *Switch) workerReserve() int { return 4 * s.cfg.BatchSize }

// steerLocked adds (or removes) a pod port's addresses to every uplink's
// steering program; for a new uplink it adds every pod's addresses.
func (s *Switch) steerLocked(ps *portState, add bool) {
	apply := func(up *portState, pod *portState) {
		st, ok := up.Dev.(port.PrefixSteerer)
		if !ok {
			return
		}
		for _, a := range pod.cfg.Addrs {
			var err error
			if add {
				err = st.AddPrefix(a.Masked())
			} else {
				err = st.RemovePrefix(a.Masked())
			}
			if err != nil {
				s.log.Warn("uplink steering", "uplink", up.Name, "prefix", a, "add", add, "err", err)
			}
		}
	}
	for _, o := range s.ports {
		if o.Dev == nil || o.primary != nil {
			continue // a queue shares its uplink's program
		}
		switch {
		case ps.Kind == spec.PortPod && o.Kind == spec.PortUplink:
			apply(o, ps)
		case ps.Kind == spec.PortUplink && o.Kind == spec.PortPod && add:
			apply(ps, o)
		}
	}
}

// learned installs a pod's routes once its MAC is known from its traffic.
func (s *Switch) learned(id uint16, mac [6]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.ports[id]
	if ps == nil || ps.PeerMAC != ([6]byte{}) || ps.linkDown {
		return
	}
	ps.PeerMAC = mac
	if ps.Kind == spec.PortHost {
		s.onAllWorkers(func(x *dataplane.Worker) { x.SetHostMAC(mac) })
		s.log.Info("host MAC learned", "port", ps.Name, "mac", fmtMAC(mac))
		return
	}
	if err := s.applyLocked(s.podRoutes(ps), nil); err != nil {
		s.log.Warn("install learned pod routes", "port", ps.Name, "err", err)
		return
	}
	s.fastAddLocked(ps)
	s.log.Info("pod MAC learned", "port", ps.Name, "mac", fmtMAC(mac))
}

// addQueuesLocked opens an uplink's further queues: one AF_XDP socket each,
// in the first queue's steering program, each served by worker
// queue%Workers. A worker that serves one of them sends what it routes to
// the uplink through its own queue, so the uplink needs no cross-worker
// handoff.
func (s *Switch) addQueuesLocked(ps *portState) error {
	qo, ok := ps.Dev.(port.QueueOpener)
	if !ok {
		return fmt.Errorf("uplink %s: several queues need AF_XDP, the port runs %s: %w", ps.Name, ps.Dev.Mode(), ErrConfig)
	}
	for q := ps.cfg.Queue + 1; q < ps.cfg.Queue+ps.cfg.Queues; q++ {
		qc := ps.cfg
		qc.Name, qc.Queue, qc.Queues, qc.Addrs = ps.cfg.Name, q, 1, nil
		w := s.workers[q%len(s.workers)]
		req := port.OpenRequest{Config: qc, Umem: w.Umem(), Log: s.log.With("port", qc.Name, "queue", q), FastPath: s.fast, FrameBudget: s.frameBudgetLocked(w.ID())}
		var op port.Opened
		var err error
		w.Do(func() { op, err = qo.OpenQueue(req) })
		if err != nil {
			return fmt.Errorf("uplink %s queue %d: %w", ps.Name, q, err)
		}
		id := s.freeIDLocked()
		name := fmt.Sprintf("%s/q%d", ps.Name, q)
		qs := &portState{
			Port: &dataplane.Port{
				ID: id, Name: name, Kind: spec.PortUplink, Worker: w.ID(), Dev: op.Port,
				MTU: ps.MTU, MAC: ps.MAC, ICMPSrc4: ps.ICMPSrc4, ICMPSrc6: ps.ICMPSrc6,
			},
			cfg: qc, ifindex: ps.ifindex, primary: ps, frames: op.Frames,
		}
		s.frames[w.ID()] += op.Frames
		qs.setStatus(true, op.Port.Mode(), op.Reason)
		s.onAllWorkers(func(x *dataplane.Worker) {
			x.AddPort(qs.Port)
			if x.ID() == qs.Worker && x.ID() != ps.Worker {
				x.MapPort(ps.ID, qs.Port) // this worker's way out to the uplink
			}
		})
		s.ports[id] = qs
		s.byName[name] = qs
		ps.queues = append(ps.queues, qs)
		s.log.Info("uplink queue added", "port", name, "id", id, "worker", w.ID(), "mode", op.Port.Mode())
	}
	return nil
}

// DelPort removes a port, its routes and its steering entries (an uplink
// with its queues).
func (s *Switch) DelPort(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, ok := s.byName[name]
	if !ok {
		return fmt.Errorf("port %s: %w", name, ErrPortNotFound)
	}
	if ps.primary != nil {
		return fmt.Errorf("port %s is a queue of %s: delete %s: %w", name, ps.primary.Name, ps.primary.Name, ErrConfig)
	}
	return s.delPortLocked(ps)
}

func (s *Switch) delPortLocked(ps *portState) error {
	name := ps.Name
	var errs []error
	for _, qs := range ps.queues {
		s.onAllWorkers(func(x *dataplane.Worker) { x.RemovePort(qs.Port) })
		if qs.Dev != nil {
			errs = append(errs, qs.Dev.Close())
			qs.Dev = nil
		}
		s.frames[qs.Worker] -= qs.frames
		qs.frames = 0
		delete(s.ports, qs.ID)
		delete(s.byName, qs.Name)
	}
	ps.queues = nil
	s.onAllWorkers(func(x *dataplane.Worker) {
		x.RemovePort(ps.Port)
		if ps.Kind == spec.PortHost {
			x.ClearHost(ps.ID)
		}
	})
	s.fastDelLocked(ps)
	if err := s.applyLocked(nil, s.portRouteKeysLocked(ps)); err != nil {
		s.log.Warn("remove port routes", "port", name, "err", err)
	}
	s.steerLocked(ps, false)
	if ps.Dev != nil {
		errs = append(errs, ps.Dev.Close())
		ps.Dev, ps.Large = nil, nil
	}
	s.frames[ps.Worker] -= ps.frames
	ps.frames = 0
	delete(s.ports, ps.ID)
	delete(s.byName, name)
	if ps.Kind == spec.PortUplink {
		s.natChanged()
	}
	s.log.Info("port deleted", "port", name)
	return errors.Join(errs...)
}

// portDown takes a port out of service (its link went away) but keeps it
// listed with the reason, so `show ports` says what happened.
func (s *Switch) portDown(ifindex int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.ports {
		if ps.ifindex != ifindex || ps.Dev == nil {
			continue
		}
		s.fastDelLocked(ps)
		s.onAllWorkers(func(x *dataplane.Worker) { x.RemovePort(ps.Port) })
		mode := ps.Dev.Mode()
		if err := ps.Dev.Close(); err != nil {
			s.log.Debug("close downed port", "port", ps.Name, "err", err)
		}
		ps.Dev, ps.Large = nil, nil
		s.frames[ps.Worker] -= ps.frames
		ps.frames = 0
		ps.setStatus(false, mode, reason)
		s.log.Warn("port down", "port", ps.Name, "reason", reason)
	}
}

// Ports lists every port, sorted by ID.
func (s *Switch) Ports() []spec.PortStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]spec.PortStatus, 0, len(s.ports))
	for _, ps := range s.ports {
		out = append(out, ps.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Neighbors lists the pods' static entries and the uplink's neighbours.
func (s *Switch) Neighbors() []spec.Neighbor {
	s.mu.Lock()
	var out []spec.Neighbor
	for _, ps := range s.ports {
		if ps.Kind != spec.PortPod || ps.PeerMAC == ([6]byte{}) {
			continue
		}
		for _, a := range ps.cfg.Addrs {
			out = append(out, spec.Neighbor{Port: ps.Name, Addr: a.Addr(), MAC: ps.PeerMAC, State: "static", Static: true})
		}
	}
	s.mu.Unlock()
	out = append(out, s.nbr.list()...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Addr.Less(out[j].Addr)
	})
	return out
}

// Counters sums every worker's counters.
func (s *Switch) Counters() dataplane.Counters {
	var c dataplane.Counters
	for _, w := range s.workers {
		w.AddCounters(&c)
	}
	c.Events[dataplane.EvFastRemote] += s.remoteAdds.Load()
	if s.fast != nil {
		if fc, err := s.fast.Counts(); err == nil {
			c.Events[dataplane.EvXDPForwarded4] += fc.XDP4
			c.Events[dataplane.EvXDPForwarded6] += fc.XDP6
			c.Events[dataplane.EvTCForwarded4] += fc.TC4
			c.Events[dataplane.EvTCForwarded6] += fc.TC6
		}
	}
	return c
}

// fastAddLocked makes a pod a destination of the fast path, once its MAC
// is known: on an AF_XDP port, or on an AF_PACKET port whose tc program
// forwards (the two kinds reach each other's pods too).
func (s *Switch) fastAddLocked(ps *portState) {
	if s.fast == nil || ps.Kind != spec.PortPod || ps.PeerMAC == ([6]byte{}) || ps.Dev == nil {
		return
	}
	fp, ok := ps.Dev.(port.FastPathPort)
	if !ok {
		return
	}
	var xdp bool
	switch fp.FastPath() {
	case port.FastXDP:
		xdp = true
	case port.FastTC:
	default:
		return
	}
	for _, a := range ps.cfg.Addrs {
		if err := s.fast.Add(a.Addr(), ps.ifindex, ps.MTU, ps.PeerMAC, s.cfg.GatewayMAC, xdp); err != nil {
			s.log.Warn("xdp fast path: add pod", "port", ps.Name, "addr", a.Addr(), "err", err)
		}
	}
}

// fastDelLocked takes a pod out of the XDP fast path: its frames go
// through a worker again (and find the port gone).
func (s *Switch) fastDelLocked(ps *portState) {
	if s.fast == nil || ps.Kind != spec.PortPod {
		return
	}
	for _, a := range ps.cfg.Addrs {
		if err := s.fast.Remove(a.Addr()); err != nil {
			s.log.Warn("xdp fast path: remove pod", "port", ps.Name, "addr", a.Addr(), "err", err)
		}
	}
	if ps.ifindex > 0 {
		s.fast.RemoveDev(ps.ifindex)
	}
}

func (s *Switch) portByID(id uint16) *portState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ports[id]
}

// natChanged asks the event loop to rebuild the NAT state (an uplink's
// addresses are the node's), when NAT is configured.
func (s *Switch) natChanged() {
	if s.ct.Load() == nil {
		return
	}
	select {
	case s.natCh <- struct{}{}:
	default:
	}
}

func fmtMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
