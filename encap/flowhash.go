package encap

import (
	"encoding/binary"
	"math/bits"
)

// protoSCTP has ports at the same offsets as TCP and UDP.
const protoSCTP = 132

// FlowHash4 hashes the 5-tuple of an IPv4 packet (addresses, protocol and,
// for TCP, UDP and SCTP packets that are not fragments, the ports) for ECMP
// and VXLAN source ports. Fragments hash on the 3-tuple so that all pieces
// of a datagram take one path. It needs len(ip) >= IPv4MinLen and reads the
// ports only when they lie within ip.
func FlowHash4(ip IPv4) uint32 {
	h := uint32(seed4)
	h = murmurRound(h, binary.BigEndian.Uint32(ip[ipv4Src:]))
	h = murmurRound(h, binary.BigEndian.Uint32(ip[ipv4Dst:]))
	proto := ip.Protocol()
	var ports uint32
	if hasPorts(proto) && !ip.IsFragment() {
		if hl := ip.HeaderLen(); hl >= IPv4MinLen && len(ip) >= hl+4 {
			ports = binary.BigEndian.Uint32(ip[hl:])
		}
	}
	h = murmurRound(h, ports)
	h = murmurRound(h, uint32(proto))
	return fmix32(h ^ 16)
}

// FlowHash6 is FlowHash4 for IPv6. Ports are read only when the first next
// header is TCP, UDP or SCTP (no extension-header walk; packets with
// extension headers hash on addresses and next header). The flow label is
// left out so that a host re-labelling a flow does not move it.
func FlowHash6(ip IPv6) uint32 {
	h := uint32(seed6)
	for off := ipv6Src; off < ipv6Dst+16; off += 4 {
		h = murmurRound(h, binary.BigEndian.Uint32(ip[off:]))
	}
	proto := ip.NextHeader()
	var ports uint32
	if hasPorts(proto) && len(ip) >= IPv6Len+4 {
		ports = binary.BigEndian.Uint32(ip[IPv6Len:])
	}
	h = murmurRound(h, ports)
	h = murmurRound(h, uint32(proto))
	return fmix32(h ^ 40)
}

func hasPorts(proto uint8) bool {
	return proto == ProtoTCP || proto == ProtoUDP || proto == protoSCTP
}

// Seeds keep IPv4 and IPv6 hashes apart; any fixed values do, since every
// node must pick the same path for a flow only within itself.
const (
	seed4 = 0x9747b28c
	seed6 = 0x3c6ef372
)

// murmurRound is one MurmurHash3 x86_32 block step.
func murmurRound(h, k uint32) uint32 {
	k *= 0xcc9e2d51
	k = bits.RotateLeft32(k, 15)
	k *= 0x1b873593
	h ^= k
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

// fmix32 is MurmurHash3's finaliser, which spreads every input bit over
// the output so that any slice of the hash (ECMP modulo, port bits) is
// usable.
func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
