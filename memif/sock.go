package memif

import (
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// errPeerClosed is returned by recvMsg when the peer closed its end.
var errPeerClosed = errors.New("peer closed the connection")

// oobSize leaves room for a few descriptors, so a peer that sends more than
// one is seen (and its extras closed) rather than silently truncated.
var oobSize = unix.CmsgSpace(4 * 8)

// recvMsg reads one control message and at most one file descriptor. Any
// further descriptors are closed; a truncated message or control part is
// malformed.
func recvMsg(c *net.UnixConn, b, oob []byte) (Msg, int, error) {
	n, oobn, flags, _, err := c.ReadMsgUnix(b, oob)
	fd := -1
	if oobn > 0 {
		fds, perr := parseRights(oob[:oobn])
		if len(fds) > 0 {
			fd = fds[0]
			for _, extra := range fds[1:] {
				unix.Close(extra)
			}
		}
		if perr != nil && err == nil {
			err = fmt.Errorf("%w: control data: %w", ErrMalformed, perr)
		}
	}
	if (err == nil && n == 0 && oobn == 0) || errors.Is(err, io.EOF) {
		err = errPeerClosed
	}
	if err == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		err = fmt.Errorf("%w: truncated datagram (flags %#x)", ErrMalformed, flags)
	}
	if err != nil {
		closeFD(fd)
		return Msg{}, -1, err
	}
	m, err := ParseMsg(b[:n])
	if err != nil {
		closeFD(fd)
		return Msg{}, -1, err
	}
	return m, fd, nil
}

func parseRights(oob []byte) ([]int, error) {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range cmsgs {
		if cmsgs[i].Header.Level != unix.SOL_SOCKET || cmsgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&cmsgs[i])
		if err != nil {
			return fds, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// sendMsg writes one control message, with fd attached when fd >= 0.
func sendMsg(c *net.UnixConn, m *Msg, fd int) error {
	var b [MsgSize]byte
	m.Encode(b[:])
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	_, _, err := c.WriteMsgUnix(b[:], oob, nil)
	if err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return nil
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// listenAddr turns a socket name into an address: a leading '@' names an
// abstract socket (as DPDK and libmemif spell it), anything else a path.
func listenAddr(name string) *net.UnixAddr {
	return &net.UnixAddr{Name: name, Net: "unixpacket"}
}
