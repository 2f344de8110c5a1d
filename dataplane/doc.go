// Package dataplane is xvs's forwarding path: the workers, each running
// the pipeline to completion over vectors of frames from its ports, and
// what they count. It sees ports only through package port, routes only
// through fib views, and the control plane (package vswitch) only
// through its exported seams: Worker.Do posts a closure to run between
// vectors, Port is a port as the workers see it, VXLAN the node's VTEP,
// Request what a worker asks of the control plane.
//
// The files read in the order a packet moves:
//
//	worker.go   the loop: receive a vector from each port, drain the
//	            handoff rings from other workers, sleep when idle
//	pipeline.go classify (parse once into a desc), preRoute, the FIB
//	            lookup, decide4/decide6 (a decision), postRoute, act
//	local.go    what the switch answers itself: ARP, NDP, echo, and the
//	            ICMP errors it sends
//	vxlan.go    decapsulation on the uplinks, encapsulation into tunnels
//	nat.go      the NAT stage in the preRoute and postRoute slots:
//	            services' DNAT, natOutgoing's SNAT (below)
//	large.go    GSO super-frames: the same path, whole or cut
//	output.go   emit and flush: per-port batches, GRO merging, transmit
//	handoff.go  the rings that carry frames to another worker's ports
//	remote.go   asking for a destination in the tc fast path
//	counters.go drops by reason and events, per worker, published per vector
//
// with port.go (Port), config.go (Config) and drive.go (running a worker
// by hand, for tests and benchmarks) beside them. docs/ARCHITECTURE.md has
// the design.
//
// # The NAT stage
//
// The control plane (vswitch's SetServices, SetNATConfig) builds a NAT:
// the conntrack table, the affinity table, the addresses that need a
// look (VIPs, node addresses, backends), the service ports with their
// backend pools and Maglev tables, the natOutgoing prefixes and ports;
// Worker.SetNAT publishes it (an atomic pointer, loaded per packet; nil,
// no NAT configured, costs that one check). preRoute looks a packet up
// in conntrack only when its destination is a VIP or node address or its
// source a backend; a hit in either direction is rewritten to the flow's
// target (nat.Rewrite, incremental checksums, super-frames with partial
// checksums too) and routed by its new destination. A miss to a service
// port creates the flow: affinity, else Maglev over the ready endpoints
// (serving terminating ones when none is ready; local ones only, for
// internalTrafficPolicy Local from this node's pods and
// externalTrafficPolicy Local for NodePorts), SNAT to the VIP for hairpin
// and to the node address for a NodePort flow to a remote backend
// (CreateSNAT, so that replies come back here). No endpoint: ICMP (ICMPv6)
// port unreachable to the client, for TCP too, as kube-proxy's REJECT
// does. A TCP packet other than a SYN without a flow is picked up
// mid-stream (Linux's nf_conntrack_tcp_loose); a RST starts none. A
// packet to a VIP nat.Parse refuses is dropped and counted by its reason
// (the nat-* drops); nothing is translated half-way or across families.
// postRoute SNATs to the output uplink's address (Port.ICMPSrc4/6) what
// leaves by an uplink from a NAT.Outgoing source to a destination outside
// NAT.Internal; the reply, to the node address, is caught by preRoute. A
// translated frame is never learned for the tc fast path (learnRemote).
// Counters: nat-translated, nat-new-dnat, nat-new-snat and the nat-*
// drops, like every other.
//
// # Concurrency
//
// Everything a worker touches per packet is owned by its goroutine,
// locked to an OS thread: its Umem, its ports' batches, its scratch
// vectors, the local half of its counters. The control plane changes a
// worker's state only through closures run on it (Worker.Do); a worker
// talks back through a buffered channel of Requests with non-blocking
// sends. The FIB is read through an immutable view loaded once per vector.
// Counters are plain increments per packet, published with one atomic add
// per touched counter per vector; Worker.AddCounters reads the published
// half from any goroutine.
//
// # Allocation
//
// Nothing on the per-packet path allocates: no error values, no fmt, no
// interfaces boxed, no maps, no defer. TestPipelineZeroAlloc and its
// siblings (package vswitch) enforce it for whole vectors,
// TestNATZeroAlloc for translated flows and flow creation. Malformed
// frames are dropped and counted by reason (Drop), never panicked on;
// FuzzPipeline checks that and that no frame leaks.
package dataplane
