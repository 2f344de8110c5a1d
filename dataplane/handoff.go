package dataplane

import "sync/atomic"

// handoff carries frames from one worker to another: a single-producer,
// single-consumer ring of frame-sized slots. Workers have separate Umems, so
// a frame bound for a port of another worker is copied into a slot here and
// out again into the owner's Umem. Producer and consumer each cache the
// other's index and publish their own once per vector.
type handoff struct {
	slots []byte // n * slotSize bytes
	lens  []uint32
	ports []uint16
	mask  uint64
	size  uint64 // slot size

	// Producer side (the sending worker).
	tail       uint64 // next slot to write, published to ptail
	cachedHead uint64
	ptail      atomic.Uint64

	_ [64]byte // keep the two sides on separate cache lines

	// Consumer side (the owning worker).
	head       uint64
	cachedTail uint64
	phead      atomic.Uint64
}

func newHandoff(n int, slotSize int) *handoff {
	return &handoff{
		slots: make([]byte, n*slotSize), lens: make([]uint32, n), ports: make([]uint16, n),
		mask: uint64(n - 1), size: uint64(slotSize),
	}
}

// push copies b for port into the ring; false when full. Producer only.
func (h *handoff) push(b []byte, port uint16) bool {
	if h.tail-h.cachedHead > h.mask {
		h.cachedHead = h.phead.Load()
		if h.tail-h.cachedHead > h.mask {
			return false
		}
	}
	i := h.tail & h.mask
	n := copy(h.slots[i*h.size:(i+1)*h.size], b)
	h.lens[i], h.ports[i] = uint32(n), port
	h.tail++
	return true
}

// publish makes pushed frames visible to the consumer. Producer only.
func (h *handoff) publish() { h.ptail.Store(h.tail) }

// pending reports whether the consumer has frames to take.
func (h *handoff) pending() bool { return h.phead.Load() != h.ptail.Load() }

// peek returns the next frame and its port, or false. Consumer only.
func (h *handoff) peek() ([]byte, uint16, bool) {
	if h.head == h.cachedTail {
		h.cachedTail = h.ptail.Load()
		if h.head == h.cachedTail {
			return nil, 0, false
		}
	}
	i := h.head & h.mask
	return h.slots[i*h.size : i*h.size+uint64(h.lens[i])], h.ports[i], true
}

// pop releases the frame peek returned. Consumer only.
func (h *handoff) pop() { h.head++ }

// release publishes the consumer's progress. Consumer only.
func (h *handoff) release() { h.phead.Store(h.head) }

// Connect gives every pair of workers a handoff ring each way.
func Connect(ws []*Worker, frameSize int) {
	for _, w := range ws {
		w.outbox = make([]*handoff, len(ws))
		w.inbox = make([]*handoff, len(ws))
		w.outDirty = make([]bool, len(ws))
		w.peers = ws
	}
	for i, a := range ws {
		for j, b := range ws {
			if i != j {
				h := newHandoff(handoffSlots, frameSize)
				a.outbox[j] = h
				b.inbox[i] = h
			}
		}
	}
}

// handoffSlots is the depth of each cross-worker ring.
const handoffSlots = 512
