package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/xvs-project/xvs/podnet"
)

// NetnsDir is where iproute2 keeps named network namespaces.
const NetnsDir = "/run/netns"

// addNS creates a named namespace the way `ip netns add` does, so `ip netns
// exec` and `ip -n` work on it.
func addNS(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return podnet.NewNamed(name)
}

// delNS deletes a named namespace; a missing one is not an error. Its
// veths go with it (and so do their peers in other namespaces) once no
// process holds it.
func delNS(ctx context.Context, name string) error {
	return podnet.DeleteNamed(name)
}

// ListNamespaces returns the named namespaces whose name starts with prefix
// and a dash, sorted.
func ListNamespaces(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// InNS runs fn on an OS thread switched into the named namespace. Sockets
// fn opens stay in that namespace for their whole life and can be used from
// any goroutine afterwards. fn must not start goroutines that expect to run
// in the namespace.
func InNS(name string, fn func() error) error {
	return podnet.Do(nsPath(name), fn)
}

// nsPath is the file of the named namespace.
func nsPath(name string) string { return filepath.Join(NetnsDir, name) }

// writeSysctl sets key (sysctl(8) spelling) in the named namespace.
func writeSysctl(ns, key, value string) error {
	if err := podnet.SetSysctl(nsPath(ns), key, value); err != nil {
		return fmt.Errorf("in %s: %w", ns, err)
	}
	return nil
}

// ReadSysctl reads key (sysctl(8) spelling) in the named namespace.
func ReadSysctl(ns, key string) (string, error) {
	return podnet.GetSysctl(nsPath(ns), key)
}

// ExecError is a command that failed, with what it printed.
type ExecError struct {
	Args   []string
	Output string
	Err    error
}

func (e *ExecError) Error() string {
	out := strings.TrimSpace(e.Output)
	if len(out) > 2000 {
		out = "..." + out[len(out)-2000:]
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, out)
}

func (e *ExecError) Unwrap() error { return e.Err }

// run runs a command to completion and returns its combined output. The
// context bounds it; WaitDelay bounds a child that leaves its output open.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return out.String(), &ExecError{Args: append([]string{name}, args...), Output: out.String(), Err: err}
	}
	return out.String(), nil
}

// Exec runs args in the named namespace through `ip netns exec`, bounded by
// timeout, and returns the combined output.
func Exec(ns string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ExecContext(ctx, ns, args...)
}

// ExecContext is Exec bounded by ctx.
func ExecContext(ctx context.Context, ns string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("exec: no command")
	}
	return run(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}
