package encap

import "encoding/binary"

// Size limits of ICMP errors: the whole datagram, IP header included.
const (
	// ICMPv4ErrorMaxLen is RFC 1812 section 4.3.2.3's limit.
	ICMPv4ErrorMaxLen = 576
	// ICMPv6ErrorMaxLen is the IPv6 minimum MTU (RFC 4443 section 2.4 (c)).
	ICMPv6ErrorMaxLen = 1280
)

// Lengths of what the fixed-size builders write.
const (
	NeighborAdvertLen  = IPv6Len + NDPNeighborAdvertLen + NDPLinkAddrOptLen  // 72
	NeighborSolicitLen = IPv6Len + NDPNeighborSolicitLen + NDPLinkAddrOptLen // 72
	// VXLAN4EncapLen is the outer IPv4, UDP and VXLAN headers, without the
	// outer Ethernet header.
	VXLAN4EncapLen = IPv4MinLen + UDPLen + VXLANLen // 36
	// VXLAN6EncapLen is VXLAN4EncapLen over IPv6.
	VXLAN6EncapLen = IPv6Len + UDPLen + VXLANLen // 56
)

// Default TTL / hop limit for packets the dataplane originates.
const DefaultTTL = 64

// trimIPv4 returns orig cut to its IPv4 total length when it parses as one,
// so link padding is not quoted.
func trimIPv4(orig []byte) []byte {
	if len(orig) >= IPv4MinLen && orig[0]>>4 == 4 {
		if tl := int(binary.BigEndian.Uint16(orig[ipv4TotalLen:])); tl >= IPv4MinLen && tl < len(orig) {
			return orig[:tl]
		}
	}
	return orig
}

// trimIPv6 is trimIPv4 for IPv6.
func trimIPv6(orig []byte) []byte {
	if len(orig) >= IPv6Len && orig[0]>>4 == 6 {
		if tl := IPv6Len + int(binary.BigEndian.Uint16(orig[ipv6PayloadLen:])); tl < len(orig) {
			return orig[:tl]
		}
	}
	return orig
}

// BuildICMPv4Error writes an IPv4 header and an ICMPv4 error message
// (Destination Unreachable, Time Exceeded, ...) from src to dst into b and
// returns its length, or 0 if b cannot hold it. The body quotes as much of
// the offending IP packet orig as fits in ICMPv4ErrorMaxLen bytes in all
// (RFC 1812 section 4.3.2.3); orig is first trimmed to its total length. If
// b is shorter than that, the quote is cut to fit, but never below orig's
// IP header plus 8 bytes (or all of orig, if shorter): then 0 is returned.
//
// mtu is written as the next-hop MTU only for ICMPv4DestUnreachable /
// ICMPv4FragNeeded; the rest-of-header word is otherwise zero. The IPv4
// header has TOS 0xc0 (internetwork control, RFC 1812 section 4.3.2.5), ID
// 0, no flags, TTL ttl and a valid checksum.
//
// b starts at the IPv4 header; the caller writes the Ethernet header in
// front. orig may overlap b (an error built in place over the offending
// packet): the quote is moved before the headers are written. Deciding
// whether an error may be sent at all is ICMPv4ErrorAllowed.
func BuildICMPv4Error(b []byte, src, dst [4]byte, typ, code uint8, mtu uint16, orig []byte, ttl uint8) int {
	const hdr = IPv4MinLen + ICMPv4Len
	if len(b) < hdr {
		return 0
	}
	orig = trimIPv4(orig)
	q := min(len(orig), ICMPv4ErrorMaxLen-hdr, len(b)-hdr)
	need := IPv4MinLen + 8
	if len(orig) >= 1 && orig[0]>>4 == 4 {
		need = max(int(orig[0]&0x0f)*4, IPv4MinLen) + 8
	}
	if q < min(len(orig), need) {
		return 0
	}
	total := hdr + q
	copy(b[hdr:total], orig[:q])

	ip := IPv4(b)
	ip.Encode(&IPv4Fields{
		TOS:         0xc0,
		TotalLength: uint16(total),
		TTL:         ttl,
		Protocol:    ProtoICMP,
		Src:         src,
		Dst:         dst,
	})
	m := ICMPv4(b[IPv4MinLen:total])
	m[icmpType], m[icmpCode] = typ, code
	binary.BigEndian.PutUint32(m[icmpIdent:], 0)
	if typ == ICMPv4DestUnreachable && code == ICMPv4FragNeeded {
		m.SetMTU(mtu)
	}
	m.SetChecksum(ICMPv4Checksum(m))
	return total
}

// BuildICMPv6Error writes an IPv6 header and an ICMPv6 error message
// (Destination Unreachable, Packet Too Big, Time Exceeded, ...) from src
// to dst into b and returns its length, or 0 if b cannot hold it. The body
// quotes as much of the offending packet orig as fits in
// ICMPv6ErrorMaxLen bytes in all (RFC 4443 section 2.4 (c)); orig is first
// trimmed to 40 + its payload length. If b is shorter, the quote is cut to
// fit but never below orig's fixed header plus 8 bytes (or all of orig):
// then 0 is returned.
//
// mtu is written only for ICMPv6PacketTooBig; the word after the checksum
// is otherwise zero. The IPv6 header has traffic class 0, flow label 0 and
// hop limit hopLimit. b starts at the IPv6 header; orig may overlap b, as
// for BuildICMPv4Error. Deciding whether an error may be sent at all is
// ICMPv6ErrorAllowed.
func BuildICMPv6Error(b []byte, src, dst [16]byte, typ, code uint8, mtu uint32, orig []byte, hopLimit uint8) int {
	const hdr = IPv6Len + ICMPv6Len
	if len(b) < hdr {
		return 0
	}
	orig = trimIPv6(orig)
	q := min(len(orig), ICMPv6ErrorMaxLen-hdr, len(b)-hdr)
	if q < min(len(orig), IPv6Len+8) {
		return 0
	}
	total := hdr + q
	copy(b[hdr:total], orig[:q])

	IPv6(b).Encode(&IPv6Fields{
		PayloadLength: uint16(total - IPv6Len),
		NextHeader:    ProtoICMPv6,
		HopLimit:      hopLimit,
		Src:           src,
		Dst:           dst,
	})
	m := ICMPv6(b[IPv6Len:total])
	m[icmpType], m[icmpCode] = typ, code
	binary.BigEndian.PutUint32(m[icmpv6MTU:], 0)
	if typ == ICMPv6PacketTooBig {
		m.SetMTU(mtu)
	}
	m.SetChecksum(ICMPv6Checksum(src, dst, m))
	return total
}

// BuildNeighborAdvert writes an IPv6 header and a Neighbor Advertisement
// for target, with a Target Link-Layer Address option carrying mac, into
// b and returns NeighborAdvertLen, or 0 if b is shorter.
//
// dst is the soliciting node's address, the NS's source. If it is the
// unspecified address (a DAD probe) the advertisement goes to ff02::1
// with the S flag clear, as RFC 4861 section 7.2.4 requires. The Override
// flag is set: xvs answers authoritatively for the addresses it proxies
// (the pods' gateway). Hop limit is 255 (RFC 4861 section 7.1.2).
func BuildNeighborAdvert(b []byte, src, dst [16]byte, target [16]byte, mac [6]byte, solicited, router bool) int {
	if len(b) < NeighborAdvertLen {
		return 0
	}
	if dst == ([16]byte{}) {
		dst, solicited = IPv6AllNodes, false
	}
	IPv6(b).Encode(&IPv6Fields{
		PayloadLength: NDPNeighborAdvertLen + NDPLinkAddrOptLen,
		NextHeader:    ProtoICMPv6,
		HopLimit:      255,
		Src:           src,
		Dst:           dst,
	})
	m := ICMPv6(b[IPv6Len:NeighborAdvertLen])
	m[icmpType], m[icmpCode] = ICMPv6NeighborAdvert, 0
	m.SetNAFlags(router, solicited, true)
	m.SetNDPTarget(target)
	writeLinkAddrOpt(m[NDPNeighborAdvertLen:], NDPOptTargetLinkAddr, mac)
	m.SetChecksum(ICMPv6Checksum(src, dst, m))
	return NeighborAdvertLen
}

// BuildNeighborSolicit writes an IPv6 header and a Neighbor Solicitation
// for target into b, sent to target's solicited-node multicast address
// (whose MAC is IPv6MulticastMAC(SolicitedNodeMulticast(target))), and
// returns its length, or 0 if b is too short. A Source Link-Layer Address
// option with mac is included unless src is unspecified (DAD, RFC 4861
// section 7.2.2), which makes the message 64 instead of
// NeighborSolicitLen bytes.
func BuildNeighborSolicit(b []byte, src, target [16]byte, mac [6]byte) int {
	n := NeighborSolicitLen
	dad := src == ([16]byte{})
	if dad {
		n -= NDPLinkAddrOptLen
	}
	if len(b) < n {
		return 0
	}
	dst := SolicitedNodeMulticast(target)
	IPv6(b).Encode(&IPv6Fields{
		PayloadLength: uint16(n - IPv6Len),
		NextHeader:    ProtoICMPv6,
		HopLimit:      255,
		Src:           src,
		Dst:           dst,
	})
	m := ICMPv6(b[IPv6Len:n])
	m[icmpType], m[icmpCode] = ICMPv6NeighborSolicit, 0
	binary.BigEndian.PutUint32(m[4:], 0)
	m.SetNDPTarget(target)
	if !dad {
		writeLinkAddrOpt(m[NDPNeighborSolicitLen:], NDPOptSourceLinkAddr, mac)
	}
	m.SetChecksum(ICMPv6Checksum(src, dst, m))
	return n
}

func writeLinkAddrOpt(b []byte, typ uint8, mac [6]byte) {
	b[0], b[1] = typ, 1
	copy(b[2:8], mac[:])
}

// BuildARPReply writes the 28-byte ARP reply body (no Ethernet header)
// with the given sender and target into b and returns ARPLen, or 0 if b is
// shorter. For a proxy-ARP answer sha/spa are the answered-for address and
// our MAC, tha/tpa the requester's SHA/SPA.
func BuildARPReply(b []byte, sha [6]byte, spa [4]byte, tha [6]byte, tpa [4]byte) int {
	if len(b) < ARPLen {
		return 0
	}
	ARP(b).Encode(ARPReply, sha, spa, tha, tpa)
	return ARPLen
}

// BuildARPRequest writes a 28-byte ARP request for tpa from sha/spa (THA
// zero) into b and returns ARPLen, or 0 if b is shorter. It goes to the
// broadcast MAC.
func BuildARPRequest(b []byte, sha [6]byte, spa [4]byte, tpa [4]byte) int {
	if len(b) < ARPLen {
		return 0
	}
	ARP(b).Encode(ARPRequest, sha, spa, [6]byte{}, tpa)
	return ARPLen
}

// ICMPv4ErrorAllowed reports whether RFC 1812 section 4.3.2.7 permits an
// ICMP error about the packet ip, which must pass ip.IsValid: not about an
// ICMP error message, a non-initial fragment, or a packet whose source is
// not a unicast address a reply can reach (unspecified, loopback,
// multicast, broadcast) or whose destination is multicast or broadcast.
// Rate limiting is the caller's.
func ICMPv4ErrorAllowed(ip IPv4) bool {
	src, dst := ip.Src(), ip.Dst()
	if !IsIPv4ValidSource(src) || dst[0]&0xf0 == 224 || dst == [4]byte{255, 255, 255, 255} {
		return false
	}
	if ip.FragmentOffset() != 0 {
		return false
	}
	if ip.Protocol() == ProtoICMP {
		p := ip[ip.HeaderLen():]
		if len(p) < 1 || IsICMPv4Error(p[0]) {
			return false
		}
	}
	return true
}

// ICMPv6ErrorAllowed reports whether RFC 4443 section 2.4 (e) permits an
// ICMPv6 error of type typ about ip, which must pass ip.IsValid: never
// about an ICMPv6 error message (when ICMPv6 is the first next header),
// never from an unspecified or multicast source, and to a multicast
// destination only Packet Too Big (and Parameter Problem code 2, which xvs
// does not send). Rate limiting is the caller's.
func ICMPv6ErrorAllowed(ip IPv6, typ uint8) bool {
	src := ip.Src()
	if src == ([16]byte{}) || IsIPv6Multicast(src) {
		return false
	}
	if IsIPv6Multicast(ip.Dst()) && typ != ICMPv6PacketTooBig {
		return false
	}
	if ip.NextHeader() == ProtoICMPv6 {
		if len(ip) <= IPv6Len || IsICMPv6Error(ip[IPv6Len]) {
			return false
		}
	}
	return true
}

// VXLANTunnel4 describes the outer headers EncapVXLAN4 writes.
type VXLANTunnel4 struct {
	Src, Dst [4]byte // local and remote VTEP
	VNI      uint32
	Port     uint16 // UDP destination port; 0 means VXLANPort
	TTL      uint8
	TOS      uint8
	DF       bool
}

// EncapVXLAN4 writes outer IPv4, UDP (destination port t.Port, source
// port srcPort, zero checksum as RFC 7348 allows) and VXLAN headers into
// b[:VXLAN4EncapLen], for an inner Ethernet frame of innerLen bytes that
// the caller has at b[VXLAN4EncapLen:] (headroom encapsulation: the inner
// frame is neither read nor moved). It returns VXLAN4EncapLen, or 0 if b
// is too short for the headers or the outer packet would exceed 65535
// bytes. The outer Ethernet header is the caller's.
func EncapVXLAN4(b []byte, t *VXLANTunnel4, srcPort uint16, innerLen int) int {
	total := VXLAN4EncapLen + innerLen
	if t == nil || len(b) < VXLAN4EncapLen || innerLen < 0 || total > 0xffff {
		return 0
	}
	var flags uint8
	if t.DF {
		flags = IPv4FlagDontFragment
	}
	IPv4(b).Encode(&IPv4Fields{
		TOS:         t.TOS,
		TotalLength: uint16(total),
		Flags:       flags,
		TTL:         t.TTL,
		Protocol:    ProtoUDP,
		Src:         t.Src,
		Dst:         t.Dst,
	})
	UDP(b[IPv4MinLen:]).Encode(srcPort, vxlanPort(t.Port), uint16(total-IPv4MinLen))
	VXLAN(b[IPv4MinLen+UDPLen:]).Encode(t.VNI)
	return VXLAN4EncapLen
}

// VXLANTunnel6 describes the outer headers EncapVXLAN6 writes.
type VXLANTunnel6 struct {
	Src, Dst     [16]byte // local and remote VTEP
	VNI          uint32
	Port         uint16 // UDP destination port; 0 means VXLANPort
	HopLimit     uint8
	TrafficClass uint8
	// ZeroUDPChecksum sends a zero UDP checksum (RFC 6935). Linux drops
	// those unless the receiving vxlan device has udp6zerocsumrx, so the
	// default computes it.
	ZeroUDPChecksum bool
}

// EncapVXLAN6 is EncapVXLAN4 over IPv6: it writes the 56 bytes of outer
// IPv6, UDP and VXLAN headers into b[:VXLAN6EncapLen] for the inner frame
// at b[VXLAN6EncapLen:VXLAN6EncapLen+innerLen], which it reads to compute
// the UDP checksum unless t.ZeroUDPChecksum. It returns VXLAN6EncapLen, or
// 0 if b does not hold headers and inner frame or the payload would exceed
// 65535 bytes.
func EncapVXLAN6(b []byte, t *VXLANTunnel6, srcPort uint16, innerLen int) int {
	total := VXLAN6EncapLen + innerLen
	if t == nil || innerLen < 0 || len(b) < total || total-IPv6Len > 0xffff {
		return 0
	}
	IPv6(b).Encode(&IPv6Fields{
		TrafficClass:  t.TrafficClass,
		PayloadLength: uint16(total - IPv6Len),
		NextHeader:    ProtoUDP,
		HopLimit:      t.HopLimit,
		Src:           t.Src,
		Dst:           t.Dst,
	})
	u := UDP(b[IPv6Len:total])
	u.Encode(srcPort, vxlanPort(t.Port), uint16(total-IPv6Len))
	VXLAN(b[IPv6Len+UDPLen:]).Encode(t.VNI)
	if !t.ZeroUDPChecksum {
		u.SetChecksum(UDPChecksum6(t.Src, t.Dst, u))
	}
	return VXLAN6EncapLen
}

func vxlanPort(p uint16) uint16 {
	if p == 0 {
		return VXLANPort
	}
	return p
}

// EchoToReply4 turns the ICMPv4 echo request in ip (which must pass
// IsValid and carry ICMP with at least ICMPv4Len bytes) into the echo
// reply in place: addresses swapped, TTL set to ttl, type 0, both
// checksums updated incrementally. It returns false, changing nothing, if
// ip is not an echo request. The reply's source is the request's
// destination, so the caller must not use it for requests to broadcast
// or multicast addresses.
func EchoToReply4(ip IPv4, ttl uint8) bool {
	if ip.Protocol() != ProtoICMP {
		return false
	}
	m := ICMPv4(ip.Payload())
	if len(m) < ICMPv4Len || m.Type() != ICMPv4EchoRequest {
		return false
	}
	src, dst := ip.Src(), ip.Dst()
	// Swapping two words leaves the header sum unchanged.
	ip.SetSrc(dst)
	ip.SetDst(src)
	old := uint16(ip.TTL())<<8 | uint16(ip.Protocol())
	ip.SetTTL(ttl)
	ip.SetChecksum(UpdateChecksum(ip.Checksum(), old, uint16(ttl)<<8|uint16(ip.Protocol())))
	oldTC := uint16(m.Type())<<8 | uint16(m.Code())
	m.SetType(ICMPv4EchoReply)
	m.SetChecksum(UpdateChecksum(m.Checksum(), oldTC, uint16(ICMPv4EchoReply)<<8|uint16(m.Code())))
	return true
}

// EchoToReply6 is EchoToReply4 for ICMPv6 (ICMPv6 the first next header):
// addresses swapped (the pseudo-header sum is unchanged), hop limit set,
// type 129, checksum updated incrementally.
func EchoToReply6(ip IPv6, hopLimit uint8) bool {
	if ip.NextHeader() != ProtoICMPv6 {
		return false
	}
	m := ICMPv6(ip.Payload())
	if len(m) < ICMPv6Len || m.Type() != ICMPv6EchoRequest {
		return false
	}
	src, dst := ip.Src(), ip.Dst()
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetHopLimit(hopLimit)
	oldTC := uint16(m.Type())<<8 | uint16(m.Code())
	m.SetType(ICMPv6EchoReply)
	m.SetChecksum(UpdateChecksum(m.Checksum(), oldTC, uint16(ICMPv6EchoReply)<<8|uint16(m.Code())))
	return true
}
