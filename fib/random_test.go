package fib

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// checker compares a FIB with the reference.
type checker struct {
	t   testing.TB
	f   *FIB
	ref map[uint32]slowTable
}

func newChecker(t testing.TB) *checker {
	return &checker{t: t, f: New(), ref: map[uint32]slowTable{}}
}

func (c *checker) table(id uint32) slowTable {
	if c.ref[id] == nil {
		c.ref[id] = slowTable{}
	}
	return c.ref[id]
}

// apply runs one batch on both sides.
func (c *checker) apply(table uint32, adds map[netip.Prefix]uint32, dels []netip.Prefix) {
	c.t.Helper()
	var rs []Route
	for p, l := range adds {
		rs = append(rs, Route{Table: table, Prefix: p, NextHop: labelNH(l), Origin: Origin(l % 5)})
	}
	var ks []RouteKey
	for _, p := range dels {
		ks = append(ks, RouteKey{Table: table, Prefix: p})
	}
	if err := c.f.Apply(rs, ks); err != nil {
		c.t.Fatalf("Apply(%d adds, %d dels): %v", len(rs), len(ks), err)
	}
	ref := c.table(table)
	for _, p := range dels {
		delete(ref, p)
	}
	for p, l := range adds {
		ref[p] = l
	}
}

// lookups checks addrs in every lookup form.
func (c *checker) lookups(table uint32, addrs []netip.Addr) {
	c.t.Helper()
	v := c.f.View()
	ref := c.table(table)
	var a4 [][4]byte
	var a6 [][16]byte
	var w4, w6 []uint32
	for _, a := range addrs {
		wp, wl, wok := ref.lookup(a)
		var got uint32
		if a.Is4() {
			got = labelOf(v, v.Lookup4(table, a.As4()))
			a4 = append(a4, a.As4())
			w4 = append(w4, wl)
		} else {
			got = labelOf(v, v.Lookup6(table, a.As16()))
			a6 = append(a6, a.As16())
			w6 = append(w6, wl)
		}
		if got != wl {
			c.t.Fatalf("Lookup(%d, %s) (-want +got):\n-%d (%v)\n+%d", table, a, wl, wp, got)
		}
		gp, gi, gok := v.LookupPrefix(table, a)
		if gok != wok || gp != wp || labelOf(v, gi) != wl {
			c.t.Fatalf("LookupPrefix(%d, %s) (-want +got):\n-%v %d %v\n+%v %d %v", table, a, wp, wl, wok, gp, labelOf(v, gi), gok)
		}
		r, ok := c.f.Lookup(table, a)
		if ok != wok || (ok && (r.Prefix != wp || r.NextHop.VNI != wl || r.Origin != Origin(wl%5))) {
			c.t.Fatalf("FIB.Lookup(%d, %s) (-want +got):\n-%v %d %v\n+%v %d %v", table, a, wp, wl, wok, r.Prefix, r.NextHop.VNI, ok)
		}
	}
	out4 := make([]Index, len(a4))
	v.LookupBatch4(table, a4, out4)
	for i := range a4 {
		if got := labelOf(v, out4[i]); got != w4[i] {
			c.t.Fatalf("LookupBatch4 %v (-want +got):\n-%d\n+%d", a4[i], w4[i], got)
		}
	}
	out6 := make([]Index, len(a6))
	v.LookupBatch6(table, a6, out6)
	for i := range a6 {
		if got := labelOf(v, out6[i]); got != w6[i] {
			c.t.Fatalf("LookupBatch6 %v (-want +got):\n-%d\n+%d", a6[i], w6[i], got)
		}
	}
}

// full checks Routes, Get and Count against the reference.
func (c *checker) full(table uint32) {
	c.t.Helper()
	ref := c.table(table)
	want := append(ref.sorted(false), ref.sorted(true)...)
	var got []netip.Prefix
	c.f.Routes(table, func(r Route) bool {
		got = append(got, r.Prefix)
		if l := ref[r.Prefix]; r.NextHop.VNI != l || r.Origin != Origin(l%5) {
			c.t.Fatalf("Routes: %v has %v %v, want label %d", r.Prefix, r.NextHop, r.Origin, l)
		}
		return true
	})
	if d := diffPrefixes(want, got); d != "" {
		c.t.Fatalf("Routes(%d) (-want +got):\n%s", table, d)
	}
	n4, n6 := c.f.Count(table)
	if w4, w6 := len(ref.sorted(false)), len(ref.sorted(true)); n4 != w4 || n6 != w6 {
		c.t.Fatalf("Count(%d) (-want +got):\n-%d %d\n+%d %d", table, w4, w6, n4, n6)
	}
	for p, l := range ref {
		r, ok := c.f.Get(table, p)
		if !ok || r.NextHop.VNI != l {
			c.t.Fatalf("Get(%d, %v) = %v, %v; want label %d", table, p, r.NextHop, ok, l)
		}
	}
}

func diffPrefixes(want, got []netip.Prefix) string {
	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case i < len(want) && j < len(got) && want[i] == got[j]:
			i++
			j++
		case j >= len(got) || (i < len(want) && !contains(got[j:], want[i])):
			fmt.Fprintf(&b, "-%v\n", want[i])
			i++
		default:
			fmt.Fprintf(&b, "+%v\n", got[j])
			j++
		}
		if b.Len() > 2000 {
			b.WriteString("...\n")
			break
		}
	}
	return b.String()
}

func contains(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func TestRandomAgainstReference(t *testing.T) {
	ops := 60_000
	if testing.Short() {
		ops = 10_000
	}
	if longTests() {
		ops = 3_000_000
	}
	tests := []struct {
		name   string
		v6     bool
		bases  int
		tables int
	}{
		{"ipv4/dense", false, 4, 1},
		{"ipv4/sparse", false, 200, 2},
		{"ipv6/dense", true, 4, 1},
		{"ipv6/sparse", true, 200, 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecker(t)
			g := newPrefixGen(uint64(i+1), tt.v6, tt.bases)
			done := 0
			for round := 0; done < ops; round++ {
				table := uint32(round % tt.tables * 7) // 0, 7: a dense ID and table 0
				ref := c.table(table)
				adds := map[netip.Prefix]uint32{}
				var dels []netip.Prefix
				n := 1 + g.r.IntN(64)
				if g.r.IntN(16) == 0 {
					n = 1 + g.r.IntN(2000)
				}
				for range n {
					switch op := g.r.IntN(10); {
					case op < 6 || len(ref) == 0:
						adds[g.prefix()] = 1 + g.r.Uint32N(50)
					default:
						// Delete an existing route, sometimes reinserting it
						// in the same batch (deletes apply first).
						for p := range ref {
							if _, dup := adds[p]; dup || contains(dels, p) {
								break
							}
							dels = append(dels, p)
							if op == 9 {
								adds[p] = 1 + g.r.Uint32N(50)
							}
							break
						}
					}
				}
				c.apply(table, adds, dels)
				done += len(adds) + len(dels)
				addrs := make([]netip.Addr, 0, 64)
				for range 48 {
					addrs = append(addrs, g.near())
				}
				for range 16 {
					addrs = append(addrs, g.randAddr(tt.v6))
				}
				c.lookups(table, addrs)
				if round%100 == 0 {
					c.full(table)
				}
			}
			for id := range c.ref {
				c.full(id)
			}
			// Drain everything: the trie must give back all its nodes.
			for id, ref := range c.ref {
				var dels []netip.Prefix
				for p := range ref {
					dels = append(dels, p)
				}
				c.apply(id, nil, dels)
				c.full(id)
			}
			s := c.f.Stats()
			if want := 2 * len(c.ref); s.Nodes != want {
				t.Errorf("Stats().Nodes after draining (-want +got):\n-%d\n+%d", want, s.Nodes)
			}
			if s.NextHops != 1 {
				t.Errorf("Stats().NextHops after draining (-want +got):\n-1\n+%d", s.NextHops)
			}
		})
	}
}
