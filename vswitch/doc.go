// Package vswitch is xvs's switch, the control side of the dataplane: it
// owns the ports' life (opening them through the driver registry of
// package port, their IDs, workers, steering entries and status), the one
// entry point for routes (ApplyRoutes, routes.go) and their resolution to
// next hops, the uplinks' neighbours as the kernel's monitor (package
// netmon) reports them, the node's VXLAN tunnel endpoint and the kernel's
// VXLAN device under the fast path (vxlan.go, tunnel.go), and the other
// nodes' destinations in the tc fast path (remote.go), and the NAT
// stage's control side (service.go): SetServices and SetNATConfig
// validate, build the dataplane.NAT the workers translate with and
// publish it at once, keep the fast path's punt map in step with the
// backends, and delete the flows of backends that left (their packets
// then find no flow and are not translated: TCP clients time out, or get
// a reset from the backend their next segment is balanced to, as behind
// kube-proxy). The connection-tracking table (Conntrack) is allocated by
// the first of them (Config.ConntrackSize flows, default
// DefaultConntrackSize) and swept every second by the event loop; the
// node addresses (NodePorts, the SNAT source) are the uplinks' global
// addresses, rebuilt when an uplink comes or goes. The workers and
// the pipeline are package dataplane's; the switch builds them, hands
// them ports and talks to them only through that package's seams.
//
// docs/ARCHITECTURE.md has the design: the packet path, VXLAN, the XDP
// and tc fast path, offloads, and why each is the way it is.
//
// # Concurrency
//
// Switch methods are safe for concurrent use; they serialize on Switch.mu.
// The switch changes a worker's state only by posting a closure
// (dataplane.Worker.Do) that the worker runs between vectors. One event
// loop serves what the workers ask (neighbour resolution, learned pod
// MACs, remote destinations) and follows the FIB's changes; the kernel
// monitor calls in from its own goroutines.
//
// # Allocation
//
// Nothing here is on the per-packet path; the control side allocates
// freely.
package vswitch
