package vswitch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/netmon"
	"github.com/xvs-project/xvs/netmon/netmontest"
	"github.com/xvs-project/xvs/xdpprog"
)

// TestMain fails the package if goroutines outlive the tests: every worker,
// monitor and event loop a Switch starts must stop in Close.
func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := waitGoroutines(base, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// signalLoops counts os/signal's own goroutine, which the fuzzing engine
// starts (signal.Notify) and which lives as long as the process: it is
// not a leak of ours.
func signalLoops() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "os/signal.loop()")
}

func waitGoroutines(base int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine() - signalLoops()
		if n <= base {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			var leaked []string
			for _, g := range strings.Split(string(buf), "\n\n") {
				if !strings.Contains(g, "testing.(*M)") && !strings.Contains(g, "runtime.goexit") {
					leaked = append(leaked, g)
				}
			}
			return fmt.Errorf("goroutine leak: %d running, %d before the tests:\n%s", n, base, strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withoutKernel keeps a test's switch off the host's kernel: no neighbour
// or link monitor, no kernel VXLAN device.
func withoutKernel() Option {
	return func(s *Switch) {
		WithMonitor(&netmontest.Monitor{})(s)
		s.openTunnel = func(dataplane.VXLAN, int, *xdpprog.FastPath, *slog.Logger) (*kernelTunnel, error) {
			return nil, errors.New("no kernel VXLAN device in this test")
		}
	}
}

// neighUpdate is the event the kernel's monitor reports for a resolved
// neighbour (tests feed it to neighbors.update).
func neighUpdate(ifindex int, a netip.Addr, mac [6]byte) netmon.Neighbor {
	return netmon.Neighbor{Ifindex: ifindex, Addr: a, MAC: mac, State: "reachable", Valid: true}
}
