package gen

import (
	"math"
	"math/bits"
)

// Histogram counts non-negative values (nanoseconds) in log-linear buckets,
// HDR-style: values below 64 are exact, above that each power of two is cut
// into 32 buckets, so a reported percentile is within 1/32 (3.1%) of the
// true one. It covers the whole int64 range in 1,888 buckets.
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64
	min, max int64
}

const (
	subBits     = 5
	subCount    = 1 << subBits
	histBuckets = (64 - subBits - 1 + 1) * subCount
)

func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return shift*subCount + int(uint64(v)>>shift)
}

// bucketMid returns the middle of bucket i's value range.
func bucketMid(i int) int64 {
	if i < 2*subCount {
		return int64(i)
	}
	shift := i/subCount - 1
	lo := int64(i-shift*subCount) << shift
	return lo + (int64(1)<<shift)/2
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[bucketOf(v)]++
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Quantile returns the value at quantile q (0..1), clamped to the observed
// minimum and maximum; 0 when empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var c uint64
	for i, k := range h.counts {
		c += k
		if c >= rank {
			return min(max(bucketMid(i), h.min), h.max)
		}
	}
	return h.max
}

// Latency is a summary of a Histogram in nanoseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Min   int64   `json:"min_ns"`
	Mean  float64 `json:"mean_ns"`
	P50   int64   `json:"p50_ns"`
	P90   int64   `json:"p90_ns"`
	P99   int64   `json:"p99_ns"`
	P999  int64   `json:"p999_ns"`
	Max   int64   `json:"max_ns"`
}

// Summary returns the percentiles.
func (h *Histogram) Summary() Latency {
	if h.n == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.n, Min: h.min, Max: h.max, Mean: h.sum / float64(h.n),
		P50: h.Quantile(0.5), P90: h.Quantile(0.9), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
	}
}
