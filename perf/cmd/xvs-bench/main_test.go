package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-project/xvs/perf/internal/xpnet"
)

// ourNamespaces lists the namespaces whose tag carries this test's mark.
func ourNamespaces(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var ns []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "xpzz") {
			ns = append(ns, f[0])
		}
	}
	return ns
}

// TestInterruptCleansUp interrupts a benchmark run once its topology exists:
// the run must stop by itself within a bound and leave no namespace behind.
func TestInterruptCleansUp(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the benchmark builds network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	bin := filepath.Join(t.TempDir(), "xvs-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-quick", "-scenarios", "pod-to-pod", "-no-iperf", "-only", "udp ipv4 64B 1 flow",
		"-rounds", "5", "-out", t.TempDir(), "-xvsd", "/nonexistent")
	cmd.Env = append(os.Environ(), xpnet.TagEnv+"=zz")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		for _, ns := range ourNamespaces(t) {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})

	// Wait for the topology, then interrupt.
	deadline := time.Now().Add(30 * time.Second)
	for len(ourNamespaces(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no namespace appeared within 30 s; log:\n%s", log.String())
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("benchmark ended before it was interrupted (%v); log:\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		done <- nil
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after SIGINT; log:\n%s", log.String())
	}
	if left := ourNamespaces(t); len(left) > 0 {
		t.Fatalf("namespaces left after an interrupted run: %v; log:\n%s", left, log.String())
	}
}

// TestBadArguments: nonsense is refused with exit 2 and a message naming it,
// before anything is built.
func TestBadArguments(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "xvs-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-forwarders", "xvsd,vpp"}, `unknown forwarder "vpp"`},
		{[]string{"-scenarios", "pod-to-pod,nope"}, `unknown scenario "nope"`},
		{[]string{"-quick", "-full"}, "exclusive"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		cmd := exec.Command(bin, append(tc.args, "-out", t.TempDir())...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want 2\n%s", tc.args, err, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: output %q does not say %q", tc.args, out, tc.want)
		}
	}
}
