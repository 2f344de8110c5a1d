package bgp

// The test harness: network namespaces on a bridge, speakers in child
// processes (the test binary re-executed inside `ip netns exec`), BIRD 2
// run by hand, and a raw TCP peer.
//
// Why child processes: GoBGP opens its listener and its outgoing
// connections from its own goroutines, which run on any OS thread, so
// switching one thread's namespace (netns.Set) would put some sockets in
// the node's namespace and others in the test's. GoBGP has no option to
// take pre-made sockets. A process started by `ip netns exec` is in the
// namespace on every thread, as xvsd will be on a node.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/xvs-project/xvs/fib"
	"gopkg.in/yaml.v3"
)

const childEnv = "XVS_BGP_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	os.Exit(m.Run())
}

// childSpec is what a child speaker runs (YAML, so passwords travel).
type childSpec struct {
	Config   Config         `yaml:"config"`
	Prefixes []netip.Prefix `yaml:"prefixes"`
	FIB      bool           `yaml:"fib"`
	Track    bool           `yaml:"track"` // record when each prefix was added and deleted
	// Restarting sets config.gracefulRestart.restarting (not in YAML).
	Restarting bool `yaml:"restarting"`
	// GoBGPWarn passes GoBGP's records on from Warn, as xvsd does
	// (default: from Info).
	GoBGPWarn bool `yaml:"gobgpWarn"`
}

// recSink records the routes it is given, and programs a FIB if asked.
type recSink struct {
	mu      sync.Mutex
	routes  map[netip.Prefix]Route
	fib     *fib.FIB
	batches int
	first   time.Time
	last    time.Time
	track   bool
	added   map[netip.Prefix]time.Time
	deleted map[netip.Prefix]time.Time
}

func (r *recSink) ApplyRoutes(adds []Route, dels []netip.Prefix) error {
	if r.fib != nil {
		if err := applyFIB(r.fib, adds, dels); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.first.IsZero() {
		r.first = now
	}
	r.last = now
	r.batches++
	for _, a := range adds {
		a.NextHops = append([]netip.Addr(nil), a.NextHops...)
		if r.fib == nil {
			r.routes[a.Prefix] = a
		}
		if r.track {
			r.added[a.Prefix] = now
		}
	}
	for _, d := range dels {
		delete(r.routes, d)
		if r.track {
			r.deleted[d] = now
		}
	}
	return nil
}

// applyFIB is the adapter xvsd will have, reduced: a next hop is an
// adjacency on port 1, several an ECMP group.
func applyFIB(f *fib.FIB, adds []Route, dels []netip.Prefix) error {
	rs := make([]fib.Route, 0, len(adds))
	var held []fib.Index
	for _, a := range adds {
		r := fib.Route{Prefix: a.Prefix, Origin: fib.OriginBGP}
		if len(a.NextHops) == 1 {
			r.NextHop = fib.NextHop{Kind: fib.KindAdjacency, Port: 1, Via: a.NextHops[0]}
		} else {
			g := fib.NextHop{Kind: fib.KindECMP}
			for _, nh := range a.NextHops {
				i, err := f.Acquire(fib.NextHop{Kind: fib.KindAdjacency, Port: 1, Via: nh})
				if err != nil {
					return err
				}
				held = append(held, i)
				g.Group = append(g.Group, i)
			}
			r.NextHop = g
		}
		rs = append(rs, r)
	}
	ks := make([]fib.RouteKey, len(dels))
	for i, d := range dels {
		ks[i] = fib.RouteKey{Prefix: d}
	}
	err := f.Apply(rs, ks)
	for _, i := range held {
		f.Release(i)
	}
	return err
}

// childReq and childResp are the child's line protocol on stdin/stdout.
type childReq struct {
	Op       string         `json:"op"`
	Prefixes []netip.Prefix `json:"prefixes,omitempty"`
	Addr     netip.Addr     `json:"addr,omitzero"`
	Config   string         `json:"config,omitempty"` // YAML
	Peers    []Peer         `json:"peers,omitempty"`
}

type childResp struct {
	Err     string       `json:"err,omitempty"`
	Routes  []Route      `json:"routes,omitempty"`
	Status  *Status      `json:"status,omitempty"`
	Count   int          `json:"count"`
	Batches int          `json:"batches"`
	First   time.Time    `json:"first"`
	Last    time.Time    `json:"last"`
	RSS     int64        `json:"rss"` // VmHWM, bytes
	Lookup  string       `json:"lookup,omitempty"`
	Entries []RouteEntry `json:"entries,omitempty"`
	Text    string       `json:"text,omitempty"`
	RIB     *RIBCounters `json:"rib,omitempty"`
}

func childMain(specPath string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := os.ReadFile(specPath)
	if err != nil {
		log.Error("read spec", "err", err)
		return 2
	}
	var spec childSpec
	if err := yaml.Unmarshal(b, &spec); err != nil {
		log.Error("parse spec", "err", err)
		return 2
	}
	if path := os.Getenv("XVS_BGP_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	sink := &recSink{routes: map[netip.Prefix]Route{}, track: spec.Track,
		added: map[netip.Prefix]time.Time{}, deleted: map[netip.Prefix]time.Time{}}
	if spec.FIB {
		sink.fib = fib.New()
	}
	spec.Config.GracefulRestart.Restarting = spec.Restarting
	lv := slog.LevelInfo
	if spec.GoBGPWarn {
		lv = slog.LevelWarn
	}
	sp, err := New(spec.Config, Options{Logger: log, GoBGPLevel: lv, Sink: sink})
	if err != nil {
		fmt.Fprintf(os.Stdout, "%s\n", mustJSON(childResp{Err: err.Error()}))
		return 1
	}
	ctx := context.Background()
	if err := sp.SetPrefixes(spec.Prefixes); err != nil {
		fmt.Fprintf(os.Stdout, "%s\n", mustJSON(childResp{Err: err.Error()}))
		return 1
	}
	if err := sp.Start(ctx); err != nil {
		fmt.Fprintf(os.Stdout, "%s\n", mustJSON(childResp{Err: err.Error()}))
		return 1
	}
	fmt.Fprintf(os.Stdout, "%s\n", mustJSON(childResp{}))
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var req childReq
		var resp childResp
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Err = err.Error()
		}
		switch req.Op {
		case "routes":
			sink.mu.Lock()
			for _, r := range sink.routes {
				resp.Routes = append(resp.Routes, r)
			}
			sink.mu.Unlock()
		case "count":
		case "applied":
			// First = when Prefixes[0] was last added, Last = deleted.
			sink.mu.Lock()
			if len(req.Prefixes) > 0 {
				resp.First, resp.Last = sink.added[req.Prefixes[0]], sink.deleted[req.Prefixes[0]]
			}
			sink.mu.Unlock()
			fmt.Fprintf(os.Stdout, "%s\n", mustJSON(resp))
			continue
		case "status":
			st, err := sp.Status(ctx)
			if err != nil {
				resp.Err = err.Error()
			}
			resp.Status = &st
			var sb strings.Builder
			FormatStatus(&sb, st, time.Now())
			resp.Text = sb.String()
		case "prefixes":
			if err := sp.SetPrefixes(req.Prefixes); err != nil {
				resp.Err = err.Error()
			}
		case "reconfigure":
			var c Config
			if err := yaml.Unmarshal([]byte(req.Config), &c); err != nil {
				resp.Err = err.Error()
			} else if err := sp.Reconfigure(ctx, c); err != nil {
				resp.Err = err.Error()
			}
		case "setpeers":
			if err := sp.SetPeers(ctx, req.Peers); err != nil {
				resp.Err = err.Error()
			}
		case "lookup":
			// One address per prefix given: answers joined by newlines.
			var sb strings.Builder
			for _, p := range req.Prefixes {
				if r, ok := sink.fib.Lookup(0, p.Addr()); ok {
					sb.WriteString(r.Prefix.String() + " via " + r.NextHop.Via.String())
				}
				sb.WriteString("\n")
			}
			resp.Lookup = sb.String()
		case "bgproutes":
			es, err := sp.Routes(ctx, RouteQuery{Peer: req.Addr, Advertised: len(req.Prefixes) > 0})
			if err != nil {
				resp.Err = err.Error()
			}
			resp.Entries = es
		case "metrics":
			reg := prometheus.NewPedanticRegistry()
			if err := reg.Register(sp.Collector()); err != nil {
				resp.Err = err.Error()
				break
			}
			mfs, err := reg.Gather()
			if err != nil {
				resp.Err = err.Error()
			}
			var sb strings.Builder
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					sb.WriteString(mf.GetName() + "{")
					for _, lp := range m.GetLabel() {
						fmt.Fprintf(&sb, "%s=%q,", lp.GetName(), lp.GetValue())
					}
					v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
					fmt.Fprintf(&sb, "} %g\n", v)
				}
			}
			resp.Text = sb.String()
		case "quit":
			if path := os.Getenv("XVS_BGP_MEMPROFILE"); path != "" {
				if f, err := os.Create(path); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			sp.Close()
			fmt.Fprintf(os.Stdout, "%s\n", mustJSON(resp))
			return 0
		default:
			resp.Err = "unknown op " + req.Op
		}
		sink.mu.Lock()
		resp.Count, resp.Batches, resp.First, resp.Last = len(sink.routes), sink.batches, sink.first, sink.last
		if sink.fib != nil {
			v4, v6 := sink.fib.Count(0)
			resp.Count = v4 + v6
		}
		sink.mu.Unlock()
		c := sp.rib.counters()
		resp.RIB = &c
		resp.RSS = peakRSS()
		fmt.Fprintf(os.Stdout, "%s\n", mustJSON(resp))
	}
	sp.Close()
	return 0
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// peakRSS is the process's VmHWM in bytes.
func peakRSS() int64 { return procStatusKB("self", "VmHWM") * 1024 }

func procStatusKB(pid, key string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			var n int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &n)
			return n
		}
	}
	return 0
}

// child is a speaker running in a namespace.
type child struct {
	t    testing.TB
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	mu   sync.Mutex
	logf string
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
}

// startSpeaker runs a speaker with spec in namespace ns.
func startSpeaker(t testing.TB, ns string, spec childSpec) *child {
	t.Helper()
	dir := t.TempDir()
	b, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, logf: filepath.Join(dir, "speaker.log")}
	c.cmd = exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+path)
	logw, err := os.Create(c.logf)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = logw
	c.in, _ = c.cmd.StdinPipe()
	outr, _ := c.cmd.StdoutPipe()
	c.out = bufio.NewScanner(outr)
	c.out.Buffer(make([]byte, 1<<20), 1<<28)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.in.Close()
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
		logw.Close()
		if t.Failed() {
			b, _ := os.ReadFile(c.logf)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("speaker in %s log tail:\n%s", ns, b)
		}
	})
	var r childResp
	if !c.out.Scan() {
		b, _ := os.ReadFile(c.logf)
		t.Fatalf("speaker in %s did not start: %s", ns, b)
	}
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil || r.Err != "" {
		t.Fatalf("speaker in %s: %v %s", ns, err, r.Err)
	}
	return c
}

// kill ends the speaker abruptly (no NOTIFICATION, as a crash).
func (c *child) kill() {
	c.cmd.Process.Kill()
}

func (c *child) call(req childReq) childResp {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.in.Write(append(mustJSON(req), '\n')); err != nil {
		c.t.Fatalf("speaker %s: %v", req.Op, err)
	}
	if !c.out.Scan() {
		c.t.Fatalf("speaker %s: no answer: %v", req.Op, c.out.Err())
	}
	var r childResp
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		c.t.Fatalf("speaker %s: %v", req.Op, err)
	}
	return r
}

func (c *child) routes() map[netip.Prefix]Route {
	m := map[netip.Prefix]Route{}
	for _, r := range c.call(childReq{Op: "routes"}).Routes {
		m[r.Prefix] = r
	}
	return m
}

func (c *child) status() Status { return *c.call(childReq{Op: "status"}).Status }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(d)
	var last string
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s; last: %s", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peerState returns the status row of a peer.
func (c *child) peer(a netip.Addr) (PeerStatus, bool) {
	for _, p := range c.status().Peers {
		if p.Address == a {
			return p, true
		}
	}
	return PeerStatus{}, false
}

func (c *child) waitEstablished(t testing.TB, peers ...netip.Addr) {
	t.Helper()
	for _, a := range peers {
		waitFor(t, 30*time.Second, "session with "+a.String(), func() (bool, string) {
			p, ok := c.peer(a)
			return ok && p.Session == "Established", fmt.Sprintf("%+v", p)
		})
	}
}

// netLab is a set of namespaces on one bridge: node i has 198.18.0.i/24
// and fd00:18::i/64 on eth0.
type netLab struct {
	t      testing.TB
	prefix string
	nss    []string
}

func newLab(t testing.TB) *netLab {
	requireRoot(t)
	var b [2]byte
	rand.Read(b[:])
	l := &netLab{t: t, prefix: "xb" + hex.EncodeToString(b[:])}
	t.Cleanup(l.close)
	l.ns("br")
	l.run("br", "ip", "link", "add", "br0", "type", "bridge")
	l.run("br", "ip", "link", "set", "br0", "up")
	return l
}

func (l *netLab) name(n string) string { return l.prefix + "-" + n }

func (l *netLab) ns(n string) string {
	full := l.name(n)
	if out, err := exec.Command("ip", "netns", "add", full).CombinedOutput(); err != nil {
		l.t.Fatalf("ip netns add %s: %v %s", full, err, out)
	}
	l.nss = append(l.nss, full)
	l.run(n, "ip", "link", "set", "lo", "up")
	return full
}

func (l *netLab) run(n string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.name(n)}, args...)...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v: %v %s", n, args, err, out)
	}
	return string(out)
}

// node adds namespace "nI" on the bridge and returns its addresses.
func (l *netLab) node(i int) (ns string, v4, v6 netip.Addr) {
	n := fmt.Sprintf("n%d", i)
	ns = l.ns(n)
	v4 = netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
	v6 = netip.MustParseAddr(fmt.Sprintf("fd00:18::%d", i))
	host := fmt.Sprintf("%sb%d", l.prefix, i)
	if out, err := exec.Command("ip", "link", "add", host, "netns", l.name("br"), "type", "veth", "peer", "name", "eth0", "netns", ns).CombinedOutput(); err != nil {
		l.t.Fatalf("veth for %s: %v %s", n, err, out)
	}
	l.run("br", "ip", "link", "set", host, "master", "br0", "up")
	l.run(n, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
	l.run(n, "ip", "addr", "add", v4.String()+"/24", "dev", "eth0")
	l.run(n, "ip", "addr", "add", v6.String()+"/64", "dev", "eth0", "nodad")
	l.run(n, "ip", "link", "set", "eth0", "up")
	return ns, v4, v6
}

func (l *netLab) close() {
	for i := len(l.nss) - 1; i >= 0; i-- {
		exec.Command("ip", "netns", "del", l.nss[i]).Run()
	}
}

// bird is a BIRD 2 daemon in a namespace.
type bird struct {
	t    testing.TB
	ns   string
	sock string
	conf string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// haveBIRD fails (not skips) without BIRD: `make test` installs bird2, and
// a missing peer must not pass as a skipped test.
func haveBIRD(t testing.TB) {
	t.Helper()
	requireRoot(t)
	for _, tool := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: `make deps` installs bird2", tool)
		}
	}
}

func startBIRD(t testing.TB, ns, conf string) *bird {
	t.Helper()
	haveBIRD(t)
	dir := t.TempDir()
	b := &bird{t: t, ns: ns, sock: filepath.Join(dir, "bird.ctl"), conf: filepath.Join(dir, "bird.conf"), log: filepath.Join(dir, "bird.log")}
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *bird) start() {
	b.t.Helper()
	lf, _ := os.OpenFile(b.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	b.cmd = exec.Command("ip", "netns", "exec", b.ns, "bird", "-f", "-c", b.conf, "-s", b.sock, "-P", b.sock+".pid")
	b.cmd.Stdout, b.cmd.Stderr = lf, lf
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); lf.Close(); close(done) }(b.cmd, b.done)
	waitFor(b.t, 60*time.Second, "bird control socket", func() (bool, string) {
		select {
		case <-b.done:
			out, _ := os.ReadFile(b.log)
			b.t.Fatalf("bird in %s exited: %s", b.ns, out)
		default:
		}
		_, err := b.birdc("show status")
		return err == nil, fmt.Sprint(err)
	})
}

// kill stops BIRD without a NOTIFICATION (as a crash would).
func (b *bird) kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(os.Kill)
	// ip netns exec execs bird, so the PID is BIRD's.
	<-b.done
	b.cmd = nil
}

func (b *bird) stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
	if b.t.Failed() {
		out, _ := os.ReadFile(b.log)
		b.t.Logf("bird in %s log:\n%s", b.ns, out)
	}
}

func (b *bird) birdc(cmd string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, strings.Fields(cmd)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

func (b *bird) mustBirdc(cmd string) string {
	b.t.Helper()
	out, err := b.birdc(cmd)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// hasRoute reports whether BIRD's table has p (as `show route for`
// finds it exactly) and returns BIRD's description of it.
func (b *bird) route(p netip.Prefix) (string, bool) {
	out, err := b.birdc("show route " + p.String() + " all")
	if err != nil {
		return out, false
	}
	return out, strings.Contains(out, p.String())
}
