package podnet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where iproute2 keeps named network namespaces, so that
// `ip netns exec` and `ip -n` find the ones made here.
const NetnsDir = "/run/netns"

// NamedPath is the path of the named namespace name, for the NS fields.
func NamedPath(name string) string { return filepath.Join(NetnsDir, name) }

// NewNamed creates the named network namespace name as `ip netns add`
// does (a bind mount of the namespace on NetnsDir/name, with NetnsDir a
// shared mount so that the namespace outlives mount namespaces made from
// this one) and brings its loopback up. It fails with an error wrapping
// os.ErrExist if the name is taken. The calling goroutine's thread is
// back in its own namespace on return, whatever happened.
func NewNamed(name string) (err error) {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return fmt.Errorf("namespace name %q: not a file name", name)
	}
	if err := sharedNetnsDir(); err != nil {
		return err
	}
	path := NamedPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	// unshare moves the calling thread only; the mount must name that
	// thread's namespace, not the process's (/proc/self is the leader).
	err = onNewThreadNS(func(orig netns.NsHandle) error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare netns %s: %w", name, err)
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind netns %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h, err := handleAt(path)
	if err != nil {
		DeleteNamed(name)
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		DeleteNamed(name)
		return fmt.Errorf("lo up in %s: %w", name, err)
	}
	return nil
}

// DeleteNamed deletes a named namespace as `ip netns del` does; a missing
// one is not an error. Its interfaces go with it (a veth takes its peer in
// another namespace along) once nothing else holds it.
func DeleteNamed(name string) error {
	if name == "" || strings.ContainsRune(name, '/') {
		return fmt.Errorf("namespace name %q: not a file name", name)
	}
	path := NamedPath(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", name, err)
	}
	return nil
}

// sharedNetnsDir makes NetnsDir exist and be a shared mount point, the
// way iproute2 prepares it, so that both tools see the same namespaces.
func sharedNetnsDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("netns dir: %w", err)
	}
	err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: bind it on itself first.
		if err = unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	if err != nil {
		return fmt.Errorf("share %s: %w", NetnsDir, err)
	}
	return nil
}

// openNS opens the namespace at path; "" is the calling thread's.
func openNS(path string) (netns.NsHandle, error) {
	if path == "" {
		h, err := netns.Get()
		if err != nil {
			return -1, fmt.Errorf("current netns: %w", err)
		}
		return h, nil
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return -1, fmt.Errorf("open netns %s: %w", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(h), &st); err != nil || (st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC) {
		h.Close()
		return -1, fmt.Errorf("open netns %s: %w", path, errNotNS)
	}
	return h, nil
}

// errNotNS is a path that is not (or no longer) a namespace: a file left
// after its bind mount went, or any other file.
var errNotNS = errors.New("not a network namespace")

// handleAt returns a netlink handle whose sockets live in the namespace
// at path ("" for the caller's), usable from any goroutine.
func handleAt(path string) (*netlink.Handle, error) {
	if path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return h, nil
	}
	ns, err := openNS(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return h, nil
}

// onNewThreadNS runs fn on a fresh locked OS thread and puts the thread
// back into the namespace it started in (passed to fn) afterwards. If that
// fails the thread stays locked, so the runtime ends it with the goroutine
// and nothing else ever runs in the wrong namespace.
func onNewThreadNS(fn func(orig netns.NsHandle) error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn(orig)
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("back to own netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Do runs fn on an OS thread switched into the namespace at path ("" for
// the caller's own). Sockets fn opens stay in that namespace for life and
// may be used from any goroutine afterwards; fn must not start goroutines
// that expect to run in the namespace.
func Do(path string, fn func() error) error {
	target, err := openNS(path)
	if err != nil {
		return err
	}
	defer target.Close()
	return onNewThreadNS(func(netns.NsHandle) error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("enter netns %s: %w", path, err)
		}
		return fn()
	})
}

// sysctlPath maps a sysctl(8) key to its file. Interface names may hold
// dots (vxlan.calico), which sysctl(8) spells with slashes; keys here use
// the dotted form and a name with a dot must be written with a slash.
func sysctlPath(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, ".") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("sysctl key %q: malformed", key)
	}
	parts := strings.Split(key, ".")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "/", ".")
	}
	return "/proc/sys/" + strings.Join(parts, "/"), nil
}

// SetSysctl writes key (sysctl(8) spelling: net.ipv4.ip_forward) in the
// namespace at path ("" for the caller's own). /proc/sys/net shows the
// namespace of the thread that opens it, hence the thread switch.
func SetSysctl(path, key, value string) error {
	file, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return Do(path, func() error {
		if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}

// GetSysctl reads key in the namespace at path ("" for the caller's own).
func GetSysctl(path, key string) (string, error) {
	file, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var v []byte
	err = Do(path, func() error {
		var err error
		if v, err = os.ReadFile(file); err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
		return nil
	})
	return strings.TrimSpace(string(v)), err
}

// MAC returns the hardware address of dev in the namespace at path ("" for
// the caller's own).
func MAC(path, dev string) (net.HardwareAddr, error) {
	h, err := handleAt(path)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", dev, nsName(path), err)
	}
	return l.Attrs().HardwareAddr, nil
}
