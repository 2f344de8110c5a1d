package encap

import "encoding/binary"

// IPv6Len is the length of the fixed IPv6 header.
const IPv6Len = 40

const (
	ipv6VersTCFL   = 0
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24
)

// IPv6 is a view of an IPv6 header (RFC 8200) and the packet behind it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                         Source Address                        +
//	|                          (16 octets)                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                      Destination Address                      +
//	|                          (16 octets)                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Accessors of the fixed header need len(b) >= IPv6Len; Payload needs
// IsValid. Extension headers are not parsed here: NextHeader is the first
// one's type.
type IPv6 []byte

// IPv6Fields holds the fields IPv6.Encode writes.
type IPv6Fields struct {
	TrafficClass  uint8
	FlowLabel     uint32 // low 20 bits used
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      [16]byte
}

// IsValid reports whether b starts with an IPv6 header whose packet fits in
// the first n bytes of b (n being the bytes the link layer delivered after
// its header): len(b) >= 40, version 6, 40+PayloadLength() <= n <=
// len(b). Jumbograms (payload length 0 with a jumbo option) read as empty.
func (b IPv6) IsValid(n int) bool {
	return len(b) >= IPv6Len && n <= len(b) && b[ipv6VersTCFL]>>4 == 6 &&
		IPv6Len+int(b.PayloadLength()) <= n
}

// Version returns the IP version field.
func (b IPv6) Version() uint8 { return b[ipv6VersTCFL] >> 4 }

// TrafficClass returns the traffic class (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ipv6VersTCFL:]) >> 4)
}

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(b[ipv6VersTCFL:]) & 0xfffff
}

// SetTrafficClass sets the traffic class.
func (b IPv6) SetTrafficClass(tc uint8) {
	b[0] = 6<<4 | tc>>4
	b[1] = tc<<4 | b[1]&0x0f
}

// SetFlowLabel sets the 20-bit flow label.
func (b IPv6) SetFlowLabel(fl uint32) {
	b[1] = b[1]&0xf0 | uint8(fl>>16)&0x0f
	b[2] = uint8(fl >> 8)
	b[3] = uint8(fl)
}

// PayloadLength returns the length of everything after the fixed header.
func (b IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(b[ipv6PayloadLen:]) }

// SetPayloadLength sets the payload length.
func (b IPv6) SetPayloadLength(l uint16) { binary.BigEndian.PutUint16(b[ipv6PayloadLen:], l) }

// NextHeader returns the type of the header that follows.
func (b IPv6) NextHeader() uint8 { return b[ipv6NextHeader] }

// SetNextHeader sets the next header type.
func (b IPv6) SetNextHeader(nh uint8) { b[ipv6NextHeader] = nh }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ipv6HopLimit] }

// SetHopLimit sets the hop limit. IPv6 has no header checksum, so
// forwarding just stores HopLimit()-1 after checking HopLimit() > 1.
func (b IPv6) SetHopLimit(h uint8) { b[ipv6HopLimit] = h }

// Src returns the source address.
func (b IPv6) Src() [16]byte { return [16]byte(b[ipv6Src : ipv6Src+16]) }

// Dst returns the destination address.
func (b IPv6) Dst() [16]byte { return [16]byte(b[ipv6Dst : ipv6Dst+16]) }

// DstBytes returns the destination address as a slice of the header (no
// copy), for callers that only sometimes need it as a value.
func (b IPv6) DstBytes() []byte { return b[ipv6Dst : ipv6Dst+16] }

// SetSrc sets the source address.
func (b IPv6) SetSrc(a [16]byte) { copy(b[ipv6Src:ipv6Src+16], a[:]) }

// SetDst sets the destination address.
func (b IPv6) SetDst(a [16]byte) { copy(b[ipv6Dst:ipv6Dst+16], a[:]) }

// Payload returns b[40:40+PayloadLength()]; it needs IsValid.
func (b IPv6) Payload() []byte { return b[IPv6Len : IPv6Len+int(b.PayloadLength())] }

// Encode writes the fixed header from f. b must hold IPv6Len bytes.
func (b IPv6) Encode(f *IPv6Fields) {
	_ = b[IPv6Len-1]
	binary.BigEndian.PutUint32(b[ipv6VersTCFL:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	b.SetPayloadLength(f.PayloadLength)
	b[ipv6NextHeader] = f.NextHeader
	b[ipv6HopLimit] = f.HopLimit
	b.SetSrc(f.Src)
	b.SetDst(f.Dst)
}

// Well-known IPv6 addresses.
var (
	IPv6AllNodes   = [16]byte{0xff, 0x02, 15: 0x01}
	IPv6AllRouters = [16]byte{0xff, 0x02, 15: 0x02}
)

// IsIPv6Forwardable reports whether a router may forward a packet to dst:
// it rejects multicast (ff00::/8), the unspecified address, loopback,
// link-local unicast (fe80::/10) and IPv4-mapped addresses (::ffff:0:0/96,
// which RFC 4291 keeps off the wire).
func IsIPv6Forwardable(dst [16]byte) bool {
	switch {
	case dst[0] == 0xff:
		return false
	case dst[0] == 0xfe && dst[1]&0xc0 == 0x80:
		return false
	case [12]byte(dst[:12]) == [12]byte{}: // ::, ::1 and deprecated IPv4-compatible
		return false
	case [12]byte(dst[:12]) == [12]byte{10: 0xff, 11: 0xff}:
		return false
	}
	return true
}

// IsIPv6ValidSource reports whether src may be the source of a packet the
// dataplane forwards: not multicast, loopback or unspecified.
func IsIPv6ValidSource(src [16]byte) bool {
	return src[0] != 0xff && src != [16]byte{} && src != [16]byte{15: 1}
}

// IsIPv6LinkLocal reports whether a is in fe80::/10.
func IsIPv6LinkLocal(a [16]byte) bool { return a[0] == 0xfe && a[1]&0xc0 == 0x80 }

// IsIPv6Multicast reports whether a is in ff00::/8.
func IsIPv6Multicast(a [16]byte) bool { return a[0] == 0xff }

// SolicitedNodeMulticast returns the solicited-node multicast address for
// target, ff02::1:ffXX:XXXX (RFC 4291 section 2.7.1).
func SolicitedNodeMulticast(target [16]byte) [16]byte {
	return [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: target[13], 14: target[14], 15: target[15]}
}
