package memif

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxChain bounds the descriptors one transmitted frame may take; a frame
// needing more (tiny peer buffers) is dropped and counted.
const maxChain = 64

// Fault kinds a queue reports to its interface's control goroutine; each
// ends the connection with a DISCONNECT naming it.
const (
	faultNone uint32 = iota
	faultHeadJump
	faultBadDesc
	faultChain
)

// queueState is one connected ring as a queue's worker sees it. The control
// goroutine builds it at CONNECT and publishes it through the queue's
// atomic pointer; from then on only the worker reads or writes its fields,
// until the control goroutine has withdrawn it and seen no burst using it.
type queueState struct {
	ring    ring
	regions [][]byte
	efd     int    // the ring's eventfd, owned by the session
	cursor  uint16 // rx: next slot to read (our copy of what we released); tx: our tail
	maxLen  uint32 // largest descriptor or frame accepted
	faulted bool
	bufSeen uint32 // tx: largest buffer the peer offered
	efdBuf  [8]byte
}

// queue is what RxQueue and TxQueue share: the published state, the
// in-use mark that keeps teardown from unmapping under a burst, fault
// reporting.
type queue struct {
	index int
	st    atomic.Pointer[queueState] // published by the control goroutine
	inuse atomic.Pointer[queueState] // the state a burst is using, or nil
	iface *Interface

	fault      atomic.Uint32 // first fault kind seen on this connection
	faultValue atomic.Uint64 // detail: the jump, the descriptor error, the slot
}

// enter marks a burst in progress and returns the connected state, or nil.
// Storing inuse before re-loading st pairs with withdraw's swap of st
// before its load of inuse (all sequentially consistent): either the burst
// sees the state gone, or withdraw sees the burst and waits for it.
func (q *queue) enter() *queueState {
	st := q.st.Load()
	if st == nil {
		return nil
	}
	q.inuse.Store(st)
	if q.st.Load() != st || st.faulted {
		q.inuse.Store(nil)
		return nil
	}
	return st
}

func (q *queue) leave() { q.inuse.Store(nil) }

// withdraw unpublishes the state and waits out a burst that may still use
// it; afterwards the mapping may go. Later bursts never mark the old state,
// so the wait is one burst at most.
func (q *queue) withdraw() *queueState {
	st := q.st.Swap(nil)
	for st != nil && q.inuse.Load() == st {
		runtime.Gosched()
		time.Sleep(10 * time.Microsecond)
	}
	return st
}

// report records a fault (the first one wins) and wakes the control side.
// It does not allocate: the reason is formatted by the control goroutine.
func (q *queue) report(st *queueState, kind uint32, value uint64) {
	st.faulted = true
	if q.fault.CompareAndSwap(faultNone, kind) {
		q.faultValue.Store(value)
	}
	select {
	case q.iface.faultc <- struct{}{}:
	default:
	}
}

// RxCounters are a receive queue's totals since the interface was added.
type RxCounters struct {
	Packets, Bytes uint64
	DropTooBig     uint64 // frame longer than the caller's buffer or MaxFrame
	DropBadDesc    uint64 // descriptor outside the peer's regions (the connection is closed too)
	Interrupts     uint64 // eventfd reads that found a signal
}

// TxCounters are a transmit queue's totals since the interface was added.
type TxCounters struct {
	Packets, Bytes uint64
	DropBadFrame   uint64 // empty, above MaxFrame, or needing more than 64 peer buffers
	Full           uint64 // bursts that stopped because the peer had no free buffer
	Kicks          uint64 // eventfd writes to wake the peer
}

// RxQueue receives the frames the peer puts on one slave-to-master ring.
// One goroutine (the worker) calls Receive, EventFD and ClearInterrupt; any
// goroutine may read Counters.
type RxQueue struct {
	queue
	packets, bytes, dropTooBig, dropBadDesc, interrupts atomic.Uint64
}

// TxQueue transmits frames into the peer's buffers on one master-to-slave
// ring. One goroutine calls Transmit and Kick; any may read Counters.
type TxQueue struct {
	queue
	packets, bytes, dropBadFrame, full, kicks atomic.Uint64
	bufSize                                   atomic.Uint32 // largest peer buffer seen
}

// Receive copies up to len(bufs) frames off the ring, frame i into
// bufs[i][offset:], a chained frame joined, and sets sizes[i] to its
// length. It returns the number of frames written; the slots they used are
// handed back to the peer. A frame that does not fit its buffer is dropped
// and counted. It never blocks and does not allocate. len(sizes) must be at
// least len(bufs).
func (q *RxQueue) Receive(bufs [][]byte, offset int, sizes []int) int {
	st := q.enter()
	if st == nil {
		return 0
	}
	if testHookBurst != nil {
		testHookBurst()
	}
	n := q.receive(st, bufs, offset, sizes)
	q.leave()
	return n
}

// testHookBurst, set only by tests, runs inside each Receive burst.
var testHookBurst func()

func (q *RxQueue) receive(st *queueState, bufs [][]byte, offset int, sizes []int) int {
	r := &st.ring
	head := r.head()
	avail := head - st.cursor
	if avail > r.size {
		q.report(st, faultHeadJump, uint64(avail))
		return 0
	}
	slot := st.cursor
	n := 0
	var nbytes, tooBig uint64
	if len(sizes) < len(bufs) {
		bufs = bufs[:len(sizes)]
	}
frames:
	for n < len(bufs) && avail > 0 {
		dst := bufs[n]
		room := len(dst) - offset
		fits := offset >= 0 && room >= 0
		total := uint32(0)
		k := uint16(0)
		for {
			if k == avail {
				if avail == r.size {
					q.report(st, faultChain, uint64(slot))
					break frames
				}
				break frames // the rest of the chain is not published yet
			}
			d := r.desc(slot + k)
			k++
			if e := CheckDesc(d, st.regions, st.maxLen); e != DescOK {
				q.dropBadDesc.Add(1)
				q.report(st, faultBadDesc, uint64(e)<<32|uint64(slot+k-1))
				break frames
			}
			if fits && uint64(total)+uint64(d.Length) <= uint64(min(room, int(st.maxLen))) {
				copy(dst[offset+int(total):], descBytes(d, st.regions))
			} else {
				fits = false
			}
			total += d.Length // bounded: at most ring size descriptors of maxLen each
			if d.Flags&descFlagNext == 0 {
				break
			}
		}
		slot += k
		avail -= k
		if fits {
			sizes[n] = int(total)
			n++
			nbytes += uint64(total)
		} else {
			tooBig++
		}
	}
	if slot != st.cursor {
		st.cursor = slot
		r.storeTail(slot)
	}
	if n > 0 {
		q.packets.Add(uint64(n))
		q.bytes.Add(nbytes)
	}
	if tooBig > 0 {
		q.dropTooBig.Add(tooBig)
	}
	return n
}

// EventFD is the eventfd the peer signals after it fills this ring in
// interrupt mode, or -1 while disconnected. It changes with every
// connection (Config.OnState says when).
func (q *RxQueue) EventFD() int {
	st := q.st.Load()
	if st == nil {
		return -1
	}
	return st.efd
}

// ClearInterrupt consumes a pending signal on the eventfd, so a poller does
// not wake again for frames already received. It reports whether there was
// one.
func (q *RxQueue) ClearInterrupt() bool {
	st := q.enter()
	if st == nil {
		return false
	}
	n, err := unix.Read(st.efd, st.efdBuf[:])
	q.leave()
	if err != nil || n != 8 {
		return false
	}
	q.interrupts.Add(1)
	return true
}

// Counters returns the queue's totals.
func (q *RxQueue) Counters() RxCounters {
	return RxCounters{Packets: q.packets.Load(), Bytes: q.bytes.Load(), DropTooBig: q.dropTooBig.Load(),
		DropBadDesc: q.dropBadDesc.Load(), Interrupts: q.interrupts.Load()}
}

// Transmit copies frames into the peer's free buffers, in order, chaining
// buffers when a frame is longer than one, and publishes them with one
// store. It returns how many frames it consumed from the front of frames
// (sent, or dropped and counted as bad); it stops early when the peer has
// no room. It does not signal the peer: call Kick after the burst. It never
// blocks and does not allocate.
func (q *TxQueue) Transmit(frames [][]byte) int {
	st := q.enter()
	if st == nil {
		return 0
	}
	n := q.transmit(st, frames)
	q.leave()
	return n
}

func (q *TxQueue) transmit(st *queueState, frames [][]byte) int {
	r := &st.ring
	free := r.head() - st.cursor
	if free > r.size {
		q.report(st, faultHeadJump, uint64(free))
		return 0
	}
	slot := st.cursor
	n := 0
	var nbytes, bad uint64
	var chain [maxChain]Desc
frames:
	for ; n < len(frames); n++ {
		f := frames[n]
		if len(f) == 0 || uint64(len(f)) > uint64(st.maxLen) {
			bad++
			continue
		}
		// Read and check the descriptors the frame needs before writing
		// any: a frame that does not fit leaves the peer's ring untouched.
		k := 0
		for capacity := 0; capacity < len(f); k++ {
			if uint16(k) == free {
				q.full.Add(1)
				break frames
			}
			if k == maxChain {
				bad++
				continue frames
			}
			d := r.desc(slot + uint16(k))
			if e := CheckDesc(d, st.regions, ^uint32(0)); e != DescOK {
				q.report(st, faultBadDesc, uint64(e)<<32|uint64(slot+uint16(k)))
				break frames
			}
			chain[k] = d
			capacity += int(d.Length)
			if d.Length > st.bufSeen {
				st.bufSeen = d.Length
				q.bufSize.Store(d.Length)
			}
		}
		off := 0
		for i := 0; i < k; i++ {
			c := copy(descBytes(chain[i], st.regions), f[off:])
			off += c
			flags := uint16(descFlagNext)
			if i == k-1 {
				flags = 0
			}
			r.setDescLenFlags(slot+uint16(i), uint32(c), flags)
		}
		slot += uint16(k)
		free -= uint16(k)
		nbytes += uint64(len(f))
	}
	if slot != st.cursor {
		st.cursor = slot
		r.storeTail(slot)
	}
	if sent := uint64(n) - bad; sent > 0 {
		q.packets.Add(sent)
		q.bytes.Add(nbytes)
	}
	if bad > 0 {
		q.dropBadFrame.Add(bad)
	}
	return n
}

// Kick signals the peer's eventfd unless the peer polls this ring (it set
// the ring's interrupt mask). It reports whether it signalled.
func (q *TxQueue) Kick() bool {
	st := q.enter()
	if st == nil {
		return false
	}
	if st.ring.flags()&ringFlagMask != 0 {
		q.leave()
		return false
	}
	st.efdBuf = [8]byte{1}
	_, err := unix.Write(st.efd, st.efdBuf[:])
	q.leave()
	if err != nil {
		return false // EAGAIN: the counter is saturated, the peer is awake anyway
	}
	q.kicks.Add(1)
	return true
}

// Counters returns the queue's totals.
func (q *TxQueue) Counters() TxCounters {
	return TxCounters{Packets: q.packets.Load(), Bytes: q.bytes.Load(), DropBadFrame: q.dropBadFrame.Load(),
		Full: q.full.Load(), Kicks: q.kicks.Load()}
}
