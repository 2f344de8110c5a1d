package encap

import "encoding/binary"

// UDPLen is the length of the UDP header.
const UDPLen = 8

const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// UDP is a view of a UDP header (RFC 768):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Length             |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Accessors need len(b) >= UDPLen.
type UDP []byte

// SrcPort returns the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DstPort returns the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// Length returns the length of header plus payload.
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// Checksum returns the checksum field (0 means none over IPv4).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// SetSrcPort sets the source port.
func (b UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(b[udpSrcPort:], p) }

// SetDstPort sets the destination port.
func (b UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(b[udpDstPort:], p) }

// SetLength sets the length.
func (b UDP) SetLength(l uint16) { binary.BigEndian.PutUint16(b[udpLength:], l) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], c) }

// IsValid reports whether b holds a UDP header whose Length fits in the
// first n bytes of b: 8 <= Length() <= n <= len(b).
func (b UDP) IsValid(n int) bool {
	return len(b) >= UDPLen && n <= len(b) && int(b.Length()) >= UDPLen && int(b.Length()) <= n
}

// Payload returns the bytes after the header, b[UDPLen:] as in gVisor;
// trim to Length() after IsValid when the slice may carry padding.
func (b UDP) Payload() []byte { return b[UDPLen:] }

// Encode writes the header with a zero checksum; length is header plus
// payload.
func (b UDP) Encode(src, dst, length uint16) {
	_ = b[UDPLen-1]
	b.SetSrcPort(src)
	b.SetDstPort(dst)
	b.SetLength(length)
	b.SetChecksum(0)
}

// UDPChecksum4 returns the checksum to store for the UDP datagram udp
// (header and payload, its checksum field treated as zero) sent from src
// to dst over IPv4. A computed zero is sent as 0xffff (RFC 768), since zero
// means "no checksum".
func UDPChecksum4(src, dst [4]byte, udp []byte) uint16 {
	c := ^Fold(sumSkipping(udp, udpChecksum, PseudoHeaderSum4(src, dst, ProtoUDP, uint16(len(udp)))))
	if c == 0 {
		c = 0xffff
	}
	return c
}

// UDPChecksum6 is UDPChecksum4 over IPv6, where the checksum is mandatory
// except for tunnels that opt out (RFC 6935).
func UDPChecksum6(src, dst [16]byte, udp []byte) uint16 {
	c := ^Fold(sumSkipping(udp, udpChecksum, PseudoHeaderSum6(src, dst, ProtoUDP, uint32(len(udp)))))
	if c == 0 {
		c = 0xffff
	}
	return c
}
