package nat

import (
	"math/rand/v2"
	"testing"

	"github.com/xvs-project/xvs/conntrack"
)

// BenchmarkRewrite: Parse and Rewrite of a 100-byte-payload packet,
// translated to another key and back each pair of iterations.
func BenchmarkRewrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		fam  uint8
		kind uint8
	}{
		{"TCP4", conntrack.IPv4, KindTCP}, {"UDP4", conntrack.IPv4, KindUDP},
		{"TCP6", conntrack.IPv6, KindTCP}, {"UDP6", conntrack.IPv6, KindUDP},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			k := randKey(rng, tc.fam, tc.kind)
			pkt := serialize(k, tc.kind, make([]byte, 100), false, false)
			to := randKey(rng, tc.fam, tc.kind)
			to.Src, to.SPort = k.Src, k.SPort // DNAT
			keys := [2]conntrack.Key{to, k}
			b.ReportAllocs()
			var p Packet
			for i := 0; i < b.N; i++ {
				if Parse(pkt, tc.fam, 0, &p) != OK {
					b.Fatal("parse")
				}
				Rewrite(pkt, &p, &keys[i&1], false)
			}
		})
	}
}

// BenchmarkTranslated is the NAT stage's work for one packet of an
// established service flow: Parse, conntrack Lookup and Update, Rewrite
// (DNAT to the backend), in a table of 65,536 flows. The 100-byte packet
// is restored from a pristine copy each time (included: a ~64-160 byte
// copy).
func BenchmarkTranslated(b *testing.B) {
	for _, tc := range []struct {
		name string
		fam  uint8
	}{{"IPv4", conntrack.IPv4}, {"IPv6", conntrack.IPv6}} {
		b.Run(tc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			tb, _ := conntrack.New(conntrack.Config{Size: 1 << 16})
			for range 1<<16 - 1 {
				k := randKey(rng, tc.fam, KindTCP)
				r := k.Reverse()
				var f conntrack.Flow
				tb.Create(&k, &r, conntrack.Established, 0, 1, &f)
			}
			client := randKey(rng, tc.fam, KindTCP)
			backend := randKey(rng, tc.fam, KindTCP)
			reply := conntrack.Key{Src: backend.Src, Dst: client.Src, SPort: 8080, DPort: client.SPort, Proto: client.Proto, Family: tc.fam}
			var f conntrack.Flow
			tb.Create(&client, &reply, conntrack.Established, 1, 1, &f)
			orig := serialize(client, KindTCP, make([]byte, 100), false, false)
			pkt := make([]byte, len(orig))
			b.ReportAllocs()
			b.ResetTimer()
			var p Packet
			for i := 0; i < b.N; i++ {
				copy(pkt, orig)
				if Parse(pkt, tc.fam, 0, &p) != OK || !tb.Lookup(&p.Key, &f) {
					b.Fatal("parse or lookup")
				}
				tb.Update(&f, p.Flags, len(pkt), 1)
				Rewrite(pkt, &p, &f.Target, false)
			}
		})
	}
}
