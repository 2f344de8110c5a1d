package nat

import (
	"math/rand/v2"
	"testing"

	"github.com/xvs-project/xvs/conntrack"
)

// FuzzParseRewrite: Parse never panics; a packet it accepts is rewritten
// to a target drawn from the fuzzer's bytes, and the result parses again
// with the target as its key and every checksum Parse can check still
// correct.
func FuzzParseRewrite(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, fam := range []uint8{conntrack.IPv4, conntrack.IPv6} {
		for _, kind := range []uint8{KindTCP, KindUDP, KindEcho} {
			pkt, _ := buildFlow(rng, fam, kind)
			f.Add(pkt, fam == conntrack.IPv6, []byte("0123456789abcdef0123456789abcdef0123"))
			e, _ := buildError(rng, fam, kind, kind == KindUDP, 0)
			f.Add(e, fam == conntrack.IPv6, []byte("fedcba9876543210fedcba9876543210abcd"))
		}
	}
	f.Fuzz(func(t *testing.T, pkt []byte, v6 bool, tgt []byte) {
		fam := conntrack.IPv4
		if v6 {
			fam = conntrack.IPv6
		}
		var p Packet
		if Parse(pkt, fam, 0, &p) != OK {
			return
		}
		verified := Parse(pkt, fam, VerifyL4, &p) == OK
		to := p.Key
		var raw [36]byte
		copy(raw[:], tgt)
		n := 4
		if v6 {
			n = 16
		}
		copy(to.Src[:n], raw[0:])
		copy(to.Dst[:n], raw[16:])
		to.SPort = uint16(raw[32])<<8 | uint16(raw[33])
		to.DPort = uint16(raw[34])<<8 | uint16(raw[35])
		if to.Proto == conntrack.ProtoICMP || to.Proto == conntrack.ProtoICMPv6 {
			to.DPort = to.SPort
		}
		if r := Rewrite(pkt, &p, &to, false); r != OK {
			t.Fatalf("Rewrite of an accepted packet: %v", r)
		}
		var q Packet
		opts := 0
		if verified && p.Kind != KindError {
			opts = VerifyL4
		}
		if r := Parse(pkt, fam, opts, &q); r != OK {
			t.Fatalf("rewritten packet refused: %v", r)
		}
		if q.Key != to {
			t.Fatalf("rewritten key %v, want %v", q.Key, to)
		}
	})
}
