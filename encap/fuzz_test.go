package encap

import (
	"bytes"
	"testing"
)

// The fuzz targets assert that no input makes a view or builder panic and
// that what they report is self-consistent. Seeds live in testdata/fuzz.

func FuzzIPv4(f *testing.F) {
	f.Add(validIPv4(28), 28)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		ip := IPv4(data)
		if len(data) >= IPv4MinLen {
			_ = FlowHash4(ip)
		}
		if !ip.IsValid(n) {
			return
		}
		hl, tl := ip.HeaderLen(), int(ip.TotalLength())
		if len(ip.Payload()) != tl-hl || len(ip.Options()) != hl-IPv4MinLen {
			t.Fatalf("payload %d options %d for hl %d tl %d", len(ip.Payload()), len(ip.Options()), hl, tl)
		}
		_, _, _ = ip.DF(), ip.MoreFragments(), ip.FragmentOffset()
		_ = ICMPv4ErrorAllowed(ip)
		valid := ip.HeaderChecksumValid()
		if ip.TTL() > 0 {
			ip.DecTTL()
			if ip.HeaderChecksumValid() != valid {
				t.Fatalf("DecTTL changed checksum validity from %v", valid)
			}
		}
		if EchoToReply4(ip, 64) && valid {
			if !ip.HeaderChecksumValid() {
				t.Fatalf("EchoToReply4 broke the header checksum")
			}
		}
		var buf [ICMPv4ErrorMaxLen]byte
		if m := BuildICMPv4Error(buf[:], ip.Dst(), ip.Src(), ICMPv4TimeExceeded, 0, 0, ip[:tl], 64); m < IPv4MinLen+ICMPv4Len+min(tl, IPv4MinLen+8) {
			t.Fatalf("error about a valid packet: %d bytes", m)
		}
	})
}

func FuzzIPv6(f *testing.F) {
	b := make([]byte, 48)
	IPv6(b).Encode(&IPv6Fields{PayloadLength: 8, NextHeader: ProtoUDP, HopLimit: 1, Src: src6, Dst: dst6})
	f.Add(b, 48)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		ip := IPv6(data)
		if len(data) >= IPv6Len {
			_ = FlowHash6(ip)
		}
		if !ip.IsValid(n) {
			return
		}
		if len(ip.Payload()) != int(ip.PayloadLength()) {
			t.Fatalf("payload %d, length field %d", len(ip.Payload()), ip.PayloadLength())
		}
		_, _ = ip.TrafficClass(), ip.FlowLabel()
		_ = ICMPv6ErrorAllowed(ip, ICMPv6TimeExceeded)
		if ip.NextHeader() == ProtoICMPv6 && len(ip.Payload()) >= ICMPv6Len {
			m := ICMPv6(ip.Payload())
			valid := m.ChecksumValid(ip.Src(), ip.Dst())
			_, _ = NDPSourceLinkAddr(m.NDPOptions())
			if EchoToReply6(ip, 64) && valid && !ICMPv6(ip.Payload()).ChecksumValid(ip.Src(), ip.Dst()) {
				t.Fatalf("EchoToReply6 broke the checksum")
			}
		}
	})
}

func FuzzARP(f *testing.F) {
	b := make([]byte, ARPLen)
	BuildARPRequest(b, mac1, src4, dst4)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		a := ARP(data)
		if !a.IsValid() {
			return
		}
		out := make([]byte, ARPLen)
		ARP(out).Encode(a.Op(), a.SHA(), a.SPA(), a.THA(), a.TPA())
		if !bytes.Equal(out, data[:ARPLen]) {
			t.Fatalf("re-encode differs:\n%x\n%x", out, data[:ARPLen])
		}
	})
}

func FuzzNDPOptions(f *testing.F) {
	f.Add([]byte{1, 1, 2, 0x11, 0x22, 0x33, 0x44, 0x55})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, opts []byte) {
		it := NDPOptionIter{Opts: opts}
		steps, consumed := 0, 0
		for _, body, ok := it.Next(); ok; _, body, ok = it.Next() {
			steps++
			consumed += len(body) + 2
			if steps > len(opts)/8 {
				t.Fatalf("%d steps over %d bytes", steps, len(opts))
			}
		}
		valid := NDPOptionsValid(opts)
		if valid == it.Err() || (valid && consumed != len(opts)) {
			t.Fatalf("valid %v, err %v, consumed %d of %d", valid, it.Err(), consumed, len(opts))
		}
		if _, ok := NDPSourceLinkAddr(opts); ok && !valid {
			t.Fatalf("source link address from an invalid option list")
		}
		if _, ok := NDPTargetLinkAddr(opts); ok && !valid {
			t.Fatalf("target link address from an invalid option list")
		}
		// The same bytes as a whole NA message.
		msg := append(make([]byte, NDPNeighborAdvertLen), opts...)
		msg[0] = ICMPv6NeighborAdvert
		if !bytes.Equal(ICMPv6(msg).NDPOptions(), opts) {
			t.Fatalf("NDPOptions of NA")
		}
	})
}

func FuzzBuildICMPErrors(f *testing.F) {
	f.Add(validIPv4(60), uint16(1500), uint8(3), uint8(4), uint32(1450), false)
	f.Add(make([]byte, 100), uint16(60), uint8(2), uint8(0), uint32(1280), true)
	f.Fuzz(func(t *testing.T, orig []byte, bufLen uint16, typ, code uint8, mtu uint32, v6 bool) {
		buf := make([]byte, int(bufLen)%2048)
		if !v6 {
			n := BuildICMPv4Error(buf, src4, dst4, typ, code, uint16(mtu), orig, 64)
			if n == 0 {
				return
			}
			ip := IPv4(buf)
			if n > ICMPv4ErrorMaxLen || !ip.IsValid(n) || int(ip.TotalLength()) != n || !ip.HeaderChecksumValid() {
				t.Fatalf("bad outer header, n %d: %x", n, buf[:20])
			}
			m := ICMPv4(ip.Payload())
			if !m.ChecksumValid() || m.Type() != typ || m.Code() != code || !bytes.Equal(m.Payload(), trimIPv4(orig)[:n-28]) {
				t.Fatalf("bad ICMPv4 message")
			}
			return
		}
		var s6 [16]byte = src6
		n := BuildICMPv6Error(buf, s6, dst6, typ, code, mtu, orig, 64)
		if n == 0 {
			return
		}
		ip := IPv6(buf)
		if n > ICMPv6ErrorMaxLen || !ip.IsValid(n) || IPv6Len+int(ip.PayloadLength()) != n {
			t.Fatalf("bad outer header, n %d", n)
		}
		m := ICMPv6(ip.Payload())
		if !m.ChecksumValid(s6, dst6) || m.Type() != typ || m.Code() != code || !bytes.Equal(m.Payload(), trimIPv6(orig)[:n-48]) {
			t.Fatalf("bad ICMPv6 message")
		}
	})
}

func FuzzEncapVXLAN(f *testing.F) {
	f.Add([]byte("inner frame bytes"), uint32(42), uint16(50000), true)
	f.Fuzz(func(t *testing.T, inner []byte, vni uint32, sport uint16, v6 bool) {
		if len(inner) > 60000 {
			return
		}
		if !v6 {
			b := append(make([]byte, VXLAN4EncapLen), inner...)
			if EncapVXLAN4(b, &VXLANTunnel4{Src: src4, Dst: dst4, VNI: vni, TTL: 64}, sport, len(inner)) != VXLAN4EncapLen {
				t.Fatalf("EncapVXLAN4 refused %d bytes", len(inner))
			}
			ip := IPv4(b)
			u := UDP(ip.Payload())
			if !ip.IsValid(len(b)) || !ip.HeaderChecksumValid() || !u.IsValid(len(u)) || u.SrcPort() != sport ||
				VXLAN(u.Payload()).VNI() != vni&0xffffff || !bytes.Equal(VXLAN(u.Payload()).Payload(), inner) {
				t.Fatalf("round trip failed")
			}
			return
		}
		b := append(make([]byte, VXLAN6EncapLen), inner...)
		if EncapVXLAN6(b, &VXLANTunnel6{Src: src6, Dst: dst6, VNI: vni, HopLimit: 64}, sport, len(inner)) != VXLAN6EncapLen {
			t.Fatalf("EncapVXLAN6 refused %d bytes", len(inner))
		}
		ip := IPv6(b)
		u := UDP(ip.Payload())
		if !ip.IsValid(len(b)) || !u.IsValid(len(u)) || Fold(Checksum(u, PseudoHeaderSum6(src6, dst6, ProtoUDP, uint32(len(u))))) != 0xffff ||
			VXLAN(u.Payload()).VNI() != vni&0xffffff || !bytes.Equal(VXLAN(u.Payload()).Payload(), inner) {
			t.Fatalf("round trip failed")
		}
	})
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 0x1c, 0xff, 0xff, 0xff}, uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, data []byte, initial uint32) {
		want := refChecksum(append([]byte{byte(initial >> 24), byte(initial >> 16), byte(initial >> 8), byte(initial)}, data...))
		if got := Fold(Checksum(data, initial)); got != want {
			t.Fatalf("Checksum = %#04x, reference %#04x", got, want)
		}
	})
}
