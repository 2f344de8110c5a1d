package fib

import (
	"bufio"
	"compress/gzip"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gaissmai/bart"
)

// The real Internet table shipped in bart's module: 901,899 IPv4 and
// 160,147 IPv6 prefixes.
var realTable struct {
	once sync.Once
	v4   []netip.Prefix
	v6   []netip.Prefix
	err  error
}

func loadRealTable(tb testing.TB) (v4, v6 []netip.Prefix) {
	tb.Helper()
	realTable.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			realTable.err = err
			return
		}
		path := filepath.Join(strings.TrimSpace(string(out)), "github.com/gaissmai/bart@v0.30.0/internal/tests/testdata/prefixes.txt.gz")
		fh, err := os.Open(path)
		if err != nil {
			realTable.err = err
			return
		}
		defer fh.Close()
		zr, err := gzip.NewReader(fh)
		if err != nil {
			realTable.err = err
			return
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			p, err := netip.ParsePrefix(sc.Text())
			if err != nil {
				realTable.err = err
				return
			}
			if p.Addr().Is4() {
				realTable.v4 = append(realTable.v4, p.Masked())
			} else {
				realTable.v6 = append(realTable.v6, p.Masked())
			}
		}
		realTable.err = sc.Err()
	})
	if realTable.err != nil {
		tb.Skipf("real table not available: %v", realTable.err)
	}
	return realTable.v4, realTable.v6
}

// realLabel is the next-hop label of the i-th real prefix: 1,000 next hops,
// like a router with many peers.
func realLabel(i int) uint32 { return uint32(i%1000) + 1 }

func realRoutes(ps []netip.Prefix) []Route {
	rs := make([]Route, len(ps))
	for i, p := range ps {
		rs[i] = Route{Prefix: p, NextHop: labelNH(realLabel(i)), Origin: OriginBGP}
	}
	return rs
}

// randomProbes returns n addresses, half drawn inside table prefixes (so
// they match long routes) and half uniformly random.
func randomProbes(r *rand.Rand, ps []netip.Prefix, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		v6 := ps[0].Addr().Is6()
		var rnd netip.Addr
		if v6 {
			var a [16]byte
			for j := range a {
				a[j] = byte(r.Uint32())
			}
			a[0] = 0x20 | a[0]&0x1f // global unicast, where the table is
			rnd = netip.AddrFrom16(a)
		} else {
			rnd = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		if i%2 == 0 {
			p := ps[r.IntN(len(ps))]
			rnd = mix(p.Addr(), rnd, p.Bits())
		}
		out[i] = rnd
	}
	return out
}

func TestRealTableAgainstBart(t *testing.T) {
	v4, v6 := loadRealTable(t)
	probes := 1_000_000
	if testing.Short() {
		v4, v6, probes = v4[:100_000], v6[:20_000], 100_000
	}
	f := New()
	var bt bart.Table[uint32]
	for _, ps := range [][]netip.Prefix{v4, v6} {
		rs := realRoutes(ps)
		for i := 0; i < len(rs); i += 100_000 {
			if err := f.Apply(rs[i:min(len(rs), i+100_000)], nil); err != nil {
				t.Fatal(err)
			}
		}
		for i, p := range ps {
			bt.Insert(p, realLabel(i))
		}
	}
	if n4, n6 := f.Count(0); n4 != len(v4) || n6 != len(v6) {
		t.Fatalf("Count (-want +got):\n-%d %d\n+%d %d", len(v4), len(v6), n4, n6)
	}
	r := rand.New(rand.NewPCG(1, 2))
	check := func(t *testing.T, n int) {
		v := f.View()
		for _, ps := range [][]netip.Prefix{v4, v6} {
			addrs := randomProbes(r, ps, n)
			var a4 [][4]byte
			var a6 [][16]byte
			for _, a := range addrs {
				want, _ := bt.Lookup(a)
				var got uint32
				if a.Is4() {
					got = labelOf(v, v.Lookup4(0, a.As4()))
					a4 = append(a4, a.As4())
				} else {
					got = labelOf(v, v.Lookup6(0, a.As16()))
					a6 = append(a6, a.As16())
				}
				if got != want {
					t.Fatalf("Lookup(%s) (-want +got):\n-%d\n+%d", a, want, got)
				}
			}
			out := make([]Index, len(addrs))
			if len(a4) > 0 {
				for i := 0; i < len(a4); i += 64 {
					v.LookupBatch4(0, a4[i:min(i+64, len(a4))], out[i:])
				}
			} else {
				for i := 0; i < len(a6); i += 64 {
					v.LookupBatch6(0, a6[i:min(i+64, len(a6))], out[i:])
				}
			}
			for i, a := range addrs {
				if want, _ := bt.Lookup(a); labelOf(v, out[i]) != want {
					t.Fatalf("LookupBatch(%s) (-want +got):\n-%d\n+%d", a, want, labelOf(v, out[i]))
				}
			}
		}
	}
	t.Run("full", func(t *testing.T) { check(t, probes) })
	t.Run("after deleting a third", func(t *testing.T) {
		var ks []RouteKey
		for _, ps := range [][]netip.Prefix{v4, v6} {
			for i := 0; i < len(ps); i += 3 {
				ks = append(ks, RouteKey{Prefix: ps[i]})
				bt.Delete(ps[i])
			}
		}
		if err := f.Apply(nil, ks); err != nil {
			t.Fatal(err)
		}
		check(t, probes/4)
	})
}
