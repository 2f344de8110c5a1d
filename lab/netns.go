package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

// NetnsDir is where iproute2 keeps named network namespaces.
const NetnsDir = "/run/netns"

// addNS creates a named namespace the way `ip netns add` does, so `ip netns
// exec` and `ip -n` work on it.
func addNS(ctx context.Context, name string) error {
	if _, err := os.Stat(filepath.Join(NetnsDir, name)); err == nil {
		return fmt.Errorf("namespace %s: %w", name, os.ErrExist)
	}
	_, err := run(ctx, "ip", "netns", "add", name)
	return err
}

// delNS deletes a named namespace; a missing one is not an error. Its
// veths go with it (and so do their peers in other namespaces) once no
// process holds it.
func delNS(ctx context.Context, name string) error {
	if _, err := os.Stat(filepath.Join(NetnsDir, name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_, err := run(ctx, "ip", "netns", "del", name)
	return err
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
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the runtime ends the thread with this
			// goroutine, so nothing else runs in the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// writeSysctl sets key (sysctl(8) spelling) in the named namespace.
func writeSysctl(ns, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return InNS(ns, func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, ns, err)
		}
		return nil
	})
}

// ReadSysctl reads key (sysctl(8) spelling) in the named namespace.
func ReadSysctl(ns, key string) (string, error) {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	var v []byte
	err := InNS(ns, func() error {
		var err error
		v, err = os.ReadFile(path)
		return err
	})
	return strings.TrimSpace(string(v)), err
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
