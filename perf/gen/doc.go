// Package gen builds the frames the traffic generator sends and accounts for
// the frames the sink receives.
//
// A Template is a set of pre-built frames (one per packet size) for one
// header stack: Ethernet, IPv4 or IPv6, UDP, optionally wrapped in VXLAN over
// an outer IPv4 or IPv6 UDP header. Fill copies the frame for a size into a
// caller buffer and patches the per-packet fields (flow, sequence number, send
// timestamp) and every checksum the patch touches, incrementally (RFC 1624).
// Checksums are always valid, including the IPv4 UDP checksum, so a forwarder
// that verifies them does not drop generator traffic.
//
// Every payload starts with a 16-byte Header (magic, stream, sequence number,
// CLOCK_MONOTONIC send time). A Sink parses received frames back to that
// header and keeps loss, reordering, duplicate and latency counts.
//
// Sizes are frame lengths as handed to the kernel, excluding the 4-byte
// Ethernet FCS: "64" is a 64-byte frame. The smallest frame that holds the
// header is 58 bytes for IPv4/UDP, 78 for IPv6/UDP, 108 and more with VXLAN
// (MinSize); anything above that is padding after the header.
//
// Concurrency: a Template is immutable after New and safe for concurrent
// Fill calls. A Sink and a Histogram belong to one goroutine; Snapshot copies
// are values.
//
// Allocation: Fill, Sink.Add and Histogram.Record do not allocate.
package gen
