package vswitch

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
)

// The switch's one entry point for routes. Every source of routes is an
// origin (fib.Origin): the config file and the API are OriginStatic (the
// operator's routes, which the API may delete whoever added them), the
// pods' own routes OriginPod, the node's addresses and neighbours
// OriginLocal and OriginConnected; BGP, the CNI server and the Kubernetes
// agent each come in as one more. A source hands its changes to
// ApplyRoutes as one batch; the switch checks and resolves all of it and
// publishes one FIB view, or changes nothing.

// RouteError says which route of a batch ApplyRoutes refused.
type RouteError struct {
	Op     string // "adds" or "dels"
	Index  int
	Prefix netip.Prefix
	Err    error
}

func (e *RouteError) Error() string {
	return fmt.Sprintf("%s[%d] (%s): %v", e.Op, e.Index, e.Prefix, e.Err)
}

func (e *RouteError) Unwrap() error { return e.Err }

// ApplyRoutes installs adds and removes dels for origin as one change:
// readers see all of it or none of it. Every add is checked by the rules
// all routes follow (spec.Route.Validate) and against the switch's ports
// and tunnel, then resolved to its next hop; a delete must name a route
// of origin's (ErrNotOwner otherwise). If any route is refused, nothing
// changes and the error, a *RouteError, names it. A route with ECMP
// gateways becomes an ECMP group of one adjacency per gateway (it is not
// in the per-port route index: deleting a port leaves it to its origin).
// Deleting a host route
// that hid a resolved neighbour's brings the neighbour's back.
func (s *Switch) ApplyRoutes(origin fib.Origin, adds []spec.Route, dels []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("switch closed")
	}
	ports := s.routePortsLocked()
	var fadds []fib.Route
	// ECMP members are held from resolution until the groups naming
	// them are in the FIB (the groups then hold them).
	var members []fib.Index
	defer func() {
		for _, m := range members {
			s.fib.Release(m)
		}
	}()
	seen := make(map[netip.Prefix]int, len(adds))
	for i, r := range adds {
		refuse := func(err error) error { return &RouteError{Op: "adds", Index: i, Prefix: r.Prefix, Err: err} }
		if errs := r.Validate(); len(errs) > 0 {
			return refuse(fmt.Errorf("%w: %w", errors.Join(errs...), ErrRouteInvalid))
		}
		if j, dup := seen[r.Prefix]; dup {
			return refuse(fmt.Errorf("also adds[%d]: %w", j, ErrRouteInvalid))
		}
		seen[r.Prefix] = i
		var nh fib.NextHop
		var err error
		if len(r.ECMP) > 0 {
			nh, err = s.ecmpLocked(r, ports, &members)
		} else {
			nh, err = s.resolveLocked(r, ports)
		}
		if err != nil {
			return refuse(err)
		}
		fadds = append(fadds, fib.Route{Prefix: r.Prefix, NextHop: nh, Origin: origin})
	}
	var keys []fib.RouteKey
	for i, p := range dels {
		refuse := func(err error) error { return &RouteError{Op: "dels", Index: i, Prefix: p, Err: err} }
		r, ok := s.fib.Get(0, p)
		if !ok {
			return refuse(fmt.Errorf("route %s: %w", p, fib.ErrNotFound))
		}
		if r.Origin != origin {
			return refuse(fmt.Errorf("route %s is %s: %w", p, r.Origin, ErrNotOwner))
		}
		keys = append(keys, fib.RouteKey{Prefix: p})
		if _, readded := seen[p]; !readded {
			if nr, ok := s.neighborRouteLocked(p); ok {
				fadds = append(fadds, nr)
			}
		}
	}
	return s.applyLocked(fadds, keys)
}

// AddRoute installs one static route (ApplyRoutes with OriginStatic).
func (s *Switch) AddRoute(r spec.Route) error {
	return unbatch(s.ApplyRoutes(fib.OriginStatic, []spec.Route{r}, nil))
}

// DelRoute removes one static route (ApplyRoutes with OriginStatic).
func (s *Switch) DelRoute(p netip.Prefix) error {
	return unbatch(s.ApplyRoutes(fib.OriginStatic, nil, []netip.Prefix{p}))
}

// unbatch returns what refused a batch of one, as the single-route calls
// always have.
func unbatch(err error) error {
	var re *RouteError
	if errors.As(err, &re) {
		return re.Err
	}
	return err
}

// routePortsLocked lists the ports a route may name, by their own names,
// for spec.Route.RoutePort; index i is ports' i-th of the second result.
func (s *Switch) routePortsLocked() routePorts {
	rp := routePorts{cfgs: make([]spec.PortConfig, 0, len(s.ports)), states: make([]*portState, 0, len(s.ports))}
	for _, ps := range s.ports {
		rp.cfgs = append(rp.cfgs, spec.PortConfig{Name: ps.Name, Kind: ps.Kind, Addrs: ps.cfg.Addrs})
		rp.states = append(rp.states, ps)
	}
	return rp
}

type routePorts struct {
	cfgs   []spec.PortConfig
	states []*portState
}

// ecmpLocked resolves each gateway of an ECMP route as a route of its
// own and makes the group of them, holding each member (in *held) until
// the caller's batch is applied.
func (s *Switch) ecmpLocked(r spec.Route, ports routePorts, held *[]fib.Index) (fib.NextHop, error) {
	group := make([]fib.Index, 0, 1+len(r.ECMP))
	for _, via := range append([]netip.Addr{r.Via}, r.ECMP...) {
		nh, err := s.resolveLocked(spec.Route{Prefix: r.Prefix, Via: via}, ports)
		if err != nil {
			return fib.NextHop{}, err
		}
		idx, err := s.fib.Acquire(nh)
		if err != nil {
			return fib.NextHop{}, fmt.Errorf("ecmp member %s: %w", via, err)
		}
		*held = append(*held, idx)
		group = append(group, idx)
	}
	return fib.NextHop{Kind: fib.KindECMP, Group: group}, nil
}

// resolveLocked turns a valid route into its next hop by the switch's
// state: the tunnel for a VXLAN route, a drop for a blackhole, else the
// output port and, when the gateway's neighbour is resolved, its MAC.
func (s *Switch) resolveLocked(r spec.Route, ports routePorts) (fib.NextHop, error) {
	if r.VXLAN != nil {
		return s.vxlanRouteLocked(r)
	}
	if r.Blackhole {
		return fib.NextHop{Kind: fib.KindDrop}, nil
	}
	i, _, err := r.RoutePort(ports.cfgs)
	if err != nil {
		var fe *spec.FieldError
		if errors.As(err, &fe) && fe.Field == "port" {
			return fib.NextHop{}, fmt.Errorf("port %s: %w", r.Port, ErrPortNotFound)
		}
		return fib.NextHop{}, fmt.Errorf("%w: %w", err, ErrRouteInvalid)
	}
	ps := ports.states[i]
	nh := fib.NextHop{Kind: fib.KindAdjacency, Port: ps.ID, Via: r.Via, SrcMAC: ps.MAC}
	if r.Via.IsValid() {
		if mac, ok := s.nbr.lookup(ps.ID, r.Via); ok {
			nh.DstMAC, nh.Resolved = mac, true
		}
	}
	return nh, nil
}

// neighborRouteLocked is the host route of a resolved neighbour at p's
// address on an uplink's subnet, which a static host route hides.
func (s *Switch) neighborRouteLocked(p netip.Prefix) (fib.Route, bool) {
	if !p.IsSingleIP() {
		return fib.Route{}, false
	}
	for _, ps := range s.ports {
		if ps.Kind != spec.PortUplink || ps.primary != nil || !ps.onSubnet(p.Addr()) {
			continue
		}
		if mac, ok := s.nbr.lookup(ps.ID, p.Addr()); ok {
			return fib.Route{
				Prefix:  p,
				NextHop: fib.NextHop{Kind: fib.KindAdjacency, Port: ps.ID, Via: p.Addr(), DstMAC: mac, SrcMAC: ps.MAC, Resolved: true},
				Origin:  fib.OriginConnected,
			}, true
		}
	}
	return fib.Route{}, false
}

// applyLocked is where every change of the switch's routes reaches the
// FIB: one publication, and the index by port kept in step.
func (s *Switch) applyLocked(adds []fib.Route, dels []fib.RouteKey) error {
	if len(adds) == 0 && len(dels) == 0 {
		return nil
	}
	if err := s.fib.Apply(adds, dels); err != nil {
		return err
	}
	for _, k := range dels {
		s.routes.remove(k)
	}
	for _, r := range adds {
		s.routes.put(r)
	}
	return nil
}

// routeIndex knows, for every port, the routes whose next hop leaves by
// it, so deleting a port does not walk the table.
type routeIndex struct {
	byPort map[uint16]map[fib.RouteKey]struct{}
	portOf map[fib.RouteKey]uint16
}

func newRouteIndex() routeIndex {
	return routeIndex{byPort: make(map[uint16]map[fib.RouteKey]struct{}), portOf: make(map[fib.RouteKey]uint16)}
}

// put records r, in place of what had its key.
func (x routeIndex) put(r fib.Route) {
	k := fib.RouteKey{Table: r.Table, Prefix: r.Prefix}
	x.remove(k)
	if r.NextHop.Kind != fib.KindAdjacency && r.NextHop.Kind != fib.KindPort {
		return
	}
	m := x.byPort[r.NextHop.Port]
	if m == nil {
		m = make(map[fib.RouteKey]struct{})
		x.byPort[r.NextHop.Port] = m
	}
	m[k] = struct{}{}
	x.portOf[k] = r.NextHop.Port
}

func (x routeIndex) remove(k fib.RouteKey) {
	p, ok := x.portOf[k]
	if !ok {
		return
	}
	delete(x.portOf, k)
	delete(x.byPort[p], k)
	if len(x.byPort[p]) == 0 {
		delete(x.byPort, p)
	}
}

// through lists the routes that leave by port.
func (x routeIndex) through(port uint16) []fib.RouteKey {
	ks := make([]fib.RouteKey, 0, len(x.byPort[port]))
	for k := range x.byPort[port] {
		ks = append(ks, k)
	}
	return ks
}

// podRoutes returns the routes that deliver to a pod port.
func (s *Switch) podRoutes(ps *portState) []fib.Route {
	var rs []fib.Route
	for _, a := range ps.cfg.Addrs {
		rs = append(rs, fib.Route{
			Prefix:  a.Masked(),
			NextHop: fib.NextHop{Kind: fib.KindPort, Port: ps.ID, DstMAC: ps.PeerMAC, SrcMAC: s.cfg.GatewayMAC, Resolved: true},
			Origin:  fib.OriginPod,
		})
	}
	return rs
}

// portRoutes returns the routes a port brings: a pod's (once its MAC is
// known), the node's addresses behind a host port, an uplink's connected
// subnets and addresses.
func (s *Switch) portRoutes(ps *portState) []fib.Route {
	var rs []fib.Route
	switch ps.Kind {
	case spec.PortPod:
		if ps.PeerMAC != ([6]byte{}) {
			rs = s.podRoutes(ps)
		}
	case spec.PortHost:
		// Addresses of the host reached through this port.
		for _, a := range ps.cfg.Addrs {
			rs = append(rs, fib.Route{
				Prefix:  netip.PrefixFrom(a.Addr(), a.Addr().BitLen()),
				NextHop: fib.NextHop{Kind: fib.KindPunt},
				Origin:  fib.OriginLocal,
			})
		}
	case spec.PortUplink:
		for _, a := range ps.cfg.Addrs {
			if !a.IsSingleIP() {
				rs = append(rs, fib.Route{
					Prefix:  a.Masked(),
					NextHop: fib.NextHop{Kind: fib.KindAdjacency, Port: ps.ID, SrcMAC: ps.MAC},
					Origin:  fib.OriginConnected,
				})
			}
			rs = append(rs, fib.Route{
				Prefix:  netip.PrefixFrom(a.Addr(), a.Addr().BitLen()),
				NextHop: fib.NextHop{Kind: fib.KindPunt},
				Origin:  fib.OriginLocal,
			})
		}
	}
	return rs
}

func (s *Switch) installPortRoutesLocked(ps *portState) error {
	return s.applyLocked(s.portRoutes(ps), nil)
}

// portRouteKeysLocked lists the routes to remove with a port: what leaves
// by it (its own, static routes, neighbours' host routes) and the node's
// addresses it brought.
func (s *Switch) portRouteKeysLocked(ps *portState) []fib.RouteKey {
	ks := s.routes.through(ps.ID)
	for _, r := range s.portRoutes(ps) {
		if r.NextHop.Kind != fib.KindPunt {
			continue // leaves by the port: listed already, if installed
		}
		if _, ok := s.fib.Get(0, r.Prefix); ok {
			ks = append(ks, fib.RouteKey{Prefix: r.Prefix})
		}
	}
	return dedupKeys(ks)
}

func dedupKeys(ks []fib.RouteKey) []fib.RouteKey {
	seen := make(map[fib.RouteKey]bool, len(ks))
	out := ks[:0]
	for _, k := range ks {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func (s *Switch) routeInfoLocked(r fib.Route) spec.RouteInfo {
	ri := spec.RouteInfo{Table: r.Table, Prefix: r.Prefix, Origin: r.Origin.String(), Kind: r.NextHop.Kind.String(), Via: r.NextHop.Via, NextHop: r.NextHop.String()}
	switch r.NextHop.Kind {
	case fib.KindPort, fib.KindAdjacency:
		if ps := s.ports[r.NextHop.Port]; ps != nil {
			ri.Port = ps.Name
		}
	}
	return ri
}

// Routes lists table 0, sorted by prefix.
func (s *Switch) Routes() []spec.RouteInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []spec.RouteInfo
	s.fib.Routes(0, func(r fib.Route) bool {
		out = append(out, s.routeInfoLocked(r))
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Prefix, out[j].Prefix
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c < 0
		}
		return a.Bits() < b.Bits()
	})
	return out
}

// LookupRoute returns the longest-matching route for a.
func (s *Switch) LookupRoute(a netip.Addr) (spec.RouteInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, _, ok := s.fib.View().LookupPrefix(0, a)
	if !ok {
		return spec.RouteInfo{}, false
	}
	r, ok := s.fib.Get(0, p)
	if !ok {
		return spec.RouteInfo{}, false
	}
	return s.routeInfoLocked(r), true
}
