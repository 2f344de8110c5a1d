// Package cniserver is xvsd's CNI server: it does the work of every CNI
// operation the xvs-cni plugin (package cniplugin) forwards over the API
// socket, so the plugin holds no state and a crash of it loses nothing.
//
// It owns:
//   - ADD: IPAM Assign (pools from the pod's and namespace's
//     cni.projectcalico.org/ipv4pools/ipv6pools annotations over the
//     network config's lists, as ipam.PodPools reads them) → an endpoint
//     record (netns, requested mode, MTU) → podnet.Setup in Calico's shape
//     (/32 and /128, routes via 169.254.1.1 and fe80::ecee:eeff:feee:eeee,
//     MTU from the pools' encapsulation: the uplink's less 50 for VXLAN
//     over IPv4, 70 over IPv6; tx checksum off for AF_XDP pods, GRO on
//     with the fast path) → the switch's AddPort with the pod's addresses
//     (and so its routes). Each step has its undo, run last first when a
//     later one fails. Port mode auto is AF_XDP, which the switch falls
//     back from to AF_PACKET where XDP cannot attach, saying why
//     (Endpoints' ModeReason); a mode key in the network config forces one.
//   - memif ports (memif.go): a pod that asks by the xvs.dev/memif
//     annotation or the network config's memif key (true, or a list of
//     ports with queues, ringSize, polling, mac, mode; ParseMemif, a bad
//     value refused naming the key, field and value before anything is
//     made) gets, after its veth port, per memif i: an entry in its record
//     (written first, so DEL, GC and Start know every memif allocation it
//     may hold), a /32 and /128 from the same pools under the IPAM handle
//     "<ifname>@m<i>" (MemifHandle; the attachment's key stays (container
//     ID, ifname)), and a switch port of mode memif listening on the
//     abstract socket @xvs-memif<i> inside the pod's netns
//     (port/memif.PodPort: no host path to mount, the netns scopes it).
//     The result reports each with its socket path and addresses. DEL
//     deletes the ports and releases them; a failed ADD undoes each; Start
//     re-creates them from the records with the store's addresses; GC
//     keeps the memif handles of a valid attachment; the sweep deletes
//     memif ports and releases memif allocations no record lists.
//   - DEL: port, veth (by the host end alone, so a vanished netns does
//     not matter), release, record; idempotent.
//   - CHECK: record, allocation, port up, podnet.Check.
//   - GC: DELs every attachment of the node not in the runtime's list,
//     then the allocator's GC and a sweep of orphan veths and ports.
//   - STATUS: code 50 unless the dataplane is ready and a pool is enabled.
//   - Start: re-adopts the node's pods after a restart from the store: an
//     allocation whose host veth is still there gets its port back; what
//     no allocation stands behind (a crash between steps) is deleted.
//   - The node's blocks: a blackhole route (fib.OriginIPAM) per affine
//     block, so a block's unused addresses go nowhere else; NodeBlocks and
//     SubscribeBlocks for the BGP wiring to advertise them.
//   - Listings for xvsctl (Usage, Endpoints) and the gRPC service
//     (GRPC, Register) in api/xvspb/cni.proto.
//
// Host ends are named "xvs" and 12 hex digits of a hash of the attachment
// (HostIfName), so a restarted xvsd finds them without any other state.
// Crash safety: the IPAM store is the truth. ADD's order (allocation,
// record, veth, port) and DEL's (port, veth, release, record) leave, at
// any kill -9, either something Start re-adopts or something the runtime's
// retried DEL or GC removes; never a veth or port without an allocation
// that Start does not sweep.
//
// Concurrency: every method is safe for concurrent use. Operations on one
// attachment (container ID, interface) are serialized by a striped lock;
// different attachments run in parallel, their IPAM writes group-committed
// by the allocator.
//
// Allocation: control-plane code, once per CNI call; nothing runs per
// packet.
package cniserver
