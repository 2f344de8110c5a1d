package conntrack

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func benchKeys(n int) []Key {
	rng := rand.New(rand.NewPCG(1, 2))
	ks := make([]Key, n)
	for i := range ks {
		ks[i] = Key{Family: IPv4, Proto: ProtoTCP, SPort: uint16(rng.Uint32()), DPort: 80}
		ks[i].Src[0], ks[i].Src[1], ks[i].Src[2], ks[i].Src[3] = 198, 18, byte(rng.Uint32()), byte(rng.Uint32())
		ks[i].Dst[0], ks[i].Dst[1], ks[i].Dst[2], ks[i].Dst[3] = 198, 19, 128, 1
	}
	return ks
}

// BenchmarkLookupHit: a table of 65,536 flows, lookups of 1,024 of them
// in turn, with the Update a packet makes.
func BenchmarkLookupHit(b *testing.B) {
	tb := newTable(b, Config{Size: 1 << 16})
	ks := benchKeys(1 << 16)
	for i := range ks {
		r := ks[i].Reverse()
		var f Flow
		tb.Create(&ks[i], &r, Established, 0, 1, &f)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var f Flow
	for i := 0; i < b.N; i++ {
		k := &ks[(i*61)&1023]
		if !tb.Lookup(k, &f) {
			b.Fatal("miss")
		}
		tb.Update(&f, FlagACK, 100, 1)
	}
}

// BenchmarkMissCreate: a lookup that misses and the Create that follows
// it, in tables of 2^16 and 2^20 flows emptied (untimed) when full. The
// large one is mostly cache misses (150 MiB of entries).
func BenchmarkMissCreate(b *testing.B) {
	for _, size := range []int{1 << 16, 1 << 20} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			tb := newTable(b, Config{Size: size, MaxEmbryonicPerSource: size})
			ks := benchKeys(size)
			b.ReportAllocs()
			b.ResetTimer()
			var f Flow
			for i := 0; i < b.N; i++ {
				j := i % size
				if j == 0 && i > 0 {
					b.StopTimer()
					tb.DeleteFunc(1, func(*Entry) bool { return true })
					b.StartTimer()
				}
				k := &ks[j]
				if tb.Lookup(k, &f) {
					continue
				}
				r := k.Reverse()
				tb.Create(k, &r, SynSent, 0, 1, &f)
			}
		})
	}
}
