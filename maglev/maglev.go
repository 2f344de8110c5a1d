package maglev

import (
	"errors"
	"fmt"
	"hash/fnv"
)

// Primes for the lookup table size M.
var primes = []uint32{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537}

// SizeFor returns the M for a service of up to n backends: the smallest
// prime of the list at least 1000 times n, 65537 at most. The paper's
// 100 times keeps the imbalance near 1% but moves more than the minimum
// when a backend goes: removing one of 50 moved 1.83/N of the flows at
// M=8191 and 1.23/N at 65537 (TestDisruption logs the figures). A caller keeps a service's M
// while its backends change, since a table of another M moves nearly
// every flow; it grows M (one reshuffle) only when the backends outgrow
// it.
func SizeFor(n int) uint32 {
	for _, p := range primes {
		if p >= uint32(1000*n) {
			return p
		}
	}
	return primes[len(primes)-1]
}

// MaxBackends is the most backends a table takes (M must exceed N).
const MaxBackends = 65536

// Table maps a flow hash to one of a service's backends by Maglev
// consistent hashing (Eisenbud et al., NSDI 2016, section 3.4): each
// backend has a permutation of the M slots, derived from its name alone,
// and the backends take turns claiming their next free preferred slot.
// Removing a backend gives its slots to others and moves few other slots;
// adding one takes about 1/(N+1) of them. A Table is immutable: build a
// new one when the backends change and publish it (atomic.Pointer).
type Table struct {
	m       uint32
	entries []uint16 // backend index per slot
	n       int
}

// New builds the table of backends named names (in the order Lookup's
// result indexes; a name is any stable identity: "198.18.2.7:8080", a pod
// UID). size is M, a prime larger than len(names), or 0 to choose one.
func New(names []string, size uint32) (*Table, error) {
	n := len(names)
	if n > MaxBackends {
		return nil, fmt.Errorf("maglev backends %d: at most %d", n, MaxBackends)
	}
	if size == 0 {
		size = SizeFor(n)
	}
	if !prime(size) || size <= uint32(n) || size > 65537 {
		return nil, fmt.Errorf("maglev size %d: want a prime above the backend count (%d), at most 65537", size, n)
	}
	seen := make(map[string]bool, n)
	for _, s := range names {
		if seen[s] {
			return nil, fmt.Errorf("maglev backend %q: listed twice", s)
		}
		seen[s] = true
	}
	t := &Table{m: size, n: n, entries: make([]uint16, size)}
	if n == 0 {
		return t, nil
	}
	offset, skip, next := make([]uint32, n), make([]uint32, n), make([]uint32, n)
	for i, s := range names {
		offset[i] = uint32(h64(s, 0x5bd1e995) % uint64(size))
		skip[i] = uint32(h64(s, 0x9e3779b97f4a7c15)%uint64(size-1)) + 1
	}
	const empty = 0xffffffff
	fill := make([]uint32, size)
	for i := range fill {
		fill[i] = empty
	}
	for filled := uint32(0); ; {
		for i := range n {
			c := (offset[i] + uint32((uint64(next[i])*uint64(skip[i]))%uint64(size))) % size
			for fill[c] != empty {
				next[i]++
				c = (offset[i] + uint32((uint64(next[i])*uint64(skip[i]))%uint64(size))) % size
			}
			fill[c] = uint32(i)
			next[i]++
			if filled++; filled == size {
				for j, b := range fill {
					t.entries[j] = uint16(b)
				}
				return t, nil
			}
		}
	}
}

func h64(s string, seed uint64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(s))
	x := h.Sum64()
	// fnv's low bits are weak on short inputs; finish with a mixer.
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

func prime(p uint32) bool {
	if p < 2 {
		return false
	}
	for d := uint32(2); d*d <= p; d++ {
		if p%d == 0 {
			return false
		}
	}
	return true
}

// ErrNoBackends is what a caller reports for a service whose table is
// empty (Lookup returns -1): answer with ICMP unreachable or a reset.
var ErrNoBackends = errors.New("service has no ready backends")

// Lookup returns the backend index for flow hash h (conntrack.Key.Hash
// of the flow's original key), or -1 if there are no backends. The slot
// is h's top bits scaled to M (multiply and shift, no division).
func (t *Table) Lookup(h uint64) int {
	if t.n == 0 {
		return -1
	}
	return int(t.entries[(h>>32)*uint64(t.m)>>32])
}

// Len is the number of backends.
func (t *Table) Len() int { return t.n }

// Size is M.
func (t *Table) Size() uint32 { return t.m }
