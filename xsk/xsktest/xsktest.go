// Package xsktest builds the throw-away network namespaces and veth pairs
// that the kernel-facing tests of xsk, xdpprog and the vswitch ports run in.
// Everything it creates is named "xr-" plus a random suffix and removed in
// t.Cleanup; it never touches the namespace the test process runs in beyond
// creating and deleting the named namespaces' bind mounts.
package xsktest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and XDP programs")
	}
}

// Suffix returns a short random hex string for names.
func Suffix() string {
	var b [2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NS is a named network namespace owned by one test.
type NS struct {
	Name string
	H    netns.NsHandle
	NL   *netlink.Handle // netlink bound to the namespace
}

// NewNS creates a namespace "xr-XXXX" and deletes it when the test ends.
func NewNS(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	name := "xr-" + Suffix()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get netns: %v", err)
	}
	h, err := netns.NewNamed(name) // switches this thread into it
	if serr := netns.Set(orig); serr != nil {
		// The thread is stuck in the wrong namespace; keep it locked so the
		// runtime retires it with the goroutine.
		t.Fatalf("restore netns: %v", serr)
	}
	orig.Close()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("new netns %s: %v", name, err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		netns.DeleteNamed(name)
		t.Fatalf("netlink in %s: %v", name, err)
	}
	n := &NS{Name: name, H: h, NL: nl}
	t.Cleanup(func() {
		nl.Close()
		h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
		if _, err := os.Stat("/var/run/netns/" + name); err == nil {
			t.Errorf("netns %s left behind", name)
		}
	})
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up in %s: %v", name, err)
	}
	return n
}

// Do runs fn on a thread switched into the namespace. Sockets and BPF links
// fn creates stay in the namespace afterwards, whatever thread uses them.
func (n *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(n.H); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", n.Name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave %s: %w", n.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Veth creates a veth pair, end a in namespace na and end b in nb, both up,
// and returns the names. Addresses are added when given. The pair goes with
// the namespaces.
func Veth(t testing.TB, na, nb *NS, addrA, addrB []netip.Prefix) (a, b string) {
	t.Helper()
	s := Suffix()
	a, b = "xr-"+s+"a", "xr-"+s+"b"
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, MTU: 1500}, PeerName: b, PeerNamespace: netlink.NsFd(nb.H)}
	if err := na.NL.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s/%s: %v", a, b, err)
	}
	for _, x := range []struct {
		ns    *NS
		name  string
		addrs []netip.Prefix
	}{{na, a, addrA}, {nb, b, addrB}} {
		l, err := x.ns.NL.LinkByName(x.name)
		if err != nil {
			t.Fatalf("find %s: %v", x.name, err)
		}
		for _, p := range x.addrs {
			addr, _ := netlink.ParseAddr(p.String())
			if p.Addr().Is6() {
				addr.Flags |= unix.IFA_F_NODAD // usable at once
			}
			if err := x.ns.NL.AddrAdd(l, addr); err != nil {
				t.Fatalf("addr %s on %s: %v", p, x.name, err)
			}
		}
		if err := x.ns.NL.LinkSetUp(l); err != nil {
			t.Fatalf("up %s: %v", x.name, err)
		}
	}
	return a, b
}

// Ifindex returns the index of name in n.
func (n *NS) Ifindex(t testing.TB, name string) int {
	t.Helper()
	l, err := n.NL.LinkByName(name)
	if err != nil {
		t.Fatalf("find %s in %s: %v", name, n.Name, err)
	}
	return l.Attrs().Index
}

// XDPAttached reports whether name in n has an XDP program attached.
func (n *NS) XDPAttached(t testing.TB, name string) bool {
	t.Helper()
	l, err := n.NL.LinkByName(name)
	if err != nil {
		t.Fatalf("find %s in %s: %v", name, n.Name, err)
	}
	x := l.Attrs().Xdp
	return x != nil && (x.Attached || x.ProgId != 0)
}

// CheckGoroutines fails the test if, at cleanup, more goroutines run than
// when it was called (after a grace period for exiting ones).
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines leaked: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// WaitFor polls cond every few milliseconds until it holds or d passes.
func WaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}
