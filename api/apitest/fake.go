package apitest

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
)

// Fake is an in-memory Dataplane.
type Fake struct {
	mu        sync.Mutex // guards everything below
	ready     bool
	ports     []spec.PortStatus
	routes    map[netip.Prefix]spec.RouteInfo
	neighbors []spec.Neighbor
	counters  dataplane.Counters
	nextID    uint16
	// AddPortErr, if set, is returned by the next AddPort.
	AddPortErr error
	// Missing names interfaces AddPort fails to open, as the real switch
	// does when the link is gone.
	Missing map[string]bool
}

var _ api.Dataplane = (*Fake)(nil)

// NewFake returns a ready fake with no ports.
func NewFake() *Fake {
	return &Fake{ready: true, routes: make(map[netip.Prefix]spec.RouteInfo), nextID: 1}
}

func (f *Fake) SetReady(r bool) { f.mu.Lock(); f.ready = r; f.mu.Unlock() }

func (f *Fake) Ready() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }

// AddPort adds a port that is up in the mode asked (auto becomes
// xdp-native), with connected routes for uplink/host subnets and host
// routes for pod addresses, as the switch does.
func (f *Fake) AddPort(pc spec.PortConfig) (spec.PortStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.AddPortErr; err != nil {
		f.AddPortErr = nil
		return spec.PortStatus{}, err
	}
	if f.Missing[pc.Name] {
		return spec.PortStatus{}, fmt.Errorf("open port %s: interface %s: link not found", pc.Name, pc.Name)
	}
	for _, p := range f.ports {
		if p.Name == pc.Name {
			return spec.PortStatus{}, fmt.Errorf("port %s: %w", pc.Name, api.ErrExists)
		}
	}
	mode := pc.Mode
	if mode == spec.ModeAuto {
		mode = spec.ModeXDPDrv
	}
	mtu := pc.MTU
	if mtu == 0 {
		mtu = 1500
	}
	ps := spec.PortStatus{
		ID: f.nextID, Name: pc.Name, Kind: pc.Kind, Mode: mode, Up: true,
		MAC: [6]byte{0x02, 0, 0, 0, 0, byte(f.nextID)}, PeerMAC: pc.PeerMAC,
		Addrs: append([]netip.Prefix(nil), pc.Addrs...), MTU: mtu,
	}
	f.nextID++
	f.ports = append(f.ports, ps)
	for _, a := range pc.Addrs {
		ri := spec.RouteInfo{Prefix: a.Masked(), Port: pc.Name}
		if pc.Kind == spec.PortPod {
			ri.Origin, ri.Kind, ri.NextHop = "pod", "port", "port "+pc.Name
		} else {
			ri.Origin, ri.Kind, ri.NextHop = "connected", "adjacency", "attached "+pc.Name
		}
		f.routes[ri.Prefix] = ri
	}
	return ps, nil
}

func (f *Fake) DelPort(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.ports {
		if p.Name == name {
			f.ports = append(f.ports[:i], f.ports[i+1:]...)
			for k, r := range f.routes {
				if r.Port == name {
					delete(f.routes, k)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("port %s: %w", name, api.ErrNotFound)
}

func (f *Fake) Ports() []spec.PortStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]spec.PortStatus(nil), f.ports...)
}

// SetPortStats replaces the stats of the named port.
func (f *Fake) SetPortStats(name string, st spec.PortStats, up bool, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.ports {
		if f.ports[i].Name == name {
			f.ports[i].Stats, f.ports[i].Up, f.ports[i].Reason = st, up, reason
		}
	}
}

func (f *Fake) AddRoute(r spec.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ri := spec.RouteInfo{Prefix: r.Prefix, Origin: "static", Port: r.Port, Via: r.Via}
	switch {
	case r.Blackhole:
		ri.Kind, ri.NextHop = "drop", "blackhole"
	case r.Via.IsValid():
		ri.Kind, ri.NextHop = "adjacency", "via "+r.Via.String()+" (unresolved)"
	default:
		ri.Kind, ri.NextHop = "adjacency", "attached"
	}
	f.routes[r.Prefix] = ri
	return nil
}

func (f *Fake) DelRoute(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.routes[p]
	if !ok {
		return fmt.Errorf("route %s: %w", p, fib.ErrNotFound)
	}
	if r.Origin != "static" {
		return fmt.Errorf("route %s is %s: %w", p, r.Origin, api.ErrRefused)
	}
	delete(f.routes, p)
	return nil
}

func (f *Fake) Routes() []spec.RouteInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]spec.RouteInfo, 0, len(f.routes))
	for _, r := range f.routes {
		out = append(out, r)
	}
	return out
}

func (f *Fake) LookupRoute(a netip.Addr) (spec.RouteInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	best, ok := spec.RouteInfo{}, false
	for p, r := range f.routes {
		if p.Contains(a) && (!ok || p.Bits() > best.Prefix.Bits()) {
			best, ok = r, true
		}
	}
	return best, ok
}

// SetNeighbors replaces the neighbour table.
func (f *Fake) SetNeighbors(ns []spec.Neighbor) {
	f.mu.Lock()
	f.neighbors = append([]spec.Neighbor(nil), ns...)
	f.mu.Unlock()
}

func (f *Fake) Neighbors() []spec.Neighbor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]spec.Neighbor(nil), f.neighbors...)
}

// SetCounters replaces the counters.
func (f *Fake) SetCounters(c dataplane.Counters) { f.mu.Lock(); f.counters = c; f.mu.Unlock() }

func (f *Fake) Counters() dataplane.Counters { f.mu.Lock(); defer f.mu.Unlock(); return f.counters }

// FIB returns nil: the server summarizes Routes instead.
func (f *Fake) FIB() *fib.FIB { return nil }

// Serve serves dp on a socket in a fresh temporary directory until the
// test ends, and returns the socket's path and a connected client.
func Serve(t testing.TB, dp api.Dataplane, opt api.ServerOptions) (string, *api.Client) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xvsd.sock")
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(dp, slog.New(slog.DiscardHandler), opt)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c, err := api.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop(time.Second)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return path, c
}

// Ctx is a context for one test call.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
