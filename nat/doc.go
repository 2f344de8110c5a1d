// Package nat parses and translates the packets of the dataplane's NAT
// stage (services' DNAT, natOutgoing's and NodePort's SNAT): Parse reads
// an IPv4 or IPv6 packet into the conntrack key it belongs to, Rewrite
// writes a flow's translation (conntrack.Flow.Target) into it.
//
// # What it owns
//
//   - Parse: TCP, UDP, ICMP/ICMPv6 echo (the identifier as port) and
//     ICMP/ICMPv6 errors (destination unreachable, packet too big, time
//     exceeded, parameter problem) about a TCP, UDP or echo packet, which
//     are looked up by the quoted packet's flow. Everything Rewrite will
//     write is checked first: a packet is refused with a Reason
//     (fragments, IPv6 extension headers, truncated or inconsistent
//     headers, bad ICMP checksums, IPv6 UDP without checksum, errors
//     quoting less than the ports or another family), so it is translated
//     whole or not at all. TCP and UDP checksums are checked only on
//     request (VerifyL4): it costs a pass over the payload, and the
//     incremental update carries a wrong checksum through unchanged for
//     the receiver to drop.
//   - Rewrite: addresses and ports (echo identifier) with incremental
//     checksum updates (RFC 1624 equation 3) of the IPv4 header and the
//     transport checksum with its pseudo-header; a zero IPv4 UDP checksum
//     stays zero, a UDP checksum that comes out zero is sent as 0xffff.
//     For ICMP errors, the quoted header (its IP checksum, ports and the
//     transport checksum when quoted), the outer addresses that were the
//     quoted packet's (an intermediate router's address stays, so a
//     traceroute through NAT still shows it), and the ICMP checksum. For
//     GSO super-frames (partial checksum) only the pseudo-header change
//     is folded in. Never across families.
//
// The references the tests hold it to: every rewrite against gopacket
// serializing the same packet with checksums computed from scratch
// (TestRewriteMatchesReference, TestRewriteErrorMatchesReference, 14,000
// random packets), and FuzzParseRewrite (a rewritten packet parses again
// to its target with every checksum correct).
//
// # Concurrency and allocation
//
// No state: Parse and Rewrite work on the caller's packet and Packet, and
// a packet belongs to one worker at a time. Nothing allocates
// (TestRewriteZeroAlloc).
package nat
