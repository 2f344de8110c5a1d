package xsk

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw socket-option and wakeup calls. x/sys/unix has no typed wrappers for
// the AF_XDP structures, and the wakeups must not allocate, so these go
// straight to the syscalls.

func setsockopt(fd, level, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, level, opt int, p unsafe.Pointer, n *uint32) error {
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(n)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// kickTx asks the kernel to drain the tx ring. EAGAIN/EBUSY/ENOBUFS mean
// "try again on the next flush"; ENETDOWN means the link went away. None of
// them is worth an error value on the hot path, so the errno is returned raw.
func kickTx(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// kickRx wakes a driver that asked for it through the fill ring's
// need_wakeup flag.
func kickRx(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}
