package gen

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

// refSum is the obviously-correct RFC 1071 checksum the tests hold ours to.
func refSum(parts ...[]byte) uint16 {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var s uint32
	for i := 0; i < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func refPseudo(src, dst net.IP, udp []byte) []byte {
	var p []byte
	if s4 := src.To4(); s4 != nil {
		p = append(p, s4...)
		p = append(p, dst.To4()...)
	} else {
		p = append(p, src.To16()...)
		p = append(p, dst.To16()...)
	}
	return append(p, 0, 17, byte(len(udp)>>8), byte(len(udp)))
}

// checkUDP checks the UDP checksum of udp (header+payload) against the
// reference. A zero checksum is accepted only when allowZero (IPv4 outer).
func checkUDP(t *testing.T, what string, src, dst net.IP, udp []byte, allowZero bool) {
	t.Helper()
	c := binary.BigEndian.Uint16(udp[6:])
	if c == 0 {
		if !allowZero {
			t.Errorf("%s: zero UDP checksum", what)
		}
		return
	}
	if got := refSum(refPseudo(src, dst, udp), udp); got != 0 && got != 0xffff {
		t.Errorf("%s: UDP checksum 0x%04x does not verify (residue 0x%04x)", what, c, got)
	}
}

func checkIP(t *testing.T, what string, l gopacket.Layer) (src, dst net.IP) {
	t.Helper()
	switch ip := l.(type) {
	case *layers.IPv4:
		if got := refSum(ip.Contents); got != 0 && got != 0xffff {
			t.Errorf("%s: IPv4 header checksum does not verify", what)
		}
		if ip.Protocol != layers.IPProtocolUDP || ip.Flags&layers.IPv4DontFragment == 0 {
			t.Errorf("%s: proto %v flags %v", what, ip.Protocol, ip.Flags)
		}
		if int(ip.Length) != len(ip.Contents)+len(ip.Payload) {
			t.Errorf("%s: IPv4 length %d, have %d", what, ip.Length, len(ip.Contents)+len(ip.Payload))
		}
		return ip.SrcIP, ip.DstIP
	case *layers.IPv6:
		if ip.NextHeader != layers.IPProtocolUDP || int(ip.Length) != len(ip.Payload) {
			t.Errorf("%s: next header %v length %d payload %d", what, ip.NextHeader, ip.Length, len(ip.Payload))
		}
		return ip.SrcIP, ip.DstIP
	}
	t.Fatalf("%s: not IP: %T", what, l)
	return nil, nil
}

type tmplCase struct {
	name       string
	src, dst   string
	vxlan      bool
	osrc, odst string
	flowBy     FlowField
}

var tmplCases = []tmplCase{
	{name: "ipv4", src: "198.18.0.1", dst: "198.19.0.1"},
	{name: "ipv6", src: "fd00::1", dst: "fd00:1::1"},
	{name: "ipv4-addrflows", src: "198.18.0.1", dst: "198.19.0.1", flowBy: FlowSrcAddr},
	{name: "ipv6-addrflows", src: "fd00::1", dst: "fd00:1::1", flowBy: FlowSrcAddr},
	{name: "vxlan4-in-4", src: "198.18.1.1", dst: "198.18.2.1", vxlan: true, osrc: "198.19.0.1", odst: "198.19.0.2"},
	{name: "vxlan6-in-4", src: "fd00::1", dst: "fd00::2", vxlan: true, osrc: "198.19.0.1", odst: "198.19.0.2", flowBy: FlowSrcAddr},
	{name: "vxlan4-in-6", src: "198.18.1.1", dst: "198.18.2.1", vxlan: true, osrc: "fd00:9::1", odst: "fd00:9::2", flowBy: FlowSrcAddr},
	{name: "vxlan6-in-6", src: "fd00::1", dst: "fd00::2", vxlan: true, osrc: "fd00:9::1", odst: "fd00:9::2"},
}

func (tc tmplCase) config(sizes []int) Config {
	c := Config{
		SrcMAC: macA, DstMAC: macB,
		Src: netip.MustParseAddr(tc.src), Dst: netip.MustParseAddr(tc.dst),
		SrcPort: 1000, DstPort: 5001, Flows: 1000, FlowBy: tc.flowBy, Sizes: sizes, Stream: 7,
	}
	if tc.vxlan {
		c.VXLAN = &VXLAN{VNI: 0xabcdef, Src: netip.MustParseAddr(tc.osrc), Dst: netip.MustParseAddr(tc.odst)}
	}
	return c
}

func TestTemplateDecodes(t *testing.T) {
	for _, tc := range tmplCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.config(nil)
			min := MinSize(c.Src.Is6(), c.VXLAN)
			c.Sizes = []int{min, min + 1, 64 + min, 1514, 9000}
			tp, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, MaxFrame)
			seqs := []uint32{0, 1, 0xffff, 0x10000, 0xdeadbeef, 0xffffffff}
			times := []int64{0, 1, 123456789012345, -1 >> 1}
			flows := []int{0, 1, 2, 255, 256, 999}
			for si := range c.Sizes {
				for _, seq := range seqs {
					for _, now := range times {
						for _, flow := range flows {
							n := tp.Fill(buf, si, flow, seq, now)
							what := fmt.Sprintf("size %d seq %d time %d flow %d", c.Sizes[si], seq, now, flow)
							if n != c.Sizes[si] {
								t.Fatalf("%s: length %d", what, n)
							}
							checkFrame(t, what, tc, c, buf[:n], flow, seq, now)
						}
					}
				}
			}
		})
	}
}

func checkFrame(t *testing.T, what string, tc tmplCase, c Config, b []byte, flow int, seq uint32, now int64) {
	t.Helper()
	pkt := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("%s: decode: %v", what, el.Error())
	}
	ls := pkt.Layers()
	i := 0
	next := func() gopacket.Layer {
		if i >= len(ls) {
			t.Fatalf("%s: too few layers: %v", what, ls)
		}
		i++
		return ls[i-1]
	}
	eth := next().(*layers.Ethernet)
	if eth.SrcMAC.String() != macA.String() || eth.DstMAC.String() != macB.String() {
		t.Errorf("%s: eth %s > %s", what, eth.SrcMAC, eth.DstMAC)
	}
	if tc.vxlan {
		osrc, odst := checkIP(t, what+" outer", next())
		if osrc.String() != tc.osrc || odst.String() != tc.odst {
			t.Errorf("%s: outer %s > %s", what, osrc, odst)
		}
		u := next().(*layers.UDP)
		if u.DstPort != VXLANPort || int(u.SrcPort) != 49152+flow%4096 {
			t.Errorf("%s: outer ports %d > %d", what, u.SrcPort, u.DstPort)
		}
		if int(u.Length) != len(u.Contents)+len(u.Payload) {
			t.Errorf("%s: outer udp length %d", what, u.Length)
		}
		checkUDP(t, what+" outer", osrc, odst, append(u.Contents, u.Payload...), osrc.To4() != nil)
		vx := next().(*layers.VXLAN)
		if !vx.ValidIDFlag || vx.VNI != 0xabcdef {
			t.Errorf("%s: vxlan %+v", what, vx)
		}
		next() // inner Ethernet
	}
	src, dst := checkIP(t, what, next())
	wantSrc := c.Src
	if c.FlowBy == FlowSrcAddr {
		for range flow {
			wantSrc = wantSrc.Next()
		}
	}
	if src.String() != wantSrc.String() || dst.String() != tc.dst {
		t.Errorf("%s: %s > %s, want %s > %s", what, src, dst, wantSrc, tc.dst)
	}
	u := next().(*layers.UDP)
	wantPort := 1000
	if c.FlowBy == FlowSrcPort {
		wantPort += flow
	}
	if int(u.SrcPort) != wantPort || u.DstPort != 5001 || int(u.Length) != len(u.Contents)+len(u.Payload) {
		t.Errorf("%s: udp %d > %d len %d", what, u.SrcPort, u.DstPort, u.Length)
	}
	checkUDP(t, what, src, dst, append(u.Contents, u.Payload...), false)
	h, ok := DecodeHeader(u.Payload)
	if !ok || h.Stream != 7 || h.Seq != seq || h.SentNS != now {
		t.Errorf("%s: header %+v ok=%v", what, h, ok)
	}
}

func TestTemplateRejects(t *testing.T) {
	base := tmplCases[0].config([]int{64})
	for name, mod := range map[string]func(*Config){
		"mixed families": func(c *Config) { c.Dst = netip.MustParseAddr("fd00::1") },
		"too small":      func(c *Config) { c.Sizes = []int{57} },
		"too big":        func(c *Config) { c.Sizes = []int{9001} },
		"no flows":       func(c *Config) { c.Flows = 0 },
		"port overflow":  func(c *Config) { c.SrcPort = 65000; c.Flows = 1000 },
		"no size":        func(c *Config) { c.Sizes = nil },
		"bad mac":        func(c *Config) { c.SrcMAC = nil },
		"vni":            func(c *Config) { c.VXLAN = &VXLAN{VNI: 1 << 24, Src: c.Src, Dst: c.Dst} },
		"outer families": func(c *Config) {
			c.VXLAN = &VXLAN{VNI: 1, Src: c.Src, Dst: netip.MustParseAddr("fd00::1")}
		},
	} {
		c := base
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMinSizes(t *testing.T) {
	v4 := &VXLAN{Src: netip.MustParseAddr("198.18.0.1")}
	v6 := &VXLAN{Src: netip.MustParseAddr("fd00::1")}
	for _, c := range []struct {
		v6   bool
		vx   *VXLAN
		want int
	}{{false, nil, 58}, {true, nil, 78}, {false, v4, 108}, {true, v6, 148}} {
		if got := MinSize(c.v6, c.vx); got != c.want {
			t.Errorf("MinSize(%v, %v) = %d, want %d", c.v6, c.vx != nil, got, c.want)
		}
	}
}

func TestFillAllocs(t *testing.T) {
	tp, err := New(tmplCases[6].config([]int{200}))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	var seq uint32
	if n := testing.AllocsPerRun(1000, func() { seq++; tp.Fill(buf, 0, int(seq%1000), seq, int64(seq)) }); n != 0 {
		t.Errorf("Fill allocates %v per call", n)
	}
}

func BenchmarkFill(b *testing.B) {
	for _, tc := range []tmplCase{tmplCases[0], tmplCases[7]} {
		b.Run(tc.name, func(b *testing.B) {
			tp, _ := New(tc.config([]int{128}))
			buf := make([]byte, 2048)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tp.Fill(buf, 0, i%1000, uint32(i), int64(i))
			}
		})
	}
}
