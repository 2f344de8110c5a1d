package api

import (
	"net/netip"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
)

// Dataplane is what the server needs of the switch; *vswitch.Switch
// implements it. Every method must be safe for concurrent use.
type Dataplane interface {
	Ready() bool
	AddPort(pc spec.PortConfig) (spec.PortStatus, error)
	DelPort(name string) error
	Ports() []spec.PortStatus
	AddRoute(r spec.Route) error
	DelRoute(p netip.Prefix) error
	Routes() []spec.RouteInfo
	LookupRoute(a netip.Addr) (spec.RouteInfo, bool)
	Neighbors() []spec.Neighbor
	Counters() dataplane.Counters
	// FIB may return nil; the server then summarizes Routes instead.
	FIB() *fib.FIB
}
