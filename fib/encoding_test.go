package fib

import (
	"net/netip"
	"testing"
)

// TestNodeEncodings grows one node past flatRuns runs and shrinks it back,
// so it switches between the compressed and the flat encoding, with a
// child in the middle of it, checking every slot against the reference at
// each step.
func TestNodeEncodings(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		base := netip.MustParsePrefix("10.1.0.0/16")
		if v6 {
			name = "ipv6"
			base = netip.MustParsePrefix("2001:db8:1::/48")
		}
		t.Run(name, func(t *testing.T) {
			c := newChecker(t)
			// The slot-s /24 (or /56) and an address in it.
			sub := func(s, bits int) netip.Prefix {
				a := base.Addr().AsSlice()
				a[base.Bits()/8] = byte(s)
				addr, _ := netip.AddrFromSlice(a)
				p, _ := addr.Prefix(bits)
				return p
			}
			// flat reports how the node below base is encoded.
			flat := func() bool {
				k, v6 := keyOf(sub(0, base.Bits()+8))
				n := c.f.trie.find(c.f.tables[0].root[fam(v6)], k)
				return n.blk&flatBit != 0
			}
			width := base.Bits() + 8
			probe := func() []netip.Addr {
				var as []netip.Addr
				for s := range 256 {
					as = append(as, sub(s, width).Addr())
				}
				return as
			}
			c.apply(0, map[netip.Prefix]uint32{base: 1, sub(128, width+8): 2}, nil)
			c.lookups(0, probe())
			// Every other slot, alternating labels: up to ~256 runs.
			for step := 0; step < 256; step += 16 {
				adds := map[netip.Prefix]uint32{}
				for s := step; s < step+16; s += 2 {
					adds[sub(s, width)] = 3 + uint32(s%5)
				}
				c.apply(0, adds, nil)
				c.lookups(0, probe())
			}
			c.full(0)
			if !flat() {
				t.Errorf("node with about 256 runs not stored flat")
			}
			for step := 0; step < 256; step += 16 {
				var dels []netip.Prefix
				for s := step; s < step+16; s += 2 {
					dels = append(dels, sub(s, width))
				}
				c.apply(0, nil, dels)
				c.lookups(0, probe())
			}
			c.full(0)
			if flat() {
				t.Errorf("node with 5 runs stored flat")
			}
		})
	}
}
