package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// FlowField says which field varies between flows.
type FlowField uint8

const (
	// FlowSrcPort varies the (inner) UDP source port: SrcPort+flow.
	FlowSrcPort FlowField = iota
	// FlowSrcAddr varies the (inner) source address: Src+flow, carried
	// into the low 32 bits.
	FlowSrcAddr
)

// VXLANPort is the IANA VXLAN UDP port.
const VXLANPort = 4789

// Frame size limits (bytes, without FCS).
const (
	MaxFrame = 9000
	ethLen   = 14
	ipv4Len  = 20
	ipv6Len  = 40
	udpLen   = 8
	vxlanLen = 8
)

// ErrConfig wraps every template configuration error.
var ErrConfig = errors.New("invalid template")

// VXLAN wraps the generated frame in VXLAN. The outer Ethernet addresses are
// Config.SrcMAC/DstMAC; the inner ones are InnerSrcMAC/InnerDstMAC.
type VXLAN struct {
	VNI                      uint32
	Src, Dst                 netip.Addr // outer addresses, same family
	SrcPort                  uint16     // outer source port base; flow f uses SrcPort+f%4096 (0: 49152)
	InnerSrcMAC, InnerDstMAC net.HardwareAddr
}

// Config describes a template.
type Config struct {
	SrcMAC, DstMAC   net.HardwareAddr
	Src, Dst         netip.Addr // (inner) addresses, same family
	SrcPort, DstPort uint16
	Flows            int // >= 1
	FlowBy           FlowField
	Sizes            []int // frame lengths without FCS; repeated sizes allowed (IMIX)
	Stream           uint16
	TTL              uint8 // 0: 64
	VXLAN            *VXLAN
}

// Template holds one pre-built frame per size. It is immutable.
type Template struct {
	cfg    Config
	frames []frame
	min    int

	v4, outerV4     bool
	ipOff, udpOff   int // inner IP and UDP
	payOff          int
	oIPOff, oUDPOff int // outer, VXLAN only (-1 otherwise)
	addrOff         int // low 32 bits of the inner source address
	addrBase        uint32
	oUDPCsum        bool // outer UDP carries a checksum (IPv6 outer)
}

type frame struct {
	b []byte
	// checksums of the frame as built (flow 0, seq 0, time 0)
	ipCsum, udpCsum, oUDPCsum uint16
}

// MinSize returns the smallest frame the header stack fits in.
func MinSize(v6 bool, vx *VXLAN) int {
	n := ethLen + udpLen + HeaderLen + ipv4Len
	if v6 {
		n += ipv6Len - ipv4Len
	}
	if vx != nil {
		n += ethLen + udpLen + vxlanLen + ipv4Len
		if vx.Src.Is6() {
			n += ipv6Len - ipv4Len
		}
	}
	return n
}

// New checks cfg and builds the frames.
func New(cfg Config) (*Template, error) {
	if err := check(&cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	t := &Template{cfg: cfg, v4: cfg.Src.Is4(), oIPOff: -1, oUDPOff: -1}
	t.min = MinSize(!t.v4, cfg.VXLAN)
	off := ethLen
	if vx := cfg.VXLAN; vx != nil {
		t.outerV4 = vx.Src.Is4()
		t.oUDPCsum = !t.outerV4
		t.oIPOff = off
		off += ipLenOf(t.outerV4)
		t.oUDPOff = off
		off += udpLen + vxlanLen + ethLen
	}
	t.ipOff = off
	t.udpOff = off + ipLenOf(t.v4)
	t.payOff = t.udpOff + udpLen
	src := cfg.Src.AsSlice()
	t.addrOff = t.ipOff + 12 + len(src) - 4
	if !t.v4 {
		t.addrOff = t.ipOff + 8 + len(src) - 4
	}
	t.addrBase = binary.BigEndian.Uint32(src[len(src)-4:])
	for _, n := range cfg.Sizes {
		if n < t.min {
			return nil, fmt.Errorf("%w: size %d is below the minimum %d for this header stack", ErrConfig, n, t.min)
		}
		t.frames = append(t.frames, t.build(n))
	}
	return t, nil
}

func ipLenOf(v4 bool) int {
	if v4 {
		return ipv4Len
	}
	return ipv6Len
}

func check(c *Config) error {
	if len(c.SrcMAC) != 6 || len(c.DstMAC) != 6 {
		return errors.New("source and destination MAC must be 6 bytes")
	}
	if !c.Src.IsValid() || !c.Dst.IsValid() {
		return errors.New("source and destination address are required")
	}
	c.Src, c.Dst = c.Src.Unmap(), c.Dst.Unmap()
	if c.Src.Is4() != c.Dst.Is4() {
		return fmt.Errorf("address families differ: %s and %s", c.Src, c.Dst)
	}
	if c.Flows < 1 {
		return fmt.Errorf("flows %d: must be at least 1", c.Flows)
	}
	if c.Flows > 1<<16 {
		return fmt.Errorf("flows %d: at most 65536", c.Flows)
	}
	switch c.FlowBy {
	case FlowSrcPort:
		if int(c.SrcPort)+c.Flows-1 > 0xffff {
			return fmt.Errorf("source port %d + %d flows passes 65535", c.SrcPort, c.Flows)
		}
	case FlowSrcAddr:
		s := c.Src.AsSlice()
		if uint64(binary.BigEndian.Uint32(s[len(s)-4:]))+uint64(c.Flows-1) > 0xffffffff {
			return fmt.Errorf("source address %s + %d flows overflows", c.Src, c.Flows)
		}
	default:
		return fmt.Errorf("unknown flow field %d", c.FlowBy)
	}
	if len(c.Sizes) == 0 {
		return errors.New("no packet size")
	}
	for _, n := range c.Sizes {
		if n > MaxFrame {
			return fmt.Errorf("size %d is above %d", n, MaxFrame)
		}
	}
	if c.TTL == 0 {
		c.TTL = 64
	}
	if vx := c.VXLAN; vx != nil {
		v := *vx
		if v.VNI >= 1<<24 {
			return fmt.Errorf("vni %d does not fit in 24 bits", v.VNI)
		}
		if !v.Src.IsValid() || !v.Dst.IsValid() {
			return errors.New("vxlan needs outer source and destination addresses")
		}
		v.Src, v.Dst = v.Src.Unmap(), v.Dst.Unmap()
		if v.Src.Is4() != v.Dst.Is4() {
			return fmt.Errorf("outer address families differ: %s and %s", v.Src, v.Dst)
		}
		if v.SrcPort == 0 {
			v.SrcPort = 49152
		}
		if int(v.SrcPort)+4095 > 0xffff {
			return fmt.Errorf("outer source port %d: at most %d", v.SrcPort, 0xffff-4095)
		}
		if len(v.InnerSrcMAC) == 0 {
			v.InnerSrcMAC = net.HardwareAddr{0x02, 0x58, 0x56, 0, 0, 1}
		}
		if len(v.InnerDstMAC) == 0 {
			v.InnerDstMAC = net.HardwareAddr{0x02, 0x58, 0x56, 0, 0, 2}
		}
		if len(v.InnerSrcMAC) != 6 || len(v.InnerDstMAC) != 6 {
			return errors.New("inner MACs must be 6 bytes")
		}
		c.VXLAN = &v
	}
	return nil
}

// build writes the frame of length n for flow 0, sequence 0, time 0.
func (t *Template) build(n int) frame {
	c := &t.cfg
	b := make([]byte, n)
	f := frame{b: b}
	off := 0
	if vx := c.VXLAN; vx != nil {
		putEth(b, c.DstMAC, c.SrcMAC, t.outerV4)
		putIP(b[t.oIPOff:], vx.Src, vx.Dst, n-t.oIPOff, 64)
		u := b[t.oUDPOff:]
		binary.BigEndian.PutUint16(u[0:], vx.SrcPort)
		binary.BigEndian.PutUint16(u[2:], VXLANPort)
		binary.BigEndian.PutUint16(u[4:], uint16(n-t.oUDPOff))
		x := u[udpLen:]
		x[0] = 0x08 // I flag: VNI valid
		x[4], x[5], x[6] = byte(vx.VNI>>16), byte(vx.VNI>>8), byte(vx.VNI)
		off = t.oUDPOff + udpLen + vxlanLen
		putEth(b[off:], vx.InnerDstMAC, vx.InnerSrcMAC, t.v4)
	} else {
		putEth(b, c.DstMAC, c.SrcMAC, t.v4)
	}
	// The IP length covers the payload up to the frame end.
	putIP(b[t.ipOff:], c.Src, c.Dst, n-t.ipOff, c.TTL)
	u := b[t.udpOff:]
	binary.BigEndian.PutUint16(u[0:], c.SrcPort)
	binary.BigEndian.PutUint16(u[2:], c.DstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(n-t.udpOff))
	Header{Stream: c.Stream}.put(b[t.payOff:])

	if t.v4 {
		f.ipCsum = binary.BigEndian.Uint16(b[t.ipOff+10:])
	}
	f.udpCsum = udpFinal(checksum(pseudo(c.Src, c.Dst, n-t.udpOff), b[t.udpOff:]))
	binary.BigEndian.PutUint16(u[6:], f.udpCsum)
	if t.oUDPCsum {
		vx := c.VXLAN
		f.oUDPCsum = udpFinal(checksum(pseudo(vx.Src, vx.Dst, n-t.oUDPOff), b[t.oUDPOff:]))
		binary.BigEndian.PutUint16(b[t.oUDPOff+6:], f.oUDPCsum)
	}
	return f
}

func putEth(b []byte, dst, src net.HardwareAddr, v4 bool) {
	copy(b[0:6], dst)
	copy(b[6:12], src)
	et := uint16(0x86dd)
	if v4 {
		et = 0x0800
	}
	binary.BigEndian.PutUint16(b[12:], et)
}

// putIP writes an IPv4 (with header checksum) or IPv6 header whose packet,
// header included, is total bytes long, carrying UDP.
func putIP(b []byte, src, dst netip.Addr, total int, ttl uint8) {
	if src.Is4() {
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(total))
		b[6] = 0x40 // DF: a forwarder must not fragment generator traffic
		b[8] = ttl
		b[9] = 17
		s, d := src.As4(), dst.As4()
		copy(b[12:16], s[:])
		copy(b[16:20], d[:])
		binary.BigEndian.PutUint16(b[10:], checksum(0, b[:ipv4Len]))
		return
	}
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(total-ipv6Len))
	b[6] = 17
	b[7] = ttl
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
}

// pseudo is the unfolded sum of the UDP pseudo-header.
func pseudo(src, dst netip.Addr, udpTotal int) uint64 {
	s := sum16(0, src.AsSlice())
	s = sum16(s, dst.AsSlice())
	return s + 17 + uint64(udpTotal)
}

// Sizes returns the frame length of each size index.
func (t *Template) Sizes() []int { return t.cfg.Sizes }

// Len returns the frame length of size index i.
func (t *Template) Len(i int) int { return len(t.frames[i].b) }

// Min returns the smallest frame length this header stack allows.
func (t *Template) Min() int { return t.min }

// PayloadOffset returns where the generator header starts in a frame.
func (t *Template) PayloadOffset() int { return t.payOff }

// Config returns the (normalised) configuration.
func (t *Template) Config() Config { return t.cfg }

// Fill writes the frame of size index si for flow (0 <= flow < Flows) with
// sequence number seq and send time now (CLOCK_MONOTONIC ns) into dst, and
// returns its length. dst must hold Len(si) bytes.
func (t *Template) Fill(dst []byte, si, flow int, seq uint32, now int64) int {
	f := &t.frames[si]
	n := copy(dst, f.b)
	b := dst[:n]

	// Sums of the words that change, before and after.
	var oldIn, newIn uint64 // inner UDP checksum coverage
	var oldOut, newOut uint64

	p := b[t.payOff:]
	binary.BigEndian.PutUint32(p[hdrSeq:], seq)
	binary.BigEndian.PutUint64(p[hdrTime:], uint64(now))
	ps := uint64(seq>>16) + uint64(seq&0xffff) +
		uint64(uint64(now)>>48) + uint64(uint64(now)>>32&0xffff) + uint64(uint64(now)>>16&0xffff) + uint64(uint64(now)&0xffff)
	newIn += ps

	var oldIP, newIP uint64 // inner IPv4 header checksum coverage
	if flow != 0 {
		switch t.cfg.FlowBy {
		case FlowSrcPort:
			o := uint64(t.cfg.SrcPort)
			v := uint64(t.cfg.SrcPort) + uint64(flow)
			binary.BigEndian.PutUint16(b[t.udpOff:], uint16(v))
			oldIn += o
			newIn += v
		case FlowSrcAddr:
			o := t.addrBase
			v := t.addrBase + uint32(flow)
			binary.BigEndian.PutUint32(b[t.addrOff:], v)
			os, vs := uint64(o>>16)+uint64(o&0xffff), uint64(v>>16)+uint64(v&0xffff)
			oldIn += os // pseudo-header
			newIn += vs
			oldIP, newIP = os, vs
		}
	}
	// Everything the inner UDP checksum covers in the packet bytes is
	// also covered by the outer one; the pseudo-header address is not,
	// but the address bytes in the inner IP header are.
	oldOut, newOut = oldIn, newIn

	if t.v4 && oldIP != newIP {
		c := update(f.ipCsum, fold(oldIP), fold(newIP))
		binary.BigEndian.PutUint16(b[t.ipOff+10:], c)
		oldOut += uint64(f.ipCsum)
		newOut += uint64(c)
	}
	u := udpFinal(update(f.udpCsum, fold(oldIn), fold(newIn)))
	binary.BigEndian.PutUint16(b[t.udpOff+6:], u)
	oldOut += uint64(f.udpCsum)
	newOut += uint64(u)

	if vx := t.cfg.VXLAN; vx != nil {
		sp := uint64(vx.SrcPort) + uint64(flow%4096)
		binary.BigEndian.PutUint16(b[t.oUDPOff:], uint16(sp))
		if t.oUDPCsum {
			oldOut += uint64(vx.SrcPort)
			newOut += sp
			c := udpFinal(update(f.oUDPCsum, fold(oldOut), fold(newOut)))
			binary.BigEndian.PutUint16(b[t.oUDPOff+6:], c)
		}
	}
	return n
}
