package bgp

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

// realTable loads bart's real Internet table (as fib's tests do), masked
// and without duplicates.
func realTable(t testing.TB) (v4, v6 []netip.Prefix) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "github.com/gaissmai/bart@v0.30.0/internal/tests/testdata/prefixes.txt.gz")
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("real table not available (bart v0.30.0 is in go.mod; go mod download fetches it): %v", err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Prefix]bool{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		p, err := netip.ParsePrefix(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		p = p.Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// birdTableConf writes BIRD static protocols holding every prefix.
func birdTableConf(id netip.Addr, v4, v6 []netip.Prefix) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nprotocol device { }\nprotocol static s4 { ipv4;\n", id)
	for _, p := range v4 {
		fmt.Fprintf(&b, "route %s blackhole;\n", p)
	}
	b.WriteString("}\nprotocol static s6 { ipv6;\n")
	for _, p := range v6 {
		fmt.Fprintf(&b, "route %s blackhole;\n", p)
	}
	b.WriteString("}\n")
	return b.String()
}

var exportedRE = regexp.MustCompile(`Routes:\s+(\d+) imported, (?:\d+ filtered, )?(\d+) exported`)

// birdCounts returns a protocol's imported and exported route counts.
func birdCounts(b *bird, proto string) (imported, exported int) {
	out, err := b.birdc("show protocols all " + proto)
	if err != nil {
		return -1, -1
	}
	m := exportedRE.FindStringSubmatch(out)
	if m == nil {
		return 0, 0
	}
	imported, _ = strconv.Atoi(m[1])
	exported, _ = strconv.Atoi(m[2])
	return imported, exported
}

func procHWM(pid int) int64 { return procStatusKB(strconv.Itoa(pid), "VmHWM") * 1024 }

// TestScaleRealTable: BIRD announces the real 1.06M-prefix table to the
// speaker, whose sink programs a fib.FIB; lookups agree with the table
// (bart) and with BIRD's for samples. Then the same table goes from the
// announcer to a second BIRD that exports it to the kernel's routing
// table in its namespace (Calico's path). Reports time from session up
// to the last prefix installed, and peak RSS, for both. XVS_BGP_SCALE=1
// runs it (about 2 minutes here).
func TestScaleRealTable(t *testing.T) {
	if os.Getenv("XVS_BGP_SCALE") == "" {
		t.Skip("XVS_BGP_SCALE=1 runs the 1.06M-prefix table test")
	}
	haveBIRD(t)
	v4, v6 := realTable(t)
	if m, _ := strconv.Atoi(os.Getenv("XVS_BGP_SCALE_N")); m > 0 && m < len(v4)+len(v6) {
		// A sample for quicker runs, in proportion.
		v4, v6 = v4[:m*len(v4)/(len(v4)+len(v6))], v6[:m*len(v6)/(len(v4)+len(v6))]
	}
	n := len(v4) + len(v6)
	l := newLab(t)
	ans, a4, a6 := l.node(1)
	sns, s4, s6 := l.node(2)
	kns, k4, _ := l.node(3)
	conf := birdTableConf(a4, v4, v6) + fmt.Sprintf(`
protocol bgp xvs { local %s as 65001; neighbor %s as 65002; ipv4 { export all; import none; }; ipv6 { export all; import none; }; }
protocol bgp calico { local %s as 65001; neighbor %s as 65003; ipv4 { export all; import none; }; ipv6 { export all; import none; }; }
`, a4, s4, a4, k4)
	t0 := time.Now()
	ann := startBIRD(t, ans, conf)
	waitFor(t, 5*time.Minute, "the announcer's static routes", func() (bool, string) {
		i4, _ := birdCounts(ann, "s4")
		i6, _ := birdCounts(ann, "s6")
		return i4 == len(v4) && i6 == len(v6), fmt.Sprintf("%d+%d", i4, i6)
	})
	t.Logf("announcer loaded %d prefixes in %v", n, time.Since(t0))

	// xvs: GoBGP embedded, the sink programs the FIB.
	sp := startSpeaker(t, sns, childSpec{FIB: true, Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		Peers: []Peer{{Address: a4, ASNumber: 65001, Families: []Family{IPv4, IPv6}, ConnectRetry: time.Second}}}})
	var r childResp
	waitFor(t, 10*time.Minute, "the whole table in the FIB", func() (bool, string) {
		r = sp.call(childReq{Op: "count"})
		return r.Count == n, fmt.Sprintf("%d of %d", r.Count, n)
	})
	// Peak RSS before the status call: GoBGP's advertised-count walk
	// allocates in proportion to the table.
	xvsRSS := r.RSS
	ps, _ := sp.peer(a4)
	xvsTime := r.Last.Sub(ps.Since)
	t.Logf("xvs (GoBGP + FIB): session up -> %d prefixes in the FIB: %v; peak RSS %d MiB; %d batches", n, xvsTime.Round(time.Millisecond), xvsRSS>>20, r.Batches)

	// Lookups agree with the table.
	ref := new(bart.Table[netip.Prefix])
	for _, p := range v4 {
		ref.Insert(p, p)
	}
	for _, p := range v6 {
		ref.Insert(p, p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	all := slices.Concat(v4, v6)
	var probes []netip.Prefix
	for range 20000 {
		p := all[rng.IntN(len(all))]
		b := p.Addr().AsSlice()
		for i := (p.Bits() + 7) / 8; i < len(b); i++ {
			b[i] = byte(rng.Uint32())
		}
		a, _ := netip.AddrFromSlice(b)
		// Keep the prefix's bits, randomize the rest.
		pa := netip.PrefixFrom(a, p.Bits()).Masked().Addr().AsSlice()
		for i := range b {
			m := byte(0)
			if bits := p.Bits() - 8*i; bits >= 8 {
				m = 0xff
			} else if bits > 0 {
				m = byte(0xff << (8 - bits))
			}
			b[i] = pa[i]&m | b[i]&^m
		}
		a, _ = netip.AddrFromSlice(b)
		probes = append(probes, netip.PrefixFrom(a, a.BitLen()))
	}
	answers := strings.Split(sp.call(childReq{Op: "lookup", Prefixes: probes}).Lookup, "\n")
	bad := 0
	for i, pr := range probes {
		want, ok := ref.Lookup(pr.Addr())
		wantS := ""
		if ok {
			nh := a4
			if want.Addr().Is6() {
				nh = a6
			}
			wantS = want.String() + " via " + nh.String()
		}
		if answers[i] != wantS {
			if bad++; bad <= 5 {
				t.Errorf("lookup %s: FIB %q, table %q", pr.Addr(), answers[i], wantS)
			}
		}
	}
	// And with BIRD's own table, for a few.
	for _, pr := range probes[:100] {
		out, err := ann.birdc("show route for " + pr.Addr().String() + " table " + map[bool]string{true: "master4", false: "master6"}[pr.Addr().Is4()])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.Lookup(pr.Addr())
		if !strings.Contains(out, want.String()) {
			t.Errorf("BIRD's answer for %s is not %s:\n%s", pr.Addr(), want, out)
		}
	}
	t.Logf("%d lookups agree with the table (%d differ)", len(probes)-bad, bad)
	sp.call(childReq{Op: "quit"})
	if os.Getenv("XVS_BGP_SCALE") == "xvs" {
		return // xvs only, for profiling
	}

	// Calico's path: BIRD learns the table and exports it to the kernel.
	kconf := fmt.Sprintf(`router id %s;
protocol device { }
protocol kernel k4 { ipv4 { export all; import none; }; merge paths off; }
protocol kernel k6 { ipv6 { export all; import none; }; }
protocol bgp up { local %s as 65003; neighbor %s as 65001; ipv4 { import all; export none; }; ipv6 { import all; export none; }; }
`, k4, k4, a4)
	kb := startBIRD(t, kns, kconf)
	var up time.Time
	waitFor(t, 2*time.Minute, "BIRD's session", func() (bool, string) {
		out, _ := kb.birdc("show protocols up")
		if strings.Contains(out, "Established") {
			up = time.Now()
			return true, ""
		}
		return false, out
	})
	var done time.Time
	waitFor(t, 15*time.Minute, "BIRD's kernel export", func() (bool, string) {
		_, e4 := birdCounts(kb, "k4")
		_, e6 := birdCounts(kb, "k6")
		if e4+e6 >= n {
			done = time.Now()
			return true, ""
		}
		return false, fmt.Sprintf("%d+%d of %d", e4, e6, n)
	})
	birdTime := done.Sub(up)
	birdRSS := procHWM(kb.cmd.Process.Pid)
	out := l.run("n3", "sh", "-c", "ip -4 route show proto bird | wc -l; ip -6 route show proto bird | wc -l")
	t.Logf("BIRD 2 + kernel: session up -> %d prefixes exported to the kernel: %v (±0.2s polling); BIRD peak RSS %d MiB; kernel routes v4/v6: %s",
		n, birdTime.Round(time.Millisecond), birdRSS>>20, strings.Join(strings.Fields(out), "/"))
	t.Logf("ratio: xvs %.2fx faster than BIRD + kernel; RSS xvs %d MiB, BIRD %d MiB", birdTime.Seconds()/xvsTime.Seconds(), xvsRSS>>20, birdRSS>>20)
}

// TestConvergence: a raw peer announces and withdraws 1,000 prefixes one
// at a time; the time from the UPDATE leaving the peer to the sink
// having applied it, p50 and p99. The sink's batching window (2ms) is
// part of it.
func TestConvergence(t *testing.T) {
	l := newLab(t)
	rns, r4, _ := l.node(1)
	sns, s4, s6 := l.node(2)
	accepted := listenRaw(t, rns, r4, 65001)
	sp := startSpeaker(t, sns, childSpec{Track: true, FIB: true, Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		Peers: []Peer{{Address: r4, ASNumber: 65001, ConnectRetry: time.Second}}}})
	var p *rawPeer
	select {
	case p = <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("speaker did not connect to the raw peer")
	}
	sp.waitEstablished(t, r4)
	attrs := append(append(attr(0x40, 1, []byte{0}), asPath(65001)...), attr(0x40, 3, r4.AsSlice())...)
	count := 1000
	if testing.Short() {
		count = 100
	}
	var ann, wd []time.Duration
	wait := func(pfx netip.Prefix, sent time.Time, del bool) time.Duration {
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
			r := sp.call(childReq{Op: "applied", Prefixes: []netip.Prefix{pfx}})
			at := r.First
			if del {
				at = r.Last
			}
			if at.After(sent) {
				return at.Sub(sent)
			}
			time.Sleep(200 * time.Microsecond)
		}
		t.Fatalf("%s not applied (del=%v)", pfx, del)
		return 0
	}
	for i := range count {
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(100 + i/256), byte(i)}), 32)
		sent := time.Now()
		p.send(update(nil, attrs, nlriOf(pfx)))
		ann = append(ann, wait(pfx, sent, false))
		sent = time.Now()
		p.send(update(nlriOf(pfx), nil, nil))
		wd = append(wd, wait(pfx, sent, true))
	}
	pct := func(d []time.Duration, q float64) time.Duration {
		s := slices.Clone(d)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[int(q*float64(len(s)-1))]
	}
	t.Logf("convergence over %d prefixes: announce p50 %v p99 %v; withdraw p50 %v p99 %v",
		count, pct(ann, .5), pct(ann, .99), pct(wd, .5), pct(wd, .99))
}
