package encap

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var (
	ugSrc4, ugDst4 = [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 1, 1}
	ugSrc6         = [16]byte{0xfd, 0, 0, 0x18, 15: 1}
	ugDst6         = [16]byte{0xfd, 0, 0, 0x18, 0, 1, 15: 1}
)

// udpDgram builds a datagram as the switch's VXLAN encapsulation sends
// it: DF, no UDP checksum over IPv4, a computed one over IPv6.
func udpDgram(v6 bool, payload int, seed byte) []byte {
	l4 := EthernetLen + IPv4MinLen
	if v6 {
		l4 = EthernetLen + IPv6Len
	}
	b := make([]byte, l4+UDPLen+payload)
	eth := Ethernet(b)
	eth.SetDst([6]byte{2, 0, 0, 0, 0, 2})
	eth.SetSrc([6]byte{2, 0, 0, 0, 0, 1})
	for i := l4 + UDPLen; i < len(b); i++ {
		b[i] = seed + byte(i)
	}
	u := UDP(b[l4:])
	u.Encode(50000, VXLANPort, uint16(UDPLen+payload))
	if v6 {
		eth.SetType(EtherTypeIPv6)
		IPv6(b[EthernetLen:]).Encode(&IPv6Fields{PayloadLength: uint16(UDPLen + payload), NextHeader: ProtoUDP, HopLimit: 64, Src: ugSrc6, Dst: ugDst6})
		u.SetChecksum(UDPChecksum6(ugSrc6, ugDst6, b[l4:]))
	} else {
		eth.SetType(EtherTypeIPv4)
		IPv4(b[EthernetLen:]).Encode(&IPv4Fields{TotalLength: uint16(IPv4MinLen + UDPLen + payload), Flags: IPv4FlagDontFragment, TTL: 64, Protocol: ProtoUDP, Src: ugSrc4, Dst: ugDst4})
	}
	return b
}

// TestUDPGROUndoesUSO: the super-frame UDPGRO builds, cut as the kernel
// cuts USO (ParseGSO, Segment), gives back the datagrams it was built
// from; only what the kernel rewrites per datagram differs (the IPv4 ID
// and header checksum, and a UDP checksum now computed), and that is
// right.
func TestUDPGROUndoesUSO(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var in [][]byte
		for i := 0; i < 9; i++ {
			in = append(in, udpDgram(v6, 1400, byte(i)))
		}
		in = append(in, udpDgram(v6, 333, 99))
		g := NewUDPGRO()
		if !UDPGROPair(in[0], in[1]) || !g.Start(in[0]) {
			t.Fatalf("v6=%v: refused to start", v6)
		}
		for _, d := range in[1:] {
			if !g.Add(d) {
				t.Fatalf("v6=%v: refused datagram %d", v6, g.Segments())
			}
		}
		if g.Add(udpDgram(v6, 333, 1)) {
			t.Errorf("v6=%v: took a datagram after a short one", v6)
		}
		hdr := make(VirtioNetHdr, VirtioNetHdrLen)
		f := g.Finish(hdr)
		if hdr.GSOType() != GSOUDPL4 || int(hdr.GSOSize()) != 1400 {
			t.Fatalf("v6=%v: header type %d size %d", v6, hdr.GSOType(), hdr.GSOSize())
		}
		gso, err := ParseGSO(f, hdr)
		if err != nil {
			t.Fatalf("v6=%v: ParseGSO: %v", v6, err)
		}
		if n := gso.Segments(f); n != len(in) {
			t.Fatalf("v6=%v: %d segments, want %d", v6, n, len(in))
		}
		seg := make([]byte, 2048)
		for i, want := range in {
			n := gso.Segment(seg, f, i)
			got := seg[:n]
			if n != len(want) {
				t.Fatalf("v6=%v segment %d: %d bytes, want %d", v6, i, n, len(want))
			}
			l4 := EthernetLen + IPv4MinLen
			if v6 {
				l4 = EthernetLen + IPv6Len
			}
			u := UDP(got[l4:])
			var sum uint16
			if v6 {
				sum = UDPChecksum6(ugSrc6, ugDst6, got[l4:])
			} else {
				sum = UDPChecksum4(ugSrc4, ugDst4, got[l4:])
				if IPv4(got[EthernetLen:]).CalculateChecksum() != 0xffff {
					t.Errorf("segment %d: IPv4 header checksum", i)
				}
			}
			if u.Checksum() != sum {
				t.Errorf("v6=%v segment %d: UDP checksum %#x, want %#x", v6, i, u.Checksum(), sum)
			}
			// Compare what the kernel leaves alone.
			w := append([]byte(nil), want...)
			if !v6 {
				copy(w[EthernetLen+4:], got[EthernetLen+4:EthernetLen+6])    // ID
				copy(w[EthernetLen+10:], got[EthernetLen+10:EthernetLen+12]) // header checksum
			}
			binary.BigEndian.PutUint16(w[l4+6:], u.Checksum())
			if !bytes.Equal(got, w) {
				t.Errorf("v6=%v segment %d differs from the datagram it came from", v6, i)
			}
		}
	}
}

func TestUDPGRORefuses(t *testing.T) {
	base := func() []byte { return udpDgram(false, 1000, 0) }
	fix4 := func(b []byte) []byte {
		ip := IPv4(b[EthernetLen:])
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		return b
	}
	l4 := EthernetLen + IPv4MinLen
	for _, tc := range []struct {
		name string
		next func() []byte
	}{
		{"other source port", func() []byte { b := base(); b[l4] ^= 1; return b }},
		{"other destination", func() []byte { b := base(); b[EthernetLen+19] ^= 1; return fix4(b) }},
		{"other MAC", func() []byte { b := base(); b[5] ^= 1; return b }},
		{"other TTL", func() []byte { b := base(); b[EthernetLen+8]--; return fix4(b) }},
		{"longer payload", func() []byte { return udpDgram(false, 1001, 0) }},
		{"no DF", func() []byte { b := base(); b[EthernetLen+6] = 0; return fix4(b) }},
		{"fragment", func() []byte { b := base(); b[EthernetLen+6] |= 0x20; return fix4(b) }},
		{"wrong UDP checksum", func() []byte { b := base(); b[l4+6], b[l4+7] = 1, 2; return b }},
		{"UDP length wrong", func() []byte { b := base(); b[l4+5]--; return b }},
		{"IPv6 after IPv4", func() []byte { return udpDgram(true, 1000, 0) }},
		{"TCP", func() []byte { b := base(); b[EthernetLen+9] = ProtoTCP; return fix4(b) }},
	} {
		g := NewUDPGRO()
		if !g.Start(base()) {
			t.Fatal("refused to start")
		}
		if UDPGROPair(base(), tc.next()) && g.Add(tc.next()) {
			t.Errorf("%s: merged", tc.name)
		}
		if g.Add(tc.next()) {
			t.Errorf("%s: Add merged", tc.name)
		}
	}
	// IPv6 with no checksum is not a datagram a receiver takes.
	b := udpDgram(true, 100, 0)
	b[EthernetLen+IPv6Len+6], b[EthernetLen+IPv6Len+7] = 0, 0
	if NewUDPGRO().Start(b) {
		t.Error("started with a zero IPv6 UDP checksum")
	}
	// At most UDPGROMaxSegments, and at most 64 KiB of IP packet.
	g := NewUDPGRO()
	g.Start(udpDgram(false, 100, 0))
	for g.Add(udpDgram(false, 100, 0)) {
	}
	if g.Segments() != UDPGROMaxSegments {
		t.Errorf("merged %d, want at most %d", g.Segments(), UDPGROMaxSegments)
	}
	g.Start(udpDgram(false, 8000, 0))
	for g.Add(udpDgram(false, 8000, 0)) {
	}
	if f := g.Finish(make(VirtioNetHdr, VirtioNetHdrLen)); len(f)-EthernetLen > 0xffff {
		t.Errorf("%d-byte IP packet", len(f)-EthernetLen)
	}
	// One datagram comes back as it was, no offload.
	one := udpDgram(false, 10, 0)
	g.Start(one)
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	if f := g.Finish(hdr); !bytes.Equal(f, one) || hdr.GSOType() != GSONone {
		t.Error("a single datagram changed")
	}
}

func TestUDPGROZeroAlloc(t *testing.T) {
	g := NewUDPGRO()
	a, b := udpDgram(true, 1400, 0), udpDgram(true, 1400, 1)
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	if n := testing.AllocsPerRun(100, func() {
		if !UDPGROPair(a, b) || !g.Start(a) || !g.Add(b) {
			panic("refused")
		}
		g.Finish(hdr)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func BenchmarkUDPGRO(b *testing.B) {
	var in [][]byte
	for i := 0; i < 44; i++ {
		in = append(in, udpDgram(false, 1450, byte(i)))
	}
	g := NewUDPGRO()
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	b.SetBytes(int64(44 * len(in[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Start(in[0])
		for _, d := range in[1:] {
			g.Add(d)
		}
		g.Finish(hdr)
	}
}
