package daemon

import (
	"bufio"
	"compress/gzip"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/bgp"
	"github.com/xvs-project/xvs/fib"
)

// TestRouteSinkFullTable measures the part of the full-table path that
// xvsd adds to the bgp package's: the real table (1.06M prefixes, as
// bgp's TestScaleRealTable announces it) through the route sink and
// Switch.ApplyRoutes (checks, next hop resolution, the switch's route
// index) in the speaker's batches, against the same routes straight into
// a fib.FIB, which is what bgp's figure measured. XVS_BGP_SCALE=1 runs it.
func TestRouteSinkFullTable(t *testing.T) {
	if os.Getenv("XVS_BGP_SCALE") != "1" {
		t.Skip("XVS_BGP_SCALE=1 runs the full-table measurement")
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "github.com/gaissmai/bart@v0.30.0/internal/tests/testdata/prefixes.txt.gz"))
	if err != nil {
		t.Fatalf("real table: %v", err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	nh4, nh6 := []netip.Addr{netip.MustParseAddr("198.18.0.2")}, []netip.Addr{netip.MustParseAddr("fd00:18::2")}
	seen := map[netip.Prefix]bool{}
	var routes []bgp.Route
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		p := netip.MustParsePrefix(sc.Text()).Masked()
		if seen[p] || p.Bits() == 0 {
			continue
		}
		seen[p] = true
		nh := nh4
		if p.Addr().Is6() {
			nh = nh6
		}
		routes = append(routes, bgp.Route{Prefix: p, NextHops: nh, Peer: nh[0]})
	}
	const batch = 65536
	sw := sinkSwitch(t)
	s := newRouteSink(sw, sw.FIB, nil, slog.New(slog.DiscardHandler))
	start := time.Now()
	for i := 0; i < len(routes); i += batch {
		if err := s.ApplyRoutes(routes[i:min(i+batch, len(routes))], nil); err != nil {
			t.Fatal(err)
		}
	}
	viaSwitch := time.Since(start)
	if got := len(bgpFIB(sw)); got != len(routes)-int(s.shadowed.Load()) {
		t.Fatalf("%d installed of %d (%d shadowed, %d refused)", got, len(routes), s.shadowed.Load(), s.refused.Load())
	}

	f := fib.New()
	start = time.Now()
	fr := make([]fib.Route, 0, batch)
	for i := 0; i < len(routes); i += batch {
		fr = fr[:0]
		for _, r := range routes[i:min(i+batch, len(routes))] {
			fr = append(fr, fib.Route{Prefix: r.Prefix, NextHop: fib.NextHop{Kind: fib.KindAdjacency, Via: r.NextHops[0]}, Origin: fib.OriginBGP})
		}
		if err := f.Apply(fr, nil); err != nil {
			t.Fatal(err)
		}
	}
	direct := time.Since(start)
	t.Logf("%d prefixes in batches of %d: sink + Switch.ApplyRoutes %v, fib.FIB.Apply alone %v (%.2fx)",
		len(routes), batch, viaSwitch.Round(time.Millisecond), direct.Round(time.Millisecond), viaSwitch.Seconds()/direct.Seconds())
}
