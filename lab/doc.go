// Package lab builds xvs test topologies out of network namespaces and veth
// pairs on one machine, starts xvsd in them, and drives traffic through
// them. The end-to-end tests, `make demo` and the benchmarks use it, and
// `xvsctl lab up|down|status|sweep` (Main) exposes it on the command line.
//
// # Topology
//
// A lab is data first: Plan turns Options into a Topology (namespaces,
// veth pairs, addresses, sysctls, routes, neighbours) without touching the
// kernel; New creates exactly that, and Close deletes it. With the default
// options:
//
//	PREFIX-pod1  eth0 198.19.0.1/32 fd00:19::1/128 ──┐  host end xlpod1h,
//	PREFIX-pod2  eth0 198.19.0.2/32 fd00:19::2/128 ──┤  ee:ee:ee:ee:ee:ee, no IP
//	                                         PREFIX-node (xvsd; ip_forward=0,
//	                                                      ipv6 forwarding=0)
//	                                            uplink0 198.18.0.1/24 fd00:18::1/64
//	                                                │
//	PREFIX-out   node 198.18.0.2/24 fd00:18::2/64 ──┘  routes to 198.19.0.0/24
//	                                                    and fd00:19::/64 via the node
//
// Pods follow Calico's convention: /32 and /128 on eth0, default routes via
// 169.254.1.1 (onlink) and fe80::ecee:eeff:feee:eeee, IPv6 DAD off, no
// static neighbours unless Options.StaticNeighbors; xvsd answers ARP/NDP for
// the gateways. TX checksum offload is off on pod eth0, as the CNI plugin
// will have to set it (AF_XDP cannot carry a partial checksum;
// Options.PodTxChecksum keeps it on), and on the outside's uplink ends (a real network delivers
// complete checksums; with it goes their TSO, so the outside hands the
// nodes MTU-sized frames, as a real network does, whatever the forwarder).
// Options.UplinkGRO (`xvsctl lab up -uplink-gro`) turns GRO on at the
// nodes' ends of the uplinks, as a NIC's driver has it: the node's stack,
// tc and packet sockets then see those segments merged (TCP in VXLAN by
// the node's VXLAN socket, if it has one); the perf harness's cross-node
// labs use it for every forwarder.
// Options.PodMode and Options.UplinkMode choose xvsd's port modes
// ("af-packet" for either). Kernel forwarding is off in every node, so any
// packet that crosses a node went through xvsd. Node i of several gets
// 198.18.i.0/24 and fd00:18:i::/64 on its uplink and the pod block
// 198.19.i.0/24, fd00:19:i::/64; pods are numbered across nodes. All
// addresses come from 198.18.0.0/15 and fd00::/8.
//
// With Options.Encap "vxlan" (Calico's VXLAN mode) the outside routes only
// the underlay (198.18.i.0/24, fd00:18:i::/64; each node's kernel routes
// the other nodes' through the outside, as a host's own routes would),
// never a pod block, so pods on different nodes reach each other only
// through VXLAN: each node has a
// VTEP MAC (02:58:03:00:i:01), the pods' MTU is 1430 (room for VXLAN over
// IPv6), xvsd's config gets a vxlan: section and a vxlan route per other
// node and family, and KernelRouting sets up the kernel's own VTEPs as
// Calico does (vxlan.calico over IPv4, vxlan-v6.calico over IPv6, VNI
// 4096, learning off, static neighbour and FDB entries). New has the outside and the nodes resolve each
// other first (primeUnderlay): left to the first tunnelled packets, IPv6
// lost its first second. `xvsctl lab up -encap vxlan` builds one; `xvsctl
// lab status` shows each node's VTEP MAC (LAB_NODEi_VTEP_MAC and
// LAB_ENCAP with -o env).
//
// With Options.BGP (`xvsctl lab up -bgp`) the nodes learn each other's
// pod blocks from xvsd's BGP speakers instead of from static routes, and
// the outside routes no pod block. With native routing the nodes then
// share one segment, a bridge (br0) in the outside, node i at
// 198.18.0.i+1/24 and fd00:18::i+1/64, the outside at 198.18.0.254 and
// fd00:18::fe (the nodes' default gateway): a node-to-node mesh over IPv4
// and over IPv6, BGP next hops on the segment. With -encap vxlan the
// underlay stays routed; each node has one IPv4 session per other node
// carrying both families, and its bgp.vxlan entries send both families'
// routes into the IPv4 tunnel (IPv6 pods over an IPv4 underlay).
// Options.BGPOutsideAS (-bgp-outside-as) also peers every node with the
// outside's addresses (eBGP, IPv4 and IPv6 sessions); the caller runs the
// router there (the tests run BIRD 2).
//
// xvsd's config for a node is written by XVSDConfig (the only code that
// knows the file's format) into the lab's directory; xvsd runs inside the
// node's namespace, its API socket is /run/xvs/PREFIX-node.sock, and its
// metrics (127.0.0.1:9091) and health (127.0.0.1:9099) listen on that
// namespace's own loopback: reach them with HTTPGet or Exec.
//
// # Driving traffic
//
// Exec runs a command in a namespace (short names such as "pod1", "node",
// "outside" work) under a timeout; Start runs a long-lived one that Close
// ends. Ping and PingWith (TTL, count, size) and Iperf3 (a TCP run between
// two pods, its server started and stopped around it) are bounded in count
// and time. Listen and Dial open sockets inside a namespace, so a test can
// hold a TCP connection to a node's own kernel across an xvsd restart;
// HTTPGet reaches xvsd's loopback endpoints. StartXVSD, StopXVSD (SIGTERM,
// then SIGKILL after a bound), KillXVSD and WaitReady manage xvsd per node.
// KernelRouting makes a node's kernel forward for its pods Calico-style (the
// baseline the benchmarks compare xvsd against); NoKernelRouting turns it
// back off.
//
// # Naming
//
// Every namespace is PREFIX-NAME, where PREFIX is "xl" and four random hex
// digits unless given (ValidPrefix: 3-10 lowercase letters or digits), so
// concurrent labs never collide. Interfaces are created inside their
// namespaces (the host end of a veth in the node, its peer placed straight
// into the pod), so nothing ever appears in the namespace of the process
// that builds the lab, and no interface the lab did not create is touched.
//
// # Cleanup
//
//   - Close stops every process the lab started, by PID (SIGTERM, then
//     SIGKILL after Options.StopTimeout), then deletes the namespaces, which
//     deletes every veth with them, then the lab's directory. A failed New
//     cleans up after itself.
//   - Unless Options.Detach, processes the lab starts get SIGKILL from the
//     kernel if the process that started them dies, so a crashed test
//     leaves no xvsd attached to anything.
//   - The lab writes its state (topology, PIDs and their start times) to
//     /run/xvs-lab/PREFIX/state.json; Down tears a lab down from that file
//     in another process (xvsctl lab down), and a PID is only signalled if
//     its start time still matches.
//   - Sweep(prefix) deletes every namespace named PREFIX-* and the lab's
//     state, stopping the processes its state file records; it reports, but
//     does not signal, other processes still inside.
//
// # Concurrency
//
// A Lab's methods are safe for concurrent use. Namespace work runs on
// OS threads locked for its duration (InNS), never by switching a
// long-lived goroutine's namespace.
//
// # Allocation
//
// Not a hot path: everything here allocates freely.
package lab
