// Package xdpprog is the XDP steering program in front of xvs's AF_XDP
// sockets, assembled in Go with cilium/ebpf's asm package (no clang at build
// or run time), with its maps and attach/detach.
//
// What it owns:
//   - The program: Pod redirects every frame to the rx queue's socket;
//     Uplink redirects only IPv4/IPv6 packets whose destination is in the
//     pod-prefix LPM tries (one per family) and unfragmented UDP to the
//     node's VXLAN port (default 4789) addressed to the node; everything else,
//     including ARP, VLAN-tagged and malformed or truncated frames, is
//     XDP_PASS, so SSH, BGP, DHCP and the rest stay with the host. A frame
//     whose queue has no socket gets Options.MissAction (default XDP_PASS).
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
// Allocation: nothing here is on the per-packet path; the program itself
// runs in the kernel.
package xdpprog
