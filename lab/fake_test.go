package lab

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake xvsd (env fakeEnv set): it reads the
// config the lab wrote, serves /readyz and /metrics on the addresses in it,
// listens on its API socket,
// and exits on SIGTERM unless told to ignore it. That exercises the lab's
// process handling without the real dataplane.
const (
	fakeEnv          = "XVS_LAB_FAKE_XVSD"
	fakeIgnoreTERM   = "XVS_LAB_FAKE_IGNORE_TERM"
	fakeMetricsValue = 42
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) != "" {
		os.Exit(fakeXVSD(os.Args[1:]))
	}
	if Check() == nil {
		// Labs of earlier runs killed before their cleanup ran.
		if swept, err := SweepOrphans(DefaultStateRoot, func(string) bool { return true }); len(swept) > 0 || err != nil {
			fmt.Fprintf(os.Stderr, "lab: swept orphaned labs %v (%v)\n", swept, err)
		}
	}
	os.Exit(m.Run())
}

func fakeXVSD(args []string) int {
	fs := flag.NewFlagSet("fake-xvsd", flag.ContinueOnError)
	cfg := fs.String("config", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := os.Open(*cfg)
	if err != nil {
		return 1
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok && !strings.HasPrefix(k, " ") {
			kv[k] = strings.Trim(v, `"`)
		}
	}
	f.Close()
	sigs := make(chan os.Signal, 1)
	if os.Getenv(fakeIgnoreTERM) != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `xvs_drops_total{reason="no-route"} `+strconv.Itoa(fakeMetricsValue)+"\n")
	})
	for _, k := range []string{"health_addr", "metrics_addr"} {
		ln, err := net.Listen("tcp", kv[k])
		if err != nil {
			return 1
		}
		go http.Serve(ln, mux)
	}
	os.Remove(kv["api_socket"])
	api, err := net.Listen("unix", kv["api_socket"])
	if err != nil {
		return 1
	}
	defer api.Close()
	<-sigs
	return 0
}

func TestXVSDLifecycle(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	t.Setenv(fakeEnv, "1")
	l, err := New(context.Background(), Options{
		PodsPerNode: 1, XVSD: os.Args[0],
		StopTimeout: time.Second, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if left, _ := ListNamespaces(l.Prefix()); len(left) != 0 {
			t.Errorf("left: %v", left)
		}
	})
	n := l.T.Nodes[0]
	p := l.XVSD("node")
	if p == nil || !p.Alive() {
		t.Fatal("xvsd not running after New")
	}
	// The health and metrics endpoints are on the node namespace's own
	// loopback, not this one's.
	code, body, err := l.HTTPGet("node", "http://"+n.Metrics+"/metrics", 2*time.Second)
	if err != nil || code != 200 || !strings.Contains(string(body), "42") {
		t.Fatalf("metrics in node ns: %d %q %v", code, body, err)
	}
	if c, err := net.DialTimeout("tcp", n.Health, 200*time.Millisecond); err == nil {
		c.Close()
		t.Logf("note: something else listens on %s in this namespace", n.Health)
	}

	if err := l.StopXVSD("node"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if p.Alive() || l.XVSD("node") != nil {
		t.Fatal("xvsd still recorded or alive after stop")
	}
	if err := l.StartXVSD("node"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := l.StartXVSD("node"); err == nil {
		t.Fatal("second xvsd on one node was allowed")
	}
	if err := l.KillXVSD("node"); err != nil {
		t.Fatalf("kill: %v", err)
	}

	t.Setenv(fakeIgnoreTERM, "1")
	if err := l.StartXVSD("node"); err != nil {
		t.Fatalf("start (ignoring SIGTERM): %v", err)
	}
	if err := l.StopXVSD("node"); !errors.Is(err, ErrKilled) {
		t.Fatalf("stop of a process ignoring SIGTERM = %v, want ErrKilled", err)
	}

	// A lab left running is torn down from its state file.
	if err := l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	q := l.XVSD("node")
	if err := Down(l.opts.StateRoot, l.Prefix(), time.Second, t.Logf); err != nil {
		t.Fatalf("down: %v", err)
	}
	if !q.Wait(3 * time.Second) {
		t.Errorf("xvsd pid %d alive after Down", q.PID)
	}
}

func TestXVSDExitsEarly(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	root := t.TempDir()
	_, err := New(context.Background(), Options{PodsPerNode: 1, NoOutside: true, StateRoot: root, XVSD: "/bin/false"})
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("New with an xvsd that exits = %v", err)
	}
	labs, _ := ListStates(root)
	if len(labs) != 0 {
		t.Errorf("state left after failed New: %v", labs)
	}
}
