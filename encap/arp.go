package encap

import "encoding/binary"

// ARPLen is the length of an ARP packet for IPv4 over Ethernet.
const ARPLen = 28

// ARP operations.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

const (
	arpHType = 0
	arpPType = 2
	arpHLen  = 4
	arpPLen  = 5
	arpOp    = 6
	arpSHA   = 8
	arpSPA   = 14
	arpTHA   = 18
	arpTPA   = 24

	arpHTypeEthernet = 1
)

// ARP is a view of an ARP packet for IPv4 over Ethernet (RFC 826):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Hardware Type (1)        |     Protocol Type (0x0800)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HLen (6)     |  PLen (4)     |           Operation           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Sender Hardware Address (6 octets)              |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               | Sender Protocol Address (4)   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|               Target Hardware Address (6 octets)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Target Protocol Address (4)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Accessors need IsValid (or len(b) >= ARPLen).
type ARP []byte

// IsValid reports whether b holds a whole ARP packet for IPv4 over Ethernet.
func (b ARP) IsValid() bool {
	return len(b) >= ARPLen &&
		binary.BigEndian.Uint16(b[arpHType:]) == arpHTypeEthernet &&
		binary.BigEndian.Uint16(b[arpPType:]) == EtherTypeIPv4 &&
		b[arpHLen] == 6 && b[arpPLen] == 4
}

// Op returns the operation (ARPRequest, ARPReply).
func (b ARP) Op() uint16 { return binary.BigEndian.Uint16(b[arpOp:]) }

// SetOp sets the operation.
func (b ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(b[arpOp:], op) }

// SHA returns the sender hardware address.
func (b ARP) SHA() [6]byte { return [6]byte(b[arpSHA : arpSHA+6]) }

// SPA returns the sender protocol address.
func (b ARP) SPA() [4]byte { return [4]byte(b[arpSPA : arpSPA+4]) }

// THA returns the target hardware address.
func (b ARP) THA() [6]byte { return [6]byte(b[arpTHA : arpTHA+6]) }

// TPA returns the target protocol address.
func (b ARP) TPA() [4]byte { return [4]byte(b[arpTPA : arpTPA+4]) }

// SetSHA sets the sender hardware address.
func (b ARP) SetSHA(a [6]byte) { copy(b[arpSHA:arpSHA+6], a[:]) }

// SetSPA sets the sender protocol address.
func (b ARP) SetSPA(a [4]byte) { copy(b[arpSPA:arpSPA+4], a[:]) }

// SetTHA sets the target hardware address.
func (b ARP) SetTHA(a [6]byte) { copy(b[arpTHA:arpTHA+6], a[:]) }

// SetTPA sets the target protocol address.
func (b ARP) SetTPA(a [4]byte) { copy(b[arpTPA:arpTPA+4], a[:]) }

// Encode writes a whole ARP packet for IPv4 over Ethernet. b must hold
// ARPLen bytes.
func (b ARP) Encode(op uint16, sha [6]byte, spa [4]byte, tha [6]byte, tpa [4]byte) {
	_ = b[ARPLen-1]
	binary.BigEndian.PutUint16(b[arpHType:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(b[arpPType:], EtherTypeIPv4)
	b[arpHLen] = 6
	b[arpPLen] = 4
	b.SetOp(op)
	b.SetSHA(sha)
	b.SetSPA(spa)
	b.SetTHA(tha)
	b.SetTPA(tpa)
}
