package encap

import "testing"

// TestZeroAllocs pins the allocation contract in doc.go.
func TestZeroAllocs(t *testing.T) {
	frame := make([]byte, 2048)
	pkt := validIPv4(1000)
	p6 := make([]byte, 1000)
	IPv6(p6).Encode(&IPv6Fields{PayloadLength: 960, NextHeader: ProtoUDP, HopLimit: 64, Src: src6, Dst: dst6})
	ns := make([]byte, 128)
	nsLen := BuildNeighborSolicit(ns, src6, dst6, mac1)
	echo := make([]byte, 64)
	IPv4(echo).Encode(&IPv4Fields{TotalLength: 64, TTL: 64, Protocol: ProtoICMP, Src: src4, Dst: dst4})
	t4 := &VXLANTunnel4{Src: src4, Dst: dst4, VNI: 1, TTL: 64}
	t6 := &VXLANTunnel6{Src: src6, Dst: dst6, VNI: 1, HopLimit: 64}
	var sink uint32
	var sinkb bool

	for _, tt := range []struct {
		name string
		f    func()
	}{
		{"parse", func() {
			ip := IPv4(pkt)
			if ip.IsValid(len(pkt)) && ip.HeaderChecksumValid() {
				sink += uint32(ip.Protocol()) + uint32(len(ip.Payload())) + uint32(ip.Src()[0])
			}
			v6 := IPv6(p6)
			if v6.IsValid(len(p6)) {
				sink += uint32(v6.Dst()[15]) + uint32(len(v6.Payload()))
			}
			sink += uint32(Ethernet(frame).Type()) + uint32(ARP(frame).Op())
			sink += VXLAN(frame).VNI() + uint32(UDP(frame).DstPort())
			mac, ok := NDPSourceLinkAddr(ICMPv6(ns[IPv6Len:nsLen]).NDPOptions())
			sinkb = sinkb != ok
			sink += uint32(mac[0])
		}},
		{"DecTTL", func() { IPv4(pkt).DecTTL(); IPv4(pkt).SetTTL(64) }},
		{"checksums", func() {
			sink += uint32(Fold(Checksum(pkt, PseudoHeaderSum4(src4, dst4, ProtoUDP, 980))))
			sink += PseudoHeaderSum6(src6, dst6, ProtoUDP, 960)
			sink += uint32(UpdateChecksum(1, 2, 3) + ICMPv4Checksum(pkt) + ICMPv6Checksum(src6, dst6, p6))
			sink += uint32(UDPChecksum4(src4, dst4, pkt[20:]) + UDPChecksum6(src6, dst6, p6[40:]))
		}},
		{"flow hash", func() { sink += FlowHash4(pkt) + FlowHash6(p6) }},
		{"forwardable", func() {
			sinkb = IsIPv4Forwardable(dst4) && IsIPv6Forwardable(dst6) && ICMPv4ErrorAllowed(pkt) && ICMPv6ErrorAllowed(p6, 3)
		}},
		{"BuildICMPv4Error", func() { sink += uint32(BuildICMPv4Error(frame, src4, dst4, 3, 4, 1450, pkt, 64)) }},
		{"BuildICMPv6Error", func() { sink += uint32(BuildICMPv6Error(frame, src6, dst6, 2, 0, 1430, p6, 64)) }},
		{"BuildNeighborAdvert", func() { sink += uint32(BuildNeighborAdvert(frame, src6, dst6, src6, mac1, true, true)) }},
		{"BuildNeighborSolicit", func() { sink += uint32(BuildNeighborSolicit(frame, src6, dst6, mac1)) }},
		{"BuildARP", func() {
			sink += uint32(BuildARPReply(frame, mac1, src4, mac2, dst4) + BuildARPRequest(frame, mac1, src4, dst4))
		}},
		{"EncapVXLAN", func() {
			sink += uint32(EncapVXLAN4(frame, t4, 50000, 1000) + EncapVXLAN6(frame, t6, 50000, 1000))
		}},
		{"encode", func() {
			Ethernet(frame).Encode(mac1, mac2, EtherTypeIPv4)
			IPv4(frame[14:]).Encode(&IPv4Fields{TotalLength: 100, TTL: 64, Src: src4, Dst: dst4})
			IPv6(frame[14:]).Encode(&IPv6Fields{PayloadLength: 100, HopLimit: 64, Src: src6, Dst: dst6})
			VXLAN(frame).Encode(7)
			UDP(frame).Encode(1, 2, 3)
		}},
		{"echo reply", func() {
			echo[20] = ICMPv4EchoRequest
			sinkb = EchoToReply4(echo, 64)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%s allocates %v times per run", tt.name, n)
			}
		})
	}
	_, _ = sink, sinkb
}

func BenchmarkDecTTL(b *testing.B) {
	ip := IPv4(validIPv4(64))
	b.ReportAllocs()
	for b.Loop() {
		ip.SetTTL(64)
		ip.DecTTL()
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(1500)
	var s uint32
	for b.Loop() {
		s += Checksum(buf, 0)
	}
	_ = s
}

func BenchmarkFlowHash4(b *testing.B) {
	ip := IPv4(validIPv4(64))
	b.ReportAllocs()
	var s uint32
	for b.Loop() {
		s += FlowHash4(ip)
	}
	_ = s
}
