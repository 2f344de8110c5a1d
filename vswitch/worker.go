package vswitch

import (
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/xsk"
)

// worker runs the pipeline for its ports on one goroutine locked to an OS
// thread. Everything it touches per packet (its Umem, its ports, its scratch
// vectors, its counters' local half) is owned by that goroutine; the control
// plane changes worker state only by posting closures (do).
type worker struct {
	id    int
	log   *slog.Logger
	umem  *xsk.Umem
	fib   *fib.FIB
	batch int
	poll  PollMode
	// idleSpin: ns an adaptive worker keeps polling after its last frame.
	idleSpin int64
	cpu      int // the CPU the worker's thread is pinned to, or -1

	ports  []*portState // by port ID, every worker's; nil for absent or down ports
	rxList []*portState // ports this worker owns and receives from

	// Cross-worker handoff: outbox[j] carries frames to worker j's ports,
	// inbox[j] brings frames from worker j (nil for j == id).
	outbox   []*handoff
	inbox    []*handoff
	peers    []*worker
	outDirty []bool
	sleeping atomic.Bool

	hostPort uint16 // the host port, valid when hasHost
	hasHost  bool
	hostMAC  [6]byte // the host side's MAC: where punted packets go

	ctl     chan func()
	wakeFD  int // eventfd: posting to ctl wakes a sleeping worker
	running atomic.Bool
	stop    atomic.Bool
	done    chan struct{}

	cnt counters

	// Pipeline configuration, copied from the switch config.
	gw4   [4]byte
	gw6   [16]byte
	gwMAC [6]byte

	// events goes to the control plane: neighbour resolution and MAC
	// learning requests. Sends never block.
	events chan<- ctlEvent

	// Scratch, sized once for the batch size.
	vec     []Packet
	out     [][]Packet // by port ID
	touched []uint16
	a4      [][4]byte
	i4      []uint16
	r4      []fib.Index
	a6      [][16]byte
	i6      []uint16
	r6      []fib.Index
	n4, n6  int // frames queued in a4/i4 and a6/i6

	vx        vxlanState    // the node's VTEP; vx.on false without VXLAN
	tun       *portState    // the tunnel's pseudo-port: where decapsulated frames come from
	under     *fib.NextHop  // the underlay adjacency route4/route6 found for a VXLAN next hop
	vxHash    uint32        // and the inner flow's hash, for the tunnel's UDP source port
	vtepCache [16]vtepRoute // the routes to remote VTEPs, per FIB View
	segs      [64]Packet    // VXLAN datagrams cut from a UDP super-frame (vxlanLarge)
	inner     LargeFrame    // the inner super-frame of merged TCP in VXLAN (vxlanLargeTCP)
	innerHdr  [encap.VirtioNetHdrLen]byte

	gro     *encap.GRO                  // merges TCP segments for ports that take super-frames
	ugro    *encap.UDPGRO               // and UDP datagrams (VXLAN toward one VTEP)
	groHdr  [encap.VirtioNetHdrLen]byte // the merged frame's offload header
	pollfds []unix.PollFd

	now        int64 // monotonic ns, refreshed once per loop
	icmpRate   int64
	icmpTokens int64
	icmpLast   int64
	gleans     [64]gleanEntry
	remotes    [64]gleanEntry // learnRemote's last requests (once)
}

type gleanEntry struct {
	addr netip.Addr
	at   int64
}

type ctlEventKind uint8

const (
	evGlean  ctlEventKind = iota // resolve addr on port
	evLearn                      // pod on port has MAC mac
	evRemote                     // put addr, routed out of an uplink, into the tc fast path
)

type ctlEvent struct {
	kind ctlEventKind
	port uint16
	addr netip.Addr
	mac  [6]byte
}

func newWorker(id int, cfg *Config, f *fib.FIB, events chan<- ctlEvent, log *slog.Logger) (*worker, error) {
	u, err := xsk.NewUmem(cfg.Frames, cfg.FrameSize)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		u.Close()
		return nil, err
	}
	n := cfg.BatchSize
	w := &worker{
		id: id, log: log, umem: u, fib: f, batch: n, poll: cfg.Poll, idleSpin: max(0, int64(cfg.IdleSpin)),
		ctl: make(chan func(), 16), wakeFD: efd, done: make(chan struct{}),
		gw4: cfg.GatewayV4.As4(), gw6: cfg.GatewayV6.As16(), gwMAC: cfg.GatewayMAC,
		events: events,
		vec:    make([]Packet, n),
		a4:     make([][4]byte, n), i4: make([]uint16, n), r4: make([]fib.Index, n),
		a6: make([][16]byte, n), i6: make([]uint16, n), r6: make([]fib.Index, n),
		icmpRate: int64(cfg.ICMPRate),
		gro:      encap.NewGRO(),
		ugro:     encap.NewUDPGRO(),
	}
	w.icmpTokens = w.icmpRate
	w.cpu = -1
	if id < len(cfg.WorkerCPUs) {
		w.cpu = cfg.WorkerCPUs[id]
	}
	return w, nil
}

// do runs fn on the worker's goroutine and waits for it; before the worker
// starts or after it stopped, it runs fn directly.
func (w *worker) do(fn func()) {
	if !w.running.Load() {
		fn()
		return
	}
	done := make(chan struct{})
	w.ctl <- func() { fn(); close(done) }
	w.wake()
	select {
	case <-done:
	case <-w.done:
		// The worker stopped before running fn; it is safe to run it here.
		select {
		case <-done:
		default:
			fn()
		}
	}
}

func (w *worker) wake() {
	var one = [8]byte{1}
	unix.Write(w.wakeFD, one[:])
}

// addPort makes ps known to this worker (an output it can reach), and one
// it receives from when it owns ps. Runs on the worker.
func (w *worker) addPort(ps *portState) {
	for int(ps.id) >= len(w.ports) {
		w.ports = append(w.ports, nil)
		w.out = append(w.out, make([]Packet, 0, w.batch))
	}
	w.ports[ps.id] = ps
	if ps.worker == w.id {
		w.rxList = append(w.rxList, ps)
	}
}

// removePort stops using ps. Runs on the worker.
func (w *worker) removePort(ps *portState) {
	if int(ps.id) < len(w.ports) {
		w.ports[ps.id] = nil
	}
	for i, r := range w.rxList {
		if r == ps {
			w.rxList = append(w.rxList[:i], w.rxList[i+1:]...)
			break
		}
	}
}

func (w *worker) port(id uint16) *portState {
	if int(id) >= len(w.ports) {
		return nil
	}
	return w.ports[id]
}

func (w *worker) start() {
	w.running.Store(true)
	go w.run()
}

func (w *worker) stopAndWait() {
	if !w.running.Load() {
		return
	}
	w.stop.Store(true)
	w.wake()
	<-w.done
	w.running.Store(false)
}

// pollInterval is the longest an idle worker sleeps: it bounds how long a
// control-plane request waits. How long a worker spins before it sleeps is
// Config.IdleSpin (default: none): measured on 2 cores (docs/BENCHMARKS.md),
// sleeping at once halved the median latency against a 200 µs spin; 200 µs and 2 ms
// gave the same latency, and raising the worker's priority (nice -10) made
// it worse, because the worker then starves the pods it serves.
const pollInterval = 50 * time.Millisecond

func (w *worker) run() {
	runtime.LockOSThread()
	if w.cpu >= 0 {
		// The thread stays locked: when the goroutine ends it dies with
		// its affinity rather than go back to the runtime pinned.
		var set unix.CPUSet
		set.Set(w.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			w.log.Warn("cannot pin worker", "cpu", w.cpu, "err", err)
		}
	} else {
		defer runtime.UnlockOSThread()
	}
	defer close(w.done)
	idle := 0
	var lastWork int64
	for !w.stop.Load() {
		select {
		case fn := <-w.ctl:
			fn()
		default:
		}
		w.now = nanotime()
		got := w.poll1()
		w.cnt.publish()
		if got > 0 {
			idle = 0
			lastWork = w.now
			continue
		}
		idle++
		if w.poll == PollBusy || w.now-lastWork < w.idleSpin {
			if idle%64 == 0 {
				runtime.Gosched()
			}
			continue
		}
		w.sleep()
	}
	w.cnt.publish()
}

// poll1 receives one vector from every port and processes it.
func (w *worker) poll1() int {
	total := w.drainInbox()
	for _, ps := range w.rxList {
		n := ps.port.Receive(w.vec[:w.batch])
		var large []LargeFrame
		if ps.large != nil {
			large = ps.large.Large()
		}
		if n == 0 && len(large) == 0 {
			continue
		}
		total += n + len(large)
		for i := 0; i < n; i++ {
			w.vec[i].Port = ps.id
		}
		if len(large) == 0 {
			w.process(w.vec[:n], ps)
		} else {
			w.processLarge(w.vec[:n], large, ps)
		}
		w.cnt.event(EvVectors)
		w.flush()
	}
	if total == 0 {
		// Let ports reclaim completions and refill even when idle.
		for _, ps := range w.rxList {
			ps.port.Flush()
		}
	}
	return total
}

// drainInbox takes frames other workers handed to this worker's ports,
// at most one vector per peer.
func (w *worker) drainInbox() int {
	total := 0
	for _, h := range w.inbox {
		if h == nil {
			continue
		}
		n := 0
		for n < w.batch {
			b, port, ok := h.peek()
			if !ok {
				break
			}
			out := w.port(port)
			a, got := w.umem.Alloc()
			switch {
			case out == nil:
				w.cnt.drop(DropPortDown)
			case !got:
				w.cnt.drop(DropNoFrames)
			default:
				copy(w.umem.Frame(a)[Headroom:], b)
				w.emit(&Packet{Addr: a + Headroom, Len: uint32(len(b))}, out)
			}
			h.pop()
			n++
		}
		if n > 0 {
			h.release()
			total += n
		}
	}
	if total > 0 {
		w.flush()
	}
	return total
}

// flush hands every output batch to its port, and publishes handoffs.
func (w *worker) flush() {
	for j, d := range w.outDirty {
		if d {
			w.outbox[j].publish()
			w.outDirty[j] = false
			if p := w.peers[j]; p.sleeping.Load() {
				p.wake()
			}
		}
	}
	for _, id := range w.touched {
		batch := w.out[id]
		ps := w.ports[id]
		if ps == nil {
			for i := range batch {
				w.umem.Free(batch[i].Addr)
				w.cnt.drop(DropPortDown)
			}
			w.out[id] = batch[:0]
			continue
		}
		if ps.large != nil && len(batch) > 1 {
			w.transmitMerged(ps, batch)
		} else {
			w.transmit(ps, batch)
		}
		ps.port.Flush()
		w.out[id] = batch[:0]
	}
	w.touched = w.touched[:0]
}

// transmit hands batch to ps's port, counts it and frees what the port
// did not take.
func (w *worker) transmit(ps *portState, batch []Packet) {
	if len(batch) == 0 {
		return
	}
	sent := ps.port.Transmit(batch)
	var bytes uint64
	for i := 0; i < sent; i++ {
		bytes += uint64(batch[i].Len)
	}
	for i := sent; i < len(batch); i++ {
		w.umem.Free(batch[i].Addr)
		w.cnt.drop(DropRingFull)
	}
	ps.stats.txPackets.Add(uint64(sent))
	ps.stats.txBytes.Add(bytes)
	if d := len(batch) - sent; d > 0 {
		ps.stats.txDrops.Add(uint64(d))
	}
}

// transmitMerged sends batch out of a port that takes GSO super-frames,
// merging each run of consecutive segments of one TCP flow into one
// (encap.GRO), and, toward an uplink, each run of one UDP flow's
// datagrams of one size, the VXLAN the switch sends toward one remote
// VTEP among them, into one UDP GSO super-frame (encap.UDPGRO), and
// sending it whole; the rest goes as it is, in order.
func (w *worker) transmitMerged(ps *portState, batch []Packet) {
	from := 0 // the first frame not yet sent
	for i := 0; i < len(batch); {
		if i+1 == len(batch) {
			break
		}
		// The cheap look first: only a frame the next one may continue is
		// worth Start's copy and checksum.
		a := w.umem.Bytes(batch[i].Addr, int(batch[i].Len))
		b := w.umem.Bytes(batch[i+1].Addr, int(batch[i+1].Len))
		udp := false
		switch {
		case encap.GROPair(a, b) && w.gro.Start(a):
		case ps.kind == PortUplink && encap.UDPGROPair(a, b) && w.ugro.Start(a):
			// Toward the network only: the interface cuts the
			// super-frame before the wire. A pod's stack would take it
			// whole into its packet sockets and XDP programs.
			udp = true
		default:
			i++
			continue
		}
		j := i + 1
		for j < len(batch) {
			d := w.umem.Bytes(batch[j].Addr, int(batch[j].Len))
			if udp && !w.ugro.Add(d) || !udp && !w.gro.Add(d) {
				break
			}
			j++
		}
		if j-i < 2 {
			i = j
			continue
		}
		// What came before goes first, out of the ring, then the
		// super-frame through the port's socket.
		if i > from {
			w.transmit(ps, batch[from:i])
			ps.port.Flush()
		}
		var f []byte
		if udp {
			f = w.ugro.Finish(w.groHdr[:])
		} else {
			f = w.gro.Finish(w.groHdr[:])
		}
		if err := ps.large.TransmitLarge(f, w.groHdr[:]); err != nil {
			// The socket is full or refused it: the segments are still
			// here, and go through the ring as they came.
			from, i = i, j
			continue
		}
		ps.stats.txPackets.Add(1)
		ps.stats.txBytes.Add(uint64(len(f)))
		if udp {
			w.cnt.event(EvUDPGROMerged)
			w.cnt.add(EvUDPGROSegments, j-i)
		} else {
			w.cnt.event(EvGROMerged)
			w.cnt.add(EvGROSegments, j-i)
		}
		for k := i; k < j; k++ {
			w.umem.Free(batch[k].Addr)
		}
		from, i = j, j
	}
	w.transmit(ps, batch[from:])
}

// sleep waits in poll(2) for any port, the wake eventfd, or (through it)
// a peer's handoff.
func (w *worker) sleep() {
	w.sleeping.Store(true)
	defer w.sleeping.Store(false)
	for _, h := range w.inbox {
		if h != nil && h.pending() {
			return
		}
	}
	w.pollfds = w.pollfds[:0]
	w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(w.wakeFD), Events: unix.POLLIN})
	for _, ps := range w.rxList {
		if fd := ps.port.PollFD(); fd >= 0 {
			w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
	}
	unix.Poll(w.pollfds, int(pollInterval/time.Millisecond))
	if w.pollfds[0].Revents&unix.POLLIN != 0 {
		var buf [8]byte
		unix.Read(w.wakeFD, buf[:])
	}
}

func (w *worker) emit(p *Packet, out *portState) {
	if out.worker != w.id {
		// Another worker's port: copy the frame over and free ours.
		if w.outbox[out.worker].push(w.umem.Bytes(p.Addr, int(p.Len)), out.id) {
			w.outDirty[out.worker] = true
		} else {
			w.cnt.drop(DropRingFull)
		}
		w.umem.Free(p.Addr)
		return
	}
	q := w.out[out.id]
	if len(q) == 0 {
		w.touched = append(w.touched, out.id)
	}
	p.Port = out.id
	w.out[out.id] = append(q, *p)
}

func (w *worker) drop(p *Packet, d Drop) {
	w.umem.Free(p.Addr)
	w.cnt.drop(d)
}

// icmpAllow is a token bucket of icmpRate errors per second, burst icmpRate.
func (w *worker) icmpAllow() bool {
	if el := w.now - w.icmpLast; el > 0 {
		add := el * w.icmpRate / int64(time.Second)
		if add > 0 {
			w.icmpTokens = min(w.icmpRate, w.icmpTokens+add)
			w.icmpLast = w.now
		}
	}
	if w.icmpTokens <= 0 {
		return false
	}
	w.icmpTokens--
	return true
}

// glean asks the control plane to resolve addr on port, at most once per
// address per second per worker.
func (w *worker) glean(port uint16, addr netip.Addr) {
	if !w.once(w.gleans[:], addr) {
		return
	}
	select {
	case w.events <- ctlEvent{kind: evGlean, port: port, addr: addr}:
		w.cnt.event(EvGleans)
	default:
	}
}

// once reports whether a request about a may go to the control plane
// now: at most once a second per address (and per slot of t, which a's
// hash picks).
func (w *worker) once(t []gleanEntry, a netip.Addr) bool {
	e := &t[addrHash(a)%uint32(len(t))]
	if e.addr == a && w.now-e.at < int64(time.Second) {
		return false
	}
	e.addr, e.at = a, w.now
	return true
}

// learn tells the control plane a pod's MAC, once.
func (w *worker) learn(in *portState, mac [6]byte) {
	if mac[0]&1 != 0 || mac == ([6]byte{}) {
		return
	}
	select {
	case w.events <- ctlEvent{kind: evLearn, port: in.id, mac: mac}:
		in.needLearn = false // the control plane installs the routes
	default:
	}
}

func addrHash(a netip.Addr) uint32 {
	b := a.As16()
	var h uint32 = 2166136261
	for _, c := range b[8:] {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

var clockBase = time.Now()

func nanotime() int64 { return int64(time.Since(clockBase)) }

// close releases the worker's Umem and eventfd; its ports are closed first.
func (w *worker) close() {
	unix.Close(w.wakeFD)
	w.umem.Close()
}
