package pktgen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/perf/internal/xpnet"
)

var okArgs = []string{"-iface", "x0", "-mode", "tx", "-src", "198.18.0.1", "-dst", "198.18.0.2", "-dst-mac", "02:00:00:00:00:02", "-count", "10"}

func with(extra ...string) []string { return append(append([]string(nil), okArgs...), extra...) }

func TestParseFlagsRejects(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-mode", "tx", "-count", "1"}, "-iface is required"},
		{with("-mode", "both"), `mode "both"`},
		{[]string{"-iface", "x0", "-mode", "tx", "-src", "198.18.0.1", "-dst", "198.18.0.2", "-dst-mac", "02:00:00:00:00:02"}, "no bound"},
		{with("-size", "40"), "size 40 is below 58"},
		{with("-src", "fd00::1"), "different address families"},
		{with("-src", "fd00::1", "-dst", "fd00::2", "-size", "64"), "size 64 is below 78"},
		{with("-size", "9001"), "9000"},
		{with("-size", "big"), "want a number of bytes or imix"},
		{with("-rate", "-5"), "rate -5"},
		{with("-rate", "fast"), "-rate \"fast\""},
		{with("-rate", "1000M"), "cap"},
		{with("-src", "198.18.0.300"), "not an IPv4 or IPv6 address"},
		{with("-dst", "224.0.0.1"), "unicast"},
		{with("-dst-mac", "zz"), "not an Ethernet MAC"},
		{with("-duration", "2h"), "cap"},
		{with("-count", "5000000000"), "cap"},
		{with("-flows", "0"), "flows 0"},
		{with("-flows", "70000"), "flows 70000"},
		{with("-sport", "65000", "-flows", "1000"), "passes 65535"},
		{with("-vxlan-vni", "5"), "-outer-src"},
		{with("-vxlan-vni", "16777216"), "24 bits"},
		{with("-vxlan-vni", "5", "-outer-src", "198.19.0.1", "-outer-dst", "fd00::1"), "different address families"},
		{with("-vxlan-vni", "5", "-outer-src", "198.19.0.1", "-outer-dst", "198.19.0.2", "-size", "100"), "below 108"},
		{with("-outer-src", "198.19.0.1"), "need -vxlan-vni"},
		{with("-io", "dpdk"), "io \"dpdk\""},
		{with("-rx-io", "pcap"), "rx-io \"pcap\""},
		{with("-flow-by", "mac"), "-flow-by"},
		{with("extra"), "unexpected argument"},
		{[]string{"-iface", "x0", "-mode", "tx", "-src", "198.18.0.1", "-dst", "198.18.0.2", "-count", "1"}, "-dst-mac is required"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, _, err := ParseFlags(c.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to say %q", err, c.want)
			}
			var out, errb bytes.Buffer
			if code := Main(c.args, &out, &errb); code != ExitUsage {
				t.Errorf("exit %d, want %d (stderr %s)", code, ExitUsage, errb.String())
			}
		})
	}
}

func TestParseFlagsAccepts(t *testing.T) {
	for _, args := range [][]string{
		okArgs,
		with("-size", "imix", "-rate", "250k", "-flows", "1000", "-flow-by", "addr"),
		with("-src", "fd00::1", "-dst", "fd00::2", "-size", "78,1500"),
		with("-vxlan-vni", "100", "-outer-src", "fd00:9::1", "-outer-dst", "fd00:9::2", "-size", "1514"),
		{"-iface", "x0", "-mode", "rx", "-duration", "1s"},
	} {
		if _, _, err := ParseFlags(args, &bytes.Buffer{}); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestRunUnknownNetns(t *testing.T) {
	cfg, _, err := ParseFlags(with("-netns", "xpnosuchns0"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = Run(context.Background(), cfg, nil); !IsUsage(err) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunUnknownInterface(t *testing.T) {
	cfg, _, err := ParseFlags(with("-iface", "xpnosuchif0"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), cfg, nil)
	if !IsUsage(err) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
}

// TestTxRxVeth runs the command end to end across a veth pair in two
// namespaces, plain and VXLAN, and reads its JSON.
func TestTxRxVeth(t *testing.T) {
	if err := xpnet.Check(); err != nil {
		t.Skip(err)
	}
	n := xpnet.New()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	a, err := n.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.NS("b")
	if err != nil {
		t.Fatal(err)
	}
	_, macB, err := n.Veth(a, "a0", b, "b0")
	if err != nil {
		t.Fatal(err)
	}
	// Main's signal.NotifyContext starts os/signal's watcher goroutine,
	// which lives for the process: start it before counting.
	_, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	stop()
	fds, gor := openFDs(t), runtime.NumGoroutine()
	defer func() {
		if now := openFDs(t); now > fds {
			t.Errorf("%d file descriptors leaked", now-fds)
		}
		time.Sleep(50 * time.Millisecond)
		if now := runtime.NumGoroutine(); now > gor {
			t.Errorf("%d goroutines leaked", now-gor)
		}
	}()
	for _, extra := range [][]string{
		{"-src", "198.18.0.1", "-dst", "198.18.0.2", "-size", "imix", "-flows", "100"},
		{"-src", "198.18.0.1", "-dst", "198.18.0.2", "-size", "64", "-io", "afxdp"},
		{"-src", "fd00::1", "-dst", "fd00::2", "-size", "128", "-io", "afxdp", "-rx-io", "afxdp"},
		{"-src", "fd00::1", "-dst", "fd00::2", "-size", "128", "-flows", "10", "-flow-by", "addr",
			"-vxlan-vni", "42", "-outer-src", "198.19.0.1", "-outer-dst", "198.19.0.2"},
		// Last: asavie/xdp leaves its socket bound to a0's queue until the
		// process exits.
		{"-src", "198.18.0.1", "-dst", "198.18.0.2", "-size", "64", "-io", "asavie"},
	} {
		out := filepath.Join(t.TempDir(), "r.json")
		args := append([]string{"-mode", "txrx", "-netns", a, "-iface", "a0", "-rx-netns", b, "-rx-iface", "b0",
			"-dst-mac", macB.String(), "-count", "3000", "-rate", "30000", "-duration", "10s", "-json", out, "-quiet", "-io", "afpacket"}, extra...)
		if len(extra) > 6 && extra[6] == "-io" {
			if err := requireXDP(); err != nil {
				t.Logf("skip %s: %v", extra[7], err)
				continue
			}
		}
		var so, se bytes.Buffer
		if code := Main(args, &so, &se); code != ExitOK {
			t.Fatalf("exit %d: %s", code, se.String())
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var r Result
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		if r.Tx == nil || r.Rx == nil || r.Tx.Packets != 3000 {
			t.Fatalf("result %s", raw)
		}
		if r.Rx.Unique+r.Rx.SocketDrops < 3000 || r.Rx.Dups != 0 || r.Rx.Expected != 3000 {
			t.Errorf("rx %+v", r.Rx)
		}
		if r.Rx.Latency.P50 <= 0 || r.Rx.Latency.P999 < r.Rx.Latency.P50 {
			t.Errorf("latency %+v", r.Rx.Latency)
		}
		t.Logf("%s", so.String())
	}
}

// requireXDP reports whether AF_XDP sockets can be created here.
func requireXDP() error {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func openFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
