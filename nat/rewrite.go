package nat

import (
	"encoding/binary"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/encap"
)

// Header offsets Rewrite writes.
const (
	ip4Checksum = 10
	ip4Src      = 12
	ip4Dst      = 16
	ip6Src      = 8
	ip6Dst      = 24
	tcpChecksum = 16
	udpChecksum = 6
	icmpSum     = 2
	icmpID      = 4
)

// Rewrite translates the packet ip, parsed by Parse into p, so that it
// carries the key to (conntrack's Flow.Target): addresses and ports (the
// echo identifier for ICMP echo), with the IPv4 header checksum and the
// transport checksum (pseudo-header included) updated incrementally
// (RFC 1624). A UDP datagram over IPv4 without checksum keeps none; a UDP
// checksum that comes out zero is sent as 0xffff.
//
// For an ICMP error, to is the key of the error's own direction: the
// quoted packet is rewritten to to.Reverse() (its IP header checksum,
// transport ports and, when quoted, transport checksum), the outer
// destination to the quoted packet's new source when it was the quoted
// source (it always is, for an error sent back to the packet's sender),
// the outer source to the quoted packet's new destination when it was
// the quoted destination (an error from the flow's peer itself, not from
// a router on the way), and the ICMP checksum over all of it.
//
// partial says the transport checksum field holds only the pseudo-header
// sum (a GSO super-frame, VirtioNetHdrFNeedsCsum): the address change is
// folded into it and the port change is not, since the ports are summed
// when the checksum is completed.
//
// It refuses a translation to another family (ReasonFamily), having
// changed nothing. Parse must have accepted p for this ip.
func Rewrite(ip []byte, p *Packet, to *conntrack.Key, partial bool) Reason {
	if to.Family != p.Key.Family || to.Proto != p.Key.Proto {
		return ReasonFamily
	}
	if p.Kind == KindError {
		rewriteError(ip, p, to)
		return OK
	}
	n, src, dst := 4, ip4Src, ip4Dst
	v6 := p.Key.Family == conntrack.IPv6
	if v6 {
		n, src, dst = 16, ip6Src, ip6Dst
	}
	var addr uint32 // the pseudo-header's change
	if p.Key.Src != to.Src {
		putAddr(ip[src:src+n], to.Src[:n], &addr)
	}
	if p.Key.Dst != to.Dst {
		putAddr(ip[dst:dst+n], to.Dst[:n], &addr)
	}
	if !v6 && addr != 0 {
		update(ip[ip4Checksum:], addr)
	}
	l4 := ip[p.l4:p.end]
	var ports uint32
	switch p.Kind {
	case KindTCP, KindUDP:
		put16(l4[0:], to.SPort, &ports)
		put16(l4[2:], to.DPort, &ports)
		off := tcpChecksum
		if p.Kind == KindUDP {
			off = udpChecksum
			if !v6 && be16(l4[off:]) == 0 {
				return OK // no checksum
			}
		}
		if partial {
			c := l4[off : off+2]
			binary.BigEndian.PutUint16(c, encap.Fold(uint32(be16(c))+addr))
			return OK
		}
		updateL4(l4[off:], addr+ports, p.Kind == KindUDP)
	case KindEcho:
		put16(l4[icmpID:], to.SPort, &ports)
		if !v6 {
			addr = 0 // ICMPv4 has no pseudo-header
		}
		update(l4[icmpSum:], addr+ports)
	}
	return OK
}

func rewriteError(ip []byte, p *Packet, to *conntrack.Key) {
	ni := to.Reverse() // what the quoted packet becomes
	v6 := p.Key.Family == conntrack.IPv6
	n, src, dst := 4, ip4Src, ip4Dst
	if v6 {
		n, src, dst = 16, ip6Src, ip6Dst
	}
	in := ip[p.inner:p.end]
	var icmp uint32 // every change inside the ICMP message
	// The quoted header's old addresses, before they are overwritten.
	var oldSrc, oldDst [16]byte
	copy(oldSrc[:n], in[src:src+n])
	copy(oldDst[:n], in[dst:dst+n])
	var addr uint32 // the quoted pseudo-header's change
	putAddr(in[src:src+n], ni.Src[:n], &addr)
	putAddr(in[dst:dst+n], ni.Dst[:n], &addr)
	icmp += addr
	if !v6 && addr != 0 {
		c := be16(in[ip4Checksum:])
		put16(in[ip4Checksum:], ^encap.Fold(uint32(^c)+addr), &icmp)
	}
	l4 := ip[p.innerL4:p.end]
	var ports uint32
	switch p.innerProto {
	case conntrack.ProtoTCP, conntrack.ProtoUDP:
		put16(l4[0:], ni.SPort, &ports)
		put16(l4[2:], ni.DPort, &ports)
		udp := p.innerProto == conntrack.ProtoUDP
		off := tcpChecksum
		if udp {
			off = udpChecksum
		}
		// A TCP checksum is there only if the error quoted 18 bytes or more.
		if len(l4) >= off+2 && !(udp && !v6 && be16(l4[off:]) == 0) {
			c := be16(l4[off:])
			nc := ^encap.Fold(uint32(^c) + addr + ports)
			if udp && nc == 0 {
				nc = 0xffff
			}
			put16(l4[off:], nc, &icmp)
		}
	default: // echo
		put16(l4[icmpID:], ni.SPort, &ports)
		a := addr
		if !v6 {
			a = 0
		}
		c := be16(l4[icmpSum:])
		put16(l4[icmpSum:], ^encap.Fold(uint32(^c)+a+ports), &icmp)
	}
	icmp += ports
	var outer uint32
	if string(ip[dst:dst+n]) == string(oldSrc[:n]) {
		putAddr(ip[dst:dst+n], ni.Src[:n], &outer)
	}
	if string(ip[src:src+n]) == string(oldDst[:n]) {
		putAddr(ip[src:src+n], ni.Dst[:n], &outer)
	}
	if v6 {
		icmp += outer // ICMPv6's pseudo-header
	} else if outer != 0 {
		update(ip[ip4Checksum:], outer)
	}
	update(ip[p.l4+icmpSum:], icmp)
}

// put16 stores v at b[0:2] and adds the change to the running delta d,
// as RFC 1624 equation 3 does for one word: ~m + m'.
func put16(b []byte, v uint16, d *uint32) {
	old := be16(b)
	if old == v {
		return
	}
	*d += uint32(^old) + uint32(v)
	binary.BigEndian.PutUint16(b, v)
}

// putAddr is put16 for an address, word by word.
func putAddr(b, a []byte, d *uint32) {
	for i := 0; i+1 < len(b) && i+1 < len(a); i += 2 {
		put16(b[i:], uint16(a[i])<<8|uint16(a[i+1]), d)
	}
}

// update applies the delta d to the checksum field c: HC' = ~(~HC + d).
func update(c []byte, d uint32) {
	binary.BigEndian.PutUint16(c, ^encap.Fold(uint32(^be16(c))+d))
}

// updateL4 is update for a TCP or UDP checksum; UDP sends a zero result
// as 0xffff, zero meaning "no checksum".
func updateL4(c []byte, d uint32, udp bool) {
	v := ^encap.Fold(uint32(^be16(c)) + d)
	if udp && v == 0 {
		v = 0xffff
	}
	binary.BigEndian.PutUint16(c, v)
}
