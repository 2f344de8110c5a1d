package pktio

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/xvs-project/xvs/xsk"
)

// XDPTx sends through an AF_XDP socket of the dataplane's ring layer
// (xsk), tx ring only, on queue 0 in copy or zero-copy mode,
// whichever binds. A tx-only socket needs no XDP program.
type XDPTx struct {
	u     *xsk.Umem
	s     *xsk.Socket
	batch int
	idx   uint32   // first reserved tx slot
	res   uint32   // reserved slots not yet sent
	addrs []uint64 // frames behind the reserved slots
	out   [][]byte
}

var _ Tx = (*XDPTx)(nil)

const (
	xdpFrames    = 4096
	xdpFrameSize = 4096
	xdpRing      = 2048
	// The sink's rings are deeper: on a 2-core machine its thread can be
	// off the CPU for a scheduler slice or two while the sender and the
	// forwarder run, and at a million frames a second a 2048-slot ring
	// overflows in 2 ms; the run would measure the sink, not the
	// forwarder. 16384 slots cover ~16 ms. Its frames are half-pages, so
	// that the memory the kernel copies into (the fill ring's frames, in
	// turn) stays 32 MiB.
	sinkFrames    = 32768
	sinkFrameSize = 2048
	sinkRing      = 16384
)

// NewXDPTx opens an AF_XDP sender on ifname in the caller's namespace.
// Its buffers hold XDPMaxFrame bytes.
func NewXDPTx(ifname string, o Options) (*XDPTx, error) {
	o.fill()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	u, err := xsk.NewUmem(xdpFrames, xdpFrameSize)
	if err != nil {
		return nil, err
	}
	s, err := xsk.Open(u, ifi.Index, 0, xsk.Config{TxSize: xdpRing, CompSize: xdpRing})
	if err != nil {
		u.Close()
		return nil, err
	}
	return &XDPTx{u: u, s: s, batch: min(o.Batch, xdpRing/2), addrs: make([]uint64, o.Batch), out: make([][]byte, o.Batch)}, nil
}

func (t *XDPTx) Name() string {
	if t.s.ZeroCopy() {
		return "af_xdp-zerocopy"
	}
	return "af_xdp"
}

// XDPMaxFrame is the largest frame XDPTx sends.
const XDPMaxFrame = xdpFrameSize

func (t *XDPTx) Buffers(n int) [][]byte {
	t.cancel()
	t.s.Reclaim()
	n = min(n, t.batch, t.u.FreeCount())
	if n <= 0 {
		t.s.KickTx()
		return nil
	}
	idx, got := t.s.Tx.Reserve(uint32(n))
	t.idx, t.res = idx, got
	for i := range int(got) {
		a, _ := t.u.Alloc()
		t.addrs[i] = a
		t.out[i] = t.u.Frame(a)
	}
	return t.out[:got]
}

// cancel gives back slots and frames reserved but not sent.
func (t *XDPTx) cancel() {
	if t.res == 0 {
		return
	}
	t.s.Tx.Cancel(t.res)
	for i := range int(t.res) {
		t.u.Free(t.addrs[i])
	}
	t.res = 0
}

// Send queues bufs, the first len(bufs) buffers of the last Buffers call,
// and kicks the kernel. It takes them all.
func (t *XDPTx) Send(bufs [][]byte) (int, error) {
	n := uint32(len(bufs))
	if n > t.res {
		return 0, fmt.Errorf("af_xdp send: %d frames, %d reserved", n, t.res)
	}
	for i, b := range bufs {
		t.s.TxPut(t.idx+uint32(i), t.addrs[i], uint32(len(b)))
	}
	// Return the reserved tail the caller did not use.
	if rest := t.res - n; rest > 0 {
		t.s.Tx.Cancel(rest)
		for i := n; i < t.res; i++ {
			t.u.Free(t.addrs[i])
		}
	}
	t.res = 0
	if n > 0 {
		t.s.Tx.Submit()
		t.s.KickTx()
	}
	return int(n), nil
}

// Close waits briefly for the kernel to complete what it holds, then
// closes the socket and the Umem.
func (t *XDPTx) Close() error {
	t.cancel()
	for i := 0; i < 100 && t.s.InKernel() > 0; i++ {
		t.s.KickTx()
		t.s.Reclaim()
		runtime.Gosched()
	}
	err := t.s.Close()
	return errors.Join(err, t.u.Close())
}
