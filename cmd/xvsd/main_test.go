package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary runs the real xvsd (with the real switch and no ports) in a
// network namespace of its own: it serves, refuses a second instance on the
// same socket, exits 2 naming the field on a bad config, and exits 0 on
// SIGTERM, removing its socket.
func TestBinary(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "xvsd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ns := fmt.Sprintf("xvsdt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()

	sock := filepath.Join(dir, "run", "xvsd.sock")
	cfg := filepath.Join(dir, "xvsd.yaml")
	os.WriteFile(cfg, []byte("state_file: "+filepath.Join(dir, "state.json")+"\napi_socket: "+sock+"\nmetrics_addr: 127.0.0.1:19391\nhealth_addr: 127.0.0.1:19399\nroutes:\n  - prefix: 198.51.100.0/24\n    blackhole: true\n"), 0o600)
	xvsd := func(args ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	}

	var logb bytes.Buffer
	cmd := xvsd("-config", cfg)
	cmd.Stderr = &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket; log:\n%s", logb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sf", "http://127.0.0.1:19399/readyz").CombinedOutput()
		if err != nil || string(out) != "ready\n" {
			t.Errorf("readyz: %v %q", err, out)
		}
	}

	second := xvsd("-config", cfg, "-metrics-addr", "127.0.0.1:19491", "-health-addr", "127.0.0.1:19499")
	if out, err := second.CombinedOutput(); exitCode(err) != 1 || !strings.Contains(string(out), "another xvsd is serving") {
		t.Errorf("second xvsd: %v\n%s", err, out)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("ports:\n  - name: nosuch0\n    kind: pod\n"), 0o600)
	if out, err := xvsd("-config", bad).CombinedOutput(); exitCode(err) != 2 || !strings.Contains(string(out), `ports[0].name: "nosuch0": no such interface`) {
		t.Errorf("bad config: %v\n%s", err, out)
	}

	// ip netns exec execs xvsd, so the signal reaches it directly.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("xvsd ignored SIGTERM; log:\n%s", logb.String())
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
