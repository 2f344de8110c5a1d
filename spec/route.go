package spec

import "net/netip"

// Route is a route as a route source hands it to the switch
// (Switch.ApplyRoutes): where a prefix goes, by port name, gateway or
// tunnel, before the switch resolves it to a next hop. The config file,
// the API and, later, BGP and the CNI server all speak it.
type Route struct {
	Prefix    netip.Prefix
	Via       netip.Addr // gateway; invalid for an attached or blackhole route
	Port      string     // output port name; empty to infer from Via
	Blackhole bool
	// VXLAN, when set, sends the prefix into a VXLAN tunnel instead (Via
	// and Port stay empty); it needs Config.VXLAN.
	VXLAN *VXLANRoute
	// ECMP are more gateways of equal cost besides Via (BGP multipath):
	// the switch spreads flows over all of them by a 5-tuple hash. Each
	// is on an uplink's subnet; Port stays empty.
	ECMP []netip.Addr
}

// VXLANRoute is where a VXLAN route's tunnel ends: Calico's VXLAN mode
// gives every node a VTEP address (its own underlay address) and MAC, and
// routes each other node's pod blocks to them.
type VXLANRoute struct {
	// Remote is the other node's VTEP address. Its family picks the
	// outer header: IPv4 (50 bytes with the inner Ethernet header) or IPv6
	// (70), whatever the prefix's family. The switch reaches it through
	// its own routes, like any destination on the underlay.
	Remote netip.Addr
	// MAC is the other node's VTEP MAC, the inner frame's destination.
	MAC [6]byte
}

// RouteInfo is one route as the API shows it.
type RouteInfo struct {
	Table   uint32
	Prefix  netip.Prefix
	Origin  string
	Kind    string
	Port    string
	Via     netip.Addr
	NextHop string
}
