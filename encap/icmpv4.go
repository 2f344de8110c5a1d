package encap

import "encoding/binary"

// ICMPv4Len is the length of the ICMPv4 header including the 4-byte
// rest-of-header word.
const ICMPv4Len = 8

// ICMPv4 types (RFC 792).
const (
	ICMPv4EchoReply       uint8 = 0
	ICMPv4DestUnreachable uint8 = 3
	ICMPv4Redirect        uint8 = 5
	ICMPv4EchoRequest     uint8 = 8
	ICMPv4TimeExceeded    uint8 = 11
	ICMPv4ParamProblem    uint8 = 12
)

// ICMPv4 codes for Destination Unreachable (RFC 792, RFC 1191) and Time
// Exceeded.
const (
	ICMPv4NetUnreachable  uint8 = 0
	ICMPv4HostUnreachable uint8 = 1
	ICMPv4PortUnreachable uint8 = 3
	ICMPv4FragNeeded      uint8 = 4
	ICMPv4TTLExceeded     uint8 = 0 // code of ICMPv4TimeExceeded
)

// Offsets shared by ICMPv4 and ICMPv6, which have the same first word.
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpIdent    = 4
	icmpSeq      = 6
	icmpv4MTU    = 6
)

// ICMPv4 is a view of an ICMPv4 message (RFC 792):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Identifier (echo) / unused   | Seq (echo) / Next-Hop MTU (4) |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Data (echo) / Internet header + leading payload (errors)  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Next-Hop MTU of Destination Unreachable / Fragmentation Needed is
// RFC 1191's. Accessors need len(b) >= ICMPv4Len.
type ICMPv4 []byte

// Type returns the message type.
func (b ICMPv4) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv4) Code() uint8 { return b[icmpCode] }

// SetType sets the message type.
func (b ICMPv4) SetType(t uint8) { b[icmpType] = t }

// SetCode sets the message code.
func (b ICMPv4) SetCode(c uint8) { b[icmpCode] = c }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// SetChecksum sets the checksum field; see ICMPv4Checksum.
func (b ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], c) }

// Ident returns the echo identifier.
func (b ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(b[icmpIdent:]) }

// SetIdent sets the echo identifier.
func (b ICMPv4) SetIdent(v uint16) { binary.BigEndian.PutUint16(b[icmpIdent:], v) }

// Seq returns the echo sequence number.
func (b ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(b[icmpSeq:]) }

// SetSeq sets the echo sequence number.
func (b ICMPv4) SetSeq(v uint16) { binary.BigEndian.PutUint16(b[icmpSeq:], v) }

// RestOfHeader returns the 4 bytes after the checksum.
func (b ICMPv4) RestOfHeader() []byte { return b[icmpIdent:ICMPv4Len] }

// MTU returns the next-hop MTU of a fragmentation-needed message.
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpv4MTU:]) }

// SetMTU sets the next-hop MTU of a fragmentation-needed message (bytes 6-7).
func (b ICMPv4) SetMTU(mtu uint16) { binary.BigEndian.PutUint16(b[icmpv4MTU:], mtu) }

// Payload returns the bytes after the 8-byte header.
func (b ICMPv4) Payload() []byte { return b[ICMPv4Len:] }

// ChecksumValid reports whether the checksum over the whole of b is
// correct.
func (b ICMPv4) ChecksumValid() bool { return Fold(Checksum(b, 0)) == 0xffff }

// IsICMPv4Error reports whether typ is an ICMPv4 error message type, about
// which no ICMP error may be sent (RFC 1812 section 4.3.2.7).
func IsICMPv4Error(typ uint8) bool {
	switch typ {
	case ICMPv4DestUnreachable, 4 /* source quench */, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}
