// Package bgp is xvs's BGP speaker: GoBGP (github.com/osrg/gobgp/v4,
// v4.8.0) embedded as a library, configured in Calico's shapes, feeding
// the routes it learns to a RouteSink in batches. No GoBGP type leaves
// the package: xvsd's adapter sees Route, RouteSink, Config, Status and
// RouteEntry only, so wiring it to the switch's batched route entry point
// (Switch.ApplyRoutes(origin, adds, dels)) is a few lines.
//
// # What it owns
//
//   - Config: cluster AS (default 64512) and per-node override, router ID
//     (the node's IPv4 address, else derived from its IPv6 address), listen
//     port, the node-to-node mesh (on by default; the caller supplies the
//     members, later from the Kubernetes nodes), explicit peers (global or
//     node specific; IPv4 or IPv6; AS, MD5 password, hold/keepalive, TTL
//     security for eBGP, multihop, families, BFD), route reflector client
//     and server roles with a cluster ID, graceful restart (helper and
//     restarting speaker), communities and service ranges on advertised
//     routes. Validate names the field (its YAML path) and the value.
//   - Sessions over the kernel's TCP from the node's addresses. An IPv4
//     peer carries IPv4 by default, an IPv6 peer IPv6 (separate sessions,
//     as Calico's BIRD has them); families: [ipv4, ipv6] carries both on
//     one session: IPv6 over IPv4 (MP-BGP) with the node's IPv6 address
//     as next hop, never an IPv4-mapped one, and IPv4 over IPv6 with the
//     extended next hop capability (RFC 8950; an IPv6 next hop when the
//     node has no IPv4 address). Of a global + link-local IPv6 next hop
//     pair the global one is used.
//   - Advertisement of what the node owns (SetPrefixes: its pod blocks as
//     aggregates, later IPAM's blocks; the service ranges of the config),
//     withdrawn on removal, and the export policy: locally originated
//     routes only, plus iBGP-learned routes on a route reflector (GoBGP's
//     RFC 4456 rules reflect them). Routes learned over eBGP, or over iBGP
//     without reflection, are never passed on; per-pod routes never enter
//     BGP at all.
//   - The adapter (rib.go) from GoBGP's best-path events to the sink: each
//     learned prefix's best path, or its multipath set when maxPaths > 1
//     (ECMP; off by default, as in Calico's BIRD),
//     changes coalesced by prefix and handed over once a burst settles
//     (Options.BatchDelay, 2ms) or reaches Options.MaxBatch (65,536).
//   - Next-hop tracking (Options.NextHopUsable): with a predicate set, a
//     prefix reaches the sink with its usable next hops only, and is
//     deleted from it (held, RIBCounters.Held) while it has none; the
//     verdict per next hop and announcing peer is cached until
//     RecheckNextHops, which asks again and re-sends only the prefixes
//     through a next hop whose verdict changed (a walk of the table only
//     then). NextHops lists the next hops in use with their verdicts.
//   - Run-time reconfiguration, without a restart and without touching
//     sessions that do not change: SetPeers(ctx, []Peer) replaces the
//     explicit peers by difference (the Kubernetes node agent's call as
//     BGPPeer objects change), SetMesh(ctx, enabled, members) and
//     SetMeshMembers(ctx, members) the node-to-node mesh (from the Node
//     objects), SetPrefixes the advertised blocks, Reconfigure a whole
//     Config. Peers() reads the current list back. Each validates like
//     the config and, on an error, changes nothing; the AS, router ID,
//     node addresses, listen port, route-reflector cluster ID and
//     maxPaths need a restart (Reconfigure says so, naming the field).
//   - Status (calicoctl node status's table: peer address, type, state,
//     since, info with the last error; per-peer received, accepted,
//     advertised, UPDATE and withdraw counts, flaps, malformed UPDATEs),
//     FormatStatus (the "IPv4 BGP status" / "IPv6 BGP status" tables),
//     with a row of type "unknown" (state refused, INFO "Refused: not a
//     configured peer (N connection attempts, last T)") for each address
//     that connected without being a peer, the 16 most recent
//     (Status.Unknown, apart from Peers; GoBGP only logs these at Info,
//     which the speaker's log handler always takes),
//     Routes and FormatRoutes (`xvsctl bgp routes`), a Prometheus
//     collector (Collector). Refused connections from unknown peers are
//     counted beyond the rows kept (Status.UnknownConnections and
//     UnknownAddresses, a line under the tables,
//     xvs_bgp_unknown_peer_connections_total,
//     xvs_bgp_unknown_peer_addresses_total, xvs_bgp_unknown_peers).
//
// Malformed UPDATEs are GoBGP's to handle (RFC 7606: treat-as-withdraw
// for attribute errors, session reset for unparsable NLRI); GoBGP reports
// them only in its logs, so the speaker passes GoBGP's records through a
// slog handler that notes, per peer, the RFC 7606 handling, NOTIFICATIONs
// sent and received and failed connection attempts, for status.
//
// # Concurrency contract
//
// A Speaker's methods may be called from any goroutine; a mutex
// serializes configuration changes (Start, Close, Reconfigure,
// SetPeers, SetMesh, SetMeshMembers, SetPrefixes); each edit reads and
// replaces the config under one hold, so concurrent edits compose. GoBGP runs its own goroutines; its event
// callbacks update the adapter under the adapter's mutex and never call
// the sink. One flusher goroutine calls RouteSink.ApplyRoutes, never
// concurrently, with slices valid only during the call. GoBGP keeps its
// multipath switch in a package variable (table.UseMultiplePaths) that the
// last speaker started sets for the whole process, so speakers sharing a
// process must agree on maxPaths (one or more than one); that is the only
// state they share.
//
// # Allocation contract
//
// This is control plane: nothing here is on the per-packet path. GoBGP
// allocates per path (its RIB, and a copy of every path for each event);
// the adapter keeps one map entry per learned prefix (a small slice of
// next hops) and allocates one slice of routes and one of next hops per
// batch.
//
// # Namespaces and tests
//
// GoBGP opens its listener and outgoing connections from its own
// goroutines, on any OS thread, and takes no pre-made sockets, so a
// speaker cannot be put in a network namespace by switching one thread.
// xvsd runs inside the node's namespace, so in production this does not
// arise; the tests run each speaker in a child process (the test binary
// re-executed under `ip netns exec`, driven over a line protocol on
// stdin/stdout; harness_test.go). BIRD 2 runs by hand in namespaces. The
// tests need root and skip without it; the 1.06M-prefix comparison with
// BIRD + kernel runs with XVS_BGP_SCALE=1 (several minutes).
package bgp
