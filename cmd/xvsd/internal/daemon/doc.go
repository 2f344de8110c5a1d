// Package daemon is xvsd minus its main: flags, configuration, logging,
// the dataplane's life cycle, the API server, and the metrics and health
// HTTP endpoints. main only supplies how to build the switch, so tests run
// the whole daemon over a fake dataplane.
//
// Start-up order matters: the API socket and the HTTP listeners are taken
// before the switch is built, so a second xvsd (or a port already in use)
// fails before it attaches XDP to interfaces the first one owns.
//
// # BGP
//
// With a bgp: section the daemon starts package bgp's speaker after the
// switch forwards (and after the API's state is restored, so the pods'
// routes are there first) and closes it before the switch. bgp.go's
// routeSink is the speaker's RouteSink: it turns best routes into
// Switch.ApplyRoutes(fib.OriginBGP, ...) batches, natively via the BGP
// next hop (the switch resolves it through the port's neighbours, as a
// static route's via) or through the VXLAN tunnel bgp.vxlan maps the next
// hop or the peer to. An equal-cost set (maxPaths > 1) becomes one route
// with spec.Route.ECMP, an ECMP group in the FIB (into a tunnel: the
// first next hop's). Next hops are tracked (bgpnexthop.go): the speaker
// hands over a prefix with its usable next hops only (a VXLAN next hop,
// or one on the connected subnet of a port that is up whose kernel
// neighbour is not failed) and takes it out of the FIB while it has none
// (xvs_bgp_held_prefixes, xvs_bgp_unusable_next_hops); once a second the
// daemon re-checks them and asks the kernel to resolve or confirm each
// native one (NTF_USE), so a next hop that stops answering ARP/NDP turns
// failed and its routes leave, and they return when it answers again
// (also when a port's subnet comes or goes). A route the switch still
// refuses is logged, counted (xvs_bgp_routes_refused_total) and
// left out, and takes out what the prefix had; a withdrawn prefix, or
// every route of a peer whose session ends, leaves the FIB in the same
// batch. Prefixes another origin owns are not overridden
// (xvs_bgp_routes_shadowed_total). The node's blocks are advertised and
// blackholed: bgp.advertise (replaceable at run time, SetAdvertised and
// the API's SetBGPAdvertised) and, with an ipam: section, the CNI
// server's node blocks, read at start and followed through
// SubscribeBlocks as blocks are claimed or released (SetNodeBlocks sets
// them by hand). Peers and the mesh change at run time through the API
// (SetBGPPeers, AddBGPPeer, DeleteBGPPeer, SetBGPMesh; `xvsctl bgp peer`,
// `xvsctl bgp mesh`) or the speaker's SetPeers/SetMesh. The BGP
// gRPC service (api/bgp.go) serves `xvsctl node status` and `xvsctl bgp
// routes`; the speaker's collector joins /metrics.
//
// # Kubernetes
//
// With a kubernetes: section kube.go builds package kube/agent's agent
// before the CNI server (which takes pod annotations from it) and runs it
// after BGP: its BGP state is applied with Speaker.Reconfigure (mesh
// members and peers join the file's; an AS change is refused until a
// restart and shows as the agent's last error), its VXLAN routes go to
// the switch as origin kube, the node's labels to the allocator (for the
// pools' nodeSelectors), the node's blocks (SubscribeBlocks) are
// published on the Node and advertised (SetNodeBlocks).
//
// With an ipam: section too the allocator's store is kube/ipamstore
// (kubeipam.go): the IPPools are the pools and blocks are claimed through
// the API. The allocator and the CNI server are built at start on a
// lazyStore that answers "not synced" until ipamstore.New has listed the
// IPAMBlocks and IPPools (which waits out an unreachable API server with
// client-go's backoff); then the CNI server's Start re-adopts the node's
// pods from the store's allocations and the endpoint records, the
// Reclaimer starts (one per node, no leader: its writes are
// compare-and-swap, so racing reclaimers find the work done), and the
// cniGate in front of the CNI service opens. Until then STATUS answers
// code 50, ADD, DEL, CHECK and GC code 11 (try again later): nothing is
// claimed locally. BGP starts with no IPAM blocks and follows them once
// the store synced. stopCNI (after stopKube and stopBGP) stops that
// goroutine, the Reclaimer and the store. /readyz stays the
// dataplane's: an unreachable API server does not stop forwarding;
// xvs_kube_connected, xvs_kube_synced, xvs_kube_resyncs_total and
// xvs_kube_watch_errors_total, and `xvsctl kube status`, say how it is.
//
// # Services and NAT
//
// services.go: when the switch has a NAT stage (ServiceSwitch), the
// daemon merges three service sources into the switch's one set: the
// config file's services: (at start), the API's (SetServices, replacing
// the API's own set) and, with a kubernetes: section, package
// kube/services' watcher (Services and EndpointSlices, run beside the
// agent). Each change calls SetServices with all three; a set the switch
// refuses (a clash between sources) leaves the source's previous set in
// place and returns the error to that source. The NAT policy
// (config.Config.NATFor) is computed from the ipam: section's pools and
// the agent's IPPools and set at start and whenever the IPPools change;
// a node without a natOutgoing pool never calls SetNATConfig (no
// conntrack table for nothing). The API's services are not kept in the
// state file. The watcher's counters are xvs_kube_services,
// xvs_kube_service_ports_skipped_total (SCTP), xvs_kube_services_refused_total
// and xvs_kube_service_apply_errors_total.
//
// # Concurrency
//
// Run owns the daemon's goroutines (API server, HTTP servers) and returns
// after all of them stopped and the switch is closed. The metrics
// collector reads the switch at scrape time on promhttp's goroutine; it
// needs only the switch's methods to be safe for concurrent use. The
// speaker calls the route sink from its one flusher goroutine; the sink's
// mutex orders those batches with SetNodeBlocks.
//
// # Allocation
//
// Control path only; a scrape allocates one metric per counter and port.
package daemon
