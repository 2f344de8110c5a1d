package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/apitest"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// fakeSwitch is the API fake plus a life cycle.
type fakeSwitch struct {
	*apitest.Fake
	started, closed atomic.Int32
}

func (f *fakeSwitch) Start() error { f.started.Add(1); return nil }
func (f *fakeSwitch) Close() error { f.closed.Add(1); return nil }

func newFake(t *testing.T) (*fakeSwitch, NewSwitchFunc) {
	fs := &fakeSwitch{Fake: apitest.NewFake()}
	return fs, func(cfg vswitch.Config, log *slog.Logger) (Switch, error) {
		for _, pc := range cfg.Ports {
			if _, err := fs.AddPort(pc); err != nil {
				return nil, err
			}
		}
		return fs, nil
	}
}

func testConfig(t *testing.T) *config.Config {
	f := &config.File{
		APISocket: filepath.Join(t.TempDir(), "xvsd.sock"), MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0",
		StateFile: filepath.Join(t.TempDir(), "state.json"),
		Ports:     []config.Port{{Name: "veth1", Kind: "pod", Addresses: []string{"10.244.0.5/32"}}},
	}
	c, err := f.Resolve(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDaemonRun(t *testing.T) {
	noLeaks(t)
	fs, newSw := newFake(t)
	cfg := testConfig(t)
	var logBuf syncBuffer
	d, err := New(cfg, newSw, slog.New(slog.NewTextHandler(&logBuf, nil)), "v-test")
	if err != nil {
		t.Fatal(err)
	}
	if fs.started.Load() != 1 {
		t.Fatal("switch not started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	var cs dataplane.Counters
	cs.Drops[dataplane.DropNoRoute] = 7
	cs.Events[dataplane.EvForwarded6] = 42
	fs.SetCounters(cs)
	fs.SetPortStats("veth1", spec.PortStats{RxPackets: 10, RxBytes: 640, TxPackets: 9, TxBytes: 576}, true, "")

	code, body := get(t, "http://"+d.MetricsAddr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`xvs_drops_total{reason="no-route"} 7`,
		`xvs_drops_total{reason="bad-ethernet"} 0`,
		`xvs_events_total{event="forwarded-ipv6"} 42`,
		`xvs_port_rx_packets_total{port="veth1"} 10`,
		`xvs_port_rx_bytes_total{port="veth1"} 640`,
		`xvs_port_tx_packets_total{port="veth1"} 9`,
		`xvs_port_tx_bytes_total{port="veth1"} 576`,
		`xvs_port_up{port="veth1"} 1`,
		`xvs_port_info{kind="pod",mode="xdp-native",port="veth1"} 1`,
		`xvs_ready 1`,
		`xvs_fib_routes{family="ipv4"} 1`,
		`xvs_build_info{version="v-test"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := get(t, "http://"+d.HealthAddr()+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the health address: %d", code)
	}
	if code, body := get(t, "http://"+d.HealthAddr()+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get(t, "http://"+d.HealthAddr()+"/readyz"); code != 200 {
		t.Errorf("/readyz ready: %d", code)
	}
	fs.SetReady(false)
	if code, _ := get(t, "http://"+d.HealthAddr()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz not ready: %d", code)
	}

	c, err := api.Dial(cfg.APISocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(apitest.Ctx(t))
	if err != nil || st.Version != "v-test" || st.Ports != 1 {
		t.Fatalf("status = %v, %v", st, err)
	}

	// A second daemon on the same socket must refuse before building a switch.
	built := false
	_, err = New(testConfig2(t, cfg.APISocket), func(vswitch.Config, *slog.Logger) (Switch, error) {
		built = true
		return fs, nil
	}, slog.New(slog.DiscardHandler), "x")
	if !errors.Is(err, api.ErrInUse) || built {
		t.Errorf("second daemon: err %v, built %v", err, built)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if fs.closed.Load() != 1 {
		t.Errorf("switch closed %d times", fs.closed.Load())
	}
	if _, err := os.Stat(cfg.APISocket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(logBuf.String(), "xvsd stopped") {
		t.Errorf("log:\n%s", logBuf.String())
	}
}

func testConfig2(t *testing.T, sock string) *config.Config {
	c := testConfig(t)
	c.APISocket = sock
	return c
}

func TestSharedHTTPAddress(t *testing.T) {
	_, newSw := newFake(t)
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsAddr = ln.Addr().String()
	cfg.HealthAddr = cfg.MetricsAddr // one server for both
	ln.Close()
	d, err := New(cfg, newSw, slog.New(slog.DiscardHandler), "x")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _ := get(t, "http://"+d.MetricsAddr()+p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewFailsReleases(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	_, err := New(cfg, func(vswitch.Config, *slog.Logger) (Switch, error) {
		return nil, errors.New("no xdp")
	}, slog.New(slog.DiscardHandler), "x")
	if err == nil || err.Error() != "dataplane: no xdp" {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(cfg.APISocket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestMainExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("ports:\n  - name: veth9\n    kind: pod\n    addresses: [10.0.0.300/32]\n"), 0o600)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("wrokers: 1\n"), 0o600)
	noLinks := func(string) error { return config.ErrNoSuchInterface }
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"bad flag", []string{"-bogus"}, ExitUsage, []string{"flag provided but not defined: -bogus"}},
		{"extra arg", []string{"run"}, ExitUsage, []string{`unexpected argument "run"`}},
		{"help", []string{"-h"}, ExitOK, []string{"usage: xvsd"}},
		{"version", []string{"-version"}, ExitOK, []string{"xvsd v1"}},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.yaml")}, ExitUsage, []string{"no such file"}},
		{"unknown key", []string{"-config", unknown}, ExitUsage, []string{"field wrokers not found"}},
		{"bad file", []string{"-config", bad}, ExitUsage, []string{
			"xvsd: invalid " + bad + ":",
			`  ports[0].name: "veth9": no such interface`,
			`  ports[0].addresses[0]: "10.0.0.300/32": invalid prefix`,
		}},
		{"bad flag value", []string{"-poll", "spin", "-metrics-addr", "0.0.0.0:9091"}, ExitUsage, []string{
			`poll: "spin": must be busy or adaptive`, `metrics_addr: "0.0.0.0:9091": must be a loopback address`,
		}},
		{"not wired", []string{"-state-file", filepath.Join(dir, "state.json"), "-api-socket", filepath.Join(dir, "s.sock"), "-metrics-addr", "127.0.0.1:0", "-health-addr", "127.0.0.1:0"},
			ExitRuntime, []string{"built without a dataplane"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stderr, "v1", nil, noLinks)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func TestMainRunsUntilSignal(t *testing.T) {
	noLeaks(t)
	fs, newSw := newFake(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "xvsd.yaml")
	os.WriteFile(cfgFile, []byte("workers: 1\nlog_format: json\nports:\n  - name: veth1\n    kind: pod\n"), 0o600)
	sock := filepath.Join(dir, "xvsd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"-config", cfgFile, "-state-file", filepath.Join(t.TempDir(), "state.json"), "-api-socket", sock, "-metrics-addr", "127.0.0.1:0", "-health-addr", "127.0.0.1:0", "-log-level", "debug"},
			&stderr, "v1", newSw, nil)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "xvsd running") {
		if time.Now().After(deadline) {
			t.Fatalf("never ran; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), `"msg":"xvsd running"`) {
		t.Errorf("log is not JSON:\n%s", stderr.String())
	}
	if len(fs.Ports()) != 1 {
		t.Errorf("ports from the file not passed to the switch: %v", fs.Ports())
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if fs.closed.Load() != 1 {
		t.Error("switch not closed")
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
