package bgp

import (
	"net/netip"
)

// Route is a best route learned from BGP, as the RouteSink gets it.
type Route struct {
	Prefix netip.Prefix
	// NextHops are the equal-cost next hops (one unless ECMP applies),
	// sorted. An IPv6 next hop is the global one of a global + link-local
	// pair; a link-local one (with its zone lost) only when the peer sent
	// no other. An IPv4-mapped IPv6 next hop arrives unmapped, as IPv4.
	NextHops []netip.Addr
	// Peer is the peer the first next hop was learned from.
	Peer netip.Addr
}

// RouteSink receives the changes of the best routes, batched: a burst of
// UPDATEs becomes one call. adds replace any route of the same prefix.
// Calls come from one goroutine, never concurrently. An error is logged
// and counted, and the prefixes of the batch are retried with the next
// one. The slices are only valid during the call.
type RouteSink interface {
	ApplyRoutes(adds []Route, dels []netip.Prefix) error
}

// NextHopState is a next hop in use, as Speaker.NextHops lists it.
type NextHopState struct {
	NextHop netip.Addr `json:"nextHop"`
	Peer    netip.Addr `json:"peer"` // the peer that announced it
	Usable  bool       `json:"usable"`
}
