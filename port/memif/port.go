package memif

import (
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/memif"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xsk"
)

// Port is one memif interface served by one worker: every queue pair the
// peer connects is received from in turn, and frames go out on queue pair
// 0 (see the package doc for why).
type Port struct {
	ifc     *memif.Interface
	cfg     spec.MemifConfig
	umem    *xsk.Umem
	mem     []byte
	rx      []*memif.RxQueue
	tx      *memif.TxQueue
	polling bool
	epfd    int // the rx eventfds of the current connection, -1 when polling
	release func()

	// Worker-owned state: the frames held for the next receive, the
	// slices handed to memif, and whether the eventfds were cleared since
	// the rings were last seen empty.
	held   []uint64
	bufs   [][]byte
	sizes  []int
	frames [][]byte
	next   int
	armed  bool
	unsent bool // frames were transmitted since the last kick

	notify atomic.Pointer[func()]
	up     atomic.Bool
}

var (
	_ port.Port         = (*Port)(nil)
	_ port.LinkNotifier = (*Port)(nil)
	_ port.StatusFiller = (*Port)(nil)
)

func newPort(umem *xsk.Umem, queues int, polling bool) *Port {
	p := &Port{
		umem: umem, mem: umem.Mem(), polling: polling, epfd: -1,
		held: make([]uint64, 0, port.MaxBatch), bufs: make([][]byte, port.MaxBatch),
		sizes: make([]int, port.MaxBatch), frames: make([][]byte, port.MaxBatch),
	}
	if !polling {
		// One descriptor for the worker to poll for the whole port: the
		// eventfds of each connection are added to it when it comes up,
		// and leave it when memif closes them.
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err == nil {
			p.epfd = fd
		}
	}
	return p
}

func (p *Port) attach(ifc *memif.Interface, mc *spec.MemifConfig, release func()) {
	p.ifc, p.cfg, p.release = ifc, *mc, release
	p.rx = make([]*memif.RxQueue, ifc.Queues())
	for i := range p.rx {
		p.rx[i] = ifc.Rx(i)
	}
	p.tx = ifc.Tx(0)
}

// onState runs on the interface's control goroutine.
func (p *Port) onState(up bool) {
	if up && p.epfd >= 0 {
		for _, q := range p.rx {
			if fd := q.EventFD(); fd >= 0 {
				unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
			}
		}
	}
	p.up.Store(up)
	if fn := p.notify.Load(); fn != nil {
		(*fn)()
	}
}

// NotifyLink implements port.LinkNotifier.
func (p *Port) NotifyLink(fn func()) { p.notify.Store(&fn) }

// LinkUp implements port.LinkNotifier.
func (p *Port) LinkUp() (bool, string) {
	if p.up.Load() {
		return true, ""
	}
	st := p.ifc.Status()
	if st.LastReason != "" {
		return false, "memif peer disconnected: " + st.LastReason
	}
	return false, "memif: waiting for a peer on " + p.cfg.Socket
}

// Receive copies up to len(pkts) frames off the peer's rings into Umem
// frames at port.Headroom. When the rings are empty in interrupt mode it
// clears the eventfds once, then looks again, so a signal that raced with
// the look is not lost and an idle port does not keep waking the worker.
func (p *Port) Receive(pkts []port.Packet) int {
	n := p.receive(pkts)
	if n > 0 || p.epfd < 0 {
		p.armed = false
		return n
	}
	if p.armed || !p.up.Load() {
		return 0
	}
	for _, q := range p.rx {
		q.ClearInterrupt()
	}
	p.armed = true
	return p.receive(pkts)
}

func (p *Port) receive(pkts []port.Packet) int {
	want := min(len(pkts), port.MaxBatch)
	if len(p.held) < want {
		p.refill(want)
		want = min(want, len(p.held))
		if want == 0 {
			return 0
		}
	}
	// held[i] and bufs[i] stay paired from refill on, so an empty ring
	// costs no work here; the frames a burst fills are the front ones.
	got := 0
	nq := len(p.rx)
	for i := 0; i < nq && got < want; i++ {
		q := p.rx[(p.next+i)%nq]
		k := q.Receive(p.bufs[got:want], port.Headroom, p.sizes[got:want])
		for j := got; j < got+k; j++ {
			pkts[j] = port.Packet{Addr: p.held[j] + port.Headroom, Len: uint32(p.sizes[j])}
		}
		got += k
	}
	p.next++
	if got > 0 {
		n := copy(p.held, p.held[got:])
		copy(p.bufs, p.bufs[got:len(p.held)])
		p.held = p.held[:n]
	}
	return got
}

// refill tops the held frames up to want, each paired with its buffer.
func (p *Port) refill(want int) {
	fs := uint64(p.umem.FrameSize())
	for len(p.held) < want {
		a, ok := p.umem.Alloc()
		if !ok {
			return
		}
		p.bufs[len(p.held)] = p.mem[a : a+fs : a+fs]
		p.held = append(p.held, a)
	}
}

// Transmit copies pkts into the peer's buffers on queue pair 0 and frees
// the frames it took. A frame memif refuses as malformed (too big for the
// peer) is taken, freed and counted by memif; frames past a full ring stay
// with the caller.
func (p *Port) Transmit(pkts []port.Packet) int {
	n := min(len(pkts), len(p.frames))
	for i := 0; i < n; i++ {
		a := pkts[i].Addr
		p.frames[i] = p.mem[a : a+uint64(pkts[i].Len)]
	}
	k := p.tx.Transmit(p.frames[:n])
	for i := 0; i < k; i++ {
		p.umem.Free(pkts[i].Addr)
	}
	if k > 0 {
		p.unsent = true
	}
	return k
}

// Flush signals the peer once per burst, unless it polls (masked its
// ring: then memif makes no system call).
func (p *Port) Flush() {
	if p.unsent {
		p.unsent = false
		p.tx.Kick()
	}
}

// PollFD is the epoll descriptor holding the connection's rx eventfds in
// interrupt mode, -1 in polling mode.
func (p *Port) PollFD() int { return p.epfd }

// Mode implements port.Port.
func (p *Port) Mode() spec.Mode { return spec.ModeMemif }

// Close disconnects the peer, removes the interface (the socket closes
// with its last interface) and gives the held frames back to the Umem.
func (p *Port) Close() error {
	p.notify.Store(nil)
	p.ifc.Close()
	p.release()
	for _, a := range p.held {
		p.umem.Free(a)
	}
	p.held = p.held[:0]
	p.closeFDs()
	return nil
}

func (p *Port) closeFDs() {
	if p.epfd >= 0 {
		unix.Close(p.epfd)
		p.epfd = -1
	}
}

// FillStatus implements port.StatusFiller.
func (p *Port) FillStatus(ps *spec.PortStatus) {
	st := p.ifc.Status()
	ps.Memif = &spec.MemifStatus{
		Role: st.Role, Socket: p.cfg.Socket, ID: st.ID, Polling: st.Polling, Connected: st.Connected,
		PeerName: st.PeerName, PeerIf: st.PeerIf, RxQueues: st.RxQueues, TxQueues: st.TxQueues,
		RingSize: st.RingSize, BufferSize: st.BufferSize, LastReason: st.LastReason,
		Connects: st.Connects, Disconnects: st.Disconnects,
	}
	if p.cfg.Netns != "" {
		ps.Memif.Socket = p.cfg.Socket + " (netns " + p.cfg.Netns + ")"
	}
	// memif's own drops: frames too big for a Umem frame (or bad
	// descriptors), and frames too big for the peer's buffers.
	ps.Memif.RxDrops = st.Rx.DropTooBig + st.Rx.DropBadDesc
	ps.Stats.TxDrops += st.Tx.DropBadFrame
}

// Interface is the port's memif interface, for tests and tools.
func (p *Port) Interface() *memif.Interface { return p.ifc }
