package vswitch

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// skipIfNotSupported skips t when err says the kernel cannot do what was
// asked (or, not being root, that it may not); any other error fails t,
// so a broken map or program is not mistaken for an old kernel.
func skipIfNotSupported(t testing.TB, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		return
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP),
		errors.Is(err, unix.EPERM) && os.Geteuid() != 0:
		t.Skipf("%s: %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}
