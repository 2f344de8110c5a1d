package encap

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func validIPv4(total int) []byte {
	b := make([]byte, total)
	IPv4(b).Encode(&IPv4Fields{TotalLength: uint16(total), TTL: 64, Protocol: ProtoUDP, Src: src4, Dst: dst4})
	return b
}

func TestIPv4IsValid(t *testing.T) {
	mod := func(f func(b []byte)) []byte { b := validIPv4(40); f(b); return b }
	tests := []struct {
		name string
		b    []byte
		n    int
		want bool
	}{
		{"ok", validIPv4(40), 40, true},
		{"padding after total length", validIPv4(40), 40, true},
		{"n beyond slice", validIPv4(40), 41, false},
		{"short", validIPv4(40)[:19], 19, false},
		{"n short of total length", validIPv4(40), 39, false},
		{"version 6", mod(func(b []byte) { b[0] = 0x65 }), 40, false},
		{"ihl 4", mod(func(b []byte) { b[0] = 0x44 }), 40, false},
		{"ihl past total", mod(func(b []byte) { b[0] = 0x4f }), 40, false},
		{"ihl 15 fits", mod(func(b []byte) { b[0] = 0x4a }), 40, true},
		{"total < 20", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 19) }), 40, false},
		{"total < n", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 30) }), 40, true},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IPv4(tt.b).IsValid(tt.n); got != tt.want {
				t.Errorf("IsValid(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestIPv6IsValid(t *testing.T) {
	b := make([]byte, 60)
	IPv6(b).Encode(&IPv6Fields{PayloadLength: 20, NextHeader: ProtoUDP, HopLimit: 1})
	tests := []struct {
		name string
		b    []byte
		n    int
		want bool
	}{
		{"ok", b, 60, true},
		{"n short", b, 59, false},
		{"n past slice", b, 61, false},
		{"slice short", b[:39], 39, false},
		{"version 4", append([]byte{0x45}, b[1:]...), 60, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IPv6(tt.b).IsValid(tt.n); got != tt.want {
				t.Errorf("IsValid(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestSmallViews(t *testing.T) {
	u := make(UDP, 12)
	u.Encode(1, 2, 12)
	if !u.IsValid(12) || u.IsValid(11) || u.SrcPort() != 1 || u.DstPort() != 2 || u.Length() != 12 || len(u.Payload()) != 4 {
		t.Errorf("UDP view wrong: %x", []byte(u))
	}
	u.SetLength(7)
	if u.IsValid(12) {
		t.Errorf("UDP length 7 valid")
	}

	v := make(VXLAN, 8)
	for i := range v {
		v[i] = 0xff
	}
	v.Encode(0x1ffffff)
	if !bytes.Equal(v, []byte{8, 0, 0, 0, 0xff, 0xff, 0xff, 0}) || v.VNI() != 0xffffff || !v.IsValid() {
		t.Errorf("VXLAN Encode: %x", []byte(v))
	}
	if VXLAN([]byte{0, 0, 0, 0, 0, 0, 1, 0}).IsValid() {
		t.Errorf("VXLAN without I flag valid")
	}

	a := make(ARP, ARPLen)
	BuildARPReply(a, mac1, src4, mac2, dst4)
	if !a.IsValid() || a[:27].IsValid() {
		t.Errorf("ARP validity")
	}
	a[4] = 8
	if a.IsValid() {
		t.Errorf("ARP hlen 8 valid")
	}

	ic := make(ICMPv4, 8)
	ic.SetType(ICMPv4EchoRequest)
	ic.SetCode(0)
	ic.SetIdent(0x1234)
	ic.SetSeq(0x5678)
	if ic.Type() != 8 || ic.Ident() != 0x1234 || ic.Seq() != 0x5678 || !bytes.Equal(ic.RestOfHeader(), []byte{0x12, 0x34, 0x56, 0x78}) {
		t.Errorf("ICMPv4 view: %x", []byte(ic))
	}
	ic.SetMTU(1450)
	if ic.MTU() != 1450 || ic.Seq() != 1450 {
		t.Errorf("ICMPv4 MTU: %x", []byte(ic))
	}

	i6 := make(ICMPv6, 24)
	i6.SetMTU(1280)
	if i6.MTU() != 1280 {
		t.Errorf("ICMPv6 MTU")
	}
	i6.SetNAFlags(true, false, true)
	if i6.NAFlags() != NDPFlagRouter|NDPFlagOverride || binary.BigEndian.Uint32(i6[4:]) != 0xa0000000 {
		t.Errorf("NA flags %x", []byte(i6[4:8]))
	}

	if got := IPv6MulticastMAC(SolicitedNodeMulticast(dst6)); got != [6]byte{0x33, 0x33, 0xff, 0, 0, 0x42} {
		t.Errorf("solicited-node MAC %x", got)
	}
	if VXLANSourcePort(0) != 49152 || VXLANSourcePort(0xffffffff) != 65535 {
		t.Errorf("VXLANSourcePort range")
	}
}

func TestIPv4Fragments(t *testing.T) {
	b := validIPv4(40)
	ip := IPv4(b)
	for _, tt := range []struct {
		flags    uint8
		off      uint16
		frag, mf bool
	}{
		{0, 0, false, false},
		{IPv4FlagDontFragment, 0, false, false},
		{IPv4FlagMoreFragments, 0, true, true},
		{0, 8, true, false},
		{IPv4FlagMoreFragments, 65528, true, true},
	} {
		ip.Encode(&IPv4Fields{TotalLength: 40, Flags: tt.flags, FragmentOffset: tt.off, TTL: 1})
		if ip.IsFragment() != tt.frag || ip.MoreFragments() != tt.mf || ip.FragmentOffset() != tt.off || ip.Flags() != tt.flags {
			t.Errorf("flags %d off %d: frag %v mf %v off %d", tt.flags, tt.off, ip.IsFragment(), ip.MoreFragments(), ip.FragmentOffset())
		}
	}
}

func TestForwardable(t *testing.T) {
	for _, tt := range []struct {
		a    [4]byte
		want bool
	}{
		{[4]byte{10, 1, 2, 3}, true},
		{[4]byte{240, 0, 0, 1}, true},
		{[4]byte{0, 0, 0, 0}, false},
		{[4]byte{0, 1, 2, 3}, false},
		{[4]byte{127, 0, 0, 1}, false},
		{[4]byte{169, 254, 1, 1}, false},
		{[4]byte{169, 253, 1, 1}, true},
		{[4]byte{224, 0, 0, 5}, false},
		{[4]byte{239, 255, 255, 255}, false},
		{[4]byte{255, 255, 255, 255}, false},
		{[4]byte{255, 255, 255, 254}, true},
	} {
		if got := IsIPv4Forwardable(tt.a); got != tt.want {
			t.Errorf("IsIPv4Forwardable(%v) = %v, want %v", tt.a, got, tt.want)
		}
	}
	for _, tt := range []struct {
		a    [16]byte
		want bool
	}{
		{dst6, true},
		{[16]byte{}, false},
		{[16]byte{15: 1}, false},
		{[16]byte{0xfe, 0x80, 15: 1}, false},
		{[16]byte{0xfe, 0xbf, 15: 1}, false},
		{[16]byte{0xfe, 0xc0, 15: 1}, true},
		{[16]byte{0xff, 0x02, 15: 1}, false},
		{[16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}, false},
		{[16]byte{0xfd, 0, 15: 1}, true},
		{[16]byte{0x00, 0x64, 0xff, 0x9b, 15: 1}, true},
	} {
		if got := IsIPv6Forwardable(tt.a); got != tt.want {
			t.Errorf("IsIPv6Forwardable(%x) = %v, want %v", tt.a, got, tt.want)
		}
	}
}

func TestICMPErrorAllowed(t *testing.T) {
	mk := func(proto uint8, src, dst [4]byte, flags uint8, off uint16, icmpType uint8) IPv4 {
		b := make([]byte, 28)
		IPv4(b).Encode(&IPv4Fields{TotalLength: 28, TTL: 1, Protocol: proto, Flags: flags, FragmentOffset: off, Src: src, Dst: dst})
		b[20] = icmpType
		return b
	}
	for _, tt := range []struct {
		name string
		ip   IPv4
		want bool
	}{
		{"udp", mk(ProtoUDP, src4, dst4, 0, 0, 0), true},
		{"echo request", mk(ProtoICMP, src4, dst4, 0, 0, ICMPv4EchoRequest), true},
		{"icmp error", mk(ProtoICMP, src4, dst4, 0, 0, ICMPv4TimeExceeded), false},
		{"first fragment", mk(ProtoUDP, src4, dst4, IPv4FlagMoreFragments, 0, 0), true},
		{"later fragment", mk(ProtoUDP, src4, dst4, 0, 8, 0), false},
		{"multicast dst", mk(ProtoUDP, src4, [4]byte{224, 0, 0, 1}, 0, 0, 0), false},
		{"broadcast dst", mk(ProtoUDP, src4, [4]byte{255, 255, 255, 255}, 0, 0, 0), false},
		{"zero src", mk(ProtoUDP, [4]byte{}, dst4, 0, 0, 0), false},
		{"loopback src", mk(ProtoUDP, [4]byte{127, 0, 0, 1}, dst4, 0, 0, 0), false},
	} {
		if got := ICMPv4ErrorAllowed(tt.ip); got != tt.want {
			t.Errorf("%s: ICMPv4ErrorAllowed = %v, want %v", tt.name, got, tt.want)
		}
	}
	mk6 := func(nh uint8, src, dst [16]byte, icmpType uint8) IPv6 {
		b := make([]byte, 48)
		IPv6(b).Encode(&IPv6Fields{PayloadLength: 8, NextHeader: nh, HopLimit: 1, Src: src, Dst: dst})
		b[40] = icmpType
		return b
	}
	for _, tt := range []struct {
		name string
		ip   IPv6
		typ  uint8
		want bool
	}{
		{"udp", mk6(ProtoUDP, src6, dst6, 0), ICMPv6TimeExceeded, true},
		{"echo", mk6(ProtoICMPv6, src6, dst6, ICMPv6EchoRequest), ICMPv6DestUnreachable, true},
		{"error about error", mk6(ProtoICMPv6, src6, dst6, ICMPv6PacketTooBig), ICMPv6TimeExceeded, false},
		{"multicast dst", mk6(ProtoUDP, src6, IPv6AllNodes, 0), ICMPv6TimeExceeded, false},
		{"multicast dst too big", mk6(ProtoUDP, src6, IPv6AllNodes, 0), ICMPv6PacketTooBig, true},
		{"unspecified src", mk6(ProtoUDP, [16]byte{}, dst6, 0), ICMPv6TimeExceeded, false},
	} {
		if got := ICMPv6ErrorAllowed(tt.ip, tt.typ); got != tt.want {
			t.Errorf("%s: ICMPv6ErrorAllowed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNDPOptionIter(t *testing.T) {
	sll := []byte{1, 1, 2, 0x11, 0x22, 0x33, 0x44, 0x55}
	tll := []byte{2, 1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
	mtu := []byte{5, 1, 0, 0, 0, 0, 5, 0xdc}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tt := range []struct {
		name     string
		opts     []byte
		valid    bool
		src, tgt bool
	}{
		{"empty", nil, true, false, false},
		{"source", sll, true, true, false},
		{"both", cat(mtu, tll, sll), true, true, true},
		{"zero length", cat(sll, []byte{1, 0, 0, 0, 0, 0, 0, 0}), false, false, false},
		{"overrun", cat(sll, []byte{2, 2, 0, 0, 0, 0, 0, 0}), false, false, false},
		{"trailing byte", cat(sll, []byte{1}), false, false, false},
		{"long source option", []byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := NDPOptionsValid(tt.opts); got != tt.valid {
				t.Errorf("NDPOptionsValid = %v, want %v", got, tt.valid)
			}
			if mac, ok := NDPSourceLinkAddr(tt.opts); ok != tt.src || (ok && mac != mac1) {
				t.Errorf("NDPSourceLinkAddr = %x, %v, want %v", mac, ok, tt.src)
			}
			if mac, ok := NDPTargetLinkAddr(tt.opts); ok != tt.tgt || (ok && mac != mac2) {
				t.Errorf("NDPTargetLinkAddr = %x, %v, want %v", mac, ok, tt.tgt)
			}
		})
	}
}

func TestFlowHash(t *testing.T) {
	b := make([]byte, 28)
	ip := IPv4(b)
	ip.Encode(&IPv4Fields{TotalLength: 28, TTL: 1, Protocol: ProtoUDP, Src: src4, Dst: dst4})
	binary.BigEndian.PutUint32(b[20:], 1234<<16|80)
	h := FlowHash4(ip)
	binary.BigEndian.PutUint32(b[20:], 1235<<16|80)
	if FlowHash4(ip) == h {
		t.Errorf("source port does not change the hash")
	}
	// TTL and ID are not part of the flow.
	ip.DecTTL()
	b[4] = 9
	h = FlowHash4(ip)
	binary.BigEndian.PutUint32(b[20:], 1<<16|2)
	ip.Encode(&IPv4Fields{TotalLength: 28, TTL: 1, Protocol: ProtoUDP, Flags: IPv4FlagMoreFragments, Src: src4, Dst: dst4})
	f1 := FlowHash4(ip)
	binary.BigEndian.PutUint32(b[20:], 3<<16|4)
	if FlowHash4(ip) != f1 {
		t.Errorf("fragment hash depends on payload")
	}
	_ = h
	// Truncated packets still hash without reading past the slice.
	_ = FlowHash4(ip[:20])

	b6 := make([]byte, 48)
	IPv6(b6).Encode(&IPv6Fields{PayloadLength: 8, NextHeader: ProtoTCP, Src: src6, Dst: dst6})
	h6 := FlowHash6(b6)
	b6[41] = 1
	if FlowHash6(b6) == h6 {
		t.Errorf("port does not change the v6 hash")
	}
	IPv6(b6).SetFlowLabel(77)
	IPv6(b6).SetHopLimit(3)
	b6[41] = 0
	if FlowHash6(b6) != h6 {
		t.Errorf("flow label or hop limit changes the v6 hash")
	}
	_ = FlowHash6(b6[:40])

	// Spread: 4096 flows over 8 buckets, none grossly uneven.
	var buckets [8]int
	for p := 0; p < 4096; p++ {
		binary.BigEndian.PutUint32(b[20:], uint32(p)<<16|443)
		ip.Encode(&IPv4Fields{TotalLength: 28, TTL: 1, Protocol: ProtoTCP, Src: src4, Dst: dst4})
		buckets[FlowHash4(ip)%8]++
	}
	for i, n := range buckets {
		if n < 400 || n > 640 {
			t.Errorf("bucket %d has %d of 4096 flows", i, n)
		}
	}
}

func TestBuildInPlace(t *testing.T) {
	// The error overwrites the offending packet in its own buffer.
	orig := validIPv4(200)
	for i := IPv4MinLen; i < 200; i++ {
		orig[i] = byte(i)
	}
	want := append([]byte{}, orig...)
	buf := make([]byte, 1024)
	copy(buf, orig)
	n := BuildICMPv4Error(buf, dst4, src4, ICMPv4TimeExceeded, 0, 0, buf[:200], 64)
	if n != 228 || !bytes.Equal(buf[28:n], want) || !IPv4(buf).HeaderChecksumValid() || !ICMPv4(buf[20:n]).ChecksumValid() {
		t.Errorf("in-place v4 error: n %d", n)
	}

	o6 := make([]byte, 300)
	IPv6(o6).Encode(&IPv6Fields{PayloadLength: 260, NextHeader: ProtoUDP, HopLimit: 1, Src: src6, Dst: dst6})
	for i := IPv6Len; i < 300; i++ {
		o6[i] = byte(i)
	}
	want6 := append([]byte{}, o6...)
	buf = make([]byte, 1024)
	copy(buf[14:], o6) // orig behind where the error starts
	n = BuildICMPv6Error(buf, dst6, src6, ICMPv6TimeExceeded, 0, 0, buf[14:314], 64)
	if n != 48+300 || !bytes.Equal(buf[48:n], want6) || !ICMPv6(buf[40:n]).ChecksumValid(dst6, src6) {
		t.Errorf("in-place v6 error: n %d", n)
	}
}

func TestBuildersTooSmall(t *testing.T) {
	for _, n := range []int{0, 1, 27, 47, 55, 71} {
		b := make([]byte, n)
		if BuildARPReply(b, mac1, src4, mac2, dst4) != 0 && n < ARPLen {
			t.Errorf("BuildARPReply into %d", n)
		}
		if BuildNeighborAdvert(b, src6, dst6, src6, mac1, true, false) != 0 {
			t.Errorf("BuildNeighborAdvert into %d", n)
		}
		if BuildNeighborSolicit(b, src6, dst6, mac1) != 0 {
			t.Errorf("BuildNeighborSolicit into %d", n)
		}
		if BuildICMPv6Error(b, src6, dst6, 1, 0, 0, make([]byte, 100), 64) != 0 {
			t.Errorf("BuildICMPv6Error into %d", n)
		}
		if EncapVXLAN6(b, &VXLANTunnel6{}, 1, 16) != 0 {
			t.Errorf("EncapVXLAN6 into %d", n)
		}
		if n < VXLAN4EncapLen && EncapVXLAN4(b, &VXLANTunnel4{}, 1, 16) != 0 {
			t.Errorf("EncapVXLAN4 into %d", n)
		}
	}
	if EncapVXLAN4(make([]byte, 64), &VXLANTunnel4{}, 1, 65535) != 0 {
		t.Errorf("EncapVXLAN4 accepted an oversize inner frame")
	}
}
