package nat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/encap"
)

// The slow reference: gopacket decodes the packet, the fields are set to
// the translation, and gopacket serializes it again computing every
// checksum from scratch; for ICMP errors the quoted packet is rebuilt the
// same way and the outer checksums are summed over the whole message.

var ser = gopacket.SerializeOptions{ComputeChecksums: true}

type l3 interface {
	gopacket.SerializableLayer
	gopacket.NetworkLayer
}

// buildFlow makes a random TCP, UDP or echo packet of family fam and
// returns it and its key.
func buildFlow(rng *rand.Rand, fam, kind uint8) ([]byte, conntrack.Key) {
	k := randKey(rng, fam, kind)
	payload := make([]byte, rng.IntN(200))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	return serialize(k, kind, payload, rng.IntN(3) == 0, rng.IntN(8) == 0), k
}

func randKey(rng *rand.Rand, fam, kind uint8) conntrack.Key {
	k := conntrack.Key{Family: fam, SPort: uint16(rng.Uint32()), DPort: uint16(rng.Uint32())}
	n := 4
	if fam == conntrack.IPv6 {
		n = 16
		k.Src[0], k.Dst[0] = 0xfd, 0xfd
	} else {
		k.Src[0], k.Src[1], k.Dst[0], k.Dst[1] = 198, 18, 198, 19
	}
	for i := 2; i < n; i++ {
		k.Src[i], k.Dst[i] = byte(rng.Uint32()), byte(rng.Uint32())
	}
	switch kind {
	case KindTCP:
		k.Proto = conntrack.ProtoTCP
	case KindUDP:
		k.Proto = conntrack.ProtoUDP
	default:
		k.Proto = conntrack.ProtoICMP
		if fam == conntrack.IPv6 {
			k.Proto = conntrack.ProtoICMPv6
		}
		k.DPort = k.SPort
	}
	return k
}

// serialize builds the packet of key k with payload; opts adds IPv4
// options; noUDPSum leaves an IPv4 UDP checksum zero.
func serialize(k conntrack.Key, kind uint8, payload []byte, opts, noUDPSum bool) []byte {
	ip := ipLayer(k, opts)
	var ls []gopacket.SerializableLayer
	switch kind {
	case KindTCP:
		t := &layers.TCP{SrcPort: layers.TCPPort(k.SPort), DstPort: layers.TCPPort(k.DPort), Seq: 7, Ack: 9,
			ACK: true, PSH: len(payload)%2 == 0, SYN: len(payload)%5 == 0, Window: 500}
		t.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{ip, t, gopacket.Payload(payload)}
	case KindUDP:
		u := &layers.UDP{SrcPort: layers.UDPPort(k.SPort), DstPort: layers.UDPPort(k.DPort), Length: uint16(8 + len(payload))}
		u.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{ip, u, gopacket.Payload(payload)}
	default:
		if k.Family == conntrack.IPv4 {
			ls = []gopacket.SerializableLayer{ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: k.SPort, Seq: 3}, gopacket.Payload(payload)}
		} else {
			ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
			ic.SetNetworkLayerForChecksum(ip)
			ls = []gopacket.SerializableLayer{ip, ic, &layers.ICMPv6Echo{Identifier: k.SPort, SeqNumber: 3}, gopacket.Payload(payload)}
		}
	}
	b := serializeLayers(ip, ls)
	if kind == KindUDP && noUDPSum && k.Family == conntrack.IPv4 {
		binary.BigEndian.PutUint16(b[encap.IPv4(b).HeaderLen()+6:], 0)
	}
	return b
}

func ipLayer(k conntrack.Key, opts bool) l3 {
	if k.Family == conntrack.IPv4 {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(k.Proto), Id: 77,
			SrcIP: net.IP(k.Src[:4]), DstIP: net.IP(k.Dst[:4])}
		if opts {
			ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		}
		return ip
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(k.Proto), SrcIP: net.IP(k.Src[:]), DstIP: net.IP(k.Dst[:])}
}

func serializeLayers(ip l3, ls []gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// reference translates a TCP, UDP or echo packet to `to` through gopacket.
func reference(t *testing.T, pkt []byte, to conntrack.Key) []byte {
	t.Helper()
	lt := layers.LayerTypeIPv4
	if to.Family == conntrack.IPv6 {
		lt = layers.LayerTypeIPv6
	}
	p := gopacket.NewPacket(pkt, lt, gopacket.Default)
	var ip l3
	var ls []gopacket.SerializableLayer
	n := 4
	if to.Family == conntrack.IPv6 {
		n = 16
	}
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			l.SrcIP, l.DstIP = net.IP(to.Src[:4]), net.IP(to.Dst[:4])
			ip = l
		case *layers.IPv6:
			l.SrcIP, l.DstIP = net.IP(to.Src[:n]), net.IP(to.Dst[:n])
			ip = l
		case *layers.TCP:
			l.SrcPort, l.DstPort = layers.TCPPort(to.SPort), layers.TCPPort(to.DPort)
			l.SetNetworkLayerForChecksum(ip)
		case *layers.UDP:
			l.SrcPort, l.DstPort = layers.UDPPort(to.SPort), layers.UDPPort(to.DPort)
			l.SetNetworkLayerForChecksum(ip)
		case *layers.ICMPv4:
			l.Id = to.SPort
		case *layers.ICMPv6:
			l.SetNetworkLayerForChecksum(ip)
		case *layers.ICMPv6Echo:
			l.Identifier = to.SPort
		case *gopacket.Payload:
		default:
			t.Fatalf("reference: unexpected layer %v in %x: %v", l.LayerType(), pkt, p.ErrorLayer())
		}
		ls = append(ls, l.(gopacket.SerializableLayer))
		switch l.(type) {
		case *layers.TCP, *layers.UDP, *layers.ICMPv4:
			// What follows is payload, whatever gopacket makes of the ports.
			ls = append(ls, gopacket.Payload(l.LayerPayload()))
		case *layers.ICMPv6Echo:
			// gopacket's echo layer keeps no payload; the ICMPv6 layer's
			// holds the echo header and the data.
			ic := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			ls = append(ls, gopacket.Payload(ic.LayerPayload()[4:]))
		default:
			continue
		}
		break
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, ser, ls...); err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), buf.Bytes()...)
	if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		off := len(out) - len(u.Payload) - 8 + 6
		switch {
		case to.Family == conntrack.IPv4 && binary.BigEndian.Uint16(pkt[len(pkt)-len(u.Payload)-2:]) == 0:
			binary.BigEndian.PutUint16(out[off:], 0) // no checksum stays none
		case binary.BigEndian.Uint16(out[off:]) == 0:
			binary.BigEndian.PutUint16(out[off:], 0xffff)
		}
	}
	return out
}

func TestRewriteMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1624))
	n := 0
	for _, fam := range []uint8{conntrack.IPv4, conntrack.IPv6} {
		for _, kind := range []uint8{KindTCP, KindUDP, KindEcho} {
			for range 1500 {
				pkt, k := buildFlow(rng, fam, kind)
				var p Packet
				if r := Parse(pkt, fam, VerifyL4, &p); r != OK {
					t.Fatalf("parse %x: %v", pkt, r)
				}
				if p.Key != k || p.Kind != kind {
					t.Fatalf("parsed key %v kind %d, want %v %d", p.Key, p.Kind, k, kind)
				}
				to := randKey(rng, fam, kind)
				// Often only one side changes (DNAT, SNAT).
				switch rng.IntN(3) {
				case 0:
					to.Src, to.SPort = k.Src, k.SPort
				case 1:
					to.Dst, to.DPort = k.Dst, k.DPort
				}
				if kind == KindEcho {
					to.DPort = to.SPort
				}
				want := reference(t, pkt, to)
				got := append([]byte(nil), pkt...)
				if r := Rewrite(got, &p, &to, false); r != OK {
					t.Fatal(r)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("fam %d kind %d: rewrite of\n%x\nto %v:\n got %x\nwant %x", fam, kind, pkt, to, got, want)
				}
				n++
			}
		}
	}
	t.Logf("%d packets", n)
}

// buildError makes an ICMP error about a random TCP, UDP or echo packet
// sent from inner.Src to inner.Dst, sent back to inner.Src by either the
// peer or a router. quote limits the quoted bytes (0: all of them).
func buildError(rng *rand.Rand, fam, kind uint8, fromPeer bool, quote int) ([]byte, conntrack.Key) {
	inner, k := buildFlow(rng, fam, kind)
	hl := encap.IPv6Len
	if fam == conntrack.IPv4 {
		hl = encap.IPv4(inner).HeaderLen()
	}
	if quote > 0 && hl+quote < len(inner) {
		inner = inner[:hl+quote]
	}
	outer := conntrack.Key{Family: fam, Dst: k.Src}
	if fromPeer {
		outer.Src = k.Dst
	} else {
		outer.Src = randKey(rng, fam, kind).Src
	}
	if fam == conntrack.IPv4 {
		outer.Proto = conntrack.ProtoICMP
		ip := ipLayer(outer, false)
		return serializeLayers(ip, []gopacket.SerializableLayer{ip,
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(inner)}), k
	}
	outer.Proto = conntrack.ProtoICMPv6
	ip := ipLayer(outer, false)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)}
	ic.SetNetworkLayerForChecksum(ip)
	return serializeLayers(ip, []gopacket.SerializableLayer{ip, ic, gopacket.Payload(make([]byte, 4)), gopacket.Payload(inner)}), k
}

// referenceError translates an ICMP error: the quoted packet rebuilt by
// reference (or patched by hand when quoted short, its IP header checksum
// summed again), the outer addresses set by the rule, and the outer
// checksums summed from scratch.
func referenceError(t *testing.T, pkt []byte, inner conntrack.Key, to conntrack.Key, quote int) []byte {
	t.Helper()
	v4 := to.Family == conntrack.IPv4
	hl := encap.IPv6Len
	n, src, dst := 16, 8, 24
	if v4 {
		hl = encap.IPv4(pkt).HeaderLen()
		n, src, dst = 4, 12, 16
	}
	ni := to.Reverse()
	q := pkt[hl+8:]
	var newInner []byte
	if quote == 0 {
		newInner = reference(t, q, ni)
	} else {
		newInner = append([]byte(nil), q...)
		copy(newInner[src:], ni.Src[:n])
		copy(newInner[dst:], ni.Dst[:n])
		ihl := encap.IPv6Len
		if v4 {
			ihl = encap.IPv4(newInner).HeaderLen()
			encap.IPv4(newInner).SetChecksum(0)
			encap.IPv4(newInner).SetChecksum(^encap.IPv4(newInner).CalculateChecksum())
		}
		binary.BigEndian.PutUint16(newInner[ihl:], ni.SPort)
		binary.BigEndian.PutUint16(newInner[ihl+2:], ni.DPort)
	}
	out := append(append([]byte(nil), pkt[:hl+8]...), newInner...)
	if string(out[dst:dst+n]) == string(inner.Src[:n]) {
		copy(out[dst:], ni.Src[:n])
	}
	if string(out[src:src+n]) == string(inner.Dst[:n]) {
		copy(out[src:], ni.Dst[:n])
	}
	msg := out[hl:]
	if v4 {
		encap.IPv4(out).SetChecksum(0)
		encap.IPv4(out).SetChecksum(^encap.IPv4(out).CalculateChecksum())
		binary.BigEndian.PutUint16(msg[2:], encap.ICMPv4Checksum(msg))
	} else {
		ip := encap.IPv6(out)
		binary.BigEndian.PutUint16(msg[2:], encap.ICMPv6Checksum(ip.Src(), ip.Dst(), msg))
	}
	return out
}

func TestRewriteErrorMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(792, 4443))
	n := 0
	for _, fam := range []uint8{conntrack.IPv4, conntrack.IPv6} {
		for _, kind := range []uint8{KindTCP, KindUDP, KindEcho} {
			for _, quote := range []int{0, 8, 17} {
				if kind != KindTCP && quote != 0 {
					continue // short quotes of UDP and echo cut the payload their checksum covers
				}
				for i := range 500 {
					pkt, inner := buildError(rng, fam, kind, i%2 == 0, quote)
					var p Packet
					if r := Parse(pkt, fam, 0, &p); r != OK {
						t.Fatalf("parse %x: %v", pkt, r)
					}
					if p.Key != inner.Reverse() || p.Kind != KindError {
						t.Fatalf("error key %v, want %v", p.Key, inner.Reverse())
					}
					// The flow's translation in the error's direction.
					to := randKey(rng, fam, kind)
					to.Proto = inner.Proto
					if rng.IntN(2) == 0 {
						to.Src, to.SPort = p.Key.Src, p.Key.SPort // only the destination changes (the reply of SNAT)
					}
					if kind == KindEcho {
						to.DPort = to.SPort
					}
					want := referenceError(t, pkt, inner, to, quote)
					got := append([]byte(nil), pkt...)
					if r := Rewrite(got, &p, &to, false); r != OK {
						t.Fatal(r)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("fam %d kind %d quote %d: rewrite of\n%x\nto %v:\n got %x\nwant %x", fam, kind, quote, pkt, to, got, want)
					}
					n++
				}
			}
		}
	}
	t.Logf("%d errors", n)
}

func TestParseRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tcp4, _ := buildFlow(rng, conntrack.IPv4, KindTCP)
	udp6, _ := buildFlow(rng, conntrack.IPv6, KindUDP)
	echo4, _ := buildFlow(rng, conntrack.IPv4, KindEcho)
	err4, _ := buildError(rng, conntrack.IPv4, KindUDP, false, 0)
	err6, _ := buildError(rng, conntrack.IPv6, KindTCP, true, 0)
	mod := func(b []byte, f func([]byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	hl := encap.IPv4(tcp4).HeaderLen()
	for _, tc := range []struct {
		name string
		fam  uint8
		pkt  []byte
		opts int
		want Reason
	}{
		{"ipv4 more fragments", conntrack.IPv4, mod(tcp4, func(b []byte) { b[6] |= 0x20 }), 0, ReasonFragment},
		{"ipv4 later fragment", conntrack.IPv4, mod(tcp4, func(b []byte) { b[7] = 1 }), 0, ReasonFragment},
		{"ipv6 fragment header", conntrack.IPv6, mod(udp6, func(b []byte) { b[6] = 44 }), 0, ReasonFragment},
		{"ipv6 hop-by-hop", conntrack.IPv6, mod(udp6, func(b []byte) { b[6] = 0 }), 0, ReasonExtHeader},
		{"sctp", conntrack.IPv4, mod(tcp4, func(b []byte) { b[9] = 132 }), 0, ReasonProto},
		{"short ipv4", conntrack.IPv4, tcp4[:19], 0, ReasonTruncated},
		{"total length past the packet", conntrack.IPv4, tcp4[:len(tcp4)-1], 0, ReasonTruncated},
		{"ipv6 payload past the packet", conntrack.IPv6, udp6[:len(udp6)-1], 0, ReasonTruncated},
		{"tcp data offset", conntrack.IPv4, mod(tcp4, func(b []byte) { b[hl+12] = 0x40 }), 0, ReasonBadLength},
		{"udp length", conntrack.IPv6, mod(udp6, func(b []byte) { b[44], b[45] = 0xff, 0xff }), 0, ReasonBadLength},
		{"ipv6 udp without checksum", conntrack.IPv6, mod(udp6, func(b []byte) { b[46], b[47] = 0, 0 }), 0, ReasonBadChecksum},
		{"tcp checksum verified", conntrack.IPv4, mod(tcp4, func(b []byte) { b[hl+16]++ }), VerifyL4, ReasonBadChecksum},
		{"tcp checksum not verified", conntrack.IPv4, mod(tcp4, func(b []byte) { b[hl+16]++ }), 0, OK},
		{"icmp checksum", conntrack.IPv4, mod(echo4, func(b []byte) { b[22]++ }), 0, ReasonBadChecksum},
		{"icmp redirect", conntrack.IPv4, fixICMP4(mod(echo4, func(b []byte) { b[20] = 5 })), 0, ReasonICMPType},
		{"error truncated to 4 bytes of transport", conntrack.IPv4, fixICMP4(mod(err4, func(b []byte) {})[:20+8+20+4]), 0, ReasonInner},
		{"error about a fragment", conntrack.IPv4, fixICMP4(mod(err4, func(b []byte) { b[28+7] = 1 })), 0, ReasonInner},
		{"error about an error", conntrack.IPv4, fixICMP4(mod(err4, func(b []byte) { b[28+9] = 1; b[48] = 3 })), 0, ReasonInner},
		{"ipv6 error quoting ipv4", conntrack.IPv6, fixICMP6(mod(err6, func(b []byte) { b[48] = 0x45 })), 0, ReasonInner},
		{"ipv6 error checksum", conntrack.IPv6, mod(err6, func(b []byte) { b[42]++ }), 0, ReasonBadChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			if got := Parse(tc.pkt, tc.fam, tc.opts, &p); got != tc.want {
				t.Errorf("Parse = %v, want %v", got, tc.want)
			}
		})
	}
	// A translation to the other family is refused, the packet untouched.
	var p Packet
	Parse(tcp4, conntrack.IPv4, 0, &p)
	to := p.Key
	to.Family = conntrack.IPv6
	c := append([]byte(nil), tcp4...)
	if r := Rewrite(c, &p, &to, false); r != ReasonFamily || !bytes.Equal(c, tcp4) {
		t.Errorf("cross-family Rewrite = %v, changed %v", r, !bytes.Equal(c, tcp4))
	}
}

// fixICMP4 and fixICMP6 redo the checksums a test's change broke, so the
// change itself is what Parse sees. IPv4 lengths are fixed too.
func fixICMP4(b []byte) []byte {
	ip := encap.IPv4(b)
	ip.SetTotalLength(uint16(len(b)))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	msg := b[ip.HeaderLen():]
	binary.BigEndian.PutUint16(msg[2:], encap.ICMPv4Checksum(msg))
	return b
}

func fixICMP6(b []byte) []byte {
	ip := encap.IPv6(b)
	binary.BigEndian.PutUint16(b[42:], encap.ICMPv6Checksum(ip.Src(), ip.Dst(), b[40:]))
	return b
}

// TestPartialChecksum: for a GSO super-frame the checksum field holds the
// pseudo-header sum; after Rewrite it must hold the new pseudo-header's.
func TestPartialChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, fam := range []uint8{conntrack.IPv4, conntrack.IPv6} {
		for _, kind := range []uint8{KindTCP, KindUDP} {
			t.Run(fmt.Sprintf("%d/%d", fam, kind), func(t *testing.T) {
				pkt, k := buildFlow(rng, fam, kind)
				var p Packet
				Parse(pkt, fam, 0, &p)
				off := int(p.l4) + 16
				if kind == KindUDP {
					off = int(p.l4) + 6
				}
				partial := func(k conntrack.Key) uint16 {
					l := uint32(int(p.end) - int(p.l4))
					if fam == conntrack.IPv4 {
						return encap.Fold(encap.PseudoHeaderSum4([4]byte(k.Src[:4]), [4]byte(k.Dst[:4]), k.Proto, uint16(l)))
					}
					return encap.Fold(encap.PseudoHeaderSum6(k.Src, k.Dst, k.Proto, l))
				}
				binary.BigEndian.PutUint16(pkt[off:], partial(k))
				to := randKey(rng, fam, kind)
				Rewrite(pkt, &p, &to, true)
				if got, want := binary.BigEndian.Uint16(pkt[off:]), partial(to); got != want {
					t.Errorf("partial checksum %#04x, want %#04x", got, want)
				}
			})
		}
	}
}

func TestRewriteZeroAlloc(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, fam := range []uint8{conntrack.IPv4, conntrack.IPv6} {
		pkt, _ := buildFlow(rng, fam, KindTCP)
		perr, _ := buildError(rng, fam, KindUDP, true, 0)
		to := randKey(rng, fam, KindTCP)
		var p Packet
		if n := testing.AllocsPerRun(1000, func() {
			Parse(pkt, fam, 0, &p)
			Rewrite(pkt, &p, &to, false)
			Parse(perr, fam, 0, &p)
			to.Proto = p.Key.Proto
			Rewrite(perr, &p, &to, false)
			to.Proto = conntrack.ProtoTCP
		}); n != 0 {
			t.Errorf("family %d: %v allocs", fam, n)
		}
	}
}
