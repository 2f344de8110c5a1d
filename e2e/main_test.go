package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

var (
	// skipReason, when set, makes every test skip: the run cannot build a
	// lab or the binaries under test.
	skipReason string
	// xvsdBin and xvsctlBin are built once by TestMain; xvsctlBin may be
	// empty while xvsd builds (tests that need it skip).
	xvsdBin, xvsctlBin string
	xvsctlReason       string
	// binDir holds the binaries built for this run.
	binDir string
	// runPrefix starts every namespace of this run.
	runPrefix string
	labSeq    atomic.Int32

	keep = flag.Bool("e2e.keep", false, "keep lab directories (configs, xvsd logs) after each test")
)

func TestMain(m *testing.M) {
	flag.Parse()
	runPrefix = "xe" + lab.NewPrefix()[2:]
	var err error
	binDir, err = os.MkdirTemp("", "xvs-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	setup(binDir)
	if lab.Check() == nil {
		// Labs of earlier runs killed by a signal or -timeout.
		swept, err := lab.SweepOrphans(lab.DefaultStateRoot, func(p string) bool { return strings.HasPrefix(p, "xe") })
		if len(swept) > 0 || err != nil {
			fmt.Fprintf(os.Stderr, "e2e: swept orphaned labs %v (%v)\n", swept, err)
		}
		go closeOnSignal()
	}
	code := m.Run()
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: namespaces left behind: %s\n", strings.Join(left, " "))
		sweepRun()
		code = 1
	}
	os.RemoveAll(binDir)
	os.Exit(code)
}

func setup(dir string) {
	if err := lab.Check(); err != nil {
		skipReason = err.Error()
		return
	}
	for _, tool := range []string{"ping", "iperf3", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipReason = fmt.Sprintf("%s not installed (make test installs it)", tool)
			return
		}
	}
	root, err := moduleRoot()
	if err != nil {
		skipReason = err.Error()
		return
	}
	xvsdBin = filepath.Join(dir, "xvsd")
	if out, err := goBuild(root, xvsdBin, "./cmd/xvsd"); err != nil {
		skipReason = fmt.Sprintf("xvsd does not build yet: %v\n%s", err, firstLines(out, 5))
		return
	}
	xvsctlBin = filepath.Join(dir, "xvsctl")
	if out, err := goBuild(root, xvsctlBin, "./cmd/xvsctl"); err != nil {
		xvsctlBin, xvsctlReason = "", fmt.Sprintf("xvsctl does not build yet: %v\n%s", err, firstLines(out, 5))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines[n] = "..."
	}
	return strings.Join(lines, "\n")
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the xvs module")
	}
	return filepath.Dir(mod), nil
}

func goBuild(root, out, pkg string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// leftovers lists namespaces of this run that still exist.
func leftovers() []string {
	ents, _ := os.ReadDir(lab.NetnsDir)
	var left []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), runPrefix) {
			left = append(left, e.Name())
		}
	}
	return left
}

// sweepRun deletes what this run left, lab by lab.
func sweepRun() {
	seen := map[string]bool{}
	for _, n := range leftovers() {
		p, _, _ := strings.Cut(n, "-")
		if !seen[p] {
			seen[p] = true
			if _, err := lab.Sweep(p); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: sweep %s: %v\n", p, err)
			}
		}
	}
}

var (
	openMu   sync.Mutex
	openLabs = map[*lab.Lab]bool{} // guarded by openMu
)

// closeOnSignal tears down the open labs when the run is interrupted, so
// Ctrl-C leaves nothing behind. (A -timeout panic cannot be caught: the
// next run's SweepOrphans handles that.)
func closeOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	sig := <-c
	fmt.Fprintf(os.Stderr, "e2e: %v: tearing down labs\n", sig)
	openMu.Lock()
	for l := range openLabs {
		l.Close()
	}
	openMu.Unlock()
	os.RemoveAll(binDir)
	os.Exit(1)
}

// requireLab skips t unless this run can build labs and run xvsd.
func requireLab(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// newLab builds a lab for t with xvsd running on its node, torn down (and
// checked for leftovers) when t ends. On failure it logs xvsd's log.
func newLab(t *testing.T, o lab.Options) *lab.Lab {
	t.Helper()
	requireLab(t)
	o.Prefix = fmt.Sprintf("%s%02d", runPrefix, labSeq.Add(1))
	o.XVSD = xvsdBin
	o.Logf = t.Logf
	o.KeepDir = *keep
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 30 * time.Second // two cores shared with other work
	}
	l, err := lab.New(context.Background(), o)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	openMu.Lock()
	openLabs[l] = true
	openMu.Unlock()
	t.Cleanup(func() {
		openMu.Lock()
		delete(openLabs, l)
		openMu.Unlock()
		if t.Failed() {
			for _, n := range l.T.Nodes {
				t.Logf("xvsd log of %s:\n%s", n.NS, l.LogTail(n.Name, 60))
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
		if left, _ := lab.ListNamespaces(l.Prefix()); len(left) > 0 {
			t.Errorf("namespaces left after close: %v", left)
		}
	})
	return l
}
