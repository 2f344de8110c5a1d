package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Lab is a running topology. Its methods are safe for concurrent use.
type Lab struct {
	T    *Topology
	Dir  string // state, configs and logs
	opts Options

	mu    sync.Mutex
	procs []*Process // guarded by mu; processes to end on Close

	closeOnce sync.Once
	closeErr  error // set by the first Close
}

// ErrNotRoot is returned by New when the process cannot create namespaces.
var ErrNotRoot = errors.New("lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")

// Check reports why a lab cannot be built here, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	for _, tool := range []string{"ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s missing (make test installs it): %w", tool, err)
		}
	}
	return nil
}

// New builds the topology opts describe and, if opts.XVSD is set, starts
// xvsd on every node and waits for it. On error everything already created
// is deleted.
func New(ctx context.Context, opts Options) (*Lab, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	t, err := Plan(opts)
	if err != nil {
		return nil, err
	}
	l := &Lab{T: t, Dir: stateDir(opts.StateRoot, t.Prefix), opts: opts}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := l.save(); err != nil {
		os.RemoveAll(l.Dir)
		return nil, err
	}
	fail := func(err error) (*Lab, error) {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		return nil, err
	}
	l.logf("lab %s: building %d namespaces", t.Prefix, len(t.Namespaces))
	if err := build(ctx, t, l.logf); err != nil {
		return fail(fmt.Errorf("build lab %s: %w", t.Prefix, err))
	}
	if t.Encap == EncapVXLAN {
		if err := l.primeUnderlay(); err != nil {
			return fail(err)
		}
	}
	if opts.XVSD != "" {
		for _, n := range t.Nodes {
			if err := l.StartXVSD(n.Name); err != nil {
				return fail(err)
			}
		}
	}
	return l, nil
}

// primeUnderlay has the outside and every node resolve each other before
// traffic needs it. In a VXLAN lab nothing else does it early (natively
// routed, the nodes' own resolution of their gateway lets the outside
// learn them from the solicitation), and measured, the first second of
// tunnelled IPv6 was lost while the outside resolved the node.
func (l *Lab) primeUnderlay() error {
	if l.T.Outside == "" {
		return nil
	}
	for _, n := range l.T.Nodes {
		for _, a := range []netip.Addr{n.UplinkV4.Addr(), n.UplinkV6.Addr()} {
			if r, err := l.PingWith("outside", a, PingOptions{Count: 1, Wait: 3 * time.Second}); err != nil {
				return fmt.Errorf("underlay: outside -> %s: %w\n%s", a, err, r.Output)
			}
		}
	}
	return nil
}

// Prefix is the lab's namespace prefix.
func (l *Lab) Prefix() string { return l.T.Prefix }

// Options returns the options the lab was built with, defaults filled in.
func (l *Lab) Options() Options { return l.opts }

func (l *Lab) logf(format string, args ...any) {
	if l.opts.Logf != nil {
		l.opts.Logf(format, args...)
	}
}

func (l *Lab) addProcess(p *Process) {
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	if err := l.save(); err != nil {
		l.logf("save lab state: %v", err)
	}
}

func (l *Lab) removeProcess(p *Process) {
	l.mu.Lock()
	for i, q := range l.procs {
		if q == p {
			l.procs = append(l.procs[:i], l.procs[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	if err := l.save(); err != nil {
		l.logf("save lab state: %v", err)
	}
}

// Processes returns the processes the lab runs.
func (l *Lab) Processes() []*Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Process(nil), l.procs...)
}

// Close ends every process the lab started (SIGTERM, then SIGKILL after the
// stop timeout), deletes its namespaces (and with them every veth) and its
// state directory. It is safe to call more than once, concurrently, and
// after a partial New.
func (l *Lab) Close() error {
	// Once: a second caller (a signal handler racing a test's cleanup)
	// waits for the first teardown to finish.
	l.closeOnce.Do(func() {
		l.mu.Lock()
		procs := l.procs
		l.procs = nil
		l.mu.Unlock()
		l.closeErr = teardown(l.T, procs, l.Dir, l.opts.StopTimeout, l.opts.KeepDir, l.logf)
	})
	return l.closeErr
}

// teardown is Close for a lab in this process or one read from a state file.
func teardown(t *Topology, procs []*Process, dir string, grace time.Duration, keepDir bool, logf func(string, ...any)) error {
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if err := p.Stop(grace); err != nil && !errors.Is(err, ErrKilled) {
			errs = append(errs, err)
		} else if err != nil {
			logf("%v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(t.Namespaces) - 1; i >= 0; i-- {
		if err := delNS(ctx, t.Namespaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range t.Nodes {
		os.Remove(n.Socket) // a killed xvsd leaves its socket behind
	}
	if !keepDir && dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	logf("lab %s: torn down", t.Prefix)
	return errors.Join(errs...)
}

// Exec runs args in namespace ns (a short name such as "pod1", "node",
// "outside", or a full namespace name) bounded by the exec timeout.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.ExecTimeout)
	defer cancel()
	return l.ExecContext(ctx, ns, args...)
}

// ExecContext is Exec bounded by ctx.
func (l *Lab) ExecContext(ctx context.Context, ns string, args ...string) (string, error) {
	full, err := l.T.NS(ns)
	if err != nil {
		return "", err
	}
	return ExecContext(ctx, full, args...)
}

// Start starts a long-running command in namespace ns; Close ends it if
// the caller has not. Its output goes to a log file in the lab's directory.
func (l *Lab) Start(name, ns string, args ...string) (*Process, error) {
	full, err := l.T.NS(ns)
	if err != nil {
		return nil, err
	}
	log := fmt.Sprintf("%s/%s-%s-%d.log", l.Dir, name, ns, time.Now().UnixNano())
	p, err := startProcess(name, full, log, l.opts.Detach, args...)
	if err != nil {
		return nil, err
	}
	l.addProcess(p)
	return p, nil
}

// StopProcess stops p (SIGTERM, then SIGKILL) and forgets it.
func (l *Lab) StopProcess(p *Process) error {
	err := p.Stop(l.opts.StopTimeout)
	l.removeProcess(p)
	if errors.Is(err, ErrKilled) {
		return nil
	}
	return err
}
