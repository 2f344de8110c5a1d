package conntrack

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
)

// Address families of a Key.
const (
	IPv4 uint8 = 4
	IPv6 uint8 = 6
)

// IP protocol numbers the table tracks.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// Key is one direction of a flow, as the packets of that direction carry
// it: addresses (IPv4 in the first four bytes, the rest zero), protocol,
// family and ports. For ICMP and ICMPv6 echo, SPort and DPort both hold the
// echo identifier, so that Reverse maps a request's key to its reply's.
// An ICMP error is looked up with the reverse of the key of the packet it
// quotes.
type Key struct {
	Src, Dst     [16]byte
	SPort, DPort uint16
	Proto        uint8
	Family       uint8
}

// Reverse returns the key of the packets that answer k's.
func (k Key) Reverse() Key {
	return Key{Src: k.Dst, Dst: k.Src, SPort: k.DPort, DPort: k.SPort, Proto: k.Proto, Family: k.Family}
}

// SrcAddr and DstAddr return k's addresses as netip.Addr (for the control
// plane; they are not used per packet).
func (k Key) SrcAddr() netip.Addr { return addr(k.Family, k.Src) }

// DstAddr is SrcAddr for the destination.
func (k Key) DstAddr() netip.Addr { return addr(k.Family, k.Dst) }

func addr(fam uint8, a [16]byte) netip.Addr {
	if fam == IPv4 {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(a)
}

// String formats k the way conntrack -L does: "tcp src=… dst=… sport=… dport=…".
func (k Key) String() string {
	return fmt.Sprintf("%s src=%s dst=%s sport=%d dport=%d", ProtoName(k.Proto), k.SrcAddr(), k.DstAddr(), k.SPort, k.DPort)
}

// ProtoName names the protocols the table tracks.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	}
	return fmt.Sprintf("proto-%d", p)
}

// packed is a Key as the five words the table stores and compares.
type packed [5]uint64

func pack(k *Key) packed {
	return packed{
		binary.LittleEndian.Uint64(k.Src[0:]),
		binary.LittleEndian.Uint64(k.Src[8:]),
		binary.LittleEndian.Uint64(k.Dst[0:]),
		binary.LittleEndian.Uint64(k.Dst[8:]),
		uint64(k.SPort)<<48 | uint64(k.DPort)<<32 | uint64(k.Proto)<<8 | uint64(k.Family),
	}
}

func (p *packed) unpack(k *Key) {
	binary.LittleEndian.PutUint64(k.Src[0:], p[0])
	binary.LittleEndian.PutUint64(k.Src[8:], p[1])
	binary.LittleEndian.PutUint64(k.Dst[0:], p[2])
	binary.LittleEndian.PutUint64(k.Dst[8:], p[3])
	k.SPort = uint16(p[4] >> 48)
	k.DPort = uint16(p[4] >> 32)
	k.Proto = uint8(p[4] >> 8)
	k.Family = uint8(p[4])
}

// hash mixes the five words with a per-table random seed (so that no one
// can choose ports that chain in one bucket), wyhash-style: a 64x64->128
// multiply folded to 64 bits per pair of words.
func hash(p *packed, seed uint64) uint64 {
	h := mix(p[0]^seed, p[1]^0xa0761d6478bd642f)
	h = mix(p[2]^h, p[3]^0xe7037ed1a0b428db)
	return mix(p[4]^h, seed^0x8ebc6af09c88c6e3)
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Hash returns a hash of k that is the same in every process (a fixed
// seed): for choosing a backend (Maglev), where nodes behind one ECMP
// route must agree. The table itself uses a random seed.
func (k *Key) Hash() uint64 {
	p := pack(k)
	return hash(&p, 0x2d358dccaa6c78a5)
}
