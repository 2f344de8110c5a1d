// Package spec holds the types every part of xvs shares: what a port is
// asked to be (PortConfig) and what it turned out to be (PortStatus), the
// routes a route source hands the switch (Route, Route, VXLANRoute),
// and the routes and neighbours as the API shows them (RouteInfo,
// Neighbor). The config loader, the API, the CLIs, the lab and the
// dataplane all speak these types, so none of them needs another's
// internals.
//
// It also owns the rules a route or a port address follows on its own,
// whoever sends it (validate.go: Route.Validate, Route.RoutePort,
// ValidatePortAddr, AddrConflict): the config loader runs them on a file,
// the API before it asks the switch, the switch on every change, so all
// three refuse the same values, each error naming the field and the value
// (FieldError).
//
// # Concurrency
//
// Plain values: safe to copy, not safe to mutate from several goroutines.
//
// # Allocation
//
// Nothing here is on a per-packet path; validation allocates its errors.
package spec
