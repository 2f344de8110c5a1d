package memif_test

import "golang.org/x/sys/unix"

func pollIn(fd, ms int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds, ms)
	return n > 0 && fds[0].Revents&unix.POLLIN != 0
}
