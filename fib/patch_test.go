package fib

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestPatchedNodes changes only next hops, so that the nodes on the paths
// are copied and patched (leaf patches, and child patches naming only the
// children that changed) rather than re-encoded: flat parents (an IPv4 /8
// node with a child in every slot, the roots), a flat dense IPv4 node, and
// compressed parents and leaves (sparse IPv4 /16s, IPv6 down to /128).
// Labels come from a small set, so that a changed leaf often equals a
// neighbour's and shares its run (the fallback to a full encode). Every
// lookup form is checked against the reference after every batch.
func TestPatchedNodes(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) {
			c := newChecker(t)
			r := rand.New(rand.NewPCG(3, 3))
			var ps []netip.Prefix
			add := func(s string) { ps = append(ps, netip.MustParsePrefix(s)) }
			pf := func(a [16]byte, bits int) {
				addr := netip.AddrFrom16(a)
				if !v6 {
					addr = netip.AddrFrom4([4]byte(a[:4]))
				}
				ps = append(ps, netip.PrefixFrom(addr, bits))
			}
			if v6 {
				add("2001:db8::/32")
				for x := range 40 {
					pf([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(x)}, 48)
					pf([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(x), 0, 1}, 64)
					pf([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(x), 0, 1, 15: byte(x)}, 128)
					pf([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(x), 0, 1, 15: byte(x + 1)}, 128)
				}
				for x := range 256 {
					pf([16]byte{0x20, 0x01, 0x0d, 0xb9, byte(x)}, 40)
					pf([16]byte{0x20, 0x01, 0x0d, 0xb9, byte(x), 0x80}, 48)
				}
			} else {
				add("10.0.0.0/8")
				for x := range 256 {
					pf([16]byte{10, byte(x)}, 16)
					for _, y := range []byte{0, 7, 200} {
						pf([16]byte{10, byte(x), y}, 24)
					}
				}
				for y := range 256 { // a dense /16: a flat node
					pf([16]byte{10, 1, byte(y)}, 24)
				}
				add("10.2.3.4/32")
				add("10.2.3.128/25")
				add("0.0.0.0/0")
			}
			label := func() uint32 { return 1 + r.Uint32N(4) }
			adds := map[netip.Prefix]uint32{}
			for _, p := range ps {
				adds[p] = label()
			}
			c.apply(0, adds, nil)
			var probes []netip.Addr
			for _, p := range ps {
				probes = append(probes, p.Addr(), lastAddr(p))
			}
			c.lookups(0, probes)
			nodes := c.f.Stats().Nodes
			for round := range 60 {
				adds := map[netip.Prefix]uint32{}
				n := 1 + r.IntN(40)
				if round%10 == 0 {
					n = len(ps)
				}
				for range n {
					adds[ps[r.IntN(len(ps))]] = label()
				}
				c.apply(0, adds, nil)
				c.lookups(0, probes)
			}
			c.full(0)
			if got := c.f.Stats().Nodes; got != nodes {
				t.Errorf("next-hop changes changed the node count (-want +got):\n-%d\n+%d", nodes, got)
			}
		})
	}
}

// TestPatchOverflow changes more next hops in one batch than a batch can
// link patches for (65,535), so that nodes fall back to a full encode
// halfway through the batch.
func TestPatchOverflow(t *testing.T) {
	if testing.Short() {
		t.Skip("70,000 routes")
	}
	c := newChecker(t)
	adds := map[netip.Prefix]uint32{}
	var probes []netip.Addr
	for i := range 70_000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10 + byte(i>>16), byte(i >> 8), byte(i)}), 24)
		adds[p] = 1 + uint32(i%7)
		if i%31 == 0 {
			probes = append(probes, p.Addr())
		}
	}
	c.apply(0, adds, nil)
	for p, l := range adds {
		adds[p] = 1 + (l+3)%7
	}
	c.apply(0, adds, nil)
	c.lookups(0, probes)
	c.full(0)
}

// TestRunIndex checks the compressed-block helpers and step against the
// entries a block was built from, for random run layouts.
func TestRunIndex(t *testing.T) {
	tr := newTrie()
	r := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		var e [256]uint32
		var bm [4]uint64
		runs := 1 + r.IntN(2*flatRuns)
		v := uint32(0)
		for s := range 256 {
			if s == 0 || r.IntN(256) < runs {
				v++
				bm[s/64] |= 1 << (s % 64)
			}
			e[s] = v
		}
		if bits := bm[0] | bm[1] | bm[2] | bm[3]; bits == 0 {
			continue
		}
		blk, size := tr.store(&e, bm, false)
		b := tr.words(blk&offMask, uint32(size))
		dir := tr.dir
		for s := range 256 {
			if got := step(dir, blk, byte(s)); got != e[s] {
				t.Fatalf("step(slot %d) = %d, want %d", s, got, e[s])
			}
			if blk&flatBit != 0 {
				continue // more than flatRuns runs
			}
			j := runIndex(b, uint(s))
			if got := b[hdrWords+j]; got != e[s] {
				t.Fatalf("runIndex(slot %d) = %d holding %d, want a run holding %d", s, j, got, e[s])
			}
			start := runStart(b, uint(s))
			want := s
			for want > 0 && e[want-1] == e[s] {
				want--
			}
			if int(start) != want {
				t.Fatalf("runStart(slot %d) = %d, want %d", s, start, want)
			}
		}
	}
}

// TestNextHopCache interns more distinct next hops than the cache in front
// of the next-hop map holds, so that slots collide and go stale (entries
// released and their indices reused), and checks every route's next hop.
func TestNextHopCache(t *testing.T) {
	c := newChecker(t)
	r := rand.New(rand.NewPCG(9, 9))
	var ps []netip.Prefix
	for i := range 3 * nhCacheSize {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 32))
	}
	var probes []netip.Addr
	for _, p := range ps {
		probes = append(probes, p.Addr())
	}
	for round := range 8 {
		adds := map[netip.Prefix]uint32{}
		var dels []netip.Prefix
		for i, p := range ps {
			switch _, ok := c.table(0)[p]; {
			case ok && r.IntN(4) == 0:
				dels = append(dels, p)
			case r.IntN(2) == 0:
				adds[p] = 1 + uint32(i+round*len(ps)/3)%uint32(2*nhCacheSize+round)
			}
		}
		c.apply(0, adds, dels)
		c.lookups(0, probes)
		if want := distinctLabels(c.table(0)) + 1; c.f.Stats().NextHops != want {
			t.Fatalf("round %d: NextHops (-want +got):\n-%d\n+%d", round, want, c.f.Stats().NextHops)
		}
	}
}

func distinctLabels(ref slowTable) int {
	seen := map[uint32]bool{}
	for _, l := range ref {
		seen[l] = true
	}
	return len(seen)
}
