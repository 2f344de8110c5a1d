package encap

import "encoding/binary"

// ICMPv6Len is the length of the ICMPv6 header including the 4-byte word
// after the checksum.
const ICMPv6Len = 8

// ICMPv6 types (RFC 4443, RFC 4861).
const (
	ICMPv6DestUnreachable uint8 = 1
	ICMPv6PacketTooBig    uint8 = 2
	ICMPv6TimeExceeded    uint8 = 3
	ICMPv6ParamProblem    uint8 = 4
	ICMPv6EchoRequest     uint8 = 128
	ICMPv6EchoReply       uint8 = 129
	ICMPv6RouterSolicit   uint8 = 133
	ICMPv6RouterAdvert    uint8 = 134
	ICMPv6NeighborSolicit uint8 = 135
	ICMPv6NeighborAdvert  uint8 = 136
	ICMPv6Redirect        uint8 = 137
)

// ICMPv6 codes: Destination Unreachable (RFC 4443 section 3.1) and Time
// Exceeded.
const (
	ICMPv6NoRoute            uint8 = 0
	ICMPv6AdminProhibited    uint8 = 1
	ICMPv6AddressUnreachable uint8 = 3
	ICMPv6PortUnreachable    uint8 = 4
	ICMPv6HopLimitExceeded   uint8 = 0 // code of ICMPv6TimeExceeded
)

// NDP option types (RFC 4861 section 4.6).
const (
	NDPOptSourceLinkAddr uint8 = 1
	NDPOptTargetLinkAddr uint8 = 2
	NDPOptPrefixInfo     uint8 = 3
	NDPOptMTU            uint8 = 5
)

// NDP message lengths up to their options.
const (
	NDPRouterSolicitLen   = 8  // type, code, checksum, reserved
	NDPRouterAdvertLen    = 16 // + hop limit, flags, lifetime, reachable, retrans
	NDPNeighborSolicitLen = 24 // + target address
	NDPNeighborAdvertLen  = 24 // + flags, target address
	// NDPLinkAddrOptLen is a source/target link-layer address option for
	// Ethernet.
	NDPLinkAddrOptLen = 8
)

// Neighbor Advertisement flags, the high bits of byte 4.
const (
	NDPFlagRouter    uint8 = 0x80
	NDPFlagSolicited uint8 = 0x40
	NDPFlagOverride  uint8 = 0x20
)

const (
	icmpv6MTU       = 4
	icmpv6NAFlags   = 4
	icmpv6NDPTarget = 8
)

// ICMPv6 is a view of an ICMPv6 message (RFC 4443), including the
// Neighbor Discovery messages of RFC 4861:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| MTU (packet too big) / Identifier + Seq (echo) / NA flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+         Target Address (NS, NA) / invoking packet (errors)    +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options (NDP): Type | Length (units of 8 octets) | ...      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The NA flags word is R|S|O followed by 29 reserved bits. Accessors need
// len(b) >= ICMPv6Len; NDP target accessors need NDPNeighborSolicitLen.
type ICMPv6 []byte

// Type returns the message type.
func (b ICMPv6) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv6) Code() uint8 { return b[icmpCode] }

// SetType sets the message type.
func (b ICMPv6) SetType(t uint8) { b[icmpType] = t }

// SetCode sets the message code.
func (b ICMPv6) SetCode(c uint8) { b[icmpCode] = c }

// Checksum returns the checksum field.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// SetChecksum sets the checksum field; see ICMPv6Checksum.
func (b ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], c) }

// Ident returns the echo identifier.
func (b ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(b[icmpIdent:]) }

// Seq returns the echo sequence number.
func (b ICMPv6) Seq() uint16 { return binary.BigEndian.Uint16(b[icmpSeq:]) }

// MTU returns the MTU of a packet-too-big message.
func (b ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(b[icmpv6MTU:]) }

// SetMTU sets the MTU of a packet-too-big message (bytes 4-7).
func (b ICMPv6) SetMTU(mtu uint32) { binary.BigEndian.PutUint32(b[icmpv6MTU:], mtu) }

// Payload returns the bytes after the 8-byte header.
func (b ICMPv6) Payload() []byte { return b[ICMPv6Len:] }

// ChecksumValid reports whether b's checksum is correct for a packet from
// src to dst.
func (b ICMPv6) ChecksumValid(src, dst [16]byte) bool {
	return Fold(Checksum(b, PseudoHeaderSum6(src, dst, ProtoICMPv6, uint32(len(b))))) == 0xffff
}

// NDPTarget returns the target address of a Neighbor Solicitation or
// Advertisement (and Redirect).
func (b ICMPv6) NDPTarget() [16]byte {
	return [16]byte(b[icmpv6NDPTarget : icmpv6NDPTarget+16])
}

// SetNDPTarget sets the target address of an NS or NA.
func (b ICMPv6) SetNDPTarget(a [16]byte) { copy(b[icmpv6NDPTarget:icmpv6NDPTarget+16], a[:]) }

// NAFlags returns the R, S and O flags of a Neighbor Advertisement
// (NDPFlagRouter, NDPFlagSolicited, NDPFlagOverride).
func (b ICMPv6) NAFlags() uint8 { return b[icmpv6NAFlags] & 0xe0 }

// SetNAFlags sets the flags of a Neighbor Advertisement and clears the
// reserved bits.
func (b ICMPv6) SetNAFlags(router, solicited, override bool) {
	var f uint8
	if router {
		f |= NDPFlagRouter
	}
	if solicited {
		f |= NDPFlagSolicited
	}
	if override {
		f |= NDPFlagOverride
	}
	binary.BigEndian.PutUint32(b[icmpv6NAFlags:], uint32(f)<<24)
}

// NDPOptions returns the options of an NDP message (RS, RA, NS, NA,
// Redirect) by its type, or nil if b is not one of those or is too short
// for its fixed part. Walk them with NDPOptionIter or NDPSourceLinkAddr.
func (b ICMPv6) NDPOptions() []byte {
	var off int
	switch b.Type() {
	case ICMPv6RouterSolicit:
		off = NDPRouterSolicitLen
	case ICMPv6RouterAdvert:
		off = NDPRouterAdvertLen
	case ICMPv6NeighborSolicit, ICMPv6NeighborAdvert:
		off = NDPNeighborSolicitLen
	case ICMPv6Redirect:
		off = 40
	default:
		return nil
	}
	if len(b) < off {
		return nil
	}
	return b[off:]
}

// NDPOptionIter walks NDP options (RFC 4861 section 4.6):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |    Length     |              ...              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length counts 8-octet units including type and length; zero is invalid.
// Each step consumes at least 8 bytes, so a walk always ends.
//
//	it := encap.NDPOptionIter{Opts: opts}
//	for typ, body, ok := it.Next(); ok; typ, body, ok = it.Next() { ... }
//	if it.Err() { drop }
type NDPOptionIter struct {
	Opts []byte // options not yet returned
	bad  bool
}

// Next returns the next option's type and its bytes after the type and
// length octets. ok is false at the end or on a malformed option (then Err
// reports true and the walk stops).
func (it *NDPOptionIter) Next() (typ uint8, body []byte, ok bool) {
	if it.bad || len(it.Opts) == 0 {
		return 0, nil, false
	}
	if len(it.Opts) < 2 {
		it.bad = true
		return 0, nil, false
	}
	n := int(it.Opts[1]) * 8
	if n == 0 || n > len(it.Opts) {
		it.bad = true
		return 0, nil, false
	}
	typ, body = it.Opts[0], it.Opts[2:n]
	it.Opts = it.Opts[n:]
	return typ, body, true
}

// Err reports whether the walk stopped at a malformed option.
func (it *NDPOptionIter) Err() bool { return it.bad }

// NDPOptionsValid reports whether opts is a well-formed option list: every
// option has a non-zero length and lies within opts. RFC 4861 requires
// NDP messages with a malformed option to be dropped.
func NDPOptionsValid(opts []byte) bool {
	it := NDPOptionIter{Opts: opts}
	for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
	}
	return !it.Err()
}

// NDPSourceLinkAddr returns the Ethernet address in the first Source
// Link-Layer Address option of opts. ok is false if there is none, if it
// is not 8 bytes long (not Ethernet), or if any option in opts is
// malformed.
func NDPSourceLinkAddr(opts []byte) (mac [6]byte, ok bool) {
	return ndpLinkAddr(opts, NDPOptSourceLinkAddr)
}

// NDPTargetLinkAddr is NDPSourceLinkAddr for the Target Link-Layer Address
// option.
func NDPTargetLinkAddr(opts []byte) (mac [6]byte, ok bool) {
	return ndpLinkAddr(opts, NDPOptTargetLinkAddr)
}

func ndpLinkAddr(opts []byte, want uint8) (mac [6]byte, ok bool) {
	found := false
	it := NDPOptionIter{Opts: opts}
	for typ, body, more := it.Next(); more; typ, body, more = it.Next() {
		if typ == want && !found {
			if len(body) != 6 {
				return mac, false
			}
			mac, found = [6]byte(body), true
		}
	}
	if it.Err() {
		return [6]byte{}, false
	}
	return mac, found
}

// IsICMPv6Error reports whether typ is an ICMPv6 error message type (the
// high bit clear, RFC 4443 section 2.1), about which no error may be sent.
func IsICMPv6Error(typ uint8) bool { return typ < 128 }
