package encap

import "encoding/binary"

// IP protocol numbers (also IPv6 next-header values).
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// IPv4MinLen is the length of an IPv4 header without options.
const IPv4MinLen = 20

// IPv4MaxHeaderLen is the largest IPv4 header, IHL 15.
const IPv4MaxHeaderLen = 60

// IPv4 flags, the top three bits of the flags/fragment-offset word, as
// returned by IPv4.Flags and taken by IPv4Fields.Flags.
const (
	IPv4FlagMoreFragments uint8 = 1 << 0
	IPv4FlagDontFragment  uint8 = 1 << 1
)

const (
	ipv4VersIHL   = 0
	ipv4TOS       = 1
	ipv4TotalLen  = 2
	ipv4ID        = 4
	ipv4FlagsFO   = 6
	ipv4TTL       = 8
	ipv4Protocol  = 9
	ipv4Checksum  = 10
	ipv4Src       = 12
	ipv4Dst       = 16
	ipv4FOMask    = 0x1fff
	ipv4FlagShift = 13
)

// IPv4 is a view of an IPv4 header (RFC 791) and the packet behind it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Fixed-offset accessors need len(b) >= IPv4MinLen; HeaderLen-, TotalLength-
// and Payload-based ones need IsValid.
type IPv4 []byte

// IPv4Fields holds the fields IPv4.Encode writes. The header is always
// IPv4MinLen bytes (no options).
type IPv4Fields struct {
	TOS            uint8
	TotalLength    uint16 // header plus payload
	ID             uint16
	Flags          uint8  // IPv4FlagDontFragment, IPv4FlagMoreFragments
	FragmentOffset uint16 // in bytes; must be a multiple of 8
	TTL            uint8
	Protocol       uint8
	Src, Dst       [4]byte
}

// IsValid reports whether b starts with a well-formed IPv4 header whose
// packet fits in the first n bytes of b, n being the bytes the link layer
// delivered after its header: len(b) >= 20, version 4, IHL >= 5 and
// HeaderLen() <= TotalLength() <= n <= len(b). Bytes past TotalLength (link
// padding) are allowed. The header checksum is not checked (see
// HeaderChecksumValid): a router may forward first and let the receiver
// drop, but xvs checks it before rewriting.
func (b IPv4) IsValid(n int) bool {
	if len(b) < IPv4MinLen || n > len(b) || b[ipv4VersIHL]>>4 != 4 {
		return false
	}
	hl := b.HeaderLen()
	tl := int(b.TotalLength())
	return hl >= IPv4MinLen && hl <= tl && tl <= n
}

// Version returns the IP version field.
func (b IPv4) Version() uint8 { return b[ipv4VersIHL] >> 4 }

// HeaderLen returns the header length in bytes (IHL * 4).
func (b IPv4) HeaderLen() int { return int(b[ipv4VersIHL]&0x0f) * 4 }

// TOS returns the type-of-service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[ipv4TOS] }

// TotalLength returns the length of the header plus payload.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipv4TotalLen:]) }

// SetTotalLength sets the total length. It does not update the checksum.
func (b IPv4) SetTotalLength(l uint16) { binary.BigEndian.PutUint16(b[ipv4TotalLen:], l) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipv4ID:]) }

// Flags returns the three flag bits (IPv4FlagDontFragment,
// IPv4FlagMoreFragments).
func (b IPv4) Flags() uint8 { return b[ipv4FlagsFO] >> 5 }

// DF reports whether the don't-fragment flag is set.
func (b IPv4) DF() bool { return b.Flags()&IPv4FlagDontFragment != 0 }

// MoreFragments reports whether the more-fragments flag is set.
func (b IPv4) MoreFragments() bool { return b.Flags()&IPv4FlagMoreFragments != 0 }

// FragmentOffset returns the fragment offset in bytes (the field times 8),
// as gVisor does.
func (b IPv4) FragmentOffset() uint16 {
	return (binary.BigEndian.Uint16(b[ipv4FlagsFO:]) & ipv4FOMask) << 3
}

// IsFragment reports whether the packet is a fragment (first or later).
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[ipv4FlagsFO:])&(ipv4FOMask|uint16(IPv4FlagMoreFragments)<<ipv4FlagShift) != 0
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// SetTTL sets the time to live. It does not update the checksum; DecTTL does.
func (b IPv4) SetTTL(t uint8) { b[ipv4TTL] = t }

// Protocol returns the payload protocol.
func (b IPv4) Protocol() uint8 { return b[ipv4Protocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipv4Checksum:]) }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[ipv4Checksum:], c) }

// Src returns the source address.
func (b IPv4) Src() [4]byte { return [4]byte(b[ipv4Src : ipv4Src+4]) }

// Dst returns the destination address.
func (b IPv4) Dst() [4]byte { return [4]byte(b[ipv4Dst : ipv4Dst+4]) }

// DstBytes returns the destination address as a slice of the header (no
// copy), for callers that only sometimes need it as a value.
func (b IPv4) DstBytes() []byte { return b[ipv4Dst : ipv4Dst+4] }

// SetSrc sets the source address. It does not update the checksum.
func (b IPv4) SetSrc(a [4]byte) { copy(b[ipv4Src:ipv4Src+4], a[:]) }

// SetDst sets the destination address. It does not update the checksum.
func (b IPv4) SetDst(a [4]byte) { copy(b[ipv4Dst:ipv4Dst+4], a[:]) }

// Options returns the header options (possibly empty).
func (b IPv4) Options() []byte { return b[IPv4MinLen:b.HeaderLen()] }

// Payload returns b[HeaderLen():TotalLength()]; it needs IsValid.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():b.TotalLength()] }

// CalculateChecksum returns the folded, uncomplemented sum of the header as
// it is, checksum field included (gVisor semantics). A header with a
// correct checksum yields 0xffff; to fill in the checksum, zero the field
// and store ^CalculateChecksum() (Encode does this). Needs HeaderLen() <=
// len(b).
func (b IPv4) CalculateChecksum() uint16 { return Fold(Checksum(b[:b.HeaderLen()], 0)) }

// HeaderChecksumValid reports whether the header checksum is correct.
func (b IPv4) HeaderChecksumValid() bool { return b.CalculateChecksum() == 0xffff }

// DecTTL decrements the TTL and updates the header checksum incrementally
// (RFC 1624). A TTL of 0 is left alone; the caller checks TTL() > 1 before
// forwarding and sends Time Exceeded otherwise.
func (b IPv4) DecTTL() {
	ttl := b[ipv4TTL]
	if ttl == 0 {
		return
	}
	// TTL is the high byte of the TTL/protocol word.
	proto := uint16(b[ipv4Protocol])
	old := uint16(ttl)<<8 | proto
	b[ipv4TTL] = ttl - 1
	b.SetChecksum(UpdateChecksum(b.Checksum(), old, old-0x100))
}

// SetSrcUpdate sets the source address and updates the header checksum
// incrementally, for NAT-style rewrites. Transport checksums that cover
// the pseudo-header are the caller's.
func (b IPv4) SetSrcUpdate(a [4]byte) { b.setAddrUpdate(ipv4Src, a) }

// SetDstUpdate is SetSrcUpdate for the destination address.
func (b IPv4) SetDstUpdate(a [4]byte) { b.setAddrUpdate(ipv4Dst, a) }

func (b IPv4) setAddrUpdate(off int, a [4]byte) {
	c := b.Checksum()
	c = UpdateChecksum(c, binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint16(a[0:]))
	c = UpdateChecksum(c, binary.BigEndian.Uint16(b[off+2:]), binary.BigEndian.Uint16(a[2:]))
	copy(b[off:off+4], a[:])
	b.SetChecksum(c)
}

// Encode writes a 20-byte header from f, checksum included. b must hold
// IPv4MinLen bytes.
func (b IPv4) Encode(f *IPv4Fields) {
	_ = b[IPv4MinLen-1]
	b[ipv4VersIHL] = 4<<4 | IPv4MinLen/4
	b[ipv4TOS] = f.TOS
	b.SetTotalLength(f.TotalLength)
	binary.BigEndian.PutUint16(b[ipv4ID:], f.ID)
	binary.BigEndian.PutUint16(b[ipv4FlagsFO:], uint16(f.Flags)<<ipv4FlagShift|(f.FragmentOffset>>3)&ipv4FOMask)
	b[ipv4TTL] = f.TTL
	b[ipv4Protocol] = f.Protocol
	b.SetSrc(f.Src)
	b.SetDst(f.Dst)
	b.SetChecksum(0)
	b.SetChecksum(^b.CalculateChecksum())
}

// IsIPv4Forwardable reports whether a router may forward a packet to dst:
// it rejects 0.0.0.0/8 ("this network", including the unspecified
// address), 127.0.0.0/8 (loopback), 169.254.0.0/16 (link-local, which is
// also where the pods' gateway lives: packets to it are answered, not
// forwarded), 224.0.0.0/4 (multicast) and 255.255.255.255 (limited
// broadcast). Class E (240.0.0.0/4) is allowed because some clusters use it
// for pod addresses.
func IsIPv4Forwardable(dst [4]byte) bool {
	switch {
	case dst[0] == 0, dst[0] == 127, dst[0] == 169 && dst[1] == 254, dst[0]&0xf0 == 224:
		return false
	case dst == [4]byte{255, 255, 255, 255}:
		return false
	}
	return true
}

// IsIPv4ValidSource reports whether src may appear as the source of a
// packet the dataplane forwards (RFC 1812 section 5.3.7, martians): it
// rejects 0.0.0.0/8, loopback, multicast and limited broadcast.
func IsIPv4ValidSource(src [4]byte) bool {
	switch {
	case src[0] == 0, src[0] == 127, src[0]&0xf0 == 224:
		return false
	case src == [4]byte{255, 255, 255, 255}:
		return false
	}
	return true
}
