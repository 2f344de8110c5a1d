package nat

import (
	"encoding/binary"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/encap"
)

// Reason is why a packet cannot be translated; the caller drops the
// packet and counts the reason. OK means it can.
type Reason uint8

const (
	OK Reason = iota
	// ReasonFragment: an IPv4 fragment or an IPv6 fragment header; a
	// fragment carries no ports, so it cannot be matched to a flow
	// (reassembly is not done).
	ReasonFragment
	// ReasonExtHeader: an IPv6 extension header before the transport
	// header.
	ReasonExtHeader
	// ReasonTruncated: a header is cut short, or an IP header's lengths
	// do not fit the packet.
	ReasonTruncated
	// ReasonBadLength: a UDP length or TCP data offset that does not fit.
	ReasonBadLength
	// ReasonBadChecksum: a wrong ICMP checksum, an IPv6 UDP datagram
	// without checksum, or a wrong TCP/UDP checksum when the caller
	// asked for it to be verified.
	ReasonBadChecksum
	// ReasonProto: a transport other than TCP, UDP, ICMP or ICMPv6.
	ReasonProto
	// ReasonICMPType: an ICMP message that is neither echo nor an error
	// about a flow (redirects, NDP, ...).
	ReasonICMPType
	// ReasonInner: an ICMP error whose quoted packet cannot be matched
	// to a flow (another family, a fragment, an ICMP error about an ICMP
	// error, no ports).
	ReasonInner
	// ReasonFamily: a translation to another address family.
	ReasonFamily
	NumReasons
)

var reasonNames = [NumReasons]string{"ok", "fragment", "ext-header", "truncated", "bad-length",
	"bad-checksum", "proto", "icmp-type", "icmp-inner", "family"}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "invalid"
}

// Kinds of translatable packets.
const (
	KindTCP uint8 = iota + 1
	KindUDP
	KindEcho  // ICMP or ICMPv6 echo request or reply
	KindError // ICMP or ICMPv6 error about a TCP, UDP or echo packet
)

// Packet is what Parse learned about an IP packet, for the conntrack
// lookup and for Rewrite. It holds offsets into the packet, not the
// packet.
type Packet struct {
	// Key is the conntrack key to look the packet up with: its own, or
	// for an ICMP error the reverse of the quoted packet's (the flow the
	// error is about, in the error's direction).
	Key conntrack.Key
	// Flags are the TCP flags (0 for everything else, ICMP errors about
	// TCP included).
	Flags uint8
	Kind  uint8
	// ICMPType is the ICMP type of KindEcho and KindError packets.
	ICMPType uint8
	// innerProto is the quoted packet's transport.
	innerProto uint8
	l4         uint16 // transport header
	inner      uint16 // KindError: the quoted IP header
	innerL4    uint16 // KindError: the quoted transport header
	end        uint16 // the packet's length
}

// Options of Parse.
const (
	// VerifyL4 checks TCP and UDP checksums over the whole segment (ICMP
	// checksums are always checked). Not for GSO super-frames, whose
	// checksum field holds only the pseudo-header sum.
	VerifyL4 = 1 << iota
)

// Parse reads the IPv4 or IPv6 packet ip (starting at its IP header,
// trimmed to its length or with link padding behind it) of family fam
// (conntrack.IPv4 or IPv6) into p, or says why it cannot be translated.
// It reads every header Rewrite will write, so a packet Parse accepts is
// rewritten whole or, with a Reason, not at all. It never panics, on any
// input.
func Parse(ip []byte, fam uint8, opts int, p *Packet) Reason {
	*p = Packet{}
	if fam == conntrack.IPv4 {
		return parse4(ip, opts, p)
	}
	return parse6(ip, opts, p)
}

func parse4(ip []byte, opts int, p *Packet) Reason {
	h := encap.IPv4(ip)
	if !h.IsValid(len(ip)) {
		return ReasonTruncated
	}
	if h.IsFragment() {
		return ReasonFragment
	}
	hl, tl := h.HeaderLen(), int(h.TotalLength())
	k := &p.Key
	k.Family = conntrack.IPv4
	copy(k.Src[:4], ip[12:16])
	copy(k.Dst[:4], ip[16:20])
	k.Proto = h.Protocol()
	p.l4, p.end = uint16(hl), uint16(tl)
	return parseL4(ip[:tl], opts, p)
}

func parse6(ip []byte, opts int, p *Packet) Reason {
	h := encap.IPv6(ip)
	if !h.IsValid(len(ip)) {
		return ReasonTruncated
	}
	end := encap.IPv6Len + int(h.PayloadLength())
	k := &p.Key
	k.Family = conntrack.IPv6
	k.Src, k.Dst = h.Src(), h.Dst()
	k.Proto = h.NextHeader()
	if r := checkNext6(k.Proto); r != OK {
		return r
	}
	p.l4, p.end = encap.IPv6Len, uint16(end)
	return parseL4(ip[:end], opts, p)
}

// checkNext6 refuses an IPv6 next header that is not a transport Parse
// handles, saying whether it is an extension header.
func checkNext6(nh uint8) Reason {
	switch nh {
	case conntrack.ProtoTCP, conntrack.ProtoUDP, conntrack.ProtoICMPv6:
		return OK
	case 44:
		return ReasonFragment
	case 0, 43, 50, 51, 60, 135, 139, 140, 253, 254:
		return ReasonExtHeader
	}
	return ReasonProto
}

// parseL4 parses the transport header at p.l4 of the packet ip (trimmed
// to its length), whose addresses and protocol are in p.Key.
func parseL4(ip []byte, opts int, p *Packet) Reason {
	k := &p.Key
	l4 := ip[p.l4:]
	switch k.Proto {
	case conntrack.ProtoTCP:
		if len(l4) < 20 {
			return ReasonTruncated
		}
		if doff := int(l4[12]>>4) * 4; doff < 20 || doff > len(l4) {
			return ReasonBadLength
		}
		k.SPort, k.DPort = be16(l4[0:]), be16(l4[2:])
		p.Flags, p.Kind = l4[13]&0x3f, KindTCP
		if opts&VerifyL4 != 0 && !l4SumValid(k, l4) {
			return ReasonBadChecksum
		}
		return OK
	case conntrack.ProtoUDP:
		if len(l4) < encap.UDPLen {
			return ReasonTruncated
		}
		if ul := int(be16(l4[4:])); ul < encap.UDPLen || ul > len(l4) {
			return ReasonBadLength
		}
		c := be16(l4[6:])
		if c == 0 && k.Family == conntrack.IPv6 {
			return ReasonBadChecksum
		}
		k.SPort, k.DPort = be16(l4[0:]), be16(l4[2:])
		p.Kind = KindUDP
		if opts&VerifyL4 != 0 && c != 0 && !l4SumValid(k, l4[:be16(l4[4:])]) {
			return ReasonBadChecksum
		}
		return OK
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6:
		return parseICMP(ip, p)
	}
	return ReasonProto
}

// l4SumValid checks a TCP or UDP checksum from scratch.
func l4SumValid(k *conntrack.Key, seg []byte) bool {
	var ph uint32
	if k.Family == conntrack.IPv4 {
		ph = encap.PseudoHeaderSum4([4]byte(k.Src[:4]), [4]byte(k.Dst[:4]), k.Proto, uint16(len(seg)))
	} else {
		ph = encap.PseudoHeaderSum6(k.Src, k.Dst, k.Proto, uint32(len(seg)))
	}
	return encap.Fold(encap.Checksum(seg, ph)) == 0xffff
}

// ICMP types Parse translates.
const (
	icmp4EchoReply   = 0
	icmp4Unreachable = 3
	icmp4Echo        = 8
	icmp4TimeExc     = 11
	icmp4ParamProb   = 12
	icmp6Unreachable = 1
	icmp6TooBig      = 2
	icmp6TimeExc     = 3
	icmp6ParamProb   = 4
	icmp6Echo        = 128
	icmp6EchoReply   = 129
)

func isEcho(fam, typ uint8) bool {
	if fam == conntrack.IPv4 {
		return typ == icmp4Echo || typ == icmp4EchoReply
	}
	return typ == icmp6Echo || typ == icmp6EchoReply
}

func isError(fam, typ uint8) bool {
	if fam == conntrack.IPv4 {
		return typ == icmp4Unreachable || typ == icmp4TimeExc || typ == icmp4ParamProb
	}
	return typ == icmp6Unreachable || typ == icmp6TooBig || typ == icmp6TimeExc || typ == icmp6ParamProb
}

func parseICMP(ip []byte, p *Packet) Reason {
	k := &p.Key
	msg := ip[p.l4:]
	if len(msg) < 8 {
		return ReasonTruncated
	}
	var sum uint32
	if k.Family == conntrack.IPv6 {
		sum = encap.PseudoHeaderSum6(k.Src, k.Dst, conntrack.ProtoICMPv6, uint32(len(msg)))
	}
	if encap.Fold(encap.Checksum(msg, sum)) != 0xffff {
		return ReasonBadChecksum
	}
	typ := msg[0]
	p.ICMPType = typ
	if isEcho(k.Family, typ) {
		id := be16(msg[4:])
		k.SPort, k.DPort, p.Kind = id, id, KindEcho
		return OK
	}
	if !isError(k.Family, typ) {
		return ReasonICMPType
	}
	p.Kind = KindError
	p.inner = p.l4 + 8
	return parseInner(ip, p)
}

// parseInner parses the packet an ICMP error quotes: an IP header and at
// least the 8 bytes of transport header that hold the ports (or the echo
// identifier), of the outer packet's family.
func parseInner(ip []byte, p *Packet) Reason {
	in := ip[p.inner:]
	var ik conntrack.Key
	ik.Family = p.Key.Family
	if ik.Family == conntrack.IPv4 {
		if len(in) < encap.IPv4MinLen || in[0]>>4 != 4 {
			return ReasonInner
		}
		h := encap.IPv4(in)
		hl := h.HeaderLen()
		if hl < encap.IPv4MinLen || hl > len(in) {
			return ReasonInner
		}
		if h.FragmentOffset() != 0 {
			return ReasonInner
		}
		copy(ik.Src[:4], in[12:16])
		copy(ik.Dst[:4], in[16:20])
		ik.Proto = h.Protocol()
		p.innerL4 = p.inner + uint16(hl)
	} else {
		if len(in) < encap.IPv6Len || in[0]>>4 != 6 {
			return ReasonInner
		}
		h := encap.IPv6(in)
		ik.Src, ik.Dst, ik.Proto = h.Src(), h.Dst(), h.NextHeader()
		if checkNext6(ik.Proto) != OK {
			return ReasonInner
		}
		p.innerL4 = p.inner + encap.IPv6Len
	}
	l4 := ip[p.innerL4:]
	if len(l4) < 8 {
		return ReasonInner
	}
	switch ik.Proto {
	case conntrack.ProtoTCP, conntrack.ProtoUDP:
		ik.SPort, ik.DPort = be16(l4[0:]), be16(l4[2:])
	case conntrack.ProtoICMP, conntrack.ProtoICMPv6:
		if (ik.Proto == conntrack.ProtoICMP) != (ik.Family == conntrack.IPv4) || !isEcho(ik.Family, l4[0]) {
			return ReasonInner
		}
		id := be16(l4[4:])
		ik.SPort, ik.DPort = id, id
	default:
		return ReasonInner
	}
	p.innerProto = ik.Proto
	p.Key = ik.Reverse()
	return OK
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
