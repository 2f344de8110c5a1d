package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvs-project/xvs/bgp"
	"github.com/xvs-project/xvs/cniserver"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// RouteApplier is the switch's batched route entry point
// (*vswitch.Switch.ApplyRoutes); BGP needs it of the dataplane.
type RouteApplier interface {
	ApplyRoutes(origin fib.Origin, adds []spec.Route, dels []netip.Prefix) error
}

// routeSink turns the speaker's best routes into the switch's routes of
// origin bgp: natively via the BGP next hop (the switch picks the port
// whose subnet holds it and resolves it through that port's neighbours,
// as for a static route with a via), or into the VXLAN tunnel of the
// node the next hop (or the peer) belongs to, by bgp.vxlan. Routes of
// other origins win: a learned prefix that the config, a pod or the node
// already routes is not installed. The node's own blocks are
// blackholed (the unused part of a block is dropped here, not sent back
// to the default route); more specific pod routes win over them.
//
// The speaker calls ApplyRoutes from one goroutine; SetBlocks comes from
// the daemon. mu serializes them.
type routeSink struct {
	sw    RouteApplier
	fib   func() *fib.FIB // may return nil
	log   *slog.Logger
	vxlan map[netip.Addr]spec.VXLANRoute

	mu     sync.Mutex
	blocks map[netip.Prefix]bool // the node's blocks, blackholed

	refused, shadowed atomic.Uint64
}

func newRouteSink(sw RouteApplier, fibOf func() *fib.FIB, vx map[netip.Addr]spec.VXLANRoute, log *slog.Logger) *routeSink {
	return &routeSink{sw: sw, fib: fibOf, log: log, vxlan: vx, blocks: map[netip.Prefix]bool{}}
}

// route is what r becomes in the switch, false when it cannot be routed.
func (s *routeSink) route(r bgp.Route) (spec.Route, bool) {
	if len(r.NextHops) == 0 || !r.NextHops[0].IsValid() {
		return spec.Route{}, false
	}
	nh := r.NextHops[0]
	vx, ok := s.vxlan[nh]
	if !ok {
		vx, ok = s.vxlan[r.Peer]
	}
	if ok {
		// One tunnel per route: of an equal-cost set, the first
		// (sorted, so the same on every node).
		return spec.Route{Prefix: r.Prefix, VXLAN: &vx}, true
	}
	sr := spec.Route{Prefix: r.Prefix, Via: nh}
	if len(r.NextHops) > 1 {
		sr.ECMP = r.NextHops[1:] // valid only during the call, as adds is: ApplyRoutes copies
	}
	return sr, true
}

// origin returns who routes p in the FIB, false if nobody does. The FIB
// is the record of what the sink installed: a prefix of origin bgp that
// is not one of the node's blocks is a learned route.
func (s *routeSink) origin(p netip.Prefix) (fib.Origin, bool) {
	if s.fib == nil {
		return 0, false
	}
	f := s.fib()
	if f == nil {
		return 0, false
	}
	r, ok := f.Get(0, p)
	return r.Origin, ok
}

func (s *routeSink) otherOrigin(p netip.Prefix) bool {
	o, ok := s.origin(p)
	return ok && o != fib.OriginBGP
}

func (s *routeSink) learned(p netip.Prefix) bool {
	o, ok := s.origin(p)
	return ok && o == fib.OriginBGP && !s.blocks[p]
}

// ApplyRoutes implements bgp.RouteSink. A route the switch refuses (a
// next hop on no port's subnet, a tunnel the switch lacks) is logged,
// counted and left out, and a route of the same prefix installed before
// is taken out: its old next hop is no longer the best. Refused routes
// are not retried until BGP changes them again.
func (s *routeSink) ApplyRoutes(adds []bgp.Route, dels []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sadds := make([]spec.Route, 0, len(adds))
	for _, r := range adds {
		if s.blocks[r.Prefix] {
			continue // the node's own block
		}
		sr, ok := s.route(r)
		if !ok {
			s.refused.Add(1)
			continue
		}
		if s.otherOrigin(r.Prefix) {
			s.shadowed.Add(1)
			continue
		}
		sadds = append(sadds, sr)
	}
	var added map[netip.Prefix]bool // the speaker coalesces by prefix; this is a guard
	if len(dels) > 0 && len(sadds) > 0 {
		added = make(map[netip.Prefix]bool, len(sadds))
		for _, r := range sadds {
			added[r.Prefix] = true
		}
	}
	var sdels []netip.Prefix
	for _, p := range dels {
		if !added[p] && s.learned(p) {
			sdels = append(sdels, p)
		}
	}
	for range len(sadds) + len(sdels) + 1 {
		err := s.sw.ApplyRoutes(fib.OriginBGP, sadds, sdels)
		if err == nil {
			return nil
		}
		var re *vswitch.RouteError
		if !errors.As(err, &re) {
			return fmt.Errorf("apply bgp routes: %w", err)
		}
		switch re.Op {
		case "adds":
			r := sadds[re.Index]
			s.refused.Add(1)
			s.log.Warn("bgp route not installed", "prefix", r.Prefix, "via", r.Via, "err", re.Err)
			sadds = slices.Delete(sadds, re.Index, re.Index+1)
			if s.learned(r.Prefix) {
				sdels = append(sdels, r.Prefix)
			}
		case "dels":
			// Gone already, or taken over by another origin: not ours.
			sdels = slices.Delete(sdels, re.Index, re.Index+1)
		default:
			return fmt.Errorf("apply bgp routes: %w", err)
		}
	}
	return errors.New("apply bgp routes: refused without end")
}

// SetBlocks replaces the node's blackholed blocks.
func (s *routeSink) SetBlocks(ps []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[netip.Prefix]bool, len(ps))
	var adds []spec.Route
	var dels []netip.Prefix
	for _, p := range ps {
		want[p] = true
		if !s.blocks[p] {
			if s.otherOrigin(p) {
				continue // the operator routes it: leave it alone
			}
			adds = append(adds, spec.Route{Prefix: p, Blackhole: true})
		}
	}
	for p := range s.blocks {
		if !want[p] {
			dels = append(dels, p)
		}
	}
	if err := s.sw.ApplyRoutes(fib.OriginBGP, adds, dels); err != nil {
		return fmt.Errorf("blackhole node blocks: %w", err)
	}
	for _, p := range dels {
		delete(s.blocks, p)
	}
	for _, r := range adds {
		s.blocks[r.Prefix] = true
	}
	return nil
}

// bgpNode is the daemon's BGP: the speaker, its sink, the prefixes the
// node advertises.
type bgpNode struct {
	cfg     *config.BGPConfig
	speaker *bgp.Speaker
	sink    *routeSink
	log     *slog.Logger

	mu     sync.Mutex     // guards static and blocks, and orders advertise calls
	static []netip.Prefix // bgp.advertise, or what SetAdvertised replaced it with
	blocks []netip.Prefix // IPAM's node blocks (SetNodeBlocks)

	stopWatch func() // ends the IPAM block watcher; nil without IPAM
	watchDone chan struct{}

	stopTrack chan struct{} // ends trackNextHops
	trackDone chan struct{}
}

// startBGP starts the speaker once the switch forwards. With the CNI
// server running, the node's IPAM blocks are advertised beside
// bgp.advertise from the start, and followed as blocks are claimed and
// released.
func (d *Daemon) startBGP(ctx context.Context) error {
	c := d.cfg.BGP
	if c == nil {
		return nil
	}
	ra, ok := d.sw.(RouteApplier)
	if !ok {
		return errors.New("bgp: the dataplane has no ApplyRoutes")
	}
	log := d.log.With("component", "bgp")
	sink := newRouteSink(ra, d.sw.FIB, c.VXLAN, log)
	sp, err := bgp.New(c.Speaker, bgp.Options{Logger: log, GoBGPLevel: slog.LevelWarn, Sink: sink, NextHopUsable: sink.nextHopUsable(d.sw)})
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	b := &bgpNode{cfg: c, speaker: sp, sink: sink, log: log, static: slices.Clone(c.Advertise)}
	var changed <-chan struct{}
	if cs := d.CNI(); cs != nil {
		// Subscribe before reading, so no change falls between.
		var cancel func()
		changed, cancel = cs.SubscribeBlocks()
		blocks, err := cs.NodeBlocks(ctx)
		if errors.Is(err, errNotSynced) {
			// The Kubernetes IPAM store syncs later; its first
			// syncBlocks tells the subscription.
			blocks, err = nil, nil
		}
		if err != nil {
			cancel()
			return fmt.Errorf("bgp: ipam node blocks: %w", err)
		}
		b.blocks = blocks
		b.stopWatch = cancel
	}
	if err := b.advertise(); err != nil {
		if b.stopWatch != nil {
			b.stopWatch()
		}
		return err
	}
	if err := sp.Start(ctx); err != nil {
		if b.stopWatch != nil {
			b.stopWatch()
		}
		return fmt.Errorf("bgp: %w", err)
	}
	d.bgp = b
	b.stopTrack, b.trackDone = make(chan struct{}), make(chan struct{})
	go b.trackNextHops(d.sw, b.stopTrack, b.trackDone)
	if changed != nil {
		b.watchBlocks(d.CNI(), changed)
	}
	return nil
}

// watchBlocks follows the CNI server's node blocks: a block claimed for
// a pod is advertised, a block released is withdrawn.
func (b *bgpNode) watchBlocks(cs *cniserver.Server, changed <-chan struct{}) {
	stop := make(chan struct{})
	cancel := b.stopWatch
	b.watchDone = make(chan struct{})
	b.stopWatch = func() {
		cancel()
		close(stop)
		<-b.watchDone
	}
	go func() {
		defer close(b.watchDone)
		for {
			select {
			case <-stop:
				return
			case <-changed:
			}
			ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
			blocks, err := cs.NodeBlocks(ctx)
			done()
			if err != nil {
				b.log.Warn("bgp: ipam node blocks not read; advertisements unchanged", "err", err)
				continue
			}
			if err := b.setBlocks(blocks); err != nil {
				b.log.Warn("bgp: ipam node blocks not advertised", "blocks", blocks, "err", err)
				continue
			}
			b.log.Info("bgp: advertising the node's ipam blocks", "blocks", blocks)
		}
	}()
}

func (b *bgpNode) setBlocks(ps []netip.Prefix) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blocks = slices.Clone(ps)
	return b.advertiseLocked()
}

// advertise hands the speaker the static prefixes and IPAM's blocks, and
// blackholes them.
func (b *bgpNode) advertise() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.advertiseLocked()
}

func (b *bgpNode) advertiseLocked() error {
	ps := slices.Clone(b.static)
	for _, p := range b.blocks {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	if err := b.sink.SetBlocks(ps); err != nil {
		return err
	}
	if err := b.speaker.SetPrefixes(ps); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	return nil
}

// SetNodeBlocks replaces the IPAM blocks the node advertises (the CNI
// server's, which the daemon follows by itself; the Kubernetes agent may
// call it when blocks come from elsewhere). Without BGP it does nothing.
func (d *Daemon) SetNodeBlocks(ps []netip.Prefix) error {
	if d.bgp == nil {
		return nil
	}
	return d.bgp.setBlocks(ps)
}

// SetAdvertised replaces the static prefixes the node advertises (the
// config's bgp.advertise until then; IPAM's blocks join them), at run
// time through the API's SetBGPAdvertised.
func (d *Daemon) SetAdvertised(ps []netip.Prefix) error {
	if d.bgp == nil {
		return errors.New("bgp is not configured")
	}
	b := d.bgp
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.static
	b.static = slices.Clone(ps)
	if err := b.advertiseLocked(); err != nil {
		b.static = old
		if rerr := b.advertiseLocked(); rerr != nil {
			b.log.Warn("bgp: restoring the advertised prefixes", "err", rerr)
		}
		return err
	}
	return nil
}

// BGP returns the running speaker, or nil without a bgp: section.
func (d *Daemon) BGP() *bgp.Speaker {
	if d.bgp == nil {
		return nil
	}
	return d.bgp.speaker
}

func (d *Daemon) stopBGP() {
	if d.bgp != nil {
		if d.bgp.stopWatch != nil {
			d.bgp.stopWatch()
		}
		if d.bgp.stopTrack != nil {
			close(d.bgp.stopTrack)
			<-d.bgp.trackDone
		}
		d.bgp.speaker.Close()
	}
}

// bgpCollectors are the speaker's metrics and the sink's.
func (d *Daemon) bgpCollectors() []prometheus.Collector {
	if d.bgp == nil {
		return nil
	}
	s := d.bgp.sink
	return []prometheus.Collector{
		d.bgp.speaker.Collector(),
		advertisedCollector{d.bgp.speaker},
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "xvs_bgp_routes_refused_total",
			Help: "Learned routes the switch could not install (next hop on no port's subnet, no tunnel).",
		}, func() float64 { return float64(s.refused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "xvs_bgp_routes_shadowed_total",
			Help: "Learned routes left out because another origin (static, pod, local) routes the prefix.",
		}, func() float64 { return float64(s.shadowed.Load()) }),
	}
}

var descAdvertised = prometheus.NewDesc("xvs_bgp_peer_advertised_routes",
	"Prefixes advertised to the peer (Adj-RIB-Out); read per scrape, so it costs a listing per peer.", []string{"peer"}, nil)

// advertisedCollector adds what the speaker's collector leaves out for
// cost: the advertised prefixes per peer (a node advertises its few
// blocks, so the listing is short).
type advertisedCollector struct{ sp *bgp.Speaker }

func (c advertisedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descAdvertised }

func (c advertisedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.sp.Status(ctx)
	if err != nil {
		return
	}
	for _, p := range st.Peers {
		ch <- prometheus.MustNewConstMetric(descAdvertised, prometheus.GaugeValue, float64(p.Advertised), p.Address.String())
	}
}
