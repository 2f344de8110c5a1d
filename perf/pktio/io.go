package pktio

import "errors"

// Tx sends frames on one interface.
type Tx interface {
	// Buffers returns up to n writable buffers, each with capacity for a
	// whole frame. The caller writes frames into a prefix of them,
	// reslices each to its frame length and passes them to Send.
	Buffers(n int) [][]byte
	// Send sends bufs and returns how many the kernel took. bufs are the
	// buffers of the last Buffers call from the first one not sent yet:
	// the whole batch, then, after a partial send, the rest of it.
	Send(bufs [][]byte) (int, error)
	// Name says what the sender is ("af_packet", "af_xdp").
	Name() string
	Close() error
}

// Rx receives frames from one interface.
type Rx interface {
	// Receive waits up to about 100 ms for frames and returns them; the
	// slices are valid until the next call. It returns no frames and no
	// error on timeout, and ErrClosed after Close.
	Receive() ([][]byte, error)
	// Drops returns frames the kernel dropped for lack of room in the
	// socket, if it knows.
	Drops() uint64
	Name() string
	Close() error
}

// ErrClosed is returned by Receive after Close.
var ErrClosed = errors.New("closed")

// Options size the sockets.
type Options struct {
	Batch    int // frames per system call; 0: 64
	FrameCap int // largest frame; 0: 9216
}

func (o *Options) fill() {
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.FrameCap <= 0 {
		o.FrameCap = 9216
	}
}
