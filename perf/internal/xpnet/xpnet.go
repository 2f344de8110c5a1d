// Package xpnet builds the small namespace topologies the perf tests and
// scenarios run on, with the iproute2 command line. Every name it creates
// starts with "xp" and a random hex tag, and every interface is created
// directly inside its namespace, so nothing appears in, or is changed in,
// the root namespace. Close deletes the namespaces, which deletes their
// interfaces with them.
package xpnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ErrNotRoot is returned when namespaces cannot be created here.
var ErrNotRoot = errors.New("needs root and iproute2")

// Check reports why a net cannot be built here, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRoot, err)
	}
	return nil
}

// Net is a set of namespaces sharing one tag.
type Net struct {
	Tag string // "xp" + 8 hex digits

	mu  sync.Mutex
	nss []string // guarded by mu; created namespaces, deleted by Close
}

// TagEnv names an environment variable whose value (two characters that
// are not hex digits, such as "zz") replaces the first two hex digits of every
// tag, so a test can tell the namespaces of one run of a harness binary from
// those of everything else running on the machine.
const TagEnv = "XVS_XP_TAG"

// New returns an empty Net with a fresh tag.
func New() *Net {
	var b [4]byte
	rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	if t := os.Getenv(TagEnv); len(t) == 2 {
		tag = t + tag[2:]
	}
	return &Net{Tag: "xp" + tag}
}

// Run runs ip (or another command when args[0] is not "ip") with a
// timeout and returns its trimmed output.
func Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// NS creates namespace Tag-role and returns its name. Loopback is up.
func (n *Net) NS(role string) (string, error) {
	name := n.Tag + "-" + role
	if _, err := Run("ip", "netns", "add", name); err != nil {
		return "", err
	}
	n.mu.Lock()
	n.nss = append(n.nss, name)
	n.mu.Unlock()
	if _, err := Run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	return name, nil
}

// Veth creates a veth pair between two namespaces, brings both ends up and
// returns their MAC addresses.
func (n *Net) Veth(nsA, ifA, nsB, ifB string) (macA, macB net.HardwareAddr, err error) {
	if _, err := Run("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return nil, nil, err
	}
	for _, e := range [][2]string{{nsA, ifA}, {nsB, ifB}} {
		if _, err := Run("ip", "-n", e[0], "link", "set", e[1], "up"); err != nil {
			return nil, nil, err
		}
	}
	if macA, err = MAC(nsA, ifA); err != nil {
		return nil, nil, err
	}
	macB, err = MAC(nsB, ifB)
	return macA, macB, err
}

// MAC reads an interface's address.
func MAC(ns, ifname string) (net.HardwareAddr, error) {
	out, err := Run("ip", "-n", ns, "-br", "link", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(out)
	if len(f) < 3 {
		return nil, fmt.Errorf("mac of %s in %s: unexpected %q", ifname, ns, out)
	}
	return net.ParseMAC(f[2])
}

// Sysctl writes a sysctl inside ns.
func Sysctl(ns, key, value string) error {
	_, err := Run("ip", "netns", "exec", ns, "sysctl", "-qw", key+"="+value)
	return err
}

// IP runs "ip -n ns args...".
func IP(ns string, args ...string) error {
	_, err := Run(append([]string{"ip", "-n", ns}, args...)...)
	return err
}

// Close deletes every namespace this Net created. It is safe to call more
// than once.
func (n *Net) Close() error {
	n.mu.Lock()
	nss := n.nss
	n.nss = nil
	n.mu.Unlock()
	var errs []error
	for _, ns := range nss {
		if _, err := Run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
