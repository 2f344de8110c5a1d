// Package vswitch is xvs's switch: it owns the ports' life (opening them
// through the driver registry of package port, their IDs, workers,
// steering entries and status), the one entry point for routes
// (ApplyRoutes, routes.go) and their resolution to next hops, the uplinks'
// neighbours as the kernel's monitor (package netmon) reports them, the
// node's VXLAN tunnel endpoint and the kernel's VXLAN device under the
// fast path (vxlan.go, tunnel.go), and the other nodes' destinations in
// the tc fast path (remote.go). Until they move to a package of their
// own, it also holds the workers and the forwarding pipeline (worker.go,
// pipeline.go, large.go, handoff.go, counters.go).
//
// docs/ARCHITECTURE.md has the design: the packet path, VXLAN, the XDP
// and tc fast path, offloads, and why each is the way it is.
//
// # Concurrency
//
// Switch methods are safe for concurrent use; they serialize on Switch.mu.
// Everything a worker touches per packet is owned by its goroutine (locked
// to an OS thread). The control plane changes a worker's port table only
// by posting a closure (worker.do) that the worker runs between vectors.
// The FIB is read through immutable views (fib.View) loaded once per
// vector. Workers talk back to the control plane (neighbour requests,
// learned pod MACs, remote destinations) through a buffered channel with
// non-blocking sends, which one event loop serves. The kernel monitor
// calls in from its own goroutines.
//
// # Allocation
//
// Nothing on the per-packet path allocates: no error values, no fmt, no
// interfaces boxed, no maps, no defer. TestPipelineZeroAlloc enforces it
// for a whole vector. Malformed frames are dropped and counted by reason
// (see Drop), never panicked on; FuzzPipeline checks that and that no
// frame leaks. The control side (ports, routes) allocates freely.
package vswitch
