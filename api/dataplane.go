package api

import (
	"net/netip"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/vswitch"
)

// Dataplane is what the server needs of the switch; *vswitch.Switch
// implements it. Every method must be safe for concurrent use.
type Dataplane interface {
	Ready() bool
	AddPort(pc vswitch.PortConfig) (vswitch.PortStatus, error)
	DelPort(name string) error
	Ports() []vswitch.PortStatus
	AddRoute(r vswitch.StaticRoute) error
	DelRoute(p netip.Prefix) error
	Routes() []vswitch.RouteInfo
	LookupRoute(a netip.Addr) (vswitch.RouteInfo, bool)
	Neighbors() []vswitch.Neighbor
	Counters() vswitch.Counters
	// FIB may return nil; the server then summarizes Routes instead.
	FIB() *fib.FIB
}
