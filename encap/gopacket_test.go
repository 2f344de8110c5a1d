package encap

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// These tests check our views against gopacket as an independent decoder
// and encoder, in both directions.

func TestEthernetGopacket(t *testing.T) {
	b := make([]byte, EthernetLen+4)
	Ethernet(b).Encode(mac2, mac1, EtherTypeIPv6)
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		t.Fatalf("gopacket did not decode Ethernet")
	}
	if !bytes.Equal(eth.DstMAC, mac2[:]) || !bytes.Equal(eth.SrcMAC, mac1[:]) || eth.EthernetType != layers.EthernetTypeIPv6 {
		t.Errorf("gopacket read %v %v %v", eth.DstMAC, eth.SrcMAC, eth.EthernetType)
	}

	out := serialize(t, &layers.Ethernet{SrcMAC: hw(mac1), DstMAC: hw(mac2), EthernetType: layers.EthernetTypeARP})
	e := Ethernet(out)
	if e.Dst() != mac2 || e.Src() != mac1 || e.Type() != EtherTypeARP {
		t.Errorf("ours read %x %x %#x", e.Dst(), e.Src(), e.Type())
	}
}

func TestARPGopacket(t *testing.T) {
	spa, tpa := [4]byte{169, 254, 1, 1}, [4]byte{10, 1, 2, 3}
	b := make([]byte, ARPLen)
	if n := BuildARPReply(b, mac1, spa, mac2, tpa); n != ARPLen {
		t.Fatalf("BuildARPReply = %d, want %d", n, ARPLen)
	}
	p := gopacket.NewPacket(b, layers.LayerTypeARP, gopacket.Default)
	a, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if a == nil {
		t.Fatalf("gopacket did not decode ARP: %v", p.ErrorLayer())
	}
	if a.Operation != layers.ARPReply || a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 ||
		!bytes.Equal(a.SourceHwAddress, mac1[:]) || !bytes.Equal(a.SourceProtAddress, spa[:]) ||
		!bytes.Equal(a.DstHwAddress, mac2[:]) || !bytes.Equal(a.DstProtAddress, tpa[:]) {
		t.Errorf("gopacket read %+v", a)
	}

	out := serialize(t, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: hw(mac2), SourceProtAddress: ip4(tpa),
		DstHwAddress: make([]byte, 6), DstProtAddress: ip4(spa),
	})
	ar := ARP(out)
	if !ar.IsValid() {
		t.Fatalf("gopacket ARP not valid for us: %x", out)
	}
	if ar.Op() != ARPRequest || ar.SHA() != mac2 || ar.SPA() != tpa || ar.THA() != ([6]byte{}) || ar.TPA() != spa {
		t.Errorf("ours read op %d %x %v %x %v", ar.Op(), ar.SHA(), ar.SPA(), ar.THA(), ar.TPA())
	}
	req := make([]byte, ARPLen)
	BuildARPRequest(req, mac2, tpa, spa)
	if !bytes.Equal(req, out) {
		t.Errorf("BuildARPRequest differs from gopacket (-want +got):\n-%x\n+%x", out, req)
	}
}

func TestIPv4Gopacket(t *testing.T) {
	tests := []struct {
		name string
		f    IPv4Fields
	}{
		{"plain", IPv4Fields{TOS: 0x10, ID: 0x1234, TTL: 64, Protocol: ProtoUDP, Src: src4, Dst: dst4}},
		{"df", IPv4Fields{ID: 7, Flags: IPv4FlagDontFragment, TTL: 1, Protocol: ProtoTCP, Src: dst4, Dst: src4}},
		{"fragment", IPv4Fields{ID: 0xffff, Flags: IPv4FlagMoreFragments, FragmentOffset: 1480, TTL: 255, Protocol: ProtoICMP, Src: src4, Dst: [4]byte{255, 255, 255, 255}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := []byte("0123456789abcdef!")
			b := make([]byte, IPv4MinLen+len(payload))
			f := tt.f
			f.TotalLength = uint16(len(b))
			IPv4(b).Encode(&f)
			copy(b[IPv4MinLen:], payload)

			p := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
			g, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if g == nil {
				t.Fatalf("gopacket did not decode: %v", p.ErrorLayer())
			}
			if g.Version != 4 || g.IHL != 5 || g.TOS != f.TOS || g.Length != f.TotalLength || g.Id != f.ID ||
				uint8(g.Flags) != f.Flags || g.FragOffset*8 != f.FragmentOffset || g.TTL != f.TTL ||
				uint8(g.Protocol) != f.Protocol || !g.SrcIP.Equal(ip4(f.Src)) || !g.DstIP.Equal(ip4(f.Dst)) ||
				!bytes.Equal(g.Payload, payload) {
				t.Errorf("gopacket read %+v", g)
			}
			// gopacket's own checksum of the same header must match ours.
			g.Checksum = 0
			want := serialize(t, g, gopacket.Payload(payload))
			if got := IPv4(b).Checksum(); got != binary.BigEndian.Uint16(want[10:]) {
				t.Errorf("checksum %#04x, gopacket %#04x", got, binary.BigEndian.Uint16(want[10:]))
			}
			if !IPv4(b).HeaderChecksumValid() {
				t.Errorf("HeaderChecksumValid false after Encode")
			}
		})
	}

	// gopacket -> ours, with options (IHL 6) and link padding.
	g := &layers.IPv4{
		Version: 4, TOS: 0xb8, Id: 99, Flags: layers.IPv4DontFragment, TTL: 17, Protocol: layers.IPProtocolUDP,
		SrcIP: ip4(src4), DstIP: ip4(dst4),
		Options: []layers.IPv4Option{{OptionType: 7, OptionLength: 4, OptionData: []byte{4, 0}}},
	}
	pkt := serialize(t, g, gopacket.Payload([]byte("hello")))
	if len(pkt) != 24+5 {
		t.Fatalf("gopacket built %d bytes: %x", len(pkt), pkt)
	}
	padded := append(pkt, 0, 0, 0)
	ip := IPv4(padded)
	if !ip.IsValid(len(padded)) {
		t.Fatalf("IsValid false for %x", padded)
	}
	if ip.HeaderLen() != 24 || ip.TotalLength() != 29 || ip.TOS() != 0xb8 || ip.ID() != 99 || !ip.DF() || ip.MoreFragments() ||
		ip.FragmentOffset() != 0 || ip.TTL() != 17 || ip.Protocol() != ProtoUDP || ip.Src() != src4 || ip.Dst() != dst4 ||
		string(ip.Payload()) != "hello" || !ip.HeaderChecksumValid() || len(ip.Options()) != 4 {
		t.Errorf("ours read hl %d tl %d payload %q csum ok %v", ip.HeaderLen(), ip.TotalLength(), ip.Payload(), ip.HeaderChecksumValid())
	}
}

func TestIPv6Gopacket(t *testing.T) {
	b := make([]byte, IPv6Len+5)
	IPv6(b).Encode(&IPv6Fields{TrafficClass: 0xb9, FlowLabel: 0xabcde, PayloadLength: 5, NextHeader: ProtoUDP, HopLimit: 3, Src: src6, Dst: dst6})
	copy(b[IPv6Len:], "world")
	p := gopacket.NewPacket(b, layers.LayerTypeIPv6, gopacket.DecodeOptions{})
	g, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if g == nil {
		t.Fatalf("gopacket did not decode: %v", p.ErrorLayer())
	}
	if g.Version != 6 || g.TrafficClass != 0xb9 || g.FlowLabel != 0xabcde || g.Length != 5 || g.NextHeader != layers.IPProtocolUDP ||
		g.HopLimit != 3 || !g.SrcIP.Equal(ip6(src6)) || !g.DstIP.Equal(ip6(dst6)) || string(g.Payload) != "world" {
		t.Errorf("gopacket read %+v", g)
	}

	out := serialize(t, &layers.IPv6{Version: 6, TrafficClass: 0x21, FlowLabel: 0x12345, NextHeader: layers.IPProtocolTCP, HopLimit: 200,
		SrcIP: ip6(dst6), DstIP: ip6(src6)}, gopacket.Payload("abc"))
	ip := IPv6(out)
	if !ip.IsValid(len(out)) {
		t.Fatalf("IsValid false for %x", out)
	}
	if ip.TrafficClass() != 0x21 || ip.FlowLabel() != 0x12345 || ip.PayloadLength() != 3 || ip.NextHeader() != ProtoTCP ||
		ip.HopLimit() != 200 || ip.Src() != dst6 || ip.Dst() != src6 || string(ip.Payload()) != "abc" {
		t.Errorf("ours read tc %#x fl %#x len %d nh %d hl %d", ip.TrafficClass(), ip.FlowLabel(), ip.PayloadLength(), ip.NextHeader(), ip.HopLimit())
	}
	ip.SetTrafficClass(0x42)
	ip.SetFlowLabel(0xfedcb)
	if ip.Version() != 6 || ip.TrafficClass() != 0x42 || ip.FlowLabel() != 0xfedcb {
		t.Errorf("setters: v %d tc %#x fl %#x", ip.Version(), ip.TrafficClass(), ip.FlowLabel())
	}
}

func TestUDPChecksumGopacket(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 100, 1401} {
		payload := bytes.Repeat([]byte{0xa5, 0x5a, 0xff}, n)[:n]
		// IPv4
		g4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ip4(src4), DstIP: ip4(dst4)}
		gu := &layers.UDP{SrcPort: 5353, DstPort: 4789}
		gu.SetNetworkLayerForChecksum(g4)
		out := serialize(t, gu, gopacket.Payload(payload))
		u := UDP(out)
		if !u.IsValid(len(out)) || u.SrcPort() != 5353 || u.DstPort() != 4789 || int(u.Length()) != len(out) || !bytes.Equal(u.Payload(), payload) {
			t.Errorf("n=%d: ours read %x", n, out[:8])
		}
		if got, want := UDPChecksum4(src4, dst4, out), u.Checksum(); got != want {
			t.Errorf("n=%d: UDPChecksum4 = %#04x, gopacket %#04x", n, got, want)
		}
		// IPv6
		g6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 64, SrcIP: ip6(src6), DstIP: ip6(dst6)}
		gu.SetNetworkLayerForChecksum(g6)
		out = serialize(t, gu, gopacket.Payload(payload))
		if got, want := UDPChecksum6(src6, dst6, out), UDP(out).Checksum(); got != want {
			t.Errorf("n=%d: UDPChecksum6 = %#04x, gopacket %#04x", n, got, want)
		}
	}
}

func decodeVXLAN(t *testing.T, p gopacket.Packet, vni uint32, inner []byte) {
	t.Helper()
	v, _ := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if v == nil {
		t.Fatalf("gopacket found no VXLAN: %v", p)
	}
	if !v.ValidIDFlag || v.VNI != vni || !bytes.Equal(v.Payload, inner) {
		t.Errorf("gopacket VXLAN %+v", v)
	}
	u := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if u.DstPort != VXLANPort || u.SrcPort < VXLANSrcPortMin || int(u.Length) != UDPLen+VXLANLen+len(inner) {
		t.Errorf("gopacket UDP %+v", u)
	}
	e, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if e == nil || !bytes.Equal(e.SrcMAC, mac1[:]) {
		t.Errorf("inner Ethernet not decoded: %v", p)
	}
}

func TestVXLANGopacket(t *testing.T) {
	inner := make([]byte, EthernetLen+IPv4MinLen+3)
	Ethernet(inner).Encode(mac2, mac1, EtherTypeIPv4)
	IPv4(inner[EthernetLen:]).Encode(&IPv4Fields{TotalLength: IPv4MinLen + 3, TTL: 9, Protocol: 253, Src: src4, Dst: dst4})
	sport := VXLANSourcePort(FlowHash4(IPv4(inner[EthernetLen:])))

	t.Run("v4", func(t *testing.T) {
		b := make([]byte, VXLAN4EncapLen+len(inner))
		copy(b[VXLAN4EncapLen:], inner)
		if n := EncapVXLAN4(b, &VXLANTunnel4{Src: src4, Dst: dst4, VNI: 0xabcdef, TTL: 64, DF: true}, sport, len(inner)); n != VXLAN4EncapLen {
			t.Fatalf("EncapVXLAN4 = %d", n)
		}
		p := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
		g := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if int(g.Length) != len(b) || g.Flags != layers.IPv4DontFragment || g.Protocol != layers.IPProtocolUDP {
			t.Errorf("outer %+v", g)
		}
		decodeVXLAN(t, p, 0xabcdef, inner)
		if !IPv4(b).HeaderChecksumValid() || UDP(b[IPv4MinLen:]).Checksum() != 0 {
			t.Errorf("outer checksums: ip ok %v udp %#x", IPv4(b).HeaderChecksumValid(), UDP(b[IPv4MinLen:]).Checksum())
		}
	})
	t.Run("v6", func(t *testing.T) {
		b := make([]byte, VXLAN6EncapLen+len(inner))
		copy(b[VXLAN6EncapLen:], inner)
		if n := EncapVXLAN6(b, &VXLANTunnel6{Src: src6, Dst: dst6, VNI: 42, HopLimit: 64}, sport, len(inner)); n != VXLAN6EncapLen {
			t.Fatalf("EncapVXLAN6 = %d", n)
		}
		p := gopacket.NewPacket(b, layers.LayerTypeIPv6, gopacket.Default)
		decodeVXLAN(t, p, 42, inner)
		// Recompute the UDP checksum with gopacket.
		g6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		gu := *p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		gu.SetNetworkLayerForChecksum(g6)
		want := serialize(t, &gu, gopacket.Payload(b[IPv6Len+UDPLen:]))
		if got := UDP(b[IPv6Len:]).Checksum(); got != binary.BigEndian.Uint16(want[6:]) {
			t.Errorf("UDP checksum %#04x, gopacket %#04x", got, binary.BigEndian.Uint16(want[6:]))
		}
	})
	// gopacket -> ours
	out := serialize(t, &layers.VXLAN{ValidIDFlag: true, VNI: 0x123456}, gopacket.Payload(inner))
	v := VXLAN(out)
	if !v.IsValid() || v.VNI() != 0x123456 || v.Flags() != VXLANFlagVNI || !bytes.Equal(v.Payload(), inner) {
		t.Errorf("ours read %x", out[:8])
	}
}

func TestICMPv4ErrorGopacket(t *testing.T) {
	orig := make([]byte, 1000)
	IPv4(orig).Encode(&IPv4Fields{TotalLength: 1000, TTL: 1, Protocol: ProtoUDP, Flags: IPv4FlagDontFragment, Src: dst4, Dst: [4]byte{8, 8, 8, 8}})
	for i := IPv4MinLen; i < len(orig); i++ {
		orig[i] = byte(i)
	}
	tests := []struct {
		name       string
		typ, code  uint8
		mtu        uint16
		orig       []byte
		bufLen     int
		wantLen    int
		wantMTUOut uint16
	}{
		{"time exceeded", ICMPv4TimeExceeded, 0, 1500, orig, 2048, 576, 0},
		{"frag needed", ICMPv4DestUnreachable, ICMPv4FragNeeded, 1450, orig, 2048, 576, 1450},
		{"small orig", ICMPv4DestUnreachable, ICMPv4HostUnreachable, 0, orig[:20+8], 2048, 28 + 28, 0},
		{"cut to buffer", ICMPv4DestUnreachable, ICMPv4NetUnreachable, 0, orig, 100, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, tt.bufLen)
			n := BuildICMPv4Error(b, src4, dst4, tt.typ, tt.code, tt.mtu, tt.orig, 64)
			if n != tt.wantLen {
				t.Fatalf("len %d, want %d", n, tt.wantLen)
			}
			p := gopacket.NewPacket(b[:n], layers.LayerTypeIPv4, gopacket.Default)
			g := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			ic, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ic == nil {
				t.Fatalf("gopacket found no ICMPv4: %v", p)
			}
			if int(g.Length) != n || g.TTL != 64 || g.Protocol != layers.IPProtocolICMPv4 || !g.SrcIP.Equal(ip4(src4)) || !g.DstIP.Equal(ip4(dst4)) {
				t.Errorf("outer %+v", g)
			}
			if ic.TypeCode.Type() != tt.typ || ic.TypeCode.Code() != tt.code || ic.Seq != tt.wantMTUOut || ic.Id != 0 {
				t.Errorf("icmp %+v", ic)
			}
			if want := gpICMPv4Checksum(t, b[IPv4MinLen:n]); ic.Checksum != want {
				t.Errorf("icmp checksum %#04x, gopacket %#04x", ic.Checksum, want)
			}
			if !bytes.Equal(ic.Payload, tt.orig[:n-28]) {
				t.Errorf("quote is not orig's prefix")
			}
			if !IPv4(b).HeaderChecksumValid() || !ICMPv4(b[IPv4MinLen:n]).ChecksumValid() {
				t.Errorf("checksums invalid")
			}
		})
	}
	if n := BuildICMPv4Error(make([]byte, 55), src4, dst4, 3, 1, 0, orig, 64); n != 0 {
		t.Errorf("too small buffer: got %d, want 0", n)
	}
}

func TestICMPv6ErrorGopacket(t *testing.T) {
	orig := make([]byte, 1500)
	IPv6(orig).Encode(&IPv6Fields{PayloadLength: 1460, NextHeader: ProtoUDP, HopLimit: 1, Src: dst6, Dst: src6})
	for i := IPv6Len; i < len(orig); i++ {
		orig[i] = byte(i * 7)
	}
	for _, tt := range []struct {
		name      string
		typ, code uint8
		mtu       uint32
		orig      []byte
		wantLen   int
	}{
		{"packet too big", ICMPv6PacketTooBig, 0, 1430, orig, 1280},
		{"time exceeded", ICMPv6TimeExceeded, ICMPv6HopLimitExceeded, 1430, orig[:100], 48 + 100},
		{"no route", ICMPv6DestUnreachable, ICMPv6NoRoute, 0, orig, 1280},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, 2048)
			n := BuildICMPv6Error(b, src6, dst6, tt.typ, tt.code, tt.mtu, tt.orig, 255)
			if n != tt.wantLen {
				t.Fatalf("len %d, want %d", n, tt.wantLen)
			}
			p := gopacket.NewPacket(b[:n], layers.LayerTypeIPv6, gopacket.Default)
			g := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			ic, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			if ic == nil {
				t.Fatalf("gopacket found no ICMPv6: %v", p)
			}
			if int(g.Length) != n-40 || g.HopLimit != 255 || g.NextHeader != layers.IPProtocolICMPv6 {
				t.Errorf("outer %+v", g)
			}
			if ic.TypeCode.Type() != tt.typ || ic.TypeCode.Code() != tt.code {
				t.Errorf("icmp %v", ic.TypeCode)
			}
			wantWord := uint32(0)
			if tt.typ == ICMPv6PacketTooBig {
				wantWord = tt.mtu
			}
			if got := binary.BigEndian.Uint32(ic.Payload); got != wantWord {
				t.Errorf("word after checksum %d, want %d", got, wantWord)
			}
			if want := gpICMPv6Checksum(t, src6, dst6, b[IPv6Len:n]); ic.Checksum != want {
				t.Errorf("checksum %#04x, gopacket %#04x", ic.Checksum, want)
			}
			if !bytes.Equal(ic.Payload[4:], tt.orig[:n-48]) {
				t.Errorf("quote is not orig's prefix")
			}
		})
	}
}

func TestNDPGopacket(t *testing.T) {
	target := [16]byte{0xfe, 0x80, 15: 1}
	b := make([]byte, 128)
	n := BuildNeighborAdvert(b, target, src6, target, mac1, true, true)
	if n != NeighborAdvertLen {
		t.Fatalf("BuildNeighborAdvert = %d", n)
	}
	p := gopacket.NewPacket(b[:n], layers.LayerTypeIPv6, gopacket.Default)
	na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na == nil {
		t.Fatalf("gopacket found no NA: %v", p)
	}
	if g := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); g.HopLimit != 255 || !g.DstIP.Equal(ip6(src6)) || !g.SrcIP.Equal(ip6(target)) {
		t.Errorf("outer %+v", g)
	}
	if na.Flags != 0xe0 || !na.TargetAddress.Equal(ip6(target)) || len(na.Options) != 1 ||
		na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, mac1[:]) {
		t.Errorf("NA %+v", na)
	}
	ic := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if want := gpICMPv6Checksum(t, target, src6, b[IPv6Len:n]); ic.Checksum != want {
		t.Errorf("NA checksum %#04x, gopacket %#04x", ic.Checksum, want)
	}

	// Unspecified solicitor: to all-nodes, S clear.
	BuildNeighborAdvert(b, target, [16]byte{}, target, mac1, true, false)
	if ip := IPv6(b); ip.Dst() != IPv6AllNodes || ICMPv6(ip.Payload()).NAFlags() != NDPFlagOverride ||
		!ICMPv6(ip.Payload()).ChecksumValid(target, IPv6AllNodes) {
		t.Errorf("DAD answer: dst %x flags %#x", ip.Dst(), ICMPv6(ip.Payload()).NAFlags())
	}

	// Our NS, decoded by gopacket.
	n = BuildNeighborSolicit(b, src6, dst6, mac2)
	p = gopacket.NewPacket(b[:n], layers.LayerTypeIPv6, gopacket.Default)
	ns, _ := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
	if ns == nil {
		t.Fatalf("gopacket found no NS: %v", p)
	}
	wantDst := net.ParseIP("ff02::1:ff00:42")
	if g := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); !g.DstIP.Equal(wantDst) || g.HopLimit != 255 {
		t.Errorf("NS outer %+v", g)
	}
	if !ns.TargetAddress.Equal(ip6(dst6)) || len(ns.Options) != 1 || ns.Options[0].Type != layers.ICMPv6OptSourceAddress ||
		!bytes.Equal(ns.Options[0].Data, mac2[:]) {
		t.Errorf("NS %+v", ns)
	}
	if !ICMPv6(b[IPv6Len:n]).ChecksumValid(src6, IPv6(b).Dst()) {
		t.Errorf("NS checksum invalid")
	}

	// gopacket's NS, read by us.
	g6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255, SrcIP: ip6(src6), DstIP: wantDst}
	gi := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	gi.SetNetworkLayerForChecksum(g6)
	out := serialize(t, g6, gi, &layers.ICMPv6NeighborSolicitation{
		TargetAddress: ip6(target),
		Options: layers.ICMPv6Options{
			{Type: layers.ICMPv6OptMTU, Data: []byte{0, 0, 0, 0, 5, 0xdc}},
			{Type: layers.ICMPv6OptSourceAddress, Data: mac2[:]},
		},
	})
	ip := IPv6(out)
	if !ip.IsValid(len(out)) || ip.NextHeader() != ProtoICMPv6 {
		t.Fatalf("gopacket NS not valid for us: %x", out)
	}
	m := ICMPv6(ip.Payload())
	if m.Type() != ICMPv6NeighborSolicit || m.NDPTarget() != target || !m.ChecksumValid(src6, ip.Dst()) {
		t.Errorf("ours read type %d target %x", m.Type(), m.NDPTarget())
	}
	opts := m.NDPOptions()
	if mac, ok := NDPSourceLinkAddr(opts); !ok || mac != mac2 {
		t.Errorf("NDPSourceLinkAddr = %x, %v", mac, ok)
	}
	if _, ok := NDPTargetLinkAddr(opts); ok {
		t.Errorf("NDPTargetLinkAddr found an option that is not there")
	}
}

func TestEchoReplyGopacket(t *testing.T) {
	g4 := &layers.IPv4{Version: 4, TTL: 61, Protocol: layers.IPProtocolICMPv4, SrcIP: ip4(src4), DstIP: ip4(dst4)}
	out := serialize(t, g4, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: 9}, gopacket.Payload("ping data"))
	ip := IPv4(out)
	if !EchoToReply4(ip, 64) {
		t.Fatalf("EchoToReply4 refused an echo request")
	}
	g4 = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: ip4(dst4), DstIP: ip4(src4)}
	want := serialize(t, g4, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 7, Seq: 9}, gopacket.Payload("ping data"))
	if !bytes.Equal(out, want) {
		t.Errorf("echo reply (-want +got):\n-%x\n+%x", want, out)
	}
	if EchoToReply4(ip, 64) {
		t.Errorf("EchoToReply4 accepted a reply")
	}

	g6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 3, SrcIP: ip6(src6), DstIP: ip6(dst6)}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
	ic.SetNetworkLayerForChecksum(g6)
	out = serialize(t, g6, ic, gopacket.Payload("\x00\x07\x00\x09ping6"))
	if !EchoToReply6(IPv6(out), 64) {
		t.Fatalf("EchoToReply6 refused an echo request")
	}
	g6 = &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 64, SrcIP: ip6(dst6), DstIP: ip6(src6)}
	ic = &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(129, 0)}
	ic.SetNetworkLayerForChecksum(g6)
	want = serialize(t, g6, ic, gopacket.Payload("\x00\x07\x00\x09ping6"))
	if !bytes.Equal(out, want) {
		t.Errorf("echo6 reply (-want +got):\n-%x\n+%x", want, out)
	}
}
