package gen

import "encoding/binary"

// sum16 adds b as big-endian 16-bit words to s (ones' complement, unfolded).
// An odd trailing byte is padded with zero, as RFC 1071 says.
func sum16(s uint64, b []byte) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		s += v>>48 + (v>>32)&0xffff + (v>>16)&0xffff + v&0xffff
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// fold folds s to 16 bits with end-around carry.
func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// checksum is the Internet checksum of b with initial partial sum s.
func checksum(s uint64, b []byte) uint16 { return ^fold(sum16(s, b)) }

// update applies RFC 1624 eqn. 3 to checksum hc for a 16-bit-aligned region
// whose ones' complement sum went from oldSum to newSum:
// HC' = ~(~HC + ~m + m').
func update(hc uint16, oldSum, newSum uint16) uint16 {
	return ^fold(uint64(^hc) + uint64(^oldSum) + uint64(newSum))
}

// udpFinal maps a computed UDP checksum of 0 to 0xffff (RFC 768: 0 means
// "no checksum").
func udpFinal(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}
