package vswitch

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
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
