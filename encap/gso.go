package encap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// VirtioNetHdrLen is the size of struct virtio_net_hdr, which AF_PACKET
// sockets with PACKET_VNET_HDR put in front of every frame (little-endian
// fields on every host we run on).
const VirtioNetHdrLen = 10

const (
	vnetFlags      = 0
	vnetGSOType    = 1
	vnetHdrLen     = 2
	vnetGSOSize    = 4
	vnetCsumStart  = 6
	vnetCsumOffset = 8
)

// VirtioNetHdr is a view of struct virtio_net_hdr (virtio 1.x section
// 5.1.6, include/uapi/linux/virtio_net.h), the offload metadata a
// PACKET_VNET_HDR socket exchanges with the kernel in front of each frame:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Flags     |   GSO Type    |        Header Length (LE)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         GSO Size (LE)         |      Checksum Start (LE)      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Checksum Offset (LE)      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The 16-bit fields are little-endian: AF_PACKET uses the host's byte order
// for them (vio_le()), and every host xvs runs on is little-endian.
// Accessors need len(h) >= VirtioNetHdrLen.
type VirtioNetHdr []byte

// Flags returns the flags (VirtioNetHdrFNeedsCsum, VirtioNetHdrFDataValid).
func (h VirtioNetHdr) Flags() uint8 { return h[vnetFlags] }

// GSOType returns the GSO type (GSONone, GSOTCPv4, ...), possibly with the
// GSOECN bit set.
func (h VirtioNetHdr) GSOType() uint8 { return h[vnetGSOType] }

// HdrLen returns the sender's idea of the length of the headers (Ethernet
// through L4). It is only a hint; ParseGSO computes the real one.
func (h VirtioNetHdr) HdrLen() uint16 { return binary.LittleEndian.Uint16(h[vnetHdrLen:]) }

// GSOSize returns the L4 payload bytes per segment (the MSS for TCP).
func (h VirtioNetHdr) GSOSize() uint16 { return binary.LittleEndian.Uint16(h[vnetGSOSize:]) }

// CsumStart returns the offset from the start of the frame at which the
// checksum to complete starts (with VirtioNetHdrFNeedsCsum).
func (h VirtioNetHdr) CsumStart() uint16 { return binary.LittleEndian.Uint16(h[vnetCsumStart:]) }

// CsumOffset returns the offset of the checksum field from CsumStart.
func (h VirtioNetHdr) CsumOffset() uint16 { return binary.LittleEndian.Uint16(h[vnetCsumOffset:]) }

// Set writes the whole header.
func (h VirtioNetHdr) Set(flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOffset uint16) {
	_ = h[VirtioNetHdrLen-1]
	h[vnetFlags] = flags
	h[vnetGSOType] = gsoType
	binary.LittleEndian.PutUint16(h[vnetHdrLen:], hdrLen)
	binary.LittleEndian.PutUint16(h[vnetGSOSize:], gsoSize)
	binary.LittleEndian.PutUint16(h[vnetCsumStart:], csumStart)
	binary.LittleEndian.PutUint16(h[vnetCsumOffset:], csumOffset)
}

// VirtioNetHdr flags and GSO types (include/uapi/linux/virtio_net.h).
const (
	VirtioNetHdrFNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: complete the checksum at CsumStart+CsumOffset
	VirtioNetHdrFDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified (receive only)

	GSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE: not a GSO frame
	GSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4: TSO over IPv4
	GSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP: UFO (IP fragmentation), legacy; ParseGSO refuses it
	GSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6: TSO over IPv6
	GSOUDPL4 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4: UDP_SEGMENT (USO), IPv4 or IPv6
	GSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN: flag bit, the TCP sender uses ECN (CWR may be set)
)

// TCP header facts Segment needs (RFC 9293 section 3.1). There is no TCP
// view in this package; GSO is the only place that edits TCP headers.
const (
	tcpMinLen   = 20
	tcpSeq      = 4
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpChecksum = 16

	tcpFlagFIN = 0x01
	tcpFlagPSH = 0x08
	tcpFlagCWR = 0x80
)

// udpMaxSegments is the most segments the kernel accepts in one UDP GSO
// super-frame (UDP_MAX_SEGMENTS, 128 since Linux 6.9); virtio_net_hdr_to_skb
// drops larger ones.
const udpMaxSegments = 128

// CompleteChecksum finishes a partial checksum the way the kernel's
// skb_checksum_help does: the 16-bit field at start+offset holds the
// (non-inverted) pseudo-header sum; it is replaced by the inverted fold of the
// one's-complement sum of frame[start:]. Like the kernel it stores a result
// of 0 as 0xffff (CSUM_MANGLED_0), which is the same value in ones'
// complement and keeps UDP from reading it as "no checksum". It returns
// ErrChecksumRange (never panics) if start/offset are out of range.
func CompleteChecksum(frame []byte, start, offset int) error {
	if start < 0 || offset < 0 || start > len(frame) || offset > len(frame)-start-2 {
		return ErrChecksumRange
	}
	c := ^Fold(Checksum(frame[start:], 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[start+offset:], c)
	return nil
}

// GSO describes a GSO super-frame: an Ethernet frame carrying IPv4 or IPv6
// (no IPv6 extension headers; refuse with an error) and TCP or UDP, whose L4
// payload is to be cut into Size-byte pieces. ParseGSO fills it in; Segments
// and Segment cut the frame it was parsed from.
type GSO struct {
	Type   uint8 // GSOTCPv4, GSOTCPv6 or GSOUDPL4 (ECN bit stripped)
	HdrLen int   // Ethernet + IP + L4 header bytes, computed from the headers themselves (the virtio hdr_len is only a hint and may be wrong or 0)
	Size   int   // payload bytes per segment (gso_size)
	L3     int   // offset of the IP header (14)
	L4     int   // offset of the L4 header
	IPv6   bool
}

// ErrChecksumRange is CompleteChecksum's error: the checksum's start or
// offset lies outside the frame. It is a fixed value, so refusing a frame
// on the forwarding path allocates nothing.
var ErrChecksumRange = errors.New("encap: checksum start or offset outside the frame")

// Errors ParseGSO wraps, so callers can count drops by cause with
// errors.Is. The messages add the offending values.
var (
	ErrGSOType      = errors.New("encap: GSO type")
	ErrGSOTruncated = errors.New("encap: GSO frame truncated")
	ErrGSOHeader    = errors.New("encap: GSO frame header")
	ErrGSOLength    = errors.New("encap: GSO frame length")
	ErrGSOChecksum  = errors.New("encap: GSO checksum offload")
)

// ParseGSO validates frame against h (gso type matches ether type and L4
// protocol, IP total/payload length matches the frame, sizes sane, gso_size
// > 0) and returns the description. Errors name what is wrong and wrap one
// of the ErrGSO* values.
//
// It follows the kernel's checks for a frame written to a PACKET_VNET_HDR
// socket (virtio_net_hdr_to_skb, then inet/ipv6/tcp/udp GSO segment):
// GSONone and UFO (GSOUDP) are refused, the ECN bit is only allowed on TCP,
// and with VirtioNetHdrFNeedsCsum the checksum must start at the L4 header
// and sit at the TCP or UDP checksum field. Beyond the kernel, it insists
// on exact lengths (no link padding, no jumbograms), refuses IPv4
// fragments, VLAN tags and IPv6 extension headers, and checks the UDP
// length field. h.HdrLen() is ignored, and the frame's L4 checksum field is
// never read: Segment computes every checksum from scratch.
//
// A frame whose payload fits in one segment is valid and cuts into one
// segment, as the kernel sends such a frame as a plain packet.
func ParseGSO(frame []byte, h VirtioNetHdr) (GSO, error) {
	g, f := parseGSO(frame, h)
	if f.err != nil {
		return GSO{}, f.error()
	}
	return g, nil
}

// CheckGSO is ParseGSO for the forwarding path: it says only whether the
// frame is valid, and never allocates, not even for a bad frame.
func CheckGSO(frame []byte, h VirtioNetHdr) (GSO, bool) {
	g, f := parseGSO(frame, h)
	return g, f.err == nil
}

// gsoFault is why parseGSO refused a frame, kept unformatted so that
// refusing allocates nothing: err (one of the ErrGSO* values), a format
// for the details and its n int arguments.
type gsoFault struct {
	err  error
	msg  string
	n    int
	args [4]int
}

func (f gsoFault) error() error {
	a := make([]any, 1, 1+f.n)
	a[0] = f.err
	for _, v := range f.args[:f.n] {
		a = append(a, v)
	}
	return fmt.Errorf("%w: "+f.msg, a...)
}

func parseGSO(frame []byte, h VirtioNetHdr) (GSO, gsoFault) {
	if len(h) < VirtioNetHdrLen {
		return GSO{}, gsoFault{ErrGSOTruncated, "virtio_net_hdr is %d bytes, want %d", 2, [4]int{int(len(h)), int(VirtioNetHdrLen)}}
	}
	g := GSO{Type: h.GSOType() &^ GSOECN, Size: int(h.GSOSize()), L3: EthernetLen}
	ecn := h.GSOType()&GSOECN != 0
	var proto uint8
	switch g.Type {
	case GSOTCPv4, GSOTCPv6:
		proto = ProtoTCP
	case GSOUDPL4:
		proto = ProtoUDP
		if ecn {
			return GSO{}, gsoFault{ErrGSOType, "ECN flag on UDP_L4", 0, [4]int{}}
		}
	case GSONone:
		return GSO{}, gsoFault{ErrGSOType, "not a GSO frame (GSO_NONE)", 0, [4]int{}}
	case GSOUDP:
		return GSO{}, gsoFault{ErrGSOType, "UFO (GSO_UDP) is not supported", 0, [4]int{}}
	default:
		return GSO{}, gsoFault{ErrGSOType, "unknown type %#x", 1, [4]int{int(h.GSOType())}}
	}
	if g.Size == 0 {
		return GSO{}, gsoFault{ErrGSOLength, "gso_size 0", 0, [4]int{}}
	}

	if len(frame) < EthernetLen {
		return GSO{}, gsoFault{ErrGSOTruncated, "%d bytes, no Ethernet header", 1, [4]int{int(len(frame))}}
	}
	et := Ethernet(frame).Type()
	ip := frame[EthernetLen:]
	switch et {
	case EtherTypeIPv4:
		if g.Type == GSOTCPv6 {
			return GSO{}, gsoFault{ErrGSOType, "TCPV6 on an IPv4 frame", 0, [4]int{}}
		}
		if len(ip) < IPv4MinLen {
			return GSO{}, gsoFault{ErrGSOTruncated, "%d bytes after Ethernet, no IPv4 header", 1, [4]int{int(len(ip))}}
		}
		v4 := IPv4(ip)
		if v4.Version() != 4 {
			return GSO{}, gsoFault{ErrGSOHeader, "IP version %d in an IPv4 frame", 1, [4]int{int(v4.Version())}}
		}
		hl := v4.HeaderLen()
		if hl < IPv4MinLen {
			return GSO{}, gsoFault{ErrGSOHeader, "IPv4 header length %d", 1, [4]int{int(hl)}}
		}
		if hl > len(ip) {
			return GSO{}, gsoFault{ErrGSOTruncated, "IPv4 header length %d, %d bytes left", 2, [4]int{int(hl), int(len(ip))}}
		}
		if tl := int(v4.TotalLength()); tl != len(ip) {
			return GSO{}, gsoFault{ErrGSOLength, "IPv4 total length %d, frame carries %d", 2, [4]int{int(tl), int(len(ip))}}
		}
		if v4.IsFragment() {
			return GSO{}, gsoFault{ErrGSOHeader, "IPv4 fragment", 0, [4]int{}}
		}
		if v4.Protocol() != proto {
			return GSO{}, gsoFault{ErrGSOType, "type %d on IP protocol %d", 2, [4]int{int(g.Type), int(v4.Protocol())}}
		}
		g.L4 = EthernetLen + hl
	case EtherTypeIPv6:
		if g.Type == GSOTCPv4 {
			return GSO{}, gsoFault{ErrGSOType, "TCPV4 on an IPv6 frame", 0, [4]int{}}
		}
		if len(ip) < IPv6Len {
			return GSO{}, gsoFault{ErrGSOTruncated, "%d bytes after Ethernet, no IPv6 header", 1, [4]int{int(len(ip))}}
		}
		v6 := IPv6(ip)
		if v6.Version() != 6 {
			return GSO{}, gsoFault{ErrGSOHeader, "IP version %d in an IPv6 frame", 1, [4]int{int(v6.Version())}}
		}
		if pl := int(v6.PayloadLength()); pl != len(ip)-IPv6Len {
			return GSO{}, gsoFault{ErrGSOLength, "IPv6 payload length %d, frame carries %d", 2, [4]int{int(pl), int(len(ip) - IPv6Len)}}
		}
		if nh := v6.NextHeader(); nh != proto {
			if nh == ProtoTCP || nh == ProtoUDP {
				return GSO{}, gsoFault{ErrGSOType, "type %d on IPv6 next header %d", 2, [4]int{int(g.Type), int(nh)}}
			}
			return GSO{}, gsoFault{ErrGSOHeader, "IPv6 next header %d (extension headers are not supported)", 1, [4]int{int(nh)}}
		}
		g.IPv6 = true
		g.L4 = EthernetLen + IPv6Len
	default:
		return GSO{}, gsoFault{ErrGSOHeader, "ether type %#04x", 1, [4]int{int(et)}}
	}

	l4 := frame[g.L4:]
	csumOff := udpChecksum
	if proto == ProtoTCP {
		if len(l4) < tcpMinLen {
			return GSO{}, gsoFault{ErrGSOTruncated, "%d bytes after IP, no TCP header", 1, [4]int{int(len(l4))}}
		}
		thl := int(l4[tcpDataOff]>>4) * 4
		if thl < tcpMinLen {
			return GSO{}, gsoFault{ErrGSOHeader, "TCP data offset %d", 1, [4]int{int(thl)}}
		}
		if thl > len(l4) {
			return GSO{}, gsoFault{ErrGSOTruncated, "TCP header length %d, %d bytes left", 2, [4]int{int(thl), int(len(l4))}}
		}
		g.HdrLen = g.L4 + thl
		csumOff = tcpChecksum
	} else {
		if len(l4) < UDPLen {
			return GSO{}, gsoFault{ErrGSOTruncated, "%d bytes after IP, no UDP header", 1, [4]int{int(len(l4))}}
		}
		if ul := int(UDP(l4).Length()); ul != len(l4) {
			return GSO{}, gsoFault{ErrGSOLength, "UDP length %d, frame carries %d", 2, [4]int{int(ul), int(len(l4))}}
		}
		g.HdrLen = g.L4 + UDPLen
	}
	if h.Flags()&VirtioNetHdrFNeedsCsum != 0 {
		if int(h.CsumStart()) != g.L4 || int(h.CsumOffset()) != csumOff {
			return GSO{}, gsoFault{ErrGSOChecksum, "csum_start %d csum_offset %d, want %d and %d", 4, [4]int{int(h.CsumStart()), int(h.CsumOffset()), int(g.L4), int(csumOff)}}
		}
	}
	if proto == ProtoUDP {
		if n := g.Segments(frame); n > udpMaxSegments {
			return GSO{}, gsoFault{ErrGSOLength, "%d UDP segments, at most %d", 2, [4]int{int(n), int(udpMaxSegments)}}
		}
	}
	return g, gsoFault{}
}

// valid reports whether g can describe a frame of n bytes, so that
// Segments and Segment stay in bounds even when handed a GSO that ParseGSO
// did not return, or a frame other than the one it parsed.
func (g GSO) valid(n int) bool {
	l4min := tcpMinLen
	if g.Type == GSOUDPL4 {
		l4min = UDPLen
	}
	l3len := IPv4MinLen
	if g.IPv6 {
		l3len = IPv6Len
	}
	return g.Size > 0 && g.L3 == EthernetLen && g.L4 >= g.L3+l3len &&
		g.HdrLen >= g.L4+l4min && g.HdrLen <= n
}

// Segments returns how many segments frame cuts into: the L4 payload
// divided by Size, rounded up, and at least 1 (a frame with no payload
// goes out as one segment). It returns 0 if g does not fit frame.
func (g GSO) Segments(frame []byte) int {
	if !g.valid(len(frame)) {
		return 0
	}
	payload := len(frame) - g.HdrLen
	if payload <= g.Size {
		return 1
	}
	return (payload + g.Size - 1) / g.Size
}

// Segment writes segment i (0-based) of frame into dst and returns its
// length, or 0 if dst is too small or i is out of range. Each segment is a
// complete wire frame: headers copied, IPv4 total length, identification
// (id+i) and header checksum fixed, or IPv6 payload length; TCP sequence
// number advanced by i*Size, FIN and PSH kept only on the last segment, CWR
// only on the first, full TCP checksum computed; for UDP L4 each segment
// gets its UDP length and a full checksum. Zero allocations.
//
// This is what Linux's software GSO (inet_gso_segment/ipv6_gso_segment
// with tcp_gso_segment or __udp_gso_segment) puts on the wire for a device
// without checksum offload. The L4 checksum is computed from scratch, not
// adjusted from the super-frame's field, so it is right whether or not the
// sender left a pseudo-header sum there (VirtioNetHdrFNeedsCsum). A UDP
// checksum that computes to 0 is sent as 0xffff, a TCP one as 0, as
// Linux does. dst and frame must not overlap.
func (g GSO) Segment(dst, frame []byte, i int) int {
	segs := g.Segments(frame)
	if i < 0 || i >= segs {
		return 0
	}
	off := g.HdrLen + i*g.Size
	plen := min(g.Size, len(frame)-off)
	n := g.HdrLen + plen
	if n > len(dst) {
		return 0
	}
	dst = dst[:n]
	copy(dst, frame[:g.HdrLen])
	copy(dst[g.HdrLen:], frame[off:off+plen])

	ip := dst[g.L3:]
	l4 := dst[g.L4:]
	l4len := n - g.L4
	var sum uint32
	proto := ProtoTCP
	if g.Type == GSOUDPL4 {
		proto = ProtoUDP
	}
	if g.IPv6 {
		v6 := IPv6(ip)
		v6.SetPayloadLength(uint16(n - g.L3 - IPv6Len))
		sum = PseudoHeaderSum6(v6.Src(), v6.Dst(), proto, uint32(l4len))
	} else {
		v4 := IPv4(ip)
		v4.SetTotalLength(uint16(n - g.L3))
		binary.BigEndian.PutUint16(ip[ipv4ID:], v4.ID()+uint16(i))
		v4.SetChecksum(0)
		v4.SetChecksum(^v4.CalculateChecksum())
		sum = PseudoHeaderSum4(v4.Src(), v4.Dst(), proto, uint16(l4len))
	}

	if proto == ProtoUDP {
		u := UDP(l4)
		u.SetLength(uint16(l4len))
		u.SetChecksum(0)
		c := ^Fold(Checksum(l4, sum))
		if c == 0 {
			c = 0xffff
		}
		u.SetChecksum(c)
		return n
	}
	seq := binary.BigEndian.Uint32(l4[tcpSeq:])
	binary.BigEndian.PutUint32(l4[tcpSeq:], seq+uint32(i)*uint32(g.Size))
	if i != segs-1 {
		l4[tcpFlags] &^= tcpFlagFIN | tcpFlagPSH
	}
	if i != 0 {
		l4[tcpFlags] &^= tcpFlagCWR
	}
	binary.BigEndian.PutUint16(l4[tcpChecksum:], 0)
	binary.BigEndian.PutUint16(l4[tcpChecksum:], ^Fold(Checksum(l4, sum)))
	return n
}
