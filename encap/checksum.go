package encap

import (
	"encoding/binary"
	"math/bits"
)

// Checksum adds b, as a sequence of big-endian 16-bit words, to the running
// ones' complement sum initial and returns the new sum unfolded (RFC 1071).
// An odd trailing byte is padded with a zero low byte, so only the last
// piece of a message split across several calls may have an odd length.
//
// It adds 64-bit words with end-around carry: since 2^16 ≡ 1 (mod 0xffff),
// so are 2^32 and 2^64, and summing wider words (RFC 1071 section 2 (B))
// or folding the 64-bit total into 32 bits leaves the ones' complement
// value unchanged.
func Checksum(b []byte, initial uint32) uint32 {
	sum := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b), 0)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[8:]), c)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[16:]), c)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[24:]), c)
		sum += c // cannot overflow: a carry out leaves sum <= 2^64-2
		b = b[32:]
	}
	for len(b) >= 8 {
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b), 0)
		sum += c
		b = b[8:]
	}
	var tail uint64
	if len(b) >= 4 {
		tail += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		tail += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		tail += uint64(b[0]) << 8
	}
	sum, c = bits.Add64(sum, tail, 0)
	sum += c
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 32) + (sum & 0xffffffff)
	return uint32(sum)
}

// Fold folds the carries of a running sum into 16 bits. The result is not
// complemented: a checksum field stores ^Fold(sum), and a message whose
// stored checksum is correct folds to 0xffff.
func Fold(sum uint32) uint16 {
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	return uint16(sum)
}

// PseudoHeaderSum4 is the unfolded sum of the IPv4 pseudo-header (RFC 768,
// RFC 793) for a transport message of length bytes.
func PseudoHeaderSum4(src, dst [4]byte, proto uint8, length uint16) uint32 {
	return uint32(binary.BigEndian.Uint16(src[0:])) + uint32(binary.BigEndian.Uint16(src[2:])) +
		uint32(binary.BigEndian.Uint16(dst[0:])) + uint32(binary.BigEndian.Uint16(dst[2:])) +
		uint32(proto) + uint32(length)
}

// PseudoHeaderSum6 is the unfolded sum of the IPv6 pseudo-header (RFC 8200
// section 8.1) for an upper-layer message of length bytes.
func PseudoHeaderSum6(src, dst [16]byte, proto uint8, length uint32) uint32 {
	sum := Checksum(src[:], 0)
	sum = Checksum(dst[:], sum)
	return sum + (length >> 16) + (length & 0xffff) + uint32(proto)
}

// UpdateChecksum returns the checksum field value after a 16-bit word of the
// covered data changed from old to new, by RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m'). Equation 3 never produces the 0xffff/-0 result
// that RFC 1141's form does, so it agrees with a full recompute.
func UpdateChecksum(cksum uint16, old, new uint16) uint16 {
	return ^Fold(uint32(^cksum) + uint32(^old) + uint32(new))
}

// sumSkipping sums msg as if the 16-bit checksum field at off were zero.
func sumSkipping(msg []byte, off int, initial uint32) uint32 {
	if len(msg) < off+2 {
		return Checksum(msg, initial)
	}
	// off is even, so the second piece starts on a word boundary.
	return Checksum(msg[off+2:], Checksum(msg[:off], initial))
}

// ICMPv4Checksum returns the value to store in msg's checksum field: the
// complemented sum of the whole ICMPv4 message (header and body), computed
// as if the checksum field were zero. ICMPv4 has no pseudo-header.
func ICMPv4Checksum(msg []byte) uint16 {
	return ^Fold(sumSkipping(msg, icmpChecksum, 0))
}

// ICMPv6Checksum returns the value to store in msg's checksum field: the
// complemented sum of the IPv6 pseudo-header and the whole ICMPv6 message,
// computed as if the checksum field were zero (RFC 4443 section 2.3).
func ICMPv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	return ^Fold(sumSkipping(msg, icmpChecksum, PseudoHeaderSum6(src, dst, ProtoICMPv6, uint32(len(msg)))))
}
