package encap

import "encoding/binary"

// UDPGRO merges consecutive UDP datagrams of one flow into one UDP GSO
// (USO, VIRTIO_NET_HDR_GSO_UDP_L4) super-frame, which the kernel (or a
// NIC) cuts back into exactly those datagrams: a sender with many
// datagrams for one destination hands them over in one write. The switch
// uses it for the VXLAN it sends toward one remote VTEP, where every
// encapsulated TCP segment of a flow is a datagram of one size.
//
// A datagram can start or continue a super-frame when it is Ethernet,
// IPv4 without options, unfragmented and with DF set (its ID then means
// nothing, and the kernel numbers the datagrams it cuts afresh), or IPv6
// with UDP as its next header, and its UDP checksum is zero (IPv4 only) or
// right: the super-frame goes out with a partial checksum that the
// kernel completes for each datagram, which must not make a corrupt one
// look whole. It continues the super-frame when its Ethernet header,
// addresses, ports, TTL or hop limit and TOS or traffic class (and IPv6
// flow label) are the first's, and its payload is as long as the first's
// (the gso_size) or shorter, which ends the super-frame.
//
// A UDPGRO owns one buffer of GROMax bytes, reused; the frame Finish
// returns is valid until the next Start. Nothing allocates.
type UDPGRO struct {
	buf   []byte
	n     int // datagrams merged
	l4    int // offset of the UDP header
	v6    bool
	size  int // payload bytes per datagram (the first's)
	len   int // bytes in buf
	ended bool
}

// UDPGROMaxSegments bounds the datagrams in one super-frame (Linux's
// UDP_MAX_SEGMENTS is 128).
const UDPGROMaxSegments = 64

// NewUDPGRO returns a UDPGRO with its buffer.
func NewUDPGRO() *UDPGRO { return &UDPGRO{buf: make([]byte, GROMax)} }

// udpDatagram locates d's UDP header and payload, or returns ok false if d
// cannot be merged.
func udpDatagram(d []byte) (l4, payload int, v6, ok bool) {
	if len(d) < EthernetLen+20+UDPLen {
		return
	}
	var l3len int
	switch binary.BigEndian.Uint16(d[12:]) {
	case EtherTypeIPv4:
		ip := d[EthernetLen:]
		// IHL 5, UDP, DF set, not a fragment.
		if ip[0] != 0x45 || ip[9] != ProtoUDP || binary.BigEndian.Uint16(ip[6:]) != 0x4000 {
			return
		}
		l3len = int(binary.BigEndian.Uint16(ip[2:]))
		l4 = EthernetLen + 20
	case EtherTypeIPv6:
		if len(d) < EthernetLen+40+UDPLen {
			return
		}
		ip := d[EthernetLen:]
		if ip[0]>>4 != 6 || ip[6] != ProtoUDP {
			return
		}
		l3len = 40 + int(binary.BigEndian.Uint16(ip[4:]))
		l4 = EthernetLen + 40
		v6 = true
	default:
		return
	}
	if EthernetLen+l3len > len(d) || l3len < l4-EthernetLen+UDPLen {
		return
	}
	ulen := int(binary.BigEndian.Uint16(d[l4+4:]))
	if ulen != EthernetLen+l3len-l4 || ulen == UDPLen {
		return
	}
	return l4, ulen - UDPLen, v6, true
}

// udpChecksumOK reports whether the datagram at d[l4:] has a checksum the
// receiver would accept: zero over IPv4 (none), else right.
func udpChecksumOK(d []byte, l4 int, v6 bool) bool {
	c := binary.BigEndian.Uint16(d[l4+6:])
	ulen := int(binary.BigEndian.Uint16(d[l4+4:]))
	u := d[l4 : l4+ulen]
	if v6 {
		return c != 0 && UDPChecksum6([16]byte(d[EthernetLen+8:]), [16]byte(d[EthernetLen+24:]), u) == c
	}
	return c == 0 || UDPChecksum4([4]byte(d[EthernetLen+12:]), [4]byte(d[EthernetLen+16:]), u) == c
}

// UDPGROPair reports, cheaply, whether b may follow a in one super-frame:
// both UDP, of one flow, b's payload no longer than a's. It reads headers
// only; Start and Add check the rest.
func UDPGROPair(a, b []byte) bool {
	la, pa, v6, ok := udpDatagram(a)
	if !ok {
		return false
	}
	lb, pb, v6b, ok := udpDatagram(b)
	if !ok || v6 != v6b || la != lb || pb > pa {
		return false
	}
	return sameUDPFlow(a, b, la, v6)
}

// sameUDPFlow compares what must agree between two datagrams of one
// super-frame: the Ethernet header, TOS/traffic class (and flow label),
// TTL/hop limit, addresses and ports.
func sameUDPFlow(a, b []byte, l4 int, v6 bool) bool {
	if string(a[:EthernetLen]) != string(b[:EthernetLen]) {
		return false
	}
	ia, ib := a[EthernetLen:], b[EthernetLen:]
	if v6 {
		// Version, traffic class, flow label; hop limit; addresses.
		return string(ia[0:4]) == string(ib[0:4]) && ia[7] == ib[7] &&
			string(ia[8:40]) == string(ib[8:40]) &&
			string(a[l4:l4+4]) == string(b[l4:l4+4])
	}
	return ia[1] == ib[1] && ia[8] == ib[8] && string(ia[12:20]) == string(ib[12:20]) &&
		string(a[l4:l4+4]) == string(b[l4:l4+4])
}

// Start begins a super-frame with d, copying it. It returns false, and
// the UDPGRO holds nothing, if d cannot start one.
func (g *UDPGRO) Start(d []byte) bool {
	g.n = 0
	l4, payload, v6, ok := udpDatagram(d)
	if !ok || !udpChecksumOK(d, l4, v6) {
		return false
	}
	n := l4 + UDPLen + payload
	copy(g.buf, d[:n])
	g.n, g.l4, g.v6, g.size, g.len, g.ended = 1, l4, v6, payload, n, false
	return true
}

// Add appends d's payload if d continues the super-frame; it returns
// false, changing nothing, if it does not.
func (g *UDPGRO) Add(d []byte) bool {
	if g.n == 0 || g.ended || g.n == UDPGROMaxSegments {
		return false
	}
	l4, payload, v6, ok := udpDatagram(d)
	if !ok || v6 != g.v6 || l4 != g.l4 || payload > g.size || g.len+payload > len(g.buf) ||
		g.len-EthernetLen+payload > 0xffff || !sameUDPFlow(g.buf, d, l4, v6) || !udpChecksumOK(d, l4, v6) {
		return false
	}
	copy(g.buf[g.len:], d[l4+UDPLen:l4+UDPLen+payload])
	g.len += payload
	g.n++
	if payload < g.size {
		g.ended = true
	}
	return true
}

// Segments is how many datagrams the super-frame holds.
func (g *UDPGRO) Segments() int { return g.n }

// Finish completes the super-frame: IP and UDP lengths (and the IPv4
// header checksum), the UDP checksum left partial (the pseudo-header's
// sum), and hdr set for USO with the first datagram's payload size. It
// returns the frame, valid until the next Start. A single datagram is
// returned as it came, hdr zeroed.
func (g *UDPGRO) Finish(hdr VirtioNetHdr) []byte {
	f := g.buf[:g.len]
	if g.n < 2 {
		hdr.Set(0, GSONone, 0, 0, 0, 0)
		return f
	}
	ulen := g.len - g.l4
	var ps uint32
	if g.v6 {
		binary.BigEndian.PutUint16(f[EthernetLen+4:], uint16(ulen))
		ps = PseudoHeaderSum6([16]byte(f[EthernetLen+8:]), [16]byte(f[EthernetLen+24:]), ProtoUDP, uint32(ulen))
	} else {
		ip := IPv4(f[EthernetLen:])
		ip.SetTotalLength(uint16(g.len - EthernetLen))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		ps = PseudoHeaderSum4([4]byte(f[EthernetLen+12:]), [4]byte(f[EthernetLen+16:]), ProtoUDP, uint16(ulen))
	}
	u := UDP(f[g.l4:])
	u.SetLength(uint16(ulen))
	u.SetChecksum(Fold(ps))
	hdr.Set(VirtioNetHdrFNeedsCsum, GSOUDPL4, uint16(g.l4+UDPLen), uint16(g.size), uint16(g.l4), 6)
	return f
}
