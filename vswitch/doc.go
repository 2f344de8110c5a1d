// Package vswitch is xvs's dataplane: ports, workers, the forwarding
// pipeline, neighbours and counters, and the Switch that owns them.
//
// # Shape
//
// A Switch has one or more workers. A worker owns a Umem (package xsk): a
// region of fixed-size frames with a free stack. Every port the worker serves
// — AF_XDP sockets (port_xdp.go), AF_PACKET sockets (port_afpacket.go) and
// the channel-backed FakePort for tests — receives into and transmits from
// that Umem, so a frame keeps one address from receive to transmit and moving
// it between two AF_XDP ports of the worker is a descriptor hand-off, not a
// copy. Ports sit behind the batched Port interface (port.go); the pipeline
// never sees which kind it talks to.
//
// A worker loops: receive a vector (BatchSize frames, default 256) from each
// port, run it through the pipeline (pipeline.go), hand each output port its
// batch, publish counters. When idle it spins a little and then sleeps in
// poll(2) (PollAdaptive), or never sleeps (PollBusy).
//
// The pipeline, per vector:
//
//	parse Ethernet → ARP (proxy ARP on pod ports)
//	              → IPv4 / IPv6: validate, answer NDP and echo for the gateway,
//	                collect destinations → one batched FIB lookup per family
//	              → per packet: TTL / hop limit, MTU, neighbour check,
//	                decrement + incremental checksum, L2 rewrite, enqueue
//	              → ICMP errors (time exceeded, unreachable, frag needed /
//	                packet too big) built in a fresh frame, rate limited
//
// Pods follow Calico's convention: /32 and /128 on eth0, default routes via
// 169.254.1.1 and fe80::ecee:eeff:feee:eeee, both answered by the switch with
// the MAC ee:ee:ee:ee:ee:ee. The uplink is shared with the host: its XDP
// program steers only pod prefixes and VXLAN for the node to the switch, and the
// switch never answers ARP/NDP there. It asks the kernel to resolve next hops
// (NTF_USE) and follows the kernel's neighbour table (neighbor.go), so the
// host's own traffic is untouched and a restart of xvsd finds the neighbours
// already resolved.
//
// An uplink with several NIC queues (PortConfig.Queues) gets one AF_XDP socket
// per queue under one steering program; queue q is served by worker
// q%Workers, and a worker's port table maps the uplink to the queue it serves,
// so traffic toward the uplink never crosses workers. Other cross-worker
// traffic (pod ports on different workers) goes through handoff rings
// (handoff.go), which copy.
//
// The host port (kind host) is a veth pair in xvsd's namespace: the kernel
// routes pod prefixes out of one end via the gateway, the switch drives the
// other, answers ARP/NDP there as on a pod port, and delivers packets for the
// node's own addresses (punt routes) to the host through it. That is how the
// node (kubelet probes, hostNetwork pods) and the pods reach each other.
//
// # VXLAN
//
// With Config.VXLAN the node is a VXLAN tunnel endpoint, as in Calico's
// VXLAN mode (vxlan.go): one VNI (default 4096), one VTEP MAC and an
// address per underlay family (by default the uplink's). A route with a
// VXLANRoute (the other node's VTEP address and MAC) is a fib.KindVXLAN
// next hop. A packet routed to one is checked against the tunnel's MTU
// (the uplink's less 50 bytes over IPv4, 70 over IPv6; frag-needed or
// packet-too-big otherwise), its inner MACs are set VTEP to VTEP, and
// outer Ethernet, IP, UDP and VXLAN headers are written into the headroom
// in front of it (Headroom), in place. The outer next hop is whatever the
// FIB routes the remote VTEP address to, an uplink adjacency, cached per
// FIB view (worker.vtepCache), so the underlay may change under the
// tunnels; until its neighbour is resolved, packets are dropped and the
// kernel is asked, as for any next hop. The UDP source port is a hash of
// the inner flow (ECMP in the underlay); the UDP checksum is zero over
// IPv4 and computed over IPv6, as Linux sends and expects.
//
// The uplinks' programs steer UDP to a VTEP address and the VXLAN port to
// the switch. classify strips the outer headers of what has the right UDP
// length and checksum, the I flag, the node's VNI and, inside, the node's
// VTEP MAC (else bad-vxlan, vxlan-vni, vxlan-mac) and classifies the inner
// frame as received on the tunnel's pseudo-port (worker.tun): routed like
// any packet, its TTL decremented; replies to it (ICMP errors) are routed
// back into the tunnel rather than sent out of a port (worker.reply). TCP
// super-frames bound for a tunnel are cut into segments first, each then
// encapsulated; decapsulated segments bound for a pod are merged by GRO
// at flush like any others.
//
// # The fast path (XDP and tc)
//
// With Config.XDPFastPath the ports' own BPF programs forward pod-to-pod
// frames (xdpprog.FastPath): a frame from a pod to another pod of the node,
// with TTL or hop limit above 1, no IPv4 options and within the
// destination's MTU gets its TTL decremented (IPv4 checksum updated), its
// MACs rewritten and is sent out of the other pod's host end, in the
// kernel, without a copy to a worker. Everything else still goes to the
// worker, so the pipeline remains the one place that answers ARP/NDP,
// routes, and sends ICMP errors. Which program forwards depends on the
// sending pod's port:
//   - AF_XDP: its XDP program, with XDP_REDIRECT through a devmap
//     (xdp-forwarded-ipv4/6). Receiving redirected frames needs NAPI on the
//     destination pod's eth0: the CNI plugin (and the lab) turn GRO on
//     there, and only AF_XDP pods are XDP destinations.
//   - af-packet: its tc ingress program, with bpf_redirect, sk_buffs whole:
//     TCP's GSO super-frames cross without being copied or cut
//     (tc-forwarded-ipv4/6). The port's packet socket sees a frame before
//     tc does, so it carries a socket filter built from the same decision
//     that refuses exactly the frames tc forwards (port_afpacket.go,
//     attachFastIngress). If either cannot attach, the port works as
//     without the fast path and its status says why.
//
// The uplinks' programs carry the same fast path in front of their
// steering (xdpprog.New with an Uplink and a FastPath): a frame from the
// network for an AF_XDP pod of the node is forwarded in XDP too, so
// traffic between nodes is forwarded by the receiving node's kernel and
// only the sending node's worker sees it. With VXLAN, the uplink program
// also decapsulates VXLAN over IPv4 for the node's VNI and VTEP MAC
// (xdpprog.Program.SetDecap) when the inner frame goes to such a pod,
// and puts the outer headers back for the socket otherwise; it checks the
// outer headers as the worker does but does not verify a non-zero outer
// UDP checksum, leaving that to the inner packet's own checksums. VXLAN
// over IPv6 always goes to the worker.
//
// The switch installs a pod as a destination once its port is up and its
// MAC known (fastAddLocked), and removes it before the port goes
// (fastDelLocked). The programs count what they forward; the workers never
// see it.
//
// Other nodes' destinations join the tc fast path as the workers route to
// them (remote.go): a frame from an af-packet pod whose tc program is in
// force that a worker sends out of an uplink makes it ask the control
// plane (learnRemote, once a second per address at most), which looks the
// address up in the FIB itself and adds it, out of the uplink with the
// neighbour's MAC and the uplink's MTU, if the route is one resolved
// neighbour on an uplink (no ECMP group, no tunnel). Every FIB change
// (fib.Changed) re-resolves them all, updating or removing what moved
// (fast-path-remotes counts the additions). The pod's TSO super-frames
// then leave through the uplink from its tc program whole, as the kernel's
// routing sends them. XDP programs never redirect to them.
//
// VXLAN routes join it too when the switch has its kernel VXLAN device
// (tunnel.go): with VXLAN and the fast path on, it creates xvs.vxlan, a
// metadata-mode (collect_md) VXLAN device, in its namespace. A tunnel
// destination's entry carries the tunnel key (VNI, remote VTEP): the tc
// program sets it (bpf_skb_set_tunnel_key) and redirects into the device,
// which encapsulates the pod's super-frames whole (UDP-tunnel GSO) and
// routes the outer packet by the host's routes, as vxlan.calico would,
// from the node's VTEP address (the key's local address) if the host has
// it, else from the route's source (kernelTunnelSource warns).
// The other way, the uplink's program (XDP over IPv4, tc over IPv4 and
// IPv6) hands VXLAN whose inner frame goes to a fast-path pod, fits its
// MTU and is not for another tunnel to the kernel whole
// (SetKernelVXLAN); the device decapsulates and merges it (GRO), and its
// tc program checks the VNI and the VTEP MAC and forwards to the pod. On
// an uplink that runs GRO itself (a NIC's driver), the node's VXLAN
// socket merges the segments before the uplink's tc program sees them,
// and the program hands the kernel the super-frame. The workers keep
// every other kind of VXLAN, and answer a packet too big for its pod. The
// tunnel's MTU is the uplink's less the overhead, as for the workers; a
// super-frame whose segments the device's program cannot forward (TTL 1,
// too big) is dropped there, without an ICMP error.
//
// # Uplinks: AF_XDP, or AF_PACKET steered by tc
//
// An uplink is AF_XDP by default: its XDP program steers pod prefixes and
// VXLAN for the node to the socket and passes everything else to the host.
// XDP on a veth takes TSO away from the peer, and AF_XDP takes frames one
// by one; an uplink in mode af-packet keeps the sk_buffs: an AF_PACKET
// socket with PACKET_VNET_HDR and xdpprog.UplinkIngress, a tc ingress
// program on the same maps as the XDP steering (AddPrefix, SetVTEP through
// PrefixSteerer and VTEPSteerer) that drops what the switch takes (its
// socket's tap saw it), passes the rest to the host, and with the fast
// path first forwards frames for the node's pods itself, super-frames
// whole. The socket carries a filter built from the same decisions, so it
// gets exactly the frames tc drops. If the tc program cannot attach, the
// port is passive (portState.passive): it sees a copy of everything the
// host gets, and the switch forwards only frames to its MAC and answers
// nothing there. A UDP GSO super-frame of VXLAN for the node (another
// node's merged datagrams, kept whole by the network) is cut into its
// datagrams and each decapsulated (vxlanLarge). TCP in VXLAN that the
// kernel merged (an uplink that runs GRO, as a NIC's driver does, on a
// host with a VXLAN socket on the node's port: xvs.vxlan or a device of
// its own) arrives as one TCP GSO super-frame with its outer headers: its
// inner super-frame is taken out and routed whole (vxlanLargeTCP), where
// it used to be dropped as bad-offload. Pair it with af-packet
// pods and the fast path, and TCP between nodes crosses both in tc:
// docs/BENCHMARKS.md has the figures.
//
// # Offloads: GSO super-frames and partial checksums
//
// XDP on a veth takes TSO away from the peer (the kernel clears the pod's
// GSO features), and AF_XDP carries neither GSO nor partial checksums, so a
// pod behind an AF_XDP port sends TCP in MTU-sized frames with its checksum
// offload off. A pod port in mode af-packet keeps both: its AF_PACKET socket
// uses PACKET_VNET_HDR (port_afpacket.go), every frame carries a
// virtio_net_hdr, and the pod's TCP reaches the switch as 64 KiB GSO
// super-frames. Such a port implements LargePort: small frames with a
// partial checksum are completed on receive and go through the normal
// pipeline; super-frames (and frames bigger than a Umem frame) are gathered
// in the port's spill buffers and go through forwardLarge (large.go). That
// routes them with the same route4/route6 as every packet (the MTU check
// uses the segment size), then sends them whole, offload header unchanged,
// to an offloading port of the same worker — one sendmsg for up to 44 TCP
// segments — or cuts them into segments in Umem frames (encap.GSO) for a
// port that takes none, or another worker's. Frames keep their order: the
// packets before a super-frame in a vector are flushed before it.
//
// Every port takes super-frames: an af-packet port on its own socket, an
// AF_XDP port through a send-only AF_PACKET socket with PACKET_VNET_HDR
// beside its ring (XDPPortOptions.LargeTx; without one, the port gets
// segments). The uplink thus sends super-frames whole for the NIC's TSO
// (or the kernel's GSO) to cut, and a pod's veth hands one to the pod's
// stack in one piece. The other way, too: TCP segments bound for a port
// are merged at flush (worker.transmitMerged, encap.GRO): each run of
// consecutive, checksum-valid segments of one flow in its batch leaves as
// one super-frame, in order with the frames around it (gro-merged,
// gro-segments), so a pod receives what crossed the network, or came from
// a pod without TSO, as it would from the kernel's GRO. encap.GROPair, a
// comparison of addresses and ports, keeps the copy and checksum of
// Start for frames the next one may continue; a super-frame the port's
// socket refuses (full) leaves as the segments it came from. Toward an
// uplink, runs of one UDP flow's datagrams of one size are merged the
// same way into a UDP GSO (USO) super-frame (encap.UDPGRO,
// udp-gro-merged): above all the VXLAN toward one remote VTEP, every
// encapsulated segment of a TCP flow, which then leaves in one sendmsg
// for the interface to cut. Never toward a pod: its stack would take a
// UDP super-frame whole into its packet sockets and XDP programs.
//
// An AF_PACKET pod or host port also attaches a tc ingress drop behind the
// packet taps (xdpprog.IngressDrop): the switch's socket sees every frame,
// the node's kernel none, as with XDP ports. Without it the node would run
// every pod frame through its IP stack and answer some with ICMP errors.
//
// AF_PACKET pod ports trade small-packet rate (recvmmsg/sendmmsg instead of
// rings, LargeSlots frames per receive, and the node's kernel also sees the
// frames) for TCP throughput; docs/BENCHMARKS.md has both figures.
//
// # Concurrency
//
// Switch methods are safe for concurrent use; they serialize on Switch.mu.
// Everything a worker touches per packet is owned by its goroutine (locked to
// an OS thread). The control plane changes a worker's port table only by
// posting a closure (worker.do) that the worker runs between vectors. The FIB
// is read through immutable views (fib.View) loaded once per vector. Workers
// talk back to the control plane (neighbour requests, learned pod MACs)
// through a buffered channel with non-blocking sends.
//
// Counters are per worker: plain increments per packet, published with one
// atomic add per touched counter per vector; Switch.Counters sums them.
//
// # Allocation
//
// Nothing on the per-packet path allocates: no error values, no fmt, no
// interfaces boxed, no maps, no defer. TestPipelineZeroAlloc enforces it for
// a whole vector. Malformed frames are dropped and counted by reason (see
// Drop), never panicked on; FuzzPipeline checks that and that no frame leaks.
//
// # Changing it
//
// A new drop reason or event goes in counters.go (both the constant and its
// name). A new next-hop kind is handled in route4/route6 and
// forward4/forward6 (and forwardLarge for super-frames); vxlan.go is the
// example. Anything that
// needs the kernel (netlink, sockets) belongs to the control plane or to a
// Port implementation, never to the pipeline.
package vswitch
