package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/protobuf/proto"
)

// ErrNotRunning is returned by calls on a speaker that is not started or
// already closed.
var ErrNotRunning = errors.New("bgp speaker not running")

// Options are a speaker's collaborators.
type Options struct {
	// Logger gets the speaker's and GoBGP's logs (GoBGP's at GoBGPLevel
	// and above); nil discards them.
	Logger     *slog.Logger
	GoBGPLevel slog.Level
	// Sink gets the learned routes; required.
	Sink RouteSink
	// BatchDelay is how long the adapter waits for more UPDATEs before
	// handing a burst to the sink; 0 means 2ms.
	BatchDelay time.Duration
	// MaxBatch bounds the routes of one ApplyRoutes call; 0 means 65,536.
	MaxBatch int
	// NextHopUsable, when set, says whether a next hop learned from peer
	// can forward now (xvsd: on a connected subnet of an up port, its
	// neighbour not failed, or a VXLAN node). A prefix is handed to the
	// sink with its usable next hops only, and deleted from it while it
	// has none, until RecheckNextHops finds one usable again. It is
	// called with the adapter's lock held, once per next hop until the
	// next recheck: it must be quick and must not call the Speaker.
	NextHopUsable func(nh, peer netip.Addr) bool
}

// peer type names, as calicoctl prints them.
const (
	TypeMesh           = "node-to-node mesh"
	TypeGlobal         = "global"
	TypeNode           = "node specific"
	TypeRouteReflector = "route reflector"
	TypeRRClient       = "route reflector client"
	// TypeUnknown is a status row for an address that connected without
	// being configured.
	TypeUnknown = "unknown"
)

// wantPeer is a peer the config asks for.
type wantPeer struct {
	typ string
	fam []Family
	api *api.Peer
}

// peerInfo is what the peer events and GoBGP's logs told about a peer.
type peerInfo struct {
	state     gbgp.FSMState
	since     time.Time
	lastError string
	flaps     uint64
	malformed uint64 // UPDATEs treated as withdraw, attributes discarded, or reset for
}

// Speaker is an embedded GoBGP speaker for one node.
type Speaker struct {
	log  *slog.Logger
	opts Options
	rib  *rib

	mu         sync.Mutex // guards the fields below, and serializes reconfiguration
	cfg        Config
	srv        *server.BgpServer
	stopWatch  context.CancelFunc
	stopFlush  chan struct{}
	flushDone  chan struct{}
	peers      map[netip.Addr]wantPeer
	nodePfx    []netip.Prefix
	advertised map[netip.Prefix]*apiutil.Path
	info       map[netip.Addr]*peerInfo    // guarded by infoMu
	unknown    map[netip.Addr]*unknownPeer // guarded by infoMu; at most maxUnknown
	// unknownTotal counts every refused connection from an address that
	// is no configured peer, unknownAddrs the addresses (each counted
	// once while it has a row, again if it comes back after leaving
	// them); guarded by infoMu.
	unknownTotal, unknownAddrs uint64
	started                    time.Time

	infoMu sync.Mutex // guards info (taken from GoBGP's goroutines)

	stopped atomic.Bool // StopBgp already ran: GoBGP's "failed to stop" is expected
}

// New validates cfg and returns a speaker that is not started.
func New(cfg Config, opts Options) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Sink == nil {
		return nil, errors.New("bgp: options.Sink is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BatchDelay == 0 {
		opts.BatchDelay = 2 * time.Millisecond
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 65536
	}
	s := &Speaker{
		log:        opts.Logger,
		opts:       opts,
		cfg:        cfg,
		peers:      map[netip.Addr]wantPeer{},
		advertised: map[netip.Prefix]*apiutil.Path{},
		info:       map[netip.Addr]*peerInfo{},
		unknown:    map[netip.Addr]*unknownPeer{},
	}
	s.rib = newRIB(opts.Logger, opts.Sink, cfg.maxPaths(), opts.BatchDelay, opts.MaxBatch)
	s.rib.usable = opts.NextHopUsable
	return s, nil
}

// Start starts GoBGP (listening on the node's addresses), the adapter,
// the export policy, the configured peers and the advertisements.
func (s *Speaker) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("bgp: speaker already started")
	}
	lv := new(slog.LevelVar)
	lv.Set(s.opts.GoBGPLevel)
	glog := slog.New(&captureHandler{next: s.log.With("component", "gobgp").Handler(), level: lv, s: s})
	srv := server.NewBgpServer(server.LoggerOption(glog, lv))
	go srv.Serve()

	c := &s.cfg
	g := &api.Global{
		Asn:              c.LocalAS(),
		RouterId:         c.routerID().String(),
		ListenPort:       int32(c.listenPort()),
		UseMultiplePaths: c.maxPaths() > 1, // GoBGP's multipath doubles its copies per event: only when asked for
	}
	for _, a := range []netip.Addr{c.NodeIPv4, c.NodeIPv6} {
		if a.IsValid() {
			g.ListenAddresses = append(g.ListenAddresses, a.String())
		}
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		srv.Stop()
		return fmt.Errorf("start bgp: %w", err)
	}
	if err := s.setPolicy(ctx, srv); err != nil {
		srv.Stop()
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{
		OnBestPath:   s.rib.onBest,
		OnPeerUpdate: s.onPeer,
	}, server.WatchBestPath(false), server.WatchPeer())
	if err != nil {
		cancel()
		srv.Stop()
		return fmt.Errorf("watch bgp events: %w", err)
	}
	s.srv, s.stopWatch = srv, cancel
	s.stopFlush, s.flushDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.flushDone)
		s.rib.run(s.stopFlush)
	}()
	s.started = time.Now()
	if err := s.reconcilePeersLocked(ctx); err != nil {
		s.closeLocked()
		return err
	}
	if err := s.reconcileAdvertLocked(); err != nil {
		s.closeLocked()
		return err
	}
	s.log.Info("bgp speaker started", "as", g.Asn, "routerID", g.RouterId, "listen", g.ListenAddresses, "port", g.ListenPort, "peers", len(s.peers))
	return nil
}

// RecheckNextHops asks Options.NextHopUsable again about every next hop
// in use; the prefixes through one whose answer changed are handed to
// the sink again (deleted when no next hop of theirs is usable, back
// when one is). It returns how many next hops changed, and is cheap when
// none did (one call per next hop, no walk over the routes).
func (s *Speaker) RecheckNextHops() int { return s.rib.recheck() }

// NextHops lists the next hops in use with the peers that announced
// them and the last verdict of Options.NextHopUsable on each.
func (s *Speaker) NextHops() []NextHopState { return s.rib.nextHops() }

// Close stops GoBGP and the adapter, after a last flush to the sink. With
// graceful restart (not helper-only) the sessions close without a
// NOTIFICATION, so peers keep this node's routes while it restarts;
// otherwise they close with a Cease. The sink keeps the routes it has: a
// restart with gracefulRestart.restarting relearns them.
func (s *Speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	s.closeLocked()
	return nil
}

func (s *Speaker) closeLocked() {
	s.stopWatch()
	if gr := s.cfg.GracefulRestart; gr.Enabled && !gr.HelperOnly {
		// A restarting speaker closes its sessions without a
		// NOTIFICATION, so its peers keep its routes for the restart time.
		if err := s.srv.StopBgp(context.Background(), &api.StopBgpRequest{AllowGracefulRestart: true}); err != nil {
			s.log.Warn("bgp: graceful stop", "err", err)
		}
		s.stopped.Store(true) // Stop's own StopBgp now fails, as expected
	}
	s.srv.Stop()
	close(s.stopFlush)
	<-s.flushDone
	s.srv = nil
}

// setPolicy installs the export policy: only what this node originates
// (its prefixes and service ranges), and, on a route reflector, what it
// learned over iBGP (GoBGP's RFC 4456 rules then reflect it to clients
// and, from clients, to everyone). Routes learned over eBGP and, without
// reflection, over iBGP are never passed on.
func (s *Speaker) setPolicy(ctx context.Context, srv *server.BgpServer) error {
	sts := []*api.Statement{{
		Name:       "xvs-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}
	if s.cfg.RouteReflectorClusterID != "" {
		sts = append(sts, &api.Statement{
			Name:       "xvs-reflect",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_INTERNAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		})
	}
	pol := &api.Policy{Name: "xvs-export", Statements: sts}
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
		return fmt.Errorf("add export policy: %w", err)
	}
	err := srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies:      []*api.Policy{{Name: "xvs-export"}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}})
	if err != nil {
		return fmt.Errorf("assign export policy: %w", err)
	}
	return nil
}

// Reconfigure applies a new config at run time: peers and mesh members
// are added, removed or re-created (a changed peer's session restarts),
// communities and service ranges re-advertised. The AS, router ID, node
// addresses, listen port and route-reflector role need a restart.
func (s *Speaker) Reconfigure(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconfigureLocked(ctx, cfg)
}

func (s *Speaker) reconfigureLocked(ctx context.Context, cfg Config) error {
	old := &s.cfg
	switch {
	case cfg.LocalAS() != old.LocalAS():
		return cfgErr("asNumber", cfg.LocalAS(), "cannot change at run time (was %d)", old.LocalAS())
	case cfg.NodeIPv4 != old.NodeIPv4:
		return cfgErr("nodeIPv4", cfg.NodeIPv4, "cannot change at run time (was %s)", old.NodeIPv4)
	case cfg.NodeIPv6 != old.NodeIPv6:
		return cfgErr("nodeIPv6", cfg.NodeIPv6, "cannot change at run time (was %s)", old.NodeIPv6)
	case cfg.routerID() != old.routerID():
		return cfgErr("routerID", cfg.routerID(), "cannot change at run time (was %s)", old.routerID())
	case cfg.listenPort() != old.listenPort():
		return cfgErr("listenPort", cfg.ListenPort, "cannot change at run time (was %d)", old.listenPort())
	case cfg.RouteReflectorClusterID != old.RouteReflectorClusterID:
		return cfgErr("routeReflectorClusterID", cfg.RouteReflectorClusterID, "cannot change at run time (was %q)", old.RouteReflectorClusterID)
	case cfg.maxPaths() != old.maxPaths():
		return cfgErr("maxPaths", cfg.MaxPaths, "cannot change at run time (was %d)", old.maxPaths())
	}
	s.cfg = cfg
	if s.srv == nil {
		return nil
	}
	if err := s.reconcilePeersLocked(ctx); err != nil {
		return err
	}
	return s.reconcileAdvertLocked()
}

// edit applies f to a copy of the current config and reconfigures with
// it, under one hold of the mutex, so concurrent edits do not lose each
// other's changes.
func (s *Speaker) edit(ctx context.Context, f func(*Config)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	cfg.Peers = slices.Clone(cfg.Peers)
	cfg.MeshMembers = slices.Clone(cfg.MeshMembers)
	f(&cfg)
	if err := cfg.Validate(); err != nil {
		return err
	}
	return s.reconfigureLocked(ctx, cfg)
}

// SetMeshMembers replaces the node-to-node mesh's member list (the
// cluster's nodes' addresses; the node's own are skipped). Members that
// stay keep their sessions.
func (s *Speaker) SetMeshMembers(ctx context.Context, members []netip.Addr) error {
	return s.edit(ctx, func(c *Config) { c.MeshMembers = slices.Clone(members) })
}

// SetMesh turns the node-to-node mesh on or off and replaces its members
// in one step (Calico's nodeToNodeMeshEnabled and the Node list).
func (s *Speaker) SetMesh(ctx context.Context, enabled bool, members []netip.Addr) error {
	return s.edit(ctx, func(c *Config) {
		c.NodeToNodeMeshEnabled = &enabled
		c.MeshMembers = slices.Clone(members)
	})
}

// SetPeers replaces the explicit peers (global and node specific, route
// reflectors and their clients; Calico's BGPPeer objects) with peers, by
// difference: a peer whose settings are unchanged keeps its session, a
// changed one is re-created (its session restarts), one no longer listed
// is removed and its routes leave the sink. Validation is the config's
// (errors name peers[i].field and the value); on an error nothing changes.
// The Kubernetes node agent calls it as Node and BGPPeer objects change.
func (s *Speaker) SetPeers(ctx context.Context, peers []Peer) error {
	return s.edit(ctx, func(c *Config) { c.Peers = slices.Clone(peers) })
}

// AddPeer adds p to the explicit peers, or replaces the peer at its
// address (its session restarts only if a setting changed).
func (s *Speaker) AddPeer(ctx context.Context, p Peer) error {
	return s.edit(ctx, func(c *Config) {
		i := slices.IndexFunc(c.Peers, func(q Peer) bool { return q.Address == p.Address })
		if i < 0 {
			c.Peers = append(c.Peers, p)
		} else {
			c.Peers[i] = p
		}
	})
}

// ErrNoSuchPeer is DeletePeer's error for an address that is no explicit
// peer.
var ErrNoSuchPeer = errors.New("no such bgp peer")

// DeletePeer removes the explicit peer at a; its session closes and its
// routes leave the sink.
func (s *Speaker) DeletePeer(ctx context.Context, a netip.Addr) error {
	found := false
	err := s.edit(ctx, func(c *Config) {
		n := len(c.Peers)
		c.Peers = slices.DeleteFunc(c.Peers, func(q Peer) bool { return q.Address == a })
		found = len(c.Peers) < n
	})
	if err == nil && !found {
		return fmt.Errorf("%w: %s", ErrNoSuchPeer, a)
	}
	return err
}

// Peers returns the explicit peers currently configured (a copy).
func (s *Speaker) Peers() []Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cfg.Peers)
}

// SetPrefixes replaces the prefixes the node owns and advertises (its
// pod blocks, as aggregates). Prefixes must be masked; an IPv6 prefix
// needs nodeIPv6 as its next hop, an IPv4 prefix nodeIPv4 or nodeIPv6
// (RFC 8950).
func (s *Speaker) SetPrefixes(ps []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range ps {
		if !p.IsValid() || p != p.Masked() {
			return cfgErr(fmt.Sprintf("prefixes[%d]", i), p, "not a network prefix (host bits set or invalid)")
		}
		if p.Addr().Is6() && !s.cfg.NodeIPv6.IsValid() {
			return cfgErr(fmt.Sprintf("prefixes[%d]", i), p, "an IPv6 prefix needs nodeIPv6 as its next hop")
		}
	}
	s.nodePfx = slices.Clone(ps)
	if s.srv == nil {
		return nil
	}
	return s.reconcileAdvertLocked()
}

// wantedPeersLocked computes the peers the config asks for.
func (s *Speaker) wantedPeersLocked() map[netip.Addr]wantPeer {
	c := &s.cfg
	out := map[netip.Addr]wantPeer{}
	if c.MeshEnabled() {
		for _, m := range c.MeshMembers {
			if m == c.NodeIPv4 || m == c.NodeIPv6 {
				continue
			}
			if (m.Is4() && !c.NodeIPv4.IsValid()) || (m.Is6() && !c.NodeIPv6.IsValid()) {
				continue // no local address of that family: no session
			}
			p := Peer{Address: m, ASNumber: c.LocalAS(), Password: c.MeshPassword}
			out[m] = wantPeer{typ: TypeMesh, fam: p.families(), api: s.apiPeer(&p)}
		}
	}
	for i := range c.Peers {
		p := &c.Peers[i]
		typ := TypeGlobal
		switch {
		case p.RouteReflector:
			typ = TypeRouteReflector
		case p.RouteReflectorClient:
			typ = TypeRRClient
		case p.Scope == ScopeNode:
			typ = TypeNode
		}
		out[p.Address] = wantPeer{typ: typ, fam: p.families(), api: s.apiPeer(p)}
	}
	return out
}

func apiFamily(f Family) *api.Family {
	if f == IPv6 {
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
}

// apiPeer turns a Peer into GoBGP's peer config.
func (s *Speaker) apiPeer(p *Peer) *api.Peer {
	c := &s.cfg
	src := p.SourceAddress
	if !src.IsValid() {
		src = c.NodeIPv4
		if p.Address.Is6() {
			src = c.NodeIPv6
		}
	}
	port := uint32(p.Port)
	if port == 0 {
		port = DefaultListenPort
	}
	retry := p.ConnectRetry
	if retry == 0 {
		retry = DefaultConnectRetry
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASNumber,
			LocalAsn:        c.LocalAS(),
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:               uint64(p.holdTime() / time.Second),
			KeepaliveInterval:      uint64(p.keepalive() / time.Second),
			ConnectRetry:           uint64(retry / time.Second),
			IdleHoldTimeAfterReset: uint64(retry / time.Second),
		}},
		Transport: &api.Transport{
			LocalAddress: src.String(),
			RemotePort:   port,
			PassiveMode:  p.Passive,
		},
	}
	gr := c.GracefulRestart
	for _, f := range p.families() {
		af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: apiFamily(f), Enabled: true}}
		if gr.Enabled {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		ap.AfiSafis = append(ap.AfiSafis, af)
	}
	if gr.Enabled {
		ap.GracefulRestart = &api.GracefulRestart{
			Enabled:             true,
			RestartTime:         uint32(gr.restartTime() / time.Second),
			HelperOnly:          gr.HelperOnly,
			NotificationEnabled: true, // RFC 8538: keep routes on a NOTIFICATION too, except Hard Reset
			StaleRoutesTime:     uint32(gr.StaleRoutesTime / time.Second),
			LocalRestarting:     gr.Restarting && !gr.HelperOnly,
		}
	}
	if p.RouteReflectorClient {
		ap.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: c.RouteReflectorClusterID}
	}
	if p.Multihop > 1 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	if p.TTLSecurity != 0 {
		ap.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: 256 - uint32(p.TTLSecurity)}
	}
	if b := p.BFD; b != nil {
		tx, rx, m := b.MinTx, b.MinRx, b.Multiplier
		if tx == 0 {
			tx = 300 * time.Millisecond
		}
		if rx == 0 {
			rx = 300 * time.Millisecond
		}
		if m == 0 {
			m = defaultBFDMultiplier
		}
		ap.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(tx / time.Microsecond),
			RequiredMinimumReceive:   uint32(rx / time.Microsecond),
			DetectionMultiplier:      uint32(m),
		}
	}
	return ap
}

func (s *Speaker) reconcilePeersLocked(ctx context.Context) error {
	want := s.wantedPeersLocked()
	var errs []error
	for a, cur := range s.peers {
		w, ok := want[a]
		if ok && proto.Equal(w.api, cur.api) {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("delete peer %s: %w", a, err))
			continue
		}
		delete(s.peers, a)
		s.log.Info("bgp peer removed", "peer", a, "type", cur.typ)
	}
	for a, w := range want {
		if _, ok := s.peers[a]; ok {
			if ok := proto.Equal(w.api, s.peers[a].api); ok {
				s.peers[a] = w // the type may have changed
				continue
			}
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: w.api}); err != nil {
			errs = append(errs, fmt.Errorf("add peer %s: %w", a, err))
			continue
		}
		s.peers[a] = w
		s.infoMu.Lock()
		if _, ok := s.info[a]; !ok {
			s.info[a] = &peerInfo{state: gbgp.BGP_FSM_IDLE, since: time.Now()}
		}
		delete(s.unknown, a)
		s.infoMu.Unlock()
		s.log.Info("bgp peer added", "peer", a, "as", w.api.Conf.PeerAsn, "type", w.typ, "families", w.fam)
	}
	s.infoMu.Lock()
	for a := range s.info {
		if _, ok := s.peers[a]; !ok {
			delete(s.info, a)
		}
	}
	s.infoMu.Unlock()
	return errors.Join(errs...)
}

// localPath builds the path this node originates for p.
func (s *Speaker) localPath(p netip.Prefix, comms []uint32) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(p)
	if err != nil {
		return nil, err
	}
	attrs := []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := gbgp.RF_IPv4_UC
	if p.Addr().Is4() {
		nh := s.cfg.NodeIPv4
		if !nh.IsValid() {
			// RFC 8950: an IPv6-only node's IPv4 routes have an IPv6 next hop.
			mp, err := gbgp.NewPathAttributeMpReachNLRI(fam, []gbgp.PathNLRI{{NLRI: nlri}}, s.cfg.NodeIPv6)
			if err != nil {
				return nil, err
			}
			attrs = append(attrs, mp)
		} else {
			a, err := gbgp.NewPathAttributeNextHop(nh)
			if err != nil {
				return nil, err
			}
			attrs = append(attrs, a)
		}
	} else {
		fam = gbgp.RF_IPv6_UC
		// The node's own IPv6 address, on every session whatever its
		// transport: never the IPv4-mapped one GoBGP would make from an
		// IPv4 session's local address.
		mp, err := gbgp.NewPathAttributeMpReachNLRI(fam, []gbgp.PathNLRI{{NLRI: nlri}}, s.cfg.NodeIPv6)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if len(comms) > 0 {
		attrs = append(attrs, gbgp.NewPathAttributeCommunities(comms))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs}, nil
}

// reconcileAdvertLocked makes GoBGP's local paths the node's prefixes and
// service ranges, with the configured communities.
func (s *Speaker) reconcileAdvertLocked() error {
	var comms []uint32
	for _, c := range s.cfg.Communities {
		v, _ := parseCommunity(c) // validated
		comms = append(comms, v)
	}
	want := map[netip.Prefix]*apiutil.Path{}
	all := slices.Concat(s.nodePfx, s.cfg.ServiceClusterIPs, s.cfg.ServiceExternalIPs)
	for _, p := range all {
		if p.Addr().Is6() && !s.cfg.NodeIPv6.IsValid() {
			s.log.Warn("bgp: IPv6 prefix not advertised: no nodeIPv6", "prefix", p)
			continue
		}
		lp, err := s.localPath(p, comms)
		if err != nil {
			return fmt.Errorf("advertise %s: %w", p, err)
		}
		want[p] = lp
	}
	var errs []error
	for p, cur := range s.advertised {
		if w, ok := want[p]; ok && sameAttrs(w, cur) {
			continue
		}
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{cur}}); err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", p, err))
			continue
		}
		delete(s.advertised, p)
	}
	var add []*apiutil.Path
	var addP []netip.Prefix
	for p, w := range want {
		if _, ok := s.advertised[p]; !ok {
			add = append(add, w)
			addP = append(addP, p)
		}
	}
	if len(add) > 0 {
		resp, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: add})
		if err != nil {
			errs = append(errs, fmt.Errorf("advertise: %w", err))
		}
		for i, p := range addP {
			if i < len(resp) && resp[i].Error == nil {
				s.advertised[p] = add[i]
			}
		}
	}
	return errors.Join(errs...)
}

func sameAttrs(a, b *apiutil.Path) bool {
	if len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for i := range a.Attrs {
		if a.Attrs[i].String() != b.Attrs[i].String() {
			return false
		}
	}
	return true
}

// onPeer records a peer's state changes (GoBGP's watcher goroutine).
func (s *Speaker) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, t time.Time) {
	st := ev.Peer.State
	a := st.NeighborAddress
	if !a.IsValid() {
		return
	}
	s.infoMu.Lock()
	pi := s.info[a]
	if pi == nil {
		pi = &peerInfo{state: gbgp.BGP_FSM_IDLE, since: t}
		s.info[a] = pi
	}
	if pi.state != st.SessionState {
		if pi.state == gbgp.BGP_FSM_ESTABLISHED {
			pi.flaps++
		}
		pi.state, pi.since = st.SessionState, t
		if st.SessionState == gbgp.BGP_FSM_ESTABLISHED {
			pi.lastError = ""
		}
	}
	if st.SessionState == gbgp.BGP_FSM_IDLE || st.SessionState == gbgp.BGP_FSM_ACTIVE {
		switch st.DisconnectMessage {
		case "", "idle-hold-timer-expired", "open-msg-received", "open-msg-negotiated":
			// transitions, not failures
		default:
			pi.lastError = st.DisconnectMessage
		}
	}
	s.infoMu.Unlock()
	s.log.Debug("bgp peer state", "peer", a, "state", st.SessionState.String(), "reason", st.DisconnectMessage)
}

// maxUnknown bounds the unknown-peer rows of status: past it, the
// address seen longest ago makes room.
const maxUnknown = 16

// unknownPeer is an address that connected without being a configured
// peer; GoBGP closes such connections at once.
type unknownPeer struct {
	first, last time.Time
	attempts    uint64
}

// msgUnknownPeer is GoBGP's (v4.8.0) log message for a connection from an
// address that is no configured peer; the address is its Key attribute.
const msgUnknownPeer = "Can't find configuration for a new passive connection"

// noteUnknown records a refused connection from a.
func (s *Speaker) noteUnknown(a netip.Addr, t time.Time) {
	a = a.Unmap().WithZone("")
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	u := s.unknown[a]
	if u == nil {
		if len(s.unknown) >= maxUnknown {
			var old netip.Addr
			for k, v := range s.unknown {
				if !old.IsValid() || v.last.Before(s.unknown[old].last) {
					old = k
				}
			}
			delete(s.unknown, old)
		}
		u = &unknownPeer{first: t}
		s.unknown[a] = u
		s.unknownAddrs++
		s.log.Info("bgp: connection from an address that is no configured peer refused", "peer", a)
	}
	u.last = t
	u.attempts++
	s.unknownTotal++
}

// noteLog records, per peer, what GoBGP logged about malformed messages
// and failed connections, for status.
func (s *Speaker) noteLog(peer string, msg string, errText string) {
	a, err := netip.ParseAddr(peer)
	if err != nil {
		return
	}
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	pi := s.info[a]
	if pi == nil {
		return
	}
	switch {
	case strings.Contains(msg, "treated as withdraw"), strings.Contains(msg, "attributes were discarded"),
		strings.Contains(msg, "malformed"):
		pi.malformed++
		pi.lastError = msg + ": " + errText
	default:
		if errText != "" {
			pi.lastError = errText
		} else {
			pi.lastError = msg
		}
	}
}

// captureHandler passes GoBGP's records on at their level and notes
// the per-peer ones status needs (GoBGP reports RFC 7606 handling and
// connection failures only in its logs).
type captureHandler struct {
	next  slog.Handler
	level *slog.LevelVar
	s     *Speaker
	peer  string
}

// Enabled takes every record of a peer's logger: GoBGP reports a failed
// connection attempt at debug level, and nothing per received UPDATE.
// The server's own Info records are taken too (they are rare; one says
// that a connection came from an address that is no peer).
func (h *captureHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.peer != "" || l >= slog.LevelInfo || (l >= h.level.Level() && h.next.Enabled(ctx, l))
}

var noted = []string{
	"treated as withdraw", "attributes were discarded", "malformed",
	"failed to connect", "Bad", "bad", "error", "Error", "notification", "Notification",
}

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "failed to stop BGP server" && h.s.stopped.Load() {
		return nil
	}
	if r.Message == msgUnknownPeer {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "Key" {
				if addr, err := netip.ParseAddr(a.Value.String()); err == nil {
					h.s.noteUnknown(addr, r.Time)
				}
				return false
			}
			return true
		})
	}
	if h.peer != "" && (r.Message == "sent notification" || r.Message == "received notification") {
		var code, sub int64
		var reason string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "Code":
				code = a.Value.Int64()
			case "Subcode":
				sub = a.Value.Int64()
			case "Communicated-Reason":
				reason = a.Value.String()
			}
			return true
		})
		text := fmt.Sprintf("%s: %s", r.Message, gbgp.NotificationErrorCode(uint16(code)<<8|uint16(sub)&0xff))
		if reason != "" {
			text += " (" + reason + ")"
		}
		h.s.noteLog(h.peer, "", text)
	} else if h.peer != "" && (r.Level >= slog.LevelWarn || r.Message == "failed to connect") {
		var errText string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "Error" || a.Key == "error" || a.Key == "Err" {
				errText = a.Value.String()
				return false
			}
			return true
		})
		for _, n := range noted {
			if strings.Contains(r.Message, n) || (errText != "" && n == "error") {
				h.s.noteLog(h.peer, r.Message, errText)
				break
			}
		}
	}
	if r.Level >= h.level.Level() && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.next = h.next.WithAttrs(as)
	for _, a := range as {
		if a.Key == "Key" {
			n.peer = a.Value.String()
		}
	}
	return &n
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.next = h.next.WithGroup(name)
	return &n
}
