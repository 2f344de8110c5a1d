package maglev

import "testing"

func BenchmarkLookup(b *testing.B) {
	tb, _ := New(names(10), 0)
	b.ReportAllocs()
	var h uint64
	s := 0
	for i := 0; i < b.N; i++ {
		h += 0x9e3779b97f4a7c15
		s += tb.Lookup(h)
	}
	_ = s
}
