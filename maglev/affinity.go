package maglev

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync/atomic"
)

// Affinity is the sessionAffinity: ClientIP table shared by every
// worker: which backend a client address was last sent to per service,
// forgotten after the service's timeout without traffic. It is a
// 4-way set-associative cache of fixed size: a client's set is chosen by
// hash; a full set replaces its least recently used way (so when more
// clients are active than the table holds, the oldest lose their
// affinity, which Stats counts). Lookups take no lock (a sequence number
// per way, as in conntrack); Set takes its set's spin lock.
type Affinity struct {
	sets  []affSet
	mask  uint64
	seed  uint64
	evict atomic.Int64
}

const ways = 4

type affSet struct {
	lock atomic.Uint32
	way  [ways]affWay
}

type affWay struct {
	seq     atomic.Uint32 // odd while being written
	key     [3]atomic.Uint64
	backend atomic.Uint32
	last    atomic.Uint32 // seconds; 0 = empty
}

// NewAffinity makes a table for size clients (rounded up to a power of
// two, 4 to 1<<24).
func NewAffinity(size int) (*Affinity, error) {
	if size < ways || size > 1<<24 {
		return nil, fmt.Errorf("affinity size %d: must be %d to %d", size, ways, 1<<24)
	}
	n := 1 << bits.Len(uint(size/ways-1))
	return &Affinity{sets: make([]affSet, n), mask: uint64(n - 1), seed: 0x6a09e667f3bcc909}, nil
}

func affKey(client [16]byte, svc uint32) [3]uint64 {
	return [3]uint64{binary.LittleEndian.Uint64(client[0:]), binary.LittleEndian.Uint64(client[8:]), uint64(svc) | 1<<63}
}

func (a *Affinity) set(k *[3]uint64) *affSet {
	hi, lo := bits.Mul64(k[0]^a.seed, k[1]^0xbb67ae8584caa73b)
	hi2, lo2 := bits.Mul64(hi^lo^k[2], 0x3c6ef372fe94f82b)
	return &a.sets[(hi2^lo2)&a.mask]
}

// Lookup returns the backend client (an IPv4 address in the first four
// bytes) was sent to for service svc, if it was within timeout seconds
// of now. It does not refresh the entry: Set does.
func (a *Affinity) Lookup(client [16]byte, svc, now, timeout uint32) (uint32, bool) {
	k := affKey(client, svc)
	s := a.set(&k)
	for i := range s.way {
		w := &s.way[i]
		q := w.seq.Load()
		if q&1 != 0 || w.key[0].Load() != k[0] || w.key[1].Load() != k[1] || w.key[2].Load() != k[2] {
			continue
		}
		b, last := w.backend.Load(), w.last.Load()
		if w.seq.Load() != q || last == 0 || now-last >= timeout {
			return 0, false
		}
		return b, true
	}
	return 0, false
}

// Set records that client was sent to backend for svc at now. Workers
// call it for every new flow of an affinity service (and may call it per
// packet: a way already holding the same backend and time is not
// written).
func (a *Affinity) Set(client [16]byte, svc, backend, now uint32) {
	k := affKey(client, svc)
	s := a.set(&k)
	for i := 0; !s.lock.CompareAndSwap(0, 1); i++ {
		if i > 32 {
			runtime.Gosched()
		}
	}
	victim := -1
	for i := range s.way {
		w := &s.way[i]
		if w.key[0].Load() == k[0] && w.key[1].Load() == k[1] && w.key[2].Load() == k[2] {
			victim = i
			break
		}
		if victim < 0 || int32(w.last.Load()-s.way[victim].last.Load()) < 0 {
			victim = i
		}
	}
	w := &s.way[victim]
	same := w.key[0].Load() == k[0] && w.key[1].Load() == k[1] && w.key[2].Load() == k[2]
	if !same && w.last.Load() != 0 {
		a.evict.Add(1)
	}
	if !same || w.backend.Load() != backend || w.last.Load() != now {
		q := w.seq.Load()
		w.seq.Store(q + 1)
		for j := range k {
			w.key[j].Store(k[j])
		}
		w.backend.Store(backend)
		w.last.Store(now)
		w.seq.Store(q + 2)
	}
	s.lock.Store(0)
}

// Forget removes every client's affinity to backend of svc (a removed
// backend), so their next flow is balanced again.
func (a *Affinity) Forget(svc, backend uint32) {
	for i := range a.sets {
		s := &a.sets[i]
		for !s.lock.CompareAndSwap(0, 1) {
			runtime.Gosched()
		}
		for j := range s.way {
			w := &s.way[j]
			if w.key[2].Load() == uint64(svc)|1<<63 && w.backend.Load() == backend && w.last.Load() != 0 {
				q := w.seq.Load()
				w.seq.Store(q + 1)
				w.last.Store(0)
				w.seq.Store(q + 2)
			}
		}
		s.lock.Store(0)
	}
}

// Evictions counts live entries replaced because their set was full.
func (a *Affinity) Evictions() int64 { return a.evict.Load() }
