// Package xdpprog is the XDP steering program in front of xvs's AF_XDP
// sockets and the other BPF programs xvs attaches, with their maps and
// attach/detach.
//
// The programs are C, in bpf/ (xdp.c, tc.c; the map layouts and maps in
// xvs.h, the decisions in fast.h and steer.h), compiled by bpf2go into the
// committed xdp_bpfel.o and tc_bpfel.o and their Go loaders, so a plain go
// build needs no clang. The Go side takes the map value layouts from the
// C structs (bpf2go's -type: xdpXvsCfg, xdpXvsDest, ...), creates the
// shared maps from the objects' definitions and hands them to each
// program it loads (load.go). Two programs of a handful of instructions
// stay in Go assembly (asm.go): the pod program without the fast path and
// IngressDrop without it.
//
// To change a program: edit the C, run `go generate ./xdpprog` (or `make
// generate`; Debian's clang and libbpf-dev), and commit the objects, the
// generated Go and bpf/SHA256SUMS with the C. TestObjectsMatchSources
// fails while they disagree. A decision that two programs share (tc and
// its socket filter, XDP and tc steering) lives in one function in fast.h
// or steer.h; change it there, and the agreement tests (TestIngressFastAgrees,
// TestUplinkIngressAgrees) keep the programs in step. A flow the programs
// cannot decide goes to the switch's workers, never dropped.
//
// What it owns:
//   - The program: Pod redirects every frame to the rx queue's socket;
//     Uplink redirects only IPv4/IPv6 packets whose destination is in the
//     pod-prefix LPM tries (one per family) and unfragmented UDP to the
//     node's VXLAN port (default 4789) addressed to the node; everything else,
//     including ARP, VLAN-tagged and malformed or truncated frames, is
//     XDP_PASS, so SSH, BGP, DHCP and the rest stay with the host. A frame
//     whose queue has no socket gets Options.MissAction (default XDP_PASS).
//   - The fast path (FastPath, opt-in): a Pod program built with
//     Options.FastPath first looks IPv4/IPv6 frames up in a hash of the
//     node's pods (one per family), and for a hit with TTL/hop limit above 1,
//     no IPv4 options and within the destination's MTU decrements the TTL
//     (RFC 1624 checksum update), rewrites the MACs and redirects through a
//     devmap to the destination's host veth end, counting per CPU; all else
//     goes to the socket as above. Only destinations added with xdp=true
//     (AF_XDP pods, whose eth0 runs NAPI) are XDP_REDIRECT targets.
//   - NAT: the fast path never bypasses the switch's NAT stage. A VIP
//     is never a fast-path destination, so packets to one always reach
//     the workers; the replies of a service's backends would not (pod
//     to pod, or from the uplink to a pod), so the punt map xvs_punt
//     (FastPath.AddPunt, RemovePunt, Punted; the switch fills it on
//     SetServices) lists backend sources (address, TCP or UDP, port)
//     that every fast-path decision, fast_xdp and fast_decide_skb (XDP,
//     tc and the socket filters alike), leaves to the workers, which
//     reverse-translate them (TestFastPath, TestIngressFast and, in
//     vswitch, TestServiceFastPath). It costs one hash lookup per TCP or
//     UDP frame on the fast path. Not done: the uplink steering does not
//     take natOutgoing replies or NodePort packets (to a node address):
//     on an AF_XDP or steered AF_PACKET uplink they go to the host.
//   - IngressDrop: a tc (TCX) ingress program that drops what an AF_PACKET
//     port's interface receives after the packet taps saw it, so the node's
//     stack stays out of pod traffic without XDP taking the pod's TSO away.
//     Built with a FastPath (AttachIngress), it first forwards what the
//     fast path takes, with bpf_redirect, GSO super-frames whole (the
//     segment, not the super-frame, must fit the MTU); FastPath.SocketFilter
//     is the socket filter that keeps those frames from the port's socket.
//     Both come from one decision, fast_decide_skb in bpf/fast.h, so they
//     agree; TestIngressFastAgrees checks it on random frames. Change the
//     decision there, never in one program only.
//   - UplinkIngress: the Uplink program's steering (and its fast path to
//     the node's pods) for an uplink the switch drives with AF_PACKET: a
//     tc ingress program that drops what the switch takes (pod prefixes,
//     VXLAN for the node) and passes the rest to the host, and a socket
//     filter that takes exactly what it drops. Both decide on a copy of
//     the headers (copy_headers, fast_decide_skb, steer in bpf/), from
//     the same maps as the XDP program (the steering type);
//     TestUplinkIngressAgrees checks that XDP, tc and the filter steer
//     random frames alike.
//   - Tunnels: FastPath.AddTunnel makes another node's pod a tc
//     destination behind a VXLAN tunnel (the tc programs set the tunnel
//     key and redirect into the switch's collect_md VXLAN device);
//     AttachTunnelIngress is that device's tc program (VNI and VTEP MAC
//     checked, then the fast path to the node's pods); SetKernelVXLAN
//     makes the uplink programs hand VXLAN for fast-path pods to the
//     kernel whole (xvs_uplink_fast in XDP, kernel_vxlan in tc and the
//     socket filter).
//   - The maps: an XSKMAP by rx queue (SetSocket, ClearSocket), the LPM
//     tries (AddPrefix, RemovePrefix) and a one-entry config array (SetVTEP).
//   - Attach: native (driver) mode first, then generic (skb) mode under
//     AttachAuto; a forced mode fails if unavailable; Attach reports the
//     mode it got. It attaches through a BPF link, so Detach (closing the
//     link) is immediate in every mode and a crashed xvsd leaves no program
//     behind. Kernels without XDP links fall back to netlink with
//     XDP_FLAGS_UPDATE_IF_NOEXIST and detach with fd -1 and the same mode
//     flag. It never replaces a program someone else attached.
//
// Concurrency: map updates may come from any goroutine (the kernel
// serialises them; the control plane adds and removes prefixes while workers
// run). Attach, Detach and Close belong to the owner of the port.
//
// Allocation: nothing here is on the per-packet path; the programs run in
// the kernel.
//
// Tests: the agreement tests run BPF_PROG_TEST_RUN on random frames;
// TestLegacyAgrees and BenchmarkPrograms hold the C against the Go
// assembly it replaced (asm_legacy_test.go, test-only), verdict for
// verdict and ns for ns.
package xdpprog
