package pktio

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
)

// XDPRx receives through an AF_XDP socket of the ring layer on queue 0,
// fed by the dataplane's pod steering program (xdpprog), which
// redirects every frame of the queue to the socket. While it is open the
// interface's own stack sees nothing from queue 0; Close detaches the
// program.
type XDPRx struct {
	u     *xsk.Umem
	s     *xsk.Socket
	prog  *xdpprog.Program
	batch uint32
	held  uint32   // rx slots handed out by the last Receive
	addrs []uint64 // their frames
	out   [][]byte
	pfd   [1]unix.PollFd
	mode  xdpprog.AttachMode
}

var _ Rx = (*XDPRx)(nil)

// NewXDPRx opens the socket, attaches the steering program to ifname and
// fills the fill ring. It runs in the interface's namespace.
func NewXDPRx(ifname string, o Options) (_ *XDPRx, err error) {
	o.fill()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	r := &XDPRx{batch: uint32(o.Batch), addrs: make([]uint64, o.Batch), out: make([][]byte, o.Batch)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.u, err = xsk.NewUmem(sinkFrames, sinkFrameSize); err != nil {
		return nil, err
	}
	if r.s, err = xsk.Open(r.u, ifi.Index, 0, xsk.Config{RxSize: sinkRing, FillSize: sinkRing}); err != nil {
		return nil, err
	}
	if r.prog, err = xdpprog.New(xdpprog.Pod, xdpprog.Options{Queues: 1}); err != nil {
		return nil, err
	}
	if err = r.prog.SetSocket(0, r.s.FD()); err != nil {
		return nil, err
	}
	if r.mode, err = r.prog.Attach(ifi.Index, xdpprog.AttachAuto); err != nil {
		return nil, err
	}
	r.s.Refill(sinkRing)
	r.pfd[0] = unix.PollFd{Fd: int32(r.s.FD()), Events: unix.POLLIN}
	return r, nil
}

func (r *XDPRx) Name() string { return "af_xdp" }

// release gives the frames of the last batch back to the fill ring.
func (r *XDPRx) release() {
	if r.held == 0 {
		return
	}
	for i := range r.held {
		r.u.Free(r.addrs[i])
	}
	r.s.Rx.Release(r.held)
	r.held = 0
	r.s.Refill(r.u.FreeCount())
	r.s.KickRx()
}

func (r *XDPRx) Receive() ([][]byte, error) {
	if r.s == nil {
		return nil, ErrClosed
	}
	r.release()
	idx, got := r.s.Rx.Peek(r.batch)
	if got == 0 {
		r.s.Refill(r.u.FreeCount())
		r.s.KickRx()
		if _, err := unix.Poll(r.pfd[:], 100); err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("poll: %w", err)
		}
		if idx, got = r.s.Rx.Peek(r.batch); got == 0 {
			return nil, nil
		}
	}
	for i := range got {
		a, n := r.s.RxTake(idx + i)
		r.addrs[i] = a
		r.out[i] = r.u.Bytes(a, int(n))
	}
	r.held = got
	return r.out[:got], nil
}

// Drops is what the kernel dropped for want of fill-ring frames or rx
// ring room.
func (r *XDPRx) Drops() uint64 {
	if r.s == nil {
		return 0
	}
	st, err := r.s.Stats()
	if err != nil {
		return 0
	}
	return st.Rx_dropped + st.Rx_ring_full + st.Rx_fill_ring_empty_descs
}

// Close detaches the program, then closes the socket and the Umem.
func (r *XDPRx) Close() error {
	var errs []error
	if r.prog != nil {
		if _, _, ok := r.prog.Attached(); ok {
			errs = append(errs, r.prog.Detach())
		}
		errs = append(errs, r.prog.Close())
		r.prog = nil
	}
	if r.s != nil {
		r.held = 0
		errs = append(errs, r.s.Close())
		r.s = nil
	}
	if r.u != nil {
		// Frames the socket held come back on Close; give the kernel a
		// moment if the Umem is still referenced.
		for i := 0; i < 10; i++ {
			if err := r.u.Close(); err == nil {
				break
			} else if i == 9 {
				errs = append(errs, err)
			}
			time.Sleep(time.Millisecond)
		}
		r.u = nil
	}
	return errors.Join(errs...)
}
