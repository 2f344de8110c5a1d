package gen

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestSinkPatterns(t *testing.T) {
	type want struct{ unique, lost, dups, reordered, late uint64 }
	seqRange := func(a, b uint32, skip func(uint32) bool) []uint32 {
		var out []uint32
		for s := a; s < b; s++ {
			if skip == nil || !skip(s) {
				out = append(out, s)
			}
		}
		return out
	}
	cases := []struct {
		name string
		seqs []uint32
		sent uint64
		want want
	}{
		{"clean", seqRange(0, 1000, nil), 1000, want{unique: 1000}},
		{"every 10th dropped", seqRange(0, 1000, func(s uint32) bool { return s%10 == 3 }), 1000, want{unique: 900, lost: 100}},
		{"tail loss seen only with sent", seqRange(0, 900, nil), 1000, want{unique: 900, lost: 100}},
		{"tail loss unknown sent", seqRange(0, 900, nil), 0, want{unique: 900}},
		{"swap", []uint32{0, 1, 3, 2, 4, 5}, 6, want{unique: 6, reordered: 1}},
		{"dups", []uint32{0, 1, 1, 2, 2, 2, 3}, 4, want{unique: 4, dups: 3}},
		{"late then dup", []uint32{0, 2, 1, 1, 3}, 4, want{unique: 4, reordered: 1, dups: 1}},
		{"burst gap", append(seqRange(0, 100, nil), seqRange(200000, 200100, nil)...), 200100, want{unique: 200, lost: 199900}},
		{"beyond window", []uint32{0, Window + 5, 1}, Window + 6, want{unique: 2, lost: Window + 4, late: 1}},
		{"wrap", []uint32{math.MaxUint32 - 1, math.MaxUint32, 0, 2}, 0, want{unique: 4, lost: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewSink(Filter{})
			for _, q := range c.seqs {
				s.Add(q, 100, 1100)
			}
			st := s.Stats(c.sent)
			got := want{st.Unique, st.Lost, st.Dups, st.Reordered, st.Late}
			if got != c.want {
				t.Errorf("(-want +got)\n-%+v\n+%+v", c.want, got)
			}
			if st.Latency.P50 != 1000 || st.Latency.Count != uint64(len(c.seqs)) {
				t.Errorf("latency %+v", st.Latency)
			}
		})
	}
}

// TestSinkRandom checks the sink against a map-based reference on random
// drop, duplicate and local-shuffle patterns.
func TestSinkRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 50; iter++ {
		n := 1 + r.IntN(20000)
		var seqs []uint32
		for i := 0; i < n; i++ {
			switch x := r.IntN(100); {
			case x < 5: // drop
			case x < 8:
				seqs = append(seqs, uint32(i), uint32(i))
			default:
				seqs = append(seqs, uint32(i))
			}
		}
		for i := 0; i+1 < len(seqs); i++ { // local swaps, well inside Window
			if r.IntN(50) == 0 {
				j := i + 1 + r.IntN(min(100, len(seqs)-i-1))
				seqs[i], seqs[j] = seqs[j], seqs[i]
			}
		}
		s := NewSink(Filter{})
		seen := map[uint32]bool{}
		var dups, reo uint64
		var top int64 = -1
		for _, q := range seqs {
			s.Add(q, 0, 5)
			switch {
			case seen[q]:
				dups++
			case int64(q) < top:
				reo++
			}
			seen[q] = true
			top = max(top, int64(q))
		}
		st := s.Stats(uint64(n))
		if st.Unique != uint64(len(seen)) || st.Dups != dups || st.Reordered != reo || st.Lost != uint64(n-len(seen)) {
			t.Fatalf("iter %d: got unique %d dups %d reo %d lost %d; want %d %d %d %d",
				iter, st.Unique, st.Dups, st.Reordered, st.Lost, len(seen), dups, reo, n-len(seen))
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 100000; v++ {
		h.Record(v * 1000)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100000 * 1000
		got := float64(h.Quantile(q))
		if math.Abs(got-want)/want > 1.0/32 {
			t.Errorf("q%v = %v, want %v within 3.1%%", q, got, want)
		}
	}
	if s := h.Summary(); s.Min != 1000 || s.Max != 100000000 || s.Count != 100000 {
		t.Errorf("summary %+v", s)
	}
	for v := int64(0); v < 1<<20; v = v*3/2 + 1 {
		if m := bucketMid(bucketOf(v)); math.Abs(float64(m-v)) > float64(v)/32+1 {
			t.Fatalf("bucket of %d has middle %d", v, m)
		}
	}
	bucketOf(math.MaxInt64) // in range
}

func TestSinkOfferFromTemplate(t *testing.T) {
	for _, tc := range tmplCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.config([]int{200})
			tp, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			s := NewSink(Filter{Stream: 7, DstPort: 5001, VXLAN: tc.vxlan})
			other := NewSink(Filter{Stream: 8, DstPort: 5001, VXLAN: tc.vxlan})
			buf := make([]byte, 256)
			for i := uint32(0); i < 100; i++ {
				if i%7 == 0 {
					continue
				}
				n := tp.Fill(buf, 0, int(i%5), i, 1000)
				if !s.Offer(buf[:n], 3000) {
					t.Fatalf("seq %d not recognised", i)
				}
				other.Offer(buf[:n], 3000)
			}
			s.Offer([]byte{1, 2, 3}, 0)
			st := s.Stats(100)
			if st.Unique != 85 || st.Lost != 15 || st.Other != 1 || st.Latency.P99 != 2000 {
				t.Errorf("stats %+v", st)
			}
			if other.Stats(0).Unique != 0 {
				t.Errorf("another stream counted our frames")
			}
		})
	}
	_ = netip.Addr{}
}

func TestSinkAllocs(t *testing.T) {
	tp, _ := New(tmplCases[1].config([]int{128}))
	buf := make([]byte, 256)
	n := tp.Fill(buf, 0, 0, 1, 1)
	s := NewSink(Filter{Stream: 7})
	var now int64
	if a := testing.AllocsPerRun(1000, func() { now++; s.Offer(buf[:n], now) }); a != 0 {
		t.Errorf("Offer allocates %v", a)
	}
}
