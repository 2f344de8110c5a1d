package spec

import "net/netip"

// Neighbor is one resolved (or static) neighbour.
type Neighbor struct {
	Port   string
	Addr   netip.Addr
	MAC    [6]byte
	State  string // "static", "reachable", "stale", "incomplete", "failed"
	Static bool
}
