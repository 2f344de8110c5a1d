// Package encap owns the packet header formats the xvs dataplane reads and
// writes: Ethernet, ARP, IPv4, IPv6, ICMPv4, ICMPv6 (with NDP), UDP and VXLAN,
// the Internet checksum (RFC 1071, incremental updates per RFC 1624), and the
// small builders the pipeline needs to answer, reject or tunnel a packet
// (ICMP errors, echo replies, neighbour solicitations and advertisements,
// ARP, VXLAN encapsulation into headroom), the forwarding sanity checks
// (IsIPv4Forwardable, ICMPv4ErrorAllowed, ...) and the 5-tuple flow hash
// used for ECMP and VXLAN source ports. It does no I/O and keeps no state.
//
// # Views
//
// Each header is a named byte slice (model: gVisor's pkg/tcpip/header), e.g.
// IPv4 is a []byte that starts at the first byte of the IPv4 header. The
// caller checks a view once, with IsValid or a length check against the
// type's *Len constant, and then calls accessors that do no bounds checking
// of their own beyond Go's: an accessor on a slice that was not checked may
// panic with an index out of range. Offsets are unexported constants next to
// the RFC header diagram in each type's doc comment. Setters write in place.
//
// # Builders
//
// The Build* and Encap* functions write into a caller-owned buffer and return the
// number of bytes written, or 0 when the buffer is too small. They accept any
// input without panicking, so a malformed frame can be answered or dropped
// but never crash a worker.
//
// # GSO
//
// ParseGSO and GSO.Segment cut a GSO super-frame (a TSO/USO frame read from
// an AF_PACKET socket with PACKET_VNET_HDR, described by the VirtioNetHdr in
// front of it) into wire-sized frames the way Linux's software GSO does:
// IPv4 identification, total length and header checksum, IPv6 payload
// length, TCP sequence numbers and flags, UDP length, and full L4 checksums
// recomputed per segment. CompleteChecksum finishes a frame that only
// carries a partial checksum (VirtioNetHdrFNeedsCsum) like the kernel's
// skb_checksum_help. ParseGSO rejects what the kernel would, and more
// (UFO, IPv6 extension headers, VLAN tags, inexact lengths), with an error.
//
// GRO is the inverse: it merges consecutive TCP segments of one flow (same
// addresses, ports, ACK, options, TTL; following sequence numbers; every
// checksum valid) into one super-frame and the VirtioNetHdr that describes
// it, so that GSO (or a NIC's TSO) would cut it back into the same
// segments; TestGROUndoesGSO checks exactly that. It owns a 64 KiB buffer
// (NewGRO), reused per super-frame.
//
// # Allocation contract
//
// Nothing in this package allocates: accessors, setters, checksums, flow
// hashes and builders all work on the caller's memory. Tests enforce this
// with testing.AllocsPerRun.
//
// # Concurrency
//
// Views are plain slices with no hidden state. Reading one view from many
// goroutines is safe; writing needs the same exclusion as writing the bytes
// directly. In xvs a frame belongs to exactly one worker at a time, so no
// locking is needed.
package encap
