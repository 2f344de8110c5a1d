package xsk

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ring is the index half of one single-producer single-consumer ring shared
// with the kernel. Only one side's index is ours; the other side's is read
// with an atomic load, and only when the cached copy says the ring is full
// (producer) or empty (consumer). Indices run freely and wrap at 2^32; the
// slot is index&mask.
type ring struct {
	prod  *uint32 // shared producer index
	cons  *uint32 // shared consumer index
	flags *uint32 // XDP_RING_NEED_WAKEUP lives here
	mask  uint32  // size-1, size a power of two
	size  uint32

	// cachedProd and cachedCons are our view. On a producer ring cachedProd
	// is ours (published by Submit) and cachedCons a possibly stale copy of
	// the kernel's; on a consumer ring it is the other way round.
	cachedProd uint32
	cachedCons uint32

	mem []byte // the mmap'd region, for munmap
}

// Size returns the number of slots.
func (r *ring) Size() uint32 { return r.size }

// NeedWakeup reports whether the kernel asked to be woken (sendto for tx,
// recvfrom/poll for fill) before it will process this ring.
func (r *ring) NeedWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// reserve claims up to n free slots at the producer side and returns the
// first index and the count claimed.
func (r *ring) reserve(n uint32) (uint32, uint32) {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free < n {
		r.cachedCons = atomic.LoadUint32(r.cons)
		free = r.size - (r.cachedProd - r.cachedCons)
	}
	if n > free {
		n = free
	}
	idx := r.cachedProd
	r.cachedProd += n
	return idx, n
}

// pending returns how many submitted entries of a producer ring the kernel
// has not consumed yet (one atomic load).
func (r *ring) pending() uint32 {
	r.cachedCons = atomic.LoadUint32(r.cons)
	return atomic.LoadUint32(r.prod) - r.cachedCons
}

// submit publishes every reserved slot to the kernel.
func (r *ring) submit() { atomic.StoreUint32(r.prod, r.cachedProd) }

// cancel gives back the last n reserved, unsubmitted slots.
func (r *ring) cancel(n uint32) { r.cachedProd -= n }

// peek returns the first index and the count (at most n) of entries ready at
// the consumer side. It does not consume them; release does.
func (r *ring) peek(n uint32) (uint32, uint32) {
	avail := r.cachedProd - r.cachedCons
	if avail < n {
		r.cachedProd = atomic.LoadUint32(r.prod)
		avail = r.cachedProd - r.cachedCons
	}
	if n > avail {
		n = avail
	}
	return r.cachedCons, n
}

// release hands n peeked entries back to the kernel.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.cons, r.cachedCons)
}

// FillRing carries free frame addresses to the kernel for receiving.
type FillRing struct {
	ring
	addrs []uint64
}

// Reserve claims up to n slots; fill them with Set, then Submit.
func (r *FillRing) Reserve(n uint32) (idx, got uint32) { return r.reserve(n) }

// Set stores a frame address in reserved slot idx.
func (r *FillRing) Set(idx uint32, addr uint64) { r.addrs[idx&r.mask] = addr }

// Submit publishes all reserved slots.
func (r *FillRing) Submit() { r.submit() }

// Cancel gives back the last n reserved slots.
func (r *FillRing) Cancel(n uint32) { r.cancel(n) }

// CompletionRing returns addresses of transmitted frames.
type CompletionRing struct {
	ring
	addrs []uint64
}

// Peek returns the first index and count (at most n) of completed frames.
func (r *CompletionRing) Peek(n uint32) (idx, got uint32) { return r.peek(n) }

// Get returns the address in slot idx.
func (r *CompletionRing) Get(idx uint32) uint64 { return r.addrs[idx&r.mask] }

// Release consumes n peeked entries.
func (r *CompletionRing) Release(n uint32) { r.release(n) }

// RxRing carries received frames to user space.
type RxRing struct {
	ring
	descs []unix.XDPDesc
}

// Peek returns the first index and count (at most n) of received frames.
func (r *RxRing) Peek(n uint32) (idx, got uint32) { return r.peek(n) }

// Get returns the data address and length in slot idx.
func (r *RxRing) Get(idx uint32) (addr uint64, n uint32) {
	d := &r.descs[idx&r.mask]
	return d.Addr, d.Len
}

// Release consumes n peeked entries.
func (r *RxRing) Release(n uint32) { r.release(n) }

// TxRing carries frames to send to the kernel.
type TxRing struct {
	ring
	descs []unix.XDPDesc
}

// Reserve claims up to n slots; fill them with Set, then Submit.
func (r *TxRing) Reserve(n uint32) (idx, got uint32) { return r.reserve(n) }

// Set stores a frame (data address, length) in reserved slot idx.
func (r *TxRing) Set(idx uint32, addr uint64, n uint32) {
	d := &r.descs[idx&r.mask]
	d.Addr, d.Len, d.Options = addr, n, 0
}

// Submit publishes all reserved slots.
func (r *TxRing) Submit() { r.submit() }

// Cancel gives back the last n reserved slots.
func (r *TxRing) Cancel(n uint32) { r.cancel(n) }
