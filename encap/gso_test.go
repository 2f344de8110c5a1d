package encap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// gsoCase describes a super-frame for the GSO tests. Its segments are built
// independently with gopacket, from the same layer values with the length,
// ID, sequence number and flags each segment should carry.
type gsoCase struct {
	name          string
	v6, udp       bool
	size, payload int
	flags         uint8 // TCP flags of the super-frame (tcpFlag* and ACK 0x10, ECE 0x40)
	ipOpts        bool  // IPv4 router alert option (IHL 6)
	id            uint16
	seq           uint32
	ecn           bool // set GSOECN in the virtio header
}

var gsoCases = []gsoCase{
	{name: "tcp4", size: 1448, payload: 5000, flags: 0x10 | tcpFlagPSH, id: 0x1234, seq: 1000},
	{name: "tcp4 fin psh cwr", size: 1000, payload: 3001, flags: 0x10 | tcpFlagFIN | tcpFlagPSH | tcpFlagCWR | 0x40, id: 0xfffe, seq: 0xfffff000, ecn: true},
	{name: "tcp4 ip options", size: 536, payload: 1609, flags: 0x10, ipOpts: true, id: 7, seq: 42},
	{name: "tcp4 exact multiple", size: 100, payload: 400, flags: 0x10 | tcpFlagFIN, id: 1, seq: 1},
	{name: "tcp4 one segment", size: 1448, payload: 1000, flags: 0x10 | tcpFlagFIN | tcpFlagPSH | tcpFlagCWR, id: 9, seq: 9},
	{name: "tcp4 odd size", size: 1, payload: 7, flags: 0x10 | tcpFlagPSH, id: 0xffff, seq: 0xffffffff},
	{name: "tcp6", v6: true, size: 1428, payload: 6000, flags: 0x10 | tcpFlagPSH, seq: 77},
	{name: "tcp6 fin psh cwr", v6: true, size: 999, payload: 2998, flags: 0x10 | tcpFlagFIN | tcpFlagPSH | tcpFlagCWR, seq: 0xffffff00},
	{name: "udp4", udp: true, size: 1200, payload: 4000, id: 0x8000},
	{name: "udp4 odd", udp: true, size: 333, payload: 1001, id: 0xffff},
	{name: "udp6", udp: true, v6: true, size: 1200, payload: 3601},
	{name: "udp6 one segment", udp: true, v6: true, size: 1200, payload: 1200},
}

func (c gsoCase) gsoType() uint8 {
	switch {
	case c.udp:
		return GSOUDPL4
	case c.v6:
		return GSOTCPv6
	}
	return GSOTCPv4
}

func gsoPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

// layers builds the gopacket layers of a frame carrying payload with the
// given IPv4 ID, TCP sequence number and TCP flags.
func (c gsoCase) layers(t testing.TB, payload []byte, id uint16, seq uint32, flags uint8) []gopacket.SerializableLayer {
	eth := &layers.Ethernet{SrcMAC: hw(mac1), DstMAC: hw(mac2), EthernetType: layers.EthernetTypeIPv4}
	proto := layers.IPProtocolTCP
	if c.udp {
		proto = layers.IPProtocolUDP
	}
	var nl gopacket.NetworkLayer
	var ipl gopacket.SerializableLayer
	if c.v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, TrafficClass: 0x02, FlowLabel: 0x12345, NextHeader: proto, HopLimit: 64,
			SrcIP: ip6(src6), DstIP: ip6(dst6)}
		nl, ipl = ip, ip
	} else {
		ip := &layers.IPv4{Version: 4, TOS: 0x02, Id: id, Flags: layers.IPv4DontFragment, TTL: 64, Protocol: proto,
			SrcIP: ip4(src4), DstIP: ip4(dst4)}
		if c.ipOpts {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		nl, ipl = ip, ip
	}
	if c.udp {
		u := &layers.UDP{SrcPort: 4242, DstPort: 53535}
		if err := u.SetNetworkLayerForChecksum(nl); err != nil {
			t.Fatal(err)
		}
		return []gopacket.SerializableLayer{eth, ipl, u, gopacket.Payload(payload)}
	}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: seq, Ack: 0xa0b0c0d0, Window: 502,
		FIN: flags&tcpFlagFIN != 0, PSH: flags&tcpFlagPSH != 0, ACK: flags&0x10 != 0, ECE: flags&0x40 != 0, CWR: flags&tcpFlagCWR != 0,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		}}
	if err := tcp.SetNetworkLayerForChecksum(nl); err != nil {
		t.Fatal(err)
	}
	return []gopacket.SerializableLayer{eth, ipl, tcp, gopacket.Payload(payload)}
}

// serializeFrame is serialize without the padding gopacket's Ethernet layer
// adds up to the 60-byte minimum: Linux does not pad segments either.
func serializeFrame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	b := serialize(t, ls...)
	if Ethernet(b).Type() == EtherTypeIPv6 {
		return b[:EthernetLen+IPv6Len+int(IPv6(b[EthernetLen:]).PayloadLength())]
	}
	return b[:EthernetLen+int(IPv4(b[EthernetLen:]).TotalLength())]
}

// hdrLen is the length of the headers gopacket writes for c.
func (c gsoCase) hdrLen() (l4, hdr int) {
	l4 = EthernetLen + IPv4MinLen
	if c.v6 {
		l4 = EthernetLen + IPv6Len
	} else if c.ipOpts {
		l4 += 4
	}
	if c.udp {
		return l4, l4 + UDPLen
	}
	return l4, l4 + tcpMinLen + 12
}

// superFrame returns c's super-frame as a TSO/USO sender hands it to the
// kernel: the L4 checksum field holds the folded pseudo-header sum over the
// super-frame's length (not inverted), and the virtio header asks for the
// checksum with a wrong hdr_len hint. It also returns the frame with a
// correct checksum.
func (c gsoCase) superFrame(t testing.TB) (frame, full []byte, h VirtioNetHdr) {
	full = serializeFrame(t, c.layers(t, gsoPayload(c.payload), c.id, c.seq, c.flags)...)
	frame = bytes.Clone(full)
	l4, _ := c.hdrLen()
	l4len := len(frame) - l4
	proto, csumOff := ProtoTCP, tcpChecksum
	if c.udp {
		proto, csumOff = ProtoUDP, udpChecksum
	}
	var sum uint32
	if c.v6 {
		sum = PseudoHeaderSum6(src6, dst6, proto, uint32(l4len))
	} else {
		sum = PseudoHeaderSum4(src4, dst4, proto, uint16(l4len))
	}
	binary.BigEndian.PutUint16(frame[l4+csumOff:], Fold(sum))
	h = make(VirtioNetHdr, VirtioNetHdrLen)
	typ := c.gsoType()
	if c.ecn {
		typ |= GSOECN
	}
	h.Set(VirtioNetHdrFNeedsCsum, typ, 0, uint16(c.size), uint16(l4), uint16(csumOff))
	return frame, full, h
}

func TestVirtioNetHdr(t *testing.T) {
	h := make(VirtioNetHdr, VirtioNetHdrLen)
	h.Set(VirtioNetHdrFNeedsCsum|VirtioNetHdrFDataValid, GSOTCPv6|GSOECN, 0x0102, 0x0304, 0x0506, 0x0708)
	want := []byte{3, 0x84, 2, 1, 4, 3, 6, 5, 8, 7}
	if !bytes.Equal(h, want) {
		t.Fatalf("Set wrote %x, want %x", []byte(h), want)
	}
	if h.Flags() != 3 || h.GSOType() != 0x84 || h.HdrLen() != 0x0102 || h.GSOSize() != 0x0304 ||
		h.CsumStart() != 0x0506 || h.CsumOffset() != 0x0708 {
		t.Errorf("read back %d %#x %#x %#x %#x %#x", h.Flags(), h.GSOType(), h.HdrLen(), h.GSOSize(), h.CsumStart(), h.CsumOffset())
	}
}

func TestGSOSegmentGopacket(t *testing.T) {
	for _, c := range gsoCases {
		t.Run(c.name, func(t *testing.T) {
			frame, _, h := c.superFrame(t)
			orig := bytes.Clone(frame)
			g, err := ParseGSO(frame, h)
			if err != nil {
				t.Fatalf("ParseGSO: %v", err)
			}
			l4, hdr := c.hdrLen()
			want := GSO{Type: c.gsoType(), HdrLen: hdr, Size: c.size, L3: EthernetLen, L4: l4, IPv6: c.v6}
			if g != want {
				t.Fatalf("ParseGSO = %+v, want %+v", g, want)
			}
			n := g.Segments(frame)
			if wantN := max(1, (c.payload+c.size-1)/c.size); n != wantN {
				t.Fatalf("Segments = %d, want %d", n, wantN)
			}
			payload := gsoPayload(c.payload)
			var got []byte
			dst := make([]byte, 65536)
			for i := range n {
				m := g.Segment(dst, frame, i)
				if m == 0 {
					t.Fatalf("segment %d: Segment returned 0", i)
				}
				seg := dst[:m]
				chunk := payload[i*c.size : min((i+1)*c.size, len(payload))]
				flags := c.flags
				if i != n-1 {
					flags &^= tcpFlagFIN | tcpFlagPSH
				}
				if i != 0 {
					flags &^= tcpFlagCWR
				}
				exp := serializeFrame(t, c.layers(t, chunk, c.id+uint16(i), c.seq+uint32(i*c.size), flags)...)
				if c.udp && binary.BigEndian.Uint16(exp[l4+udpChecksum:]) == 0 {
					// Linux (and RFC 768) send a computed zero as 0xffff; gopacket does not.
					binary.BigEndian.PutUint16(exp[l4+udpChecksum:], 0xffff)
				}
				if !bytes.Equal(seg, exp) {
					t.Fatalf("segment %d differs from gopacket (-want +got):\n-%x\n+%x", i, exp, seg)
				}

				p := gopacket.NewPacket(seg, layers.LayerTypeEthernet, gopacket.Default)
				if el := p.ErrorLayer(); el != nil {
					t.Fatalf("segment %d: gopacket: %v", i, el.Error())
				}
				if c.udp {
					u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
					if u == nil || int(u.Length) != UDPLen+len(chunk) {
						t.Fatalf("segment %d: UDP layer %+v", i, u)
					}
				} else {
					tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
					if tcp == nil || tcp.Seq != c.seq+uint32(i*c.size) || tcp.FIN != (flags&tcpFlagFIN != 0) ||
						tcp.PSH != (flags&tcpFlagPSH != 0) || tcp.CWR != (flags&tcpFlagCWR != 0) {
						t.Fatalf("segment %d: TCP layer %+v", i, tcp)
					}
				}
				if c.v6 {
					ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
					if ip == nil || int(ip.Length) != m-EthernetLen-IPv6Len {
						t.Fatalf("segment %d: IPv6 layer %+v", i, ip)
					}
				} else {
					ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
					if ip == nil || int(ip.Length) != m-EthernetLen || ip.Id != c.id+uint16(i) || !IPv4(seg[EthernetLen:]).HeaderChecksumValid() {
						t.Fatalf("segment %d: IPv4 layer %+v", i, ip)
					}
				}
				app := p.ApplicationLayer()
				if app == nil || !bytes.Equal(app.Payload(), chunk) {
					t.Fatalf("segment %d: gopacket payload differs", i)
				}
				got = append(got, app.Payload()...)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("concatenated payloads differ: %d bytes, want %d", len(got), len(payload))
			}
			if !bytes.Equal(frame, orig) {
				t.Errorf("Segment modified the super-frame")
			}
			if m := g.Segment(dst, frame, n); m != 0 {
				t.Errorf("Segment(%d) of %d = %d, want 0", n, n, m)
			}
			if m := g.Segment(dst, frame, -1); m != 0 {
				t.Errorf("Segment(-1) = %d, want 0", m)
			}
			last := hdr + c.payload - (n-1)*c.size
			if m := g.Segment(dst[:last-1], frame, n-1); m != 0 {
				t.Errorf("Segment into %d bytes = %d, want 0", last-1, m)
			}
			if m := g.Segment(dst[:last], frame, n-1); m != last {
				t.Errorf("Segment into exactly %d bytes = %d", last, m)
			}
		})
	}
}

// TestGSONoNeedsCsum checks that a super-frame without
// VirtioNetHdrFNeedsCsum and with garbage in its checksum field still cuts
// into segments with correct checksums: Segment never reads that field.
func TestGSONoNeedsCsum(t *testing.T) {
	for _, c := range []gsoCase{gsoCases[0], gsoCases[6], gsoCases[8]} {
		frame, _, h := c.superFrame(t)
		l4, _ := c.hdrLen()
		off := tcpChecksum
		if c.udp {
			off = udpChecksum
		}
		binary.BigEndian.PutUint16(frame[l4+off:], 0xdead)
		h.Set(0, c.gsoType(), 1, uint16(c.size), 0, 0)
		g, err := ParseGSO(frame, h)
		if err != nil {
			t.Fatalf("%s: ParseGSO: %v", c.name, err)
		}
		dst := make([]byte, 2048)
		for i := range g.Segments(frame) {
			m := g.Segment(dst, frame, i)
			if !l4ChecksumValid(dst[:m], g) {
				t.Errorf("%s: segment %d has a bad L4 checksum", c.name, i)
			}
		}
	}
}

// l4ChecksumValid verifies the TCP or UDP checksum of a segment from scratch.
func l4ChecksumValid(seg []byte, g GSO) bool {
	proto := ProtoTCP
	if g.Type == GSOUDPL4 {
		proto = ProtoUDP
	}
	l4 := seg[g.L4:]
	var sum uint32
	if g.IPv6 {
		ip := IPv6(seg[g.L3:])
		sum = PseudoHeaderSum6(ip.Src(), ip.Dst(), proto, uint32(len(l4)))
	} else {
		ip := IPv4(seg[g.L3:])
		sum = PseudoHeaderSum4(ip.Src(), ip.Dst(), proto, uint16(len(l4)))
	}
	return Fold(Checksum(l4, sum)) == 0xffff
}

func TestCompleteChecksum(t *testing.T) {
	for _, c := range []gsoCase{
		{name: "tcp4", payload: 1001, flags: 0x10, id: 3, seq: 5},
		{name: "tcp6", v6: true, payload: 1460, flags: 0x18, seq: 5},
		{name: "udp4", udp: true, payload: 999, id: 3},
		{name: "udp6", udp: true, v6: true, payload: 8},
		{name: "udp4 empty", udp: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			frame, full, h := c.superFrame(t)
			if err := CompleteChecksum(frame, int(h.CsumStart()), int(h.CsumOffset())); err != nil {
				t.Fatal(err)
			}
			want := full
			if c.udp && binary.BigEndian.Uint16(want[h.CsumStart()+udpChecksum:]) == 0 {
				want = bytes.Clone(full)
				binary.BigEndian.PutUint16(want[h.CsumStart()+udpChecksum:], 0xffff)
			}
			if !bytes.Equal(frame, want) {
				t.Errorf("CompleteChecksum differs from gopacket (-want +got):\n-%x\n+%x", want, frame)
			}
			g := GSO{Type: c.gsoType(), L3: EthernetLen, L4: int(h.CsumStart()), IPv6: c.v6}
			if !l4ChecksumValid(frame, g) {
				t.Errorf("checksum does not verify")
			}
		})
	}

	// A sum that folds to 0xffff is stored as 0xffff, not 0 (CSUM_MANGLED_0).
	b := []byte{0xff, 0xfe, 0x00, 0x01}
	if err := CompleteChecksum(b, 0, 2); err != nil || binary.BigEndian.Uint16(b[2:]) != 0xffff {
		t.Errorf("mangled zero: %v %x", err, b)
	}

	for _, tt := range []struct{ n, start, off int }{
		{10, -1, 0}, {10, 0, -1}, {10, 9, 0}, {10, 8, 1}, {10, 11, 0}, {10, 0, 9}, {0, 0, 0}, {1, 0, 0},
		{10, 1 << 62, 1 << 62}, {10, 4, int(^uint(0) >> 1)},
	} {
		if err := CompleteChecksum(make([]byte, tt.n), tt.start, tt.off); err == nil {
			t.Errorf("CompleteChecksum(%d bytes, %d, %d) = nil, want an error", tt.n, tt.start, tt.off)
		}
	}
	if err := CompleteChecksum(make([]byte, 10), 8, 0); err != nil {
		t.Errorf("last word: %v", err)
	}
}

func TestParseGSOErrors(t *testing.T) {
	tcp4, tcp6, udp4 := gsoCases[0], gsoCases[6], gsoCases[8]
	// edit returns a broken frame and header built from c.
	type edit func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr)
	setType := func(typ uint8) edit {
		return func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			h[vnetGSOType] = typ
			return f, h
		}
	}
	poke16 := func(off int, delta uint16) edit {
		return func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			binary.BigEndian.PutUint16(f[off:], binary.BigEndian.Uint16(f[off:])+delta)
			return f, h
		}
	}
	cut := func(n int) edit {
		return func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) { return f[:n], h }
	}
	// cutFixed truncates a v4 frame to n bytes and fixes the IPv4 total length.
	cutFixed := func(n int) edit {
		return func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			f = f[:n]
			IPv4(f[EthernetLen:]).SetTotalLength(uint16(n - EthernetLen))
			return f, h
		}
	}
	extHdr := func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
		// Insert an 8-byte hop-by-hop header (PadN) before the TCP header.
		g := append(bytes.Clone(f[:EthernetLen+IPv6Len]), ProtoTCP, 0, 1, 4, 0, 0, 0, 0)
		g = append(g, f[EthernetLen+IPv6Len:]...)
		IPv6(g[EthernetLen:]).SetNextHeader(0)
		IPv6(g[EthernetLen:]).SetPayloadLength(uint16(len(g) - EthernetLen - IPv6Len))
		return g, h
	}
	for _, tt := range []struct {
		name string
		c    gsoCase
		e    edit
		want error
	}{
		{"short virtio header", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) { return f, h[:9] }, ErrGSOTruncated},
		{"GSO_NONE", tcp4, setType(GSONone), ErrGSOType},
		{"UFO", udp4, setType(GSOUDP), ErrGSOType},
		{"unknown type", tcp4, setType(2), ErrGSOType},
		{"ECN on UDP", udp4, setType(GSOUDPL4 | GSOECN), ErrGSOType},
		{"TCPV6 on IPv4", tcp4, setType(GSOTCPv6), ErrGSOType},
		{"TCPV4 on IPv6", tcp6, setType(GSOTCPv4), ErrGSOType},
		{"UDP_L4 on TCP", tcp4, setType(GSOUDPL4), ErrGSOType},
		{"TCPV4 on UDP", udp4, setType(GSOTCPv4), ErrGSOType},
		{"TCPV6 on UDP", gsoCases[10], setType(GSOTCPv6), ErrGSOType},
		{"gso_size 0", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			binary.LittleEndian.PutUint16(h[vnetGSOSize:], 0)
			return f, h
		}, ErrGSOLength},
		{"no Ethernet", tcp4, cut(13), ErrGSOTruncated},
		{"no IPv4 header", tcp4, cut(EthernetLen + 19), ErrGSOTruncated},
		{"no IPv6 header", tcp6, cut(EthernetLen + 39), ErrGSOTruncated},
		{"IPv4 options cut", gsoCases[2], cutFixed(EthernetLen + 22), ErrGSOTruncated},
		{"no TCP header", tcp4, cutFixed(EthernetLen + 20 + 19), ErrGSOTruncated},
		{"TCP options cut", tcp4, cutFixed(EthernetLen + 20 + 31), ErrGSOTruncated},
		{"no UDP header", udp4, cutFixed(EthernetLen + 20 + 7), ErrGSOTruncated},
		{"IPv4 total length long", tcp4, poke16(EthernetLen+ipv4TotalLen, 1), ErrGSOLength},
		{"IPv4 total length short", tcp4, poke16(EthernetLen+ipv4TotalLen, 0xffff), ErrGSOLength},
		{"link padding", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) { return append(f, 0, 0), h }, ErrGSOLength},
		{"IPv6 payload length", tcp6, poke16(EthernetLen+ipv6PayloadLen, 1), ErrGSOLength},
		{"IPv6 jumbogram", tcp6, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			IPv6(f[EthernetLen:]).SetPayloadLength(0)
			return f, h
		}, ErrGSOLength},
		{"UDP length", udp4, poke16(EthernetLen+20+udpLength, 1), ErrGSOLength},
		{"IPv4 version", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) { f[EthernetLen] = 0x65; return f, h }, ErrGSOHeader},
		{"IPv4 IHL 4", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) { f[EthernetLen] = 0x44; return f, h }, ErrGSOHeader},
		{"IPv4 fragment", tcp4, poke16(EthernetLen+ipv4FlagsFO, 1), ErrGSOHeader},
		{"IPv4 protocol", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) { f[EthernetLen+ipv4Protocol] = 132; return f, h }, ErrGSOType},
		{"IPv6 version", tcp6, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) { f[EthernetLen] = 0x40; return f, h }, ErrGSOHeader},
		{"IPv6 extension header", tcp6, extHdr, ErrGSOHeader},
		{"VLAN", tcp4, poke16(12, EtherTypeVLAN-EtherTypeIPv4), ErrGSOHeader},
		{"TCP data offset 4", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			f[EthernetLen+20+tcpDataOff] = 0x40
			return f, h
		}, ErrGSOHeader},
		{"csum_start", tcp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			binary.LittleEndian.PutUint16(h[vnetCsumStart:], 0)
			return f, h
		}, ErrGSOChecksum},
		{"csum_offset", udp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			binary.LittleEndian.PutUint16(h[vnetCsumOffset:], tcpChecksum)
			return f, h
		}, ErrGSOChecksum},
		{"too many UDP segments", udp4, func(f []byte, h VirtioNetHdr) ([]byte, VirtioNetHdr) {
			binary.LittleEndian.PutUint16(h[vnetGSOSize:], 31) // ceil(4000/31) = 130
			return f, h
		}, ErrGSOLength},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, _, h := tt.c.superFrame(t)
			f, h = tt.e(f, h)
			g, err := ParseGSO(f, h)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseGSO = %+v, %v; want %v", g, err, tt.want)
			}
			if g != (GSO{}) {
				t.Errorf("ParseGSO returned %+v with its error", g)
			}
			t.Log(err)
		})
	}

	// The ECN bit is allowed on TCP and stripped from Type; up to 128 UDP segments are.
	f, _, h := tcp4.superFrame(t)
	h[vnetGSOType] |= GSOECN
	if g, err := ParseGSO(f, h); err != nil || g.Type != GSOTCPv4 {
		t.Errorf("TCPV4|ECN: %+v, %v", g, err)
	}
	f, _, h = udp4.superFrame(t)
	binary.LittleEndian.PutUint16(h[vnetGSOSize:], 32) // 125 segments
	if _, err := ParseGSO(f, h); err != nil {
		t.Errorf("125 UDP segments: %v", err)
	}
}

// TestGSOSegmentForeign hands Segment GSO values ParseGSO would not return
// and frames they were not parsed from: it must return 0 or stay in bounds.
func TestGSOSegmentForeign(t *testing.T) {
	frame, _, h := gsoCases[0].superFrame(t)
	g, err := ParseGSO(frame, h)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 2048)
	for _, bad := range []GSO{{}, {Type: GSOTCPv4, HdrLen: 54, Size: 0, L3: 14, L4: 34},
		{Type: GSOTCPv4, HdrLen: 40, Size: 100, L3: 14, L4: 34}, {Type: GSOTCPv4, HdrLen: 66, Size: 100, L3: 0, L4: 34},
		{Type: GSOTCPv6, HdrLen: 74, Size: 100, L3: 14, L4: 34, IPv6: true}, {Type: GSOUDPL4, HdrLen: 41, Size: 1, L3: 14, L4: 34}} {
		if n := bad.Segments(frame); n != 0 {
			t.Errorf("%+v: Segments = %d", bad, n)
		}
		if n := bad.Segment(dst, frame, 0); n != 0 {
			t.Errorf("%+v: Segment = %d", bad, n)
		}
	}
	for _, f := range [][]byte{nil, frame[:g.HdrLen-1], frame[:g.HdrLen]} {
		n := g.Segments(f)
		for i := range n {
			g.Segment(dst, f, i)
		}
		if len(f) == g.HdrLen && n != 1 {
			t.Errorf("header-only frame: %d segments", n)
		}
	}
}

func TestGSOZeroAllocs(t *testing.T) {
	for _, c := range []gsoCase{gsoCases[0], gsoCases[6], gsoCases[8], gsoCases[10]} {
		frame, _, h := c.superFrame(t)
		dst := make([]byte, 2048)
		var sink int
		allocs := testing.AllocsPerRun(100, func() {
			g, err := ParseGSO(frame, h)
			if err != nil {
				panic(err)
			}
			for i := range g.Segments(frame) {
				sink += g.Segment(dst, frame, i)
			}
			if CompleteChecksum(frame, g.L4, 2) != nil {
				panic("CompleteChecksum")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: ParseGSO+Segment allocate %v times per run", c.name, allocs)
		}
		_ = sink
	}
}

func BenchmarkGSOSegmentTCP4(b *testing.B) {
	c := gsoCases[0]
	c.payload, c.size = 65000, 1448
	frame, _, h := c.superFrame(b)
	dst := make([]byte, 2048)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		g, err := ParseGSO(frame, h)
		if err != nil {
			b.Fatal(err)
		}
		for i := range g.Segments(frame) {
			g.Segment(dst, frame, i)
		}
	}
}

// FuzzGSO feeds ParseGSO arbitrary frames and virtio headers and cuts what
// it accepts: nothing may panic, Segment may not write past len(dst) or
// touch the frame, and every segment must be a valid, checksummed frame
// that ParseGSO accepts again, carrying its share of the payload.
func FuzzGSO(f *testing.F) {
	// Small versions of the test cases: short inputs keep the fuzzer fast.
	for _, c := range gsoCases {
		c.size, c.payload = max(1, c.size/50), c.payload/50
		frame, _, h := c.superFrame(f)
		f.Add(frame, []byte(h), uint16(c.size+100))
	}
	f.Fuzz(func(t *testing.T, frame, hdr []byte, dstLen uint16) {
		orig := bytes.Clone(frame)
		g, err := ParseGSO(frame, VirtioNetHdr(hdr))
		if err != nil {
			if g != (GSO{}) {
				t.Fatalf("ParseGSO returned %+v with %v", g, err)
			}
			// Segment must not trust a GSO that does not fit the frame.
			g = GSO{Type: GSOTCPv4, HdrLen: 54, Size: 1, L3: EthernetLen, L4: 34}
			if len(hdr) >= 2 {
				g.Size, g.HdrLen = int(hdr[0]), int(hdr[1])
			}
			buf := make([]byte, 2048)
			for i := range min(g.Segments(frame), 64) {
				g.Segment(buf, frame, i)
			}
			return
		}
		n := g.Segments(frame)
		if n < 1 || g.HdrLen > len(frame) || g.Size < 1 {
			t.Fatalf("%+v: %d segments of a %d-byte frame", g, n, len(frame))
		}
		guard := bytes.Repeat([]byte{0xa5}, 32)
		buf := append(make([]byte, dstLen), guard...)
		dst := buf[:dstLen]
		h1 := make(VirtioNetHdr, VirtioNetHdrLen)
		h1.Set(0, g.Type, 0, uint16(g.Size), 0, 0)
		payload, refused := 0, 0
		for i := -1; i <= n; i++ {
			m := g.Segment(dst, frame, i)
			if !bytes.Equal(buf[dstLen:], guard) {
				t.Fatalf("segment %d wrote past len(dst) %d", i, dstLen)
			}
			if i < 0 || i == n {
				if m != 0 {
					t.Fatalf("Segment(%d) of %d = %d", i, n, m)
				}
				continue
			}
			want := g.HdrLen + min(g.Size, len(frame)-g.HdrLen-i*g.Size)
			if m == 0 {
				if want <= int(dstLen) {
					t.Fatalf("segment %d (%d bytes) refused with %d bytes of room", i, want, dstLen)
				}
				refused++
				continue
			}
			if m != want {
				t.Fatalf("segment %d: %d bytes, want %d", i, m, want)
			}
			seg := dst[:m]
			if !bytes.Equal(seg[g.HdrLen:], frame[g.HdrLen+i*g.Size:][:m-g.HdrLen]) {
				t.Fatalf("segment %d: wrong payload", i)
			}
			payload += m - g.HdrLen
			if !g.IPv6 && !IPv4(seg[g.L3:]).HeaderChecksumValid() {
				t.Fatalf("segment %d: bad IPv4 header checksum", i)
			}
			if !l4ChecksumValid(seg, g) {
				t.Fatalf("segment %d: bad L4 checksum", i)
			}
			g1, err := ParseGSO(seg, h1)
			if err != nil || g1 != g || g1.Segments(seg) != 1 {
				t.Fatalf("segment %d does not parse back: %+v, %v", i, g1, err)
			}
		}
		if !bytes.Equal(frame, orig) {
			t.Fatalf("Segment modified the frame")
		}
		if refused == 0 && payload != len(frame)-g.HdrLen {
			t.Fatalf("segments carry %d payload bytes, frame %d", payload, len(frame)-g.HdrLen)
		}
	})
}
