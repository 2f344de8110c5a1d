package fib

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
)

// longTests reports whether the heavy variants (millions of operations) run.
func longTests() bool { return os.Getenv("XVS_LONG") == "1" }

// slowTable is the obviously-correct reference: a map of prefixes, looked
// up by trying every length from longest to shortest.
type slowTable map[netip.Prefix]uint32

func (s slowTable) lookup(a netip.Addr) (netip.Prefix, uint32, bool) {
	for b := a.BitLen(); b >= 0; b-- {
		p, _ := a.Prefix(b)
		if v, ok := s[p]; ok {
			return p, v, true
		}
	}
	return netip.Prefix{}, 0, false
}

// sorted lists the routes of one family in (address, length) order.
func (s slowTable) sorted(v6 bool) []netip.Prefix {
	var ps []netip.Prefix
	for p := range s {
		if p.Addr().Is6() == v6 {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return ps
}

// labelNH is the next hop that stands for label l in the tests: distinct
// labels are distinct next-hop identities.
func labelNH(l uint32) NextHop {
	return NextHop{Kind: KindVXLAN, VNI: l, Port: 1, Remote: netip.AddrFrom4([4]byte{10, 0, 0, 1})}
}

// labelOf reads a label back from a lookup result; NoRoute is 0.
func labelOf(v *View, idx Index) uint32 {
	if idx == NoRoute {
		return 0
	}
	return v.NextHop(idx).VNI
}

// prefixGen makes prefixes that overlap and nest a lot: addresses come from
// a few bases with random low bits, lengths favour 0, the family's maximum
// and the 8-bit stride boundaries.
type prefixGen struct {
	r     *rand.Rand
	bases []netip.Addr
}

func newPrefixGen(seed uint64, v6 bool, nbases int) *prefixGen {
	g := &prefixGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for range nbases {
		g.bases = append(g.bases, g.randAddr(v6))
	}
	return g
}

func (g *prefixGen) randAddr(v6 bool) netip.Addr {
	if v6 {
		var a [16]byte
		for i := range a {
			a[i] = byte(g.r.Uint32())
		}
		return netip.AddrFrom16(a)
	}
	var a [4]byte
	for i := range a {
		a[i] = byte(g.r.Uint32())
	}
	return netip.AddrFrom4(a)
}

// near returns an address sharing a random-length prefix with a base.
func (g *prefixGen) near() netip.Addr {
	b := g.bases[g.r.IntN(len(g.bases))]
	r := g.randAddr(b.Is6())
	keep := g.r.IntN(b.BitLen() + 1)
	if g.r.IntN(4) == 0 {
		keep = b.BitLen() // the base itself
	}
	return mix(b, r, keep)
}

func mix(hi, lo netip.Addr, keep int) netip.Addr {
	h, l := hi.AsSlice(), lo.AsSlice()
	for i := range h {
		switch {
		case keep >= 8:
			keep -= 8
		case keep > 0:
			m := ^byte(0) << (8 - keep)
			h[i] = h[i]&m | l[i]&^m
			keep = 0
		default:
			h[i] = l[i]
		}
	}
	a, _ := netip.AddrFromSlice(h)
	return a
}

func (g *prefixGen) bits(hi int) int {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return hi
	case 2, 3:
		b := 8 * g.r.IntN(hi/8+1)
		b += g.r.IntN(3) - 1
		return min(hi, max(0, b))
	}
	return g.r.IntN(hi + 1)
}

func (g *prefixGen) prefix() netip.Prefix {
	a := g.near()
	p, _ := a.Prefix(g.bits(a.BitLen()))
	return p
}
