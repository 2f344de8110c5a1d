package encap

import "encoding/binary"

// GRO merges consecutive TCP segments of one flow into one GSO
// super-frame, the inverse of GSO: what Linux's GRO does on receive, so
// that a super-frame, not ~45 frames, crosses to a port that takes them
// (an AF_PACKET port with PACKET_VNET_HDR), and the receiving stack sees
// one packet.
//
// A segment can start or continue a super-frame when it is Ethernet,
// IPv4 without options and unfragmented or IPv6 with TCP as its next
// header, TCP with ACK and none of SYN, FIN, RST, URG, ECE or CWR, a
// payload, and a valid TCP checksum. It continues the one being built
// when it has the same addresses, ports, ACK number, TCP options (byte
// for byte: the timestamps of one sender's burst agree), TTL or hop
// limit, TOS or traffic class, DF bit, its sequence number follows on,
// and its payload is no bigger than the first's (the gso_size); a shorter
// one, or one with PSH, ends the super-frame. Checking every segment's
// checksum is what lets the merged frame go out with a partial one: a
// corrupt segment is never merged into a frame the kernel then checksums
// afresh.
//
// A GRO owns one buffer of GROMax bytes, reused for every super-frame; the
// frame Finish returns is valid until the next Start. Nothing allocates.
type GRO struct {
	buf    []byte
	n      int // segments merged
	l4     int // offset of the TCP header
	hdrLen int // Ethernet, IP and TCP headers
	v6     bool
	mss    int
	next   uint32 // the sequence number that continues the frame
	ended  bool   // PSH or a short segment: nothing more may follow
}

// GROMax is the largest super-frame a GRO builds: a 64 KiB IP packet and
// its Ethernet header.
const GROMax = EthernetLen + 65535

// TCP flags beyond gso.go's FIN, PSH and CWR.
const (
	tcpFlagSYN = 0x02
	tcpFlagRST = 0x04
	tcpFlagACK = 0x10
	tcpFlagURG = 0x20
	tcpFlagECE = 0x40
)

// NewGRO returns a GRO with its buffer.
func NewGRO() *GRO { return &GRO{buf: make([]byte, GROMax)} }

// groSegment locates seg's headers and payload: it returns the TCP
// header's offset, the headers' length and the payload's, or ok false if
// seg cannot be merged at all.
func groSegment(seg []byte) (l4, hdrLen, payload int, v6, ok bool) {
	if len(seg) < EthernetLen+20 {
		return
	}
	switch binary.BigEndian.Uint16(seg[12:]) {
	case EtherTypeIPv4:
		ip := seg[EthernetLen:]
		if ip[0] != 0x45 || ip[9] != 6 || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return
		}
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total > len(ip) || total < 20+20 {
			return
		}
		l4 = EthernetLen + 20
		seg = seg[:EthernetLen+total]
	case EtherTypeIPv6:
		if len(seg) < EthernetLen+40+20 {
			return
		}
		ip := seg[EthernetLen:]
		if ip[0]>>4 != 6 || ip[6] != 6 {
			return
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) || plen < 20 {
			return
		}
		l4, v6 = EthernetLen+40, true
		seg = seg[:EthernetLen+40+plen]
	default:
		return
	}
	if len(seg) < l4+20 {
		return
	}
	doff := int(seg[l4+12]>>4) * 4
	flags := seg[l4+13]
	if doff < 20 || l4+doff > len(seg) || flags&tcpFlagACK == 0 ||
		flags&(tcpFlagSYN|tcpFlagFIN|tcpFlagRST|tcpFlagURG|tcpFlagECE|tcpFlagCWR) != 0 {
		return
	}
	hdrLen = l4 + doff
	payload = len(seg) - hdrLen
	if payload == 0 || !groChecksumValid(seg, l4, v6) {
		return
	}
	return l4, hdrLen, payload, v6, true
}

// groChecksumValid checks the TCP checksum of seg (cut to its IP length).
func groChecksumValid(seg []byte, l4 int, v6 bool) bool {
	tcp := seg[l4:]
	var ps uint32
	if v6 {
		ps = PseudoHeaderSum6([16]byte(seg[EthernetLen+8:]), [16]byte(seg[EthernetLen+24:]), 6, uint32(len(tcp)))
	} else {
		ps = PseudoHeaderSum4([4]byte(seg[EthernetLen+12:]), [4]byte(seg[EthernetLen+16:]), 6, uint16(len(tcp)))
	}
	return Fold(Checksum(tcp, ps)) == 0xffff
}

// GROPair is the cheap look before Start: it reports whether b may
// continue a super-frame started with a, comparing their Ethernet types,
// IP protocols and addresses and ports (no checksum, no lengths). A false
// means no; a true is only a maybe.
func GROPair(a, b []byte) bool {
	if len(a) < EthernetLen+40+4 || len(b) < EthernetLen+40+4 || a[12] != b[12] || a[13] != b[13] {
		return false
	}
	switch binary.BigEndian.Uint16(a[12:]) {
	case EtherTypeIPv4:
		// Protocol TCP, IHL 5, then addresses and ports side by side.
		return a[EthernetLen] == 0x45 && b[EthernetLen] == 0x45 && a[EthernetLen+9] == 6 && b[EthernetLen+9] == 6 &&
			string(a[EthernetLen+12:EthernetLen+24]) == string(b[EthernetLen+12:EthernetLen+24])
	case EtherTypeIPv6:
		return a[EthernetLen+6] == 6 && b[EthernetLen+6] == 6 &&
			string(a[EthernetLen+8:EthernetLen+44]) == string(b[EthernetLen+8:EthernetLen+44])
	}
	return false
}

// Start begins a super-frame with seg, a whole frame. It reports false,
// and keeps nothing, if seg cannot be merged.
func (g *GRO) Start(seg []byte) bool {
	l4, hdrLen, payload, v6, ok := groSegment(seg)
	if !ok || hdrLen+payload > len(g.buf) {
		return false
	}
	copy(g.buf, seg[:hdrLen+payload])
	g.n, g.l4, g.hdrLen, g.v6, g.mss = 1, l4, hdrLen, v6, payload
	g.next = binary.BigEndian.Uint32(seg[l4+4:]) + uint32(payload)
	g.ended = seg[l4+13]&tcpFlagPSH != 0
	return true
}

// Add appends seg's payload if seg continues the super-frame, and reports
// whether it did; if not, the super-frame is unchanged.
func (g *GRO) Add(seg []byte) bool {
	if g.n == 0 || g.ended {
		return false
	}
	l4, hdrLen, payload, v6, ok := groSegment(seg)
	if !ok || v6 != g.v6 || l4 != g.l4 || hdrLen != g.hdrLen || payload > g.mss {
		return false
	}
	size := g.size()
	if size+payload > len(g.buf) || size-EthernetLen+payload > 0xffff+boolInt(v6)*40 {
		return false
	}
	h := g.buf
	if binary.BigEndian.Uint32(seg[l4+4:]) != g.next {
		return false
	}
	if v6 {
		// Version, class and flow label; addresses.
		if binary.BigEndian.Uint32(seg[EthernetLen:]) != binary.BigEndian.Uint32(h[EthernetLen:]) ||
			seg[EthernetLen+7] != h[EthernetLen+7] ||
			string(seg[EthernetLen+8:EthernetLen+40]) != string(h[EthernetLen+8:EthernetLen+40]) {
			return false
		}
	} else {
		// TOS, DF, TTL; addresses.
		if seg[EthernetLen+1] != h[EthernetLen+1] || (seg[EthernetLen+6]^h[EthernetLen+6])&0x40 != 0 ||
			seg[EthernetLen+8] != h[EthernetLen+8] ||
			string(seg[EthernetLen+12:EthernetLen+20]) != string(h[EthernetLen+12:EthernetLen+20]) {
			return false
		}
	}
	// Ports, then ACK number, window aside, options.
	if string(seg[l4:l4+4]) != string(h[l4:l4+4]) || string(seg[l4+8:l4+12]) != string(h[l4+8:l4+12]) ||
		string(seg[l4+20:hdrLen]) != string(h[l4+20:hdrLen]) {
		return false
	}
	copy(h[size:], seg[hdrLen:hdrLen+payload])
	g.n++
	g.next += uint32(payload)
	// The latest window and PSH are the ones to pass on.
	copy(h[l4+14:l4+16], seg[l4+14:l4+16])
	if seg[l4+13]&tcpFlagPSH != 0 {
		h[l4+13] |= tcpFlagPSH
		g.ended = true
	}
	if payload < g.mss {
		g.ended = true
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// size is the length of the super-frame so far.
func (g *GRO) size() int {
	if g.v6 {
		return EthernetLen + 40 + int(binary.BigEndian.Uint16(g.buf[EthernetLen+4:])) + g.added()
	}
	return EthernetLen + int(binary.BigEndian.Uint16(g.buf[EthernetLen+2:])) + g.added()
}

// added is the payload appended after the first segment: the header's
// length fields still describe the first segment until Finish.
func (g *GRO) added() int { return int(g.next-g.firstSeq()) - g.mss }

func (g *GRO) firstSeq() uint32 { return binary.BigEndian.Uint32(g.buf[g.l4+4:]) }

// Segments is how many segments the super-frame holds.
func (g *GRO) Segments() int { return g.n }

// Finish completes the super-frame: IP lengths (and the IPv4 header
// checksum), the TCP checksum left partial (the pseudo-header's sum, as
// the kernel leaves it for CHECKSUM_PARTIAL), and hdr set for a GSO
// super-frame of g's segment size. It returns the frame, valid until the
// next Start. A single segment is returned as it came, hdr zeroed.
func (g *GRO) Finish(hdr VirtioNetHdr) []byte {
	size := g.size()
	f := g.buf[:size]
	if g.n < 2 {
		hdr.Set(0, GSONone, 0, 0, 0, 0)
		return f
	}
	tcpLen := size - g.l4
	var ps uint32
	gso := uint8(GSOTCPv4)
	if g.v6 {
		binary.BigEndian.PutUint16(f[EthernetLen+4:], uint16(size-EthernetLen-40))
		ps = PseudoHeaderSum6([16]byte(f[EthernetLen+8:]), [16]byte(f[EthernetLen+24:]), 6, uint32(tcpLen))
		gso = GSOTCPv6
	} else {
		ip := IPv4(f[EthernetLen:])
		binary.BigEndian.PutUint16(f[EthernetLen+2:], uint16(size-EthernetLen))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		ps = PseudoHeaderSum4([4]byte(f[EthernetLen+12:]), [4]byte(f[EthernetLen+16:]), 6, uint16(tcpLen))
	}
	binary.BigEndian.PutUint16(f[g.l4+16:], Fold(ps))
	hdr.Set(VirtioNetHdrFNeedsCsum, gso, uint16(g.hdrLen), uint16(g.mss), uint16(g.l4), 16)
	return f
}
