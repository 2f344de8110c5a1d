package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// State is what a lab writes to Dir/state.json so another process can show
// it or tear it down.
type State struct {
	Prefix    string
	Dir       string
	Created   time.Time
	XVSD      string
	Topology  *Topology
	Processes []*Process
	// Owner is the process that built the lab, unless Detached: a lab
	// whose owner is gone is an orphan (SweepOrphans).
	Owner      int
	OwnerStart uint64
	Detached   bool
}

const stateFile = "state.json"

func stateDir(root, prefix string) string { return filepath.Join(root, prefix) }

func (l *Lab) save() error {
	l.mu.Lock()
	st := State{Prefix: l.T.Prefix, Dir: l.Dir, Created: time.Now().UTC(), XVSD: l.opts.XVSD,
		Topology: l.T, Processes: append([]*Process(nil), l.procs...),
		Owner: os.Getpid(), OwnerStart: selfStart, Detached: l.opts.Detach}
	l.mu.Unlock()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.Dir, stateFile))
}

// LoadState reads the state of the lab with prefix under root ("" for
// DefaultStateRoot).
func LoadState(root, prefix string) (*State, error) {
	if root == "" {
		root = DefaultStateRoot
	}
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(stateDir(root, prefix), stateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab state %s: %w", prefix, err)
	}
	if st.Topology == nil || st.Topology.Prefix != prefix {
		return nil, fmt.Errorf("lab state %s: prefix mismatch", prefix)
	}
	return &st, nil
}

// ListStates returns the prefixes of labs with a state directory under root.
func ListStates(root string) ([]string, error) {
	if root == "" {
		root = DefaultStateRoot
	}
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && ValidPrefix(e.Name()) == nil {
			if _, err := os.Stat(filepath.Join(root, e.Name(), stateFile)); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Down tears down the lab with prefix whose state is under root, as Close
// would in the process that built it.
func Down(root, prefix string, grace time.Duration, logf func(string, ...any)) error {
	st, err := LoadState(root, prefix)
	if err != nil {
		return err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return teardown(st.Topology, st.Processes, st.Dir, grace, false, logf)
}

// selfStart is this process's start time, recorded as a lab's owner.
var selfStart, _ = procStartTime(os.Getpid())

// Orphan reports whether the lab's owner is gone and the lab was not meant
// to outlive it.
func (st *State) Orphan() bool {
	if st.Detached || st.Owner == 0 {
		return false
	}
	start, zombie, err := procStat(st.Owner)
	return err != nil || zombie || start != st.OwnerStart
}

// SweepOrphans tears down every lab under root whose prefix match accepts
// and whose owner died without closing it (a test binary killed by a
// signal or its timeout). Labs of live processes and detached labs (xvsctl
// lab up) are left alone. It returns the prefixes it swept.
func SweepOrphans(root string, match func(prefix string) bool) ([]string, error) {
	labs, err := ListStates(root)
	if err != nil {
		return nil, err
	}
	var swept []string
	var errs []error
	for _, p := range labs {
		if !match(p) {
			continue
		}
		st, err := LoadState(root, p)
		if err != nil || !st.Orphan() {
			continue
		}
		if err := Down(root, p, 5*time.Second, nil); err != nil {
			errs = append(errs, err)
		}
		if _, err := SweepRoot(root, p); err != nil {
			errs = append(errs, err)
		}
		swept = append(swept, p)
	}
	return swept, errors.Join(errs...)
}

// Sweep deletes what labs with prefix left behind: it stops the processes
// recorded in their state files (by PID, after checking the PID's start
// time), deletes every namespace named prefix-*, and removes the state
// directories. It returns the namespaces it deleted. Processes that still
// hold a swept namespace but were never recorded are reported, not
// signalled.
func Sweep(prefix string) ([]string, error) {
	return SweepRoot(DefaultStateRoot, prefix)
}

// SweepRoot is Sweep with the state under root.
func SweepRoot(root, prefix string) ([]string, error) {
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	var errs []error
	if st, err := LoadState(root, prefix); err == nil {
		for _, p := range st.Processes {
			if err := p.Stop(5 * time.Second); err != nil && !errors.Is(err, ErrKilled) {
				errs = append(errs, err)
			}
		}
		for _, n := range st.Topology.Nodes {
			os.Remove(n.Socket)
		}
	}
	names, err := ListNamespaces(prefix)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var holders []string
	for _, n := range names {
		holders = append(holders, nsHolders(n)...)
		if err := delNS(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	if len(holders) > 0 {
		errs = append(errs, fmt.Errorf("processes still hold swept namespaces (not signalled): %s", strings.Join(holders, ", ")))
	}
	if root == "" {
		root = DefaultStateRoot
	}
	if err := os.RemoveAll(stateDir(root, prefix)); err != nil {
		errs = append(errs, err)
	}
	return names, errors.Join(errs...)
}

// nsHolders lists "pid (comm)" of processes whose network namespace is the
// named one.
func nsHolders(name string) []string {
	var want syscall.Stat_t
	if err := syscall.Stat(filepath.Join(NetnsDir, name), &want); err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil {
			continue
		}
		if st.Ino == want.Ino && st.Dev == want.Dev {
			comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
			out = append(out, fmt.Sprintf("%d (%s in %s)", pid, strings.TrimSpace(string(comm)), name))
		}
	}
	return out
}
