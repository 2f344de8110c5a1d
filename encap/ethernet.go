package encap

import "encoding/binary"

// EtherTypes the dataplane dispatches on.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeIPv6 uint16 = 0x86DD
	EtherTypeVLAN uint16 = 0x8100
)

// EthernetLen is the length of an Ethernet II header without a VLAN tag.
const EthernetLen = 14

const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12
)

// Ethernet is a view of an Ethernet II header (IEEE 802.3, DIX framing):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC (6 octets)                   |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                    Source MAC (6 octets)                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Accessors need len(b) >= EthernetLen.
type Ethernet []byte

// Dst returns the destination MAC address.
func (b Ethernet) Dst() [6]byte { return [6]byte(b[ethDst : ethDst+6]) }

// Src returns the source MAC address.
func (b Ethernet) Src() [6]byte { return [6]byte(b[ethSrc : ethSrc+6]) }

// Type returns the EtherType.
func (b Ethernet) Type() uint16 { return binary.BigEndian.Uint16(b[ethType:]) }

// SetDst sets the destination MAC address.
func (b Ethernet) SetDst(a [6]byte) { copy(b[ethDst:ethDst+6], a[:]) }

// SetSrc sets the source MAC address.
func (b Ethernet) SetSrc(a [6]byte) { copy(b[ethSrc:ethSrc+6], a[:]) }

// SetType sets the EtherType.
func (b Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(b[ethType:], t) }

// Encode writes a whole Ethernet header.
func (b Ethernet) Encode(dst, src [6]byte, typ uint16) {
	_ = b[EthernetLen-1]
	b.SetDst(dst)
	b.SetSrc(src)
	b.SetType(typ)
}

// Payload returns the bytes after the header.
func (b Ethernet) Payload() []byte { return b[EthernetLen:] }

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsMulticastMAC reports whether the group bit of a is set (this includes
// broadcast).
func IsMulticastMAC(a [6]byte) bool { return a[0]&1 != 0 }

// IPv6MulticastMAC returns the Ethernet address an IPv6 multicast address
// maps to, 33:33 followed by its low 32 bits (RFC 2464 section 7).
func IPv6MulticastMAC(ip [16]byte) [6]byte {
	return [6]byte{0x33, 0x33, ip[12], ip[13], ip[14], ip[15]}
}
