package api

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// Version is reported by Status.
	Version string
	// LinkCheck validates AddPort names against the namespace's interfaces;
	// nil skips the check (the dataplane still fails to open a missing one).
	LinkCheck config.LinkCheck
	// StateFile, when set, records every port and route the API adds so
	// Restore can replay them after a restart.
	StateFile string
}

// Server implements xvspb.XvsServer over a Dataplane.
type Server struct {
	xvspb.UnimplementedXvsServer

	dp    Dataplane
	log   *slog.Logger
	opt   ServerOptions
	start time.Time
	grpc  *grpc.Server

	mu    sync.Mutex // serializes calls that change the dataplane, and guards state
	state *state     // nil without a state file
}

var _ xvspb.XvsServer = (*Server)(nil)

// NewServer returns a server for dp. log may be nil.
func NewServer(dp Dataplane, log *slog.Logger, opt ServerOptions) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{dp: dp, log: log, opt: opt, start: time.Now()}
	if opt.StateFile != "" {
		s.state = newState(opt.StateFile)
	}
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	xvspb.RegisterXvsServer(s.grpc, s)
	return s
}

// RegisterService lets another service (the CNI server's) share the API
// socket. Call it before Serve.
func (s *Server) RegisterService(register func(*grpc.Server)) { register(s.grpc) }

// Serve answers calls on ln until Stop. It returns nil after Stop.
func (s *Server) Serve(ln net.Listener) error {
	err := s.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop lets calls in flight finish for up to timeout, then cuts them off.
func (s *Server) Stop(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		s.grpc.Stop()
		<-done
	}
}

// intercept turns any error into a status error and logs failures and
// changes.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		err = toStatus(err)
		s.log.Debug("api call failed", "method", info.FullMethod, "err", err)
	}
	return resp, err
}

func (s *Server) ListPorts(ctx context.Context, _ *xvspb.ListPortsRequest) (*xvspb.ListPortsResponse, error) {
	ports := s.dp.Ports()
	slices.SortFunc(ports, func(a, b spec.PortStatus) int { return cmp.Compare(a.ID, b.ID) })
	out := &xvspb.ListPortsResponse{Ports: make([]*xvspb.Port, len(ports))}
	for i, p := range ports {
		out.Ports[i] = PortToPB(p)
	}
	return out, nil
}

func (s *Server) AddPort(ctx context.Context, req *xvspb.AddPortRequest) (*xvspb.AddPortResponse, error) {
	if req.GetPort() == nil {
		return nil, status.Error(codes.InvalidArgument, "port: required")
	}
	pc, errs := config.ResolvePort("port", portFromPB(req.GetPort()), s.opt.LinkCheck)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	existing := s.dp.Ports()
	for _, p := range existing {
		if p.Name == pc.Name {
			return nil, status.Errorf(codes.AlreadyExists, "port.name: %q: port already exists", pc.Name)
		}
	}
	if err := config.CheckPodOverlap(existing, pc); err != nil {
		return nil, status.Errorf(codes.AlreadyExists, "port.addresses: %v", err)
	}
	ps, err := s.dp.AddPort(pc)
	if err != nil {
		return nil, err
	}
	s.log.Info("port added", "name", ps.Name, "kind", ps.Kind, "mode", ps.Mode, "addrs", ps.Addrs)
	s.record(func(st *state) { st.Ports[pc.Name] = req.GetPort() })
	return &xvspb.AddPortResponse{Port: PortToPB(ps)}, nil
}

func (s *Server) DelPort(ctx context.Context, req *xvspb.DelPortRequest) (*xvspb.DelPortResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name: required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, p := range s.dp.Ports() {
		found = found || p.Name == req.GetName()
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "name: %q: no such port", req.GetName())
	}
	if err := s.dp.DelPort(req.GetName()); err != nil {
		return nil, err
	}
	s.log.Info("port deleted", "name", req.GetName())
	s.record(func(st *state) { delete(st.Ports, req.GetName()) })
	return &xvspb.DelPortResponse{}, nil
}

// compareRoutes orders by table, IPv4 before IPv6, address, then length.
func compareRoutes(a, b spec.RouteInfo) int {
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
}

func (s *Server) ListRoutes(ctx context.Context, req *xvspb.ListRoutesRequest) (*xvspb.ListRoutesResponse, error) {
	out := &xvspb.ListRoutesResponse{}
	m := req.GetMatch()
	if m == "" {
		routes := s.dp.Routes()
		slices.SortFunc(routes, compareRoutes)
		out.Routes = make([]*xvspb.Route, len(routes))
		for i, r := range routes {
			out.Routes[i] = RouteToPB(r)
		}
		return out, nil
	}
	r, ok, err := s.match(m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "match: %q: no route", m)
	}
	out.Routes = []*xvspb.Route{RouteToPB(r)}
	return out, nil
}

// match finds the route that forwards an address, or the one that covers
// a whole prefix (the prefix itself if installed).
func (s *Server) match(m string) (spec.RouteInfo, bool, error) {
	if a, err := netip.ParseAddr(m); err == nil {
		if a.Zone() != "" {
			return spec.RouteInfo{}, false, status.Errorf(codes.InvalidArgument, "match: %q: address has a zone", m)
		}
		r, ok := s.dp.LookupRoute(a.Unmap())
		return r, ok, nil
	}
	p, err := netip.ParsePrefix(m)
	if err != nil {
		return spec.RouteInfo{}, false, status.Errorf(codes.InvalidArgument, "match: %q: not an address or prefix", m)
	}
	p = p.Masked()
	r, ok := s.dp.LookupRoute(p.Addr())
	if ok && r.Prefix.Bits() > p.Bits() {
		// A more specific route matched the prefix's first address; the
		// covering route is the longest one no longer than the prefix.
		best, found := spec.RouteInfo{}, false
		for _, c := range s.dp.Routes() {
			if c.Table == r.Table && c.Prefix.Bits() <= p.Bits() && c.Prefix.Contains(p.Addr()) &&
				(!found || c.Prefix.Bits() > best.Prefix.Bits()) {
				best, found = c, true
			}
		}
		return best, found, nil
	}
	return r, ok, nil
}

func (s *Server) AddRoute(ctx context.Context, req *xvspb.AddRouteRequest) (*xvspb.AddRouteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr, errs := config.ResolveRoute("route", routeFromPB(req), connected(s.dp.Ports()))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := s.dp.AddRoute(sr); err != nil {
		return nil, err
	}
	if sr.VXLAN != nil {
		s.log.Info("route added", "prefix", sr.Prefix, "vxlan-remote", sr.VXLAN.Remote, "vxlan-mac", net.HardwareAddr(sr.VXLAN.MAC[:]))
	} else {
		s.log.Info("route added", "prefix", sr.Prefix, "via", sr.Via, "port", sr.Port, "blackhole", sr.Blackhole)
	}
	s.record(func(st *state) { st.Routes[sr.Prefix.String()] = req })
	return &xvspb.AddRouteResponse{}, nil
}

func (s *Server) DelRoute(ctx context.Context, req *xvspb.DelRouteRequest) (*xvspb.DelRouteResponse, error) {
	p, err := netip.ParsePrefix(req.GetPrefix())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "prefix: %q: invalid prefix", req.GetPrefix())
	}
	if p.Masked() != p {
		return nil, status.Errorf(codes.InvalidArgument, "prefix: %q: host bits set (did you mean %s?)", req.GetPrefix(), p.Masked())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.dp.DelRoute(p); err != nil {
		return nil, err
	}
	s.log.Info("route deleted", "prefix", p)
	s.record(func(st *state) { delete(st.Routes, p.String()) })
	return &xvspb.DelRouteResponse{}, nil
}

func (s *Server) ListNeighbors(ctx context.Context, _ *xvspb.ListNeighborsRequest) (*xvspb.ListNeighborsResponse, error) {
	ns := s.dp.Neighbors()
	slices.SortFunc(ns, func(a, b spec.Neighbor) int {
		if c := cmp.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	out := &xvspb.ListNeighborsResponse{Neighbors: make([]*xvspb.Neighbor, len(ns))}
	for i, n := range ns {
		out.Neighbors[i] = NeighborToPB(n)
	}
	return out, nil
}

func (s *Server) GetCounters(ctx context.Context, _ *xvspb.GetCountersRequest) (*xvspb.GetCountersResponse, error) {
	c := s.dp.Counters()
	out := &xvspb.GetCountersResponse{}
	for i, n := range dataplane.DropNames() {
		if i < len(c.Drops) {
			out.Drops = append(out.Drops, &xvspb.Counter{Name: n, Value: c.Drops[i]})
		}
	}
	for i, n := range dataplane.EventNames() {
		if i < len(c.Events) {
			out.Events = append(out.Events, &xvspb.Counter{Name: n, Value: c.Events[i]})
		}
	}
	return out, nil
}

func (s *Server) Status(ctx context.Context, _ *xvspb.StatusRequest) (*xvspb.StatusResponse, error) {
	out := &xvspb.StatusResponse{
		Ready: s.dp.Ready(), Version: s.opt.Version, Pid: int64(os.Getpid()),
		StartTimeUnix: s.start.Unix(), Neighbors: uint32(len(s.dp.Neighbors())),
	}
	for _, p := range s.dp.Ports() {
		out.Ports++
		if p.Up {
			out.PortsUp++
		}
	}
	out.Fib = s.fibSummary()
	return out, nil
}

// fibSummary counts table 0's routes by family, origin and next-hop kind.
func (s *Server) fibSummary() *xvspb.FibSummary {
	sum := &xvspb.FibSummary{}
	origins, kinds := map[string]uint32{}, map[string]uint32{}
	count := func(p netip.Prefix, origin, kind string) {
		if p.Addr().Is4() {
			sum.RoutesV4++
		} else {
			sum.RoutesV6++
		}
		origins[origin]++
		kinds[kind]++
	}
	if f := s.dp.FIB(); f != nil {
		st := f.Stats()
		sum.Tables, sum.NextHops = uint32(st.Tables), uint32(st.NextHops)
		sum.MemoryBytes, sum.Updates, sum.UpdateRate = uint64(st.MemoryBytes), st.Updates, st.UpdateRate
		f.Routes(0, func(r fib.Route) bool {
			count(r.Prefix, r.Origin.String(), r.NextHop.Kind.String())
			return true
		})
	} else {
		for _, r := range s.dp.Routes() {
			if r.Table == 0 {
				count(r.Prefix, r.Origin, r.Kind)
			}
		}
	}
	sum.ByOrigin, sum.ByKind = sortedCounters(origins), sortedCounters(kinds)
	return sum
}

func sortedCounters(m map[string]uint32) []*xvspb.Counter {
	out := make([]*xvspb.Counter, 0, len(m))
	for k, v := range m {
		out = append(out, &xvspb.Counter{Name: k, Value: uint64(v)})
	}
	slices.SortFunc(out, func(a, b *xvspb.Counter) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
