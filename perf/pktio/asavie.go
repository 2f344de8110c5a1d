package pktio

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/asavie/xdp"
)

// AsavieTx sends through github.com/asavie/xdp v0.3.3, the library the
// dataplane's own ring layer replaced; it is here only as the baseline the
// ring benchmark measures XDPTx against, with the same Umem and ring sizes.
// Its known faults are worked around: Transmit panics on unexpected errors
// (recovered into an error), Poll dereferences the missing rx ring of a
// tx-only socket (not called), bind does not wait out EBUSY (retried here),
// and GetDescs scans every frame per call (left as it is: that cost is part
// of what is measured).
type AsavieTx struct {
	s     *xdp.Socket
	descs []xdp.Desc
	out   [][]byte
	batch int
	next  int // first desc of the batch not sent yet
}

var _ Tx = (*AsavieTx)(nil)

// NewAsavieTx opens an asavie/xdp socket on ifname, queue 0, in the
// caller's namespace.
func NewAsavieTx(ifname string, o Options) (*AsavieTx, error) {
	o.fill()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	opts := &xdp.SocketOptions{
		NumFrames: xdpFrames, FrameSize: xdpFrameSize,
		FillRingNumDescs: 64, CompletionRingNumDescs: xdpRing, RxRingNumDescs: 0, TxRingNumDescs: xdpRing,
	}
	// A socket closed on the queue a moment ago is released by a kernel
	// work item; until then bind says EBUSY. The library does not wait.
	var s *xdp.Socket
	for wait := time.Millisecond; ; wait *= 2 {
		s, err = xdp.NewSocket(ifi.Index, 0, opts)
		if err == nil || !strings.Contains(err.Error(), "busy") || wait > time.Second {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return nil, fmt.Errorf("asavie/xdp socket: %w", err)
	}
	return &AsavieTx{s: s, batch: min(o.Batch, xdpRing/2), out: make([][]byte, o.Batch)}, nil
}

func (t *AsavieTx) Name() string { return "asavie-xdp" }

func (t *AsavieTx) Buffers(n int) [][]byte {
	if c := t.s.NumCompleted(); c > 0 {
		t.s.Complete(c)
	}
	n = min(n, t.batch, t.s.NumFreeTxSlots())
	if n <= 0 {
		return nil
	}
	t.descs = t.s.GetDescs(n)
	t.next = 0
	for i, d := range t.descs {
		t.out[i] = t.s.GetFrame(d)
	}
	return t.out[:len(t.descs)]
}

func (t *AsavieTx) Send(bufs [][]byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("asavie/xdp transmit: %v", r)
		}
	}()
	if t.next+len(bufs) > len(t.descs) {
		return 0, fmt.Errorf("asavie/xdp send: %d frames past the batch", len(bufs))
	}
	d := t.descs[t.next : t.next+len(bufs)]
	for i, b := range bufs {
		d[i].Len = uint32(len(b))
	}
	n = t.s.Transmit(d)
	t.next += n
	return n, nil
}

// Close kicks and waits briefly for the frames still in the tx ring, so the
// count of sent frames is not inflated by frames that never left, then
// closes the socket.
func (t *AsavieTx) Close() error {
	// Not Poll: it reads the rx ring, which a tx-only socket lacks.
	for i := 0; i < 100 && t.s.NumTransmitted() > 0; i++ {
		t.Send(nil)
		if c := t.s.NumCompleted(); c > 0 {
			t.s.Complete(c)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return t.s.Close()
}
