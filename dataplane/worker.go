package dataplane

import (
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/nat"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/xsk"
)

// The worker's files, in the order a packet moves through them:
//
//	worker.go   receive: the loop (run, poll1), the handoff inbox
//	pipeline.go classify → preRoute → decide → postRoute → act
//	local.go    what the switch answers itself (ARP, NDP, echo, ICMP errors)
//	vxlan.go    decapsulation on receive, encapsulation before emit
//	large.go    super-frames: the same steps, then sent whole or cut
//	output.go   emit, then flush: transmit, merged into super-frames
//
// with handoff.go (frames to another worker's ports) and counters.go.

// Worker runs the pipeline for its ports on one goroutine locked to an OS
// thread. Everything it touches per packet (its Umem, its ports, its scratch
// vectors, its counters' local half) is owned by that goroutine; the control
// plane changes Worker state only by posting closures (do).
type Worker struct {
	id    int
	log   *slog.Logger
	umem  *xsk.Umem
	fib   *fib.FIB
	batch int
	poll  PollMode
	// idleSpin: ns an adaptive worker keeps polling after its last frame.
	idleSpin int64
	cpu      int // the CPU the worker's thread is pinned to, or -1

	ports  []*Port // by port ID, every worker's; nil for absent or down ports
	rxList []*Port // ports this worker owns and receives from

	// Cross-worker handoff: outbox[j] carries frames to worker j's ports,
	// inbox[j] brings frames from worker j (nil for j == id).
	outbox   []*handoff
	inbox    []*handoff
	peers    []*Worker
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
	events chan<- Request

	// Scratch, sized once for the batch size.
	vec     []port.Packet
	out     [][]port.Packet // by port ID
	touched []uint16
	descs   []desc      // by the frame's index in the vector
	a4      [][4]byte   // the IPv4 frames to route: their destinations,
	i4      []uint16    // indexes in the vector
	r4      []fib.Index // and routes
	a6      [][16]byte
	i6      []uint16
	r6      []fib.Index

	vx        VXLAN           // the node's VTEP; vx.on false without VXLAN
	tun       *Port           // the tunnel's pseudo-port: where decapsulated frames come from
	vtepCache [16]vtepRoute   // the routes to remote VTEPs, per FIB View
	segs      [64]port.Packet // VXLAN datagrams cut from a UDP super-frame (vxlanLarge)
	inner     port.LargeFrame // the inner super-frame of merged TCP in VXLAN (vxlanLargeTCP)
	innerHdr  [encap.VirtioNetHdrLen]byte

	gro     *encap.GRO                  // merges TCP segments for ports that take super-frames
	ugro    *encap.UDPGRO               // and UDP datagrams (VXLAN toward one VTEP)
	groHdr  [encap.VirtioNetHdrLen]byte // the merged frame's offload header
	pollfds []unix.PollFd

	now        int64 // monotonic ns, refreshed once per loop
	icmpRate   int64
	icmpTokens int64
	icmpLast   int64
	gleans     throttle // glean's last requests

	// The NAT stage (nat.go): the published state, the table's clock
	// read once per vector, and the scratch of the packet at hand.
	natState atomic.Pointer[NAT]
	ctNow    uint32
	natPkt   nat.Packet
	natFlow  conntrack.Flow
	remotes  throttle // learnRemote's last requests
}

// throttle remembers the last requests about addresses to the control
// plane, so that one about an address goes at most once a second (per
// slot: the address's hash picks one of them).
type throttle [64]struct {
	Addr netip.Addr
	at   int64
}

// allow reports whether a request about a may go now, and if so counts it
// as gone at now.
func (t *throttle) allow(a netip.Addr, now int64) bool {
	e := &t[addrHash(a)%uint32(len(t))]
	if e.Addr == a && now-e.at < int64(time.Second) {
		return false
	}
	e.Addr, e.at = a, now
	return true
}

type RequestKind uint8

const (
	ReqResolve RequestKind = iota // resolve addr on port
	ReqLearn                      // pod on port has MAC mac
	ReqRemote                     // put addr, routed out of an uplink, into the tc fast path
)

type Request struct {
	Kind RequestKind
	Port uint16
	Addr netip.Addr
	MAC  [6]byte
}

func NewWorker(id int, cfg Config, f *fib.FIB, events chan<- Request, log *slog.Logger) (*Worker, error) {
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
	w := &Worker{
		id: id, log: log, umem: u, fib: f, batch: n, poll: cfg.Poll, idleSpin: max(0, int64(cfg.IdleSpin)),
		ctl: make(chan func(), 16), wakeFD: efd, done: make(chan struct{}),
		gw4: cfg.GatewayV4.As4(), gw6: cfg.GatewayV6.As16(), gwMAC: cfg.GatewayMAC,
		events: events,
		vec:    make([]port.Packet, n),
		descs:  make([]desc, n),
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

// Do runs fn on the worker's goroutine and waits for it; before the worker
// starts or after it stopped, it runs fn directly.
func (w *Worker) Do(fn func()) {
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

func (w *Worker) wake() {
	var one = [8]byte{1}
	unix.Write(w.wakeFD, one[:])
}

// AddPort makes ps known to this worker (an output it can reach), and one
// it receives from when it owns ps. Runs on the worker.
func (w *Worker) AddPort(ps *Port) {
	for int(ps.ID) >= len(w.ports) {
		w.ports = append(w.ports, nil)
		w.out = append(w.out, make([]port.Packet, 0, w.batch))
	}
	w.ports[ps.ID] = ps
	if ps.Worker == w.id {
		w.rxList = append(w.rxList, ps)
	}
}

// RemovePort stops using ps. Runs on the worker.
func (w *Worker) RemovePort(ps *Port) {
	if int(ps.ID) < len(w.ports) {
		w.ports[ps.ID] = nil
	}
	for i, r := range w.rxList {
		if r == ps {
			w.rxList = append(w.rxList[:i], w.rxList[i+1:]...)
			break
		}
	}
}

func (w *Worker) port(id uint16) *Port {
	if int(id) >= len(w.ports) {
		return nil
	}
	return w.ports[id]
}

// ID returns the worker's index.
func (w *Worker) ID() int { return w.id }

// Umem returns the worker's frames, which its ports receive into.
func (w *Worker) Umem() *xsk.Umem { return w.umem }

// MapPort makes what this worker routes to port id leave by p instead: an
// uplink's queue the worker serves. Runs on the worker (Do).
func (w *Worker) MapPort(id uint16, p *Port) { w.ports[id] = p }

// SetHost makes port id the host port, mac the host side's MAC (zero
// until learned): where punted packets go. Runs on the worker (Do).
func (w *Worker) SetHost(id uint16, mac [6]byte) {
	w.hostPort, w.hasHost, w.hostMAC = id, true, mac
}

// SetHostMAC sets the host side's MAC once learned. Runs on the worker.
func (w *Worker) SetHostMAC(mac [6]byte) { w.hostMAC = mac }

// ClearHost forgets the host port if it is id. Runs on the worker.
func (w *Worker) ClearHost(id uint16) {
	if w.hostPort == id {
		w.hasHost = false
	}
}

// AddCounters adds the worker's published counters to into.
func (w *Worker) AddCounters(into *Counters) { w.cnt.snapshot(into) }

func (w *Worker) Start() {
	w.running.Store(true)
	go w.run()
}

func (w *Worker) Stop() {
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

func (w *Worker) run() {
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
func (w *Worker) poll1() int {
	total := w.drainInbox()
	for _, ps := range w.rxList {
		n := ps.Dev.Receive(w.vec[:w.batch])
		var large []port.LargeFrame
		if ps.Large != nil {
			large = ps.Large.Large()
		}
		if n == 0 && len(large) == 0 {
			continue
		}
		total += n + len(large)
		for i := 0; i < n; i++ {
			w.vec[i].Port = ps.ID
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
			ps.Dev.Flush()
		}
	}
	return total
}

// drainInbox takes frames other workers handed to this worker's ports,
// at most one vector per peer.
func (w *Worker) drainInbox() int {
	total := 0
	for _, h := range w.inbox {
		if h == nil {
			continue
		}
		n := 0
		for n < w.batch {
			b, id, ok := h.peek()
			if !ok {
				break
			}
			out := w.port(id)
			a, got := w.umem.Alloc()
			switch {
			case out == nil:
				w.cnt.drop(DropPortDown)
			case !got:
				w.cnt.drop(DropNoFrames)
			default:
				copy(w.umem.Frame(a)[port.Headroom:], b)
				w.emit(&port.Packet{Addr: a + port.Headroom, Len: uint32(len(b))}, out)
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

// sleep waits in poll(2) for any port, the wake eventfd, or (through it)
// a peer's handoff.
func (w *Worker) sleep() {
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
		if fd := ps.Dev.PollFD(); fd >= 0 {
			w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
	}
	unix.Poll(w.pollfds, int(pollInterval/time.Millisecond))
	if w.pollfds[0].Revents&unix.POLLIN != 0 {
		var buf [8]byte
		unix.Read(w.wakeFD, buf[:])
	}
}

// icmpAllow is a token bucket of icmpRate errors per second, burst icmpRate.
func (w *Worker) icmpAllow() bool {
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
func (w *Worker) glean(port uint16, addr netip.Addr) {
	if !w.gleans.allow(addr, w.now) {
		return
	}
	select {
	case w.events <- Request{Kind: ReqResolve, Port: port, Addr: addr}:
		w.cnt.event(EvGleans)
	default:
	}
}

// learn tells the control plane a pod's MAC, once.
func (w *Worker) learn(in *Port, mac [6]byte) {
	if mac[0]&1 != 0 || mac == ([6]byte{}) {
		return
	}
	select {
	case w.events <- Request{Kind: ReqLearn, Port: in.ID, MAC: mac}:
		in.NeedLearn = false // the control plane installs the routes
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

// Close releases the worker's Umem and eventfd; its ports are closed first.
func (w *Worker) Close() {
	unix.Close(w.wakeFD)
	w.umem.Close()
}
