package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a long-running command the lab started in one of its
// namespaces. The lab ends it by PID, and checks the PID's start time first
// so a reused PID is never signalled.
type Process struct {
	Name      string // "xvsd", "iperf3-server", ...
	NS        string
	PID       int
	StartTime uint64 // /proc/PID/stat field 22, in clock ticks since boot
	Args      []string
	Log       string // file with its stdout and stderr; empty if discarded

	// Set only in the process that started it.
	done    chan struct{} // closed when the child was reaped
	waitErr error         // valid after done
}

// startProcess starts args in namespace ns through `ip netns exec`, which
// execs in place, so the PID is the command's own. Unless detach is set,
// the child gets SIGKILL when this process dies: it is started from a
// goroutine that holds its OS thread until the child is reaped, because
// the kernel ties the parent-death signal to the forking thread.
func startProcess(name, ns, logPath string, detach bool, args ...string) (*Process, error) {
	p := &Process{Name: name, NS: ns, Args: args, Log: logPath, done: make(chan struct{})}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own copy
		cmd.Stdout, cmd.Stderr = f, f
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	p.PID = cmd.Process.Pid
	p.StartTime, _ = procStartTime(p.PID)
	return p, nil
}

// procStartTime reads field 22 of /proc/PID/stat, and whether it is a zombie.
func procStat(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name may hold spaces and parentheses: split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0] == "Z", err
}

func procStartTime(pid int) (uint64, error) {
	s, _, err := procStat(pid)
	return s, err
}

// Alive reports whether the process still runs (a zombie does not).
func (p *Process) Alive() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	return p.same()
}

// same reports whether PID still names the process the lab started.
func (p *Process) same() bool {
	st, zombie, err := procStat(p.PID)
	return err == nil && !zombie && (p.StartTime == 0 || st == p.StartTime)
}

// Signal sends sig if the PID still names this process.
func (p *Process) Signal(sig syscall.Signal) error {
	if !p.Alive() || !p.same() {
		return os.ErrProcessDone
	}
	return syscall.Kill(p.PID, sig)
}

// Wait waits up to d for the process to end.
func (p *Process) Wait(d time.Duration) bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.same() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !p.same()
}

// ExitErr is the child's exit status once it ended (nil for a clean exit
// or a process this lab did not start itself).
func (p *Process) ExitErr() error {
	if p.done == nil {
		return nil
	}
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// ErrKilled says a process ignored SIGTERM and was killed.
var ErrKilled = errors.New("did not stop on SIGTERM, killed")

// Stop sends SIGTERM, waits up to grace, then SIGKILL. It returns ErrKilled
// when SIGKILL was needed.
func (p *Process) Stop(grace time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
		return fmt.Errorf("stop %s (pid %d): %w", p.Name, p.PID, err)
	}
	if p.Wait(grace) {
		return nil
	}
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	if !p.Wait(grace) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return fmt.Errorf("%s (pid %d): %w", p.Name, p.PID, ErrKilled)
}

// Kill sends SIGKILL and waits up to d for the process to end.
func (p *Process) Kill(d time.Duration) error {
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if !p.Wait(d) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return nil
}
