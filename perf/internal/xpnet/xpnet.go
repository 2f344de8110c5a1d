// Package xpnet builds the small namespace topologies the perf tests and
// scenarios run on, in-process through podnet (netlink and the ethtool
// ioctl); IP and Run remain for callers that want the command line. Every
// name it creates
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

	"github.com/xvs-project/xvs/podnet"
)

// ErrNotRoot is returned when namespaces cannot be created here.
var ErrNotRoot = errors.New("needs root and iproute2")

// Check reports why a net cannot be built here, or nil. The net itself is
// built in-process; ip is still needed by IP, which the scenarios use.
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
	if err := podnet.NewNamed(name); err != nil {
		return "", err
	}
	n.mu.Lock()
	n.nss = append(n.nss, name)
	n.mu.Unlock()
	return name, nil
}

// Veth creates a veth pair between two namespaces, brings both ends up and
// returns their MAC addresses.
func (n *Net) Veth(nsA, ifA, nsB, ifB string) (macA, macB net.HardwareAddr, err error) {
	res, err := podnet.Setup(podnet.Pod{
		Host: podnet.End{NS: podnet.NamedPath(nsA), Name: ifA},
		Pod:  podnet.End{NS: podnet.NamedPath(nsB), Name: ifB},
	})
	if err != nil {
		return nil, nil, err
	}
	return res.HostMAC, res.PodMAC, nil
}

// MAC reads an interface's address.
func MAC(ns, ifname string) (net.HardwareAddr, error) {
	return podnet.MAC(podnet.NamedPath(ns), ifname)
}

// Sysctl writes a sysctl inside ns.
func Sysctl(ns, key, value string) error {
	return podnet.SetSysctl(podnet.NamedPath(ns), key, value)
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
		if err := podnet.DeleteNamed(ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
