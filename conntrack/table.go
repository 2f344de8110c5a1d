package conntrack

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
)

// Config sizes a Table. Every limit is fixed at creation.
type Config struct {
	// Size is the number of flows the table holds (each in both
	// directions), 1 to 1<<24.
	Size int
	// MaxEmbryonicPerSource caps the flows a single source address may
	// have in SYN_SENT, SYN_RECV or UNREPLIED at once, so that one flooding
	// client cannot fill the table for everyone. 0 means Size/16 (at least
	// 16); it may not exceed Size.
	MaxEmbryonicPerSource int
	// EvictScan is how many entries a creation that finds the table full
	// examines for an embryonic flow to evict (the oldest it sees). 0
	// means 64; -1 turns early eviction off, so a full table drops every
	// new flow.
	EvictScan int
	// Timeouts per state; zero fields take DefaultTimeouts'.
	Timeouts Timeouts
}

const (
	maxSize   = 1 << 24
	maxSteps  = 64 // chain nodes a lock-free lookup walks before taking the lock
	embSlots  = 4096
	portTries = 256
)

// Outcome is what a Create did.
type Outcome uint8

const (
	// Created: a new flow, described by the Flow.
	Created Outcome = iota
	// Existed: another worker created the flow first (or the lookup missed
	// it during a concurrent change); the Flow describes that one.
	Existed
	// Full: no free entry and none evictable.
	Full
	// EmbryonicLimit: the source already has MaxEmbryonicPerSource
	// embryonic flows.
	EmbryonicLimit
	// Conflict: the reply key is another flow's (the translation would
	// make two flows indistinguishable on the way back).
	Conflict
	// NoPort: CreateSNAT found no free port in the range.
	NoPort
)

var outcomeNames = [...]string{"created", "existed", "table-full", "embryonic-limit", "conflict", "no-port"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "invalid"
}

// Flow is a worker's handle on a flow, filled by Lookup and Create: what
// to do with the packet and how to update the flow after it.
type Flow struct {
	// Target is the key the packet must carry once translated: the
	// reverse of the other direction's key. Equal to the packet's key
	// when the flow is not translated.
	Target Key
	// Mark is the caller's value given at creation (a service or backend
	// number, for instance).
	Mark uint32
	// Dir is DirOriginal or DirReply: which of the flow's keys the packet
	// matched.
	Dir uint8
	// State is the flow's state when it was looked up.
	State State
	idx   uint32
	tag   uint32
}

// entry is one flow. Every field a lock-free reader may load is atomic, so
// that a reader racing with the entry's reuse reads stale values (which
// the sequence check then discards), never torn ones in the race
// detector's eyes. seq is even while the entry is live and odd while it
// is free or being removed; it grows by one at each change, so a reader
// that sees the same even seq before and after its reads read one
// generation of the entry.
type entry struct {
	seq   atomic.Uint32
	state atomic.Uint32 // see wordState; tag = seq>>1 (low 16 bits)
	last  atomic.Uint32 // seconds, the time of the newest packet
	mark  atomic.Uint32
	key   [2][5]atomic.Uint64 // original, reply
	next  [2]atomic.Uint32    // chain links of the two nodes
	// bkt is the bucket each node is linked in: a reader that finds a node
	// of another bucket on its way followed a link of an entry removed and
	// reused meanwhile, and walks again rather than miss.
	bkt [2]atomic.Uint32
	// pkts and bytes are statistics, written and read only through
	// count and counters (plain loads and stores, see there).
	pkts  [2]uint64
	bytes [2]uint64
	// Written and read only by the goroutine that holds the entry out of
	// the table (creator, remover): the embryonic slot of its source and
	// the free-list link.
	slot     atomic.Uint32
	freeNext atomic.Uint32
	created  atomic.Uint32
}

// bucket is one hash chain: a node is entry index<<1 | direction, 0 ends
// the chain. lock serializes writers of this chain; readers take no lock.
type bucket struct {
	head atomic.Uint32
	lock atomic.Uint32
}

// Table is a bounded connection-tracking table shared by every worker;
// see the package documentation for its concurrency design.
type Table struct {
	entries  []entry  // entries[0] is never used: node 0 ends a chain
	buckets  []bucket // power of two, twice the entries
	mask     uint64
	seed     uint64
	embSeed  uint64
	timeouts timeoutTable
	embMax   int32
	scan     int
	emb      [embSlots]atomic.Int32 // embryonic flows per hashed source
	epoch    time.Time

	free atomic.Uint64 // Treiber stack: tag<<32 | entry index
	hand atomic.Uint32 // clock hand of early eviction
	gc   uint32        // the sweep's position; the sweep is single-threaded

	stats struct {
		live, created, existed, expired, evicted, deleted atomic.Int64
		full, embryonic, conflict, noPort, stale          atomic.Int64
	}
}

// New makes a table of cfg.Size flows, all memory allocated up front.
func New(cfg Config) (*Table, error) {
	if cfg.Size < 1 || cfg.Size > maxSize {
		return nil, fmt.Errorf("conntrack size %d: must be 1 to %d", cfg.Size, maxSize)
	}
	if cfg.MaxEmbryonicPerSource < 0 || cfg.MaxEmbryonicPerSource > cfg.Size {
		return nil, fmt.Errorf("conntrack maxEmbryonicPerSource %d: must be 0 to size (%d)", cfg.MaxEmbryonicPerSource, cfg.Size)
	}
	if cfg.EvictScan < -1 || cfg.EvictScan > cfg.Size {
		return nil, fmt.Errorf("conntrack evictScan %d: must be -1 to size (%d)", cfg.EvictScan, cfg.Size)
	}
	t := &Table{
		entries:  make([]entry, cfg.Size+1),
		timeouts: cfg.Timeouts.withDefaults().table(),
		embMax:   int32(cfg.MaxEmbryonicPerSource),
		scan:     cfg.EvictScan,
		epoch:    time.Now(),
	}
	if t.embMax == 0 {
		t.embMax = int32(max(cfg.Size/16, 16))
	}
	if t.scan == 0 {
		t.scan = 64
	}
	nb := 1 << bits.Len(uint(2*cfg.Size-1))
	t.buckets = make([]bucket, nb)
	t.mask = uint64(nb - 1)
	var seed [16]byte
	_, _ = rand.Read(seed[:]) // never fails (crypto/rand panics instead)
	t.seed = binary.LittleEndian.Uint64(seed[:]) | 1
	t.embSeed = binary.LittleEndian.Uint64(seed[8:])
	// Every entry starts free: odd seq, on the free list in index order.
	for i := len(t.entries) - 1; i >= 1; i-- {
		t.entries[i].seq.Store(1)
		t.entries[i].freeNext.Store(uint32(i + 1))
	}
	t.entries[len(t.entries)-1].freeNext.Store(0)
	t.free.Store(1)
	return t, nil
}

// Size is the number of flows the table holds.
func (t *Table) Size() int { return len(t.entries) - 1 }

// Now is the table's clock in seconds, the unit of every now argument.
// A worker reads it once per vector, not per packet.
func (t *Table) Now() uint32 { return uint32(time.Since(t.epoch)/time.Second) + 1 }

// Lookup finds the flow a packet with key k belongs to and fills f. It
// takes no lock unless a writer keeps changing k's chain under it.
func (t *Table) Lookup(k *Key, f *Flow) bool {
	p := pack(k)
	bi := uint32(hash(&p, t.seed) & t.mask)
	b := &t.buckets[bi]
	for range 4 {
		switch t.walk(b, bi, &p, f) {
		case walkHit:
			return true
		case walkMiss:
			return false
		}
	}
	b.acquire()
	n := t.find(b, &p)
	if n != 0 {
		t.fill(n, f)
	}
	b.release()
	return n != 0
}

const (
	walkMiss = iota
	walkHit
	walkRetry
)

// walk is one lock-free pass along b's chain.
func (t *Table) walk(b *bucket, bi uint32, p *packed, f *Flow) int {
	n := b.head.Load()
	for steps := 0; n != 0; steps++ {
		if steps == maxSteps {
			return walkRetry
		}
		e := &t.entries[n>>1]
		s := e.seq.Load()
		if s&1 != 0 {
			return walkRetry
		}
		d := n & 1
		if e.bkt[d].Load() != bi {
			return walkRetry
		}
		k := &e.key[d]
		hit := k[0].Load() == p[0] && k[1].Load() == p[1] && k[2].Load() == p[2] &&
			k[3].Load() == p[3] && k[4].Load() == p[4]
		if hit {
			t.fill(n, f)
			if e.seq.Load() == s {
				return walkHit
			}
			return walkRetry
		}
		next := e.next[d].Load()
		if e.seq.Load() != s {
			return walkRetry
		}
		n = next
	}
	return walkMiss
}

// fill copies node n's flow into f.
func (t *Table) fill(n uint32, f *Flow) {
	e := &t.entries[n>>1]
	d := uint8(n & 1)
	o := &e.key[d^1]
	// Target is the other key reversed, written straight from its words.
	tg := &f.Target
	binary.LittleEndian.PutUint64(tg.Dst[0:], o[0].Load())
	binary.LittleEndian.PutUint64(tg.Dst[8:], o[1].Load())
	binary.LittleEndian.PutUint64(tg.Src[0:], o[2].Load())
	binary.LittleEndian.PutUint64(tg.Src[8:], o[3].Load())
	w4 := o[4].Load()
	tg.DPort, tg.SPort = uint16(w4>>48), uint16(w4>>32)
	tg.Proto, tg.Family = uint8(w4>>8), uint8(w4)
	w := e.state.Load()
	f.State = State(w & wordState)
	f.tag = w >> wordTagShift
	f.Mark = e.mark.Load()
	f.Dir = d
	f.idx = n >> 1
}

// find returns the node in b's chain with key p, or 0. b is locked.
func (t *Table) find(b *bucket, p *packed) uint32 {
	for n := b.head.Load(); n != 0; {
		e := &t.entries[n>>1]
		k := &e.key[n&1]
		if k[0].Load() == p[0] && k[1].Load() == p[1] && k[2].Load() == p[2] &&
			k[3].Load() == p[3] && k[4].Load() == p[4] {
			return n
		}
		n = e.next[n&1].Load()
	}
	return 0
}

// Update accounts a packet of size bytes in f's direction at time now and
// moves the flow's state with the packet's TCP flags (0 for UDP and
// ICMP). It returns false if the flow was removed since f was filled (the
// caller then looks it up again or treats the packet as new). Counters of
// a flow removed in the instant before the check may be lost, and so may
// increments made by two workers at once on one direction of a flow;
// states never are.
func (t *Table) Update(f *Flow, flags uint8, size int, now uint32) bool {
	e := &t.entries[f.idx]
	w := e.state.Load()
	if w>>wordTagShift != f.tag {
		t.stats.stale.Add(1)
		return false
	}
	if e.last.Load() != now {
		e.last.Store(now)
	}
	e.count(f.Dir, size)
	if State(w&wordState) == Established && flags&(FlagSYN|FlagFIN|FlagRST) == 0 {
		return true // most packets: nothing to change
	}
	for {
		nw := transition(w, f.Target.Proto, f.Dir, flags)
		if nw == w {
			return true
		}
		if e.state.CompareAndSwap(w, nw) {
			f.State = State(nw & wordState)
			if w&wordEmbryonic != 0 && nw&wordEmbryonic == 0 {
				t.emb[e.slot.Load()].Add(-1)
			}
			return true
		}
		w = e.state.Load()
		if w>>wordTagShift != f.tag {
			t.stats.stale.Add(1)
			return false
		}
	}
}

// Create adds a flow whose original direction carries orig and whose
// replies carry reply (orig.Reverse() for a flow that is not translated;
// for DNAT to backend B, Key{Src: B, Dst: client, ...}), in state st
// (InitialState), and fills f for the packet that created it (direction
// original). mark is returned in every Flow of it.
func (t *Table) Create(orig, reply *Key, st State, mark, now uint32, f *Flow) Outcome {
	return t.create(orig, reply, st, mark, now, f, 0, 0)
}

// CreateSNAT is Create with a source port (the echo identifier for ICMP)
// chosen from lo..hi for the reply direction: reply.Dst is the node
// address translated to, and reply.DPort (and SPort for ICMP) is set to a
// port no other flow with the same addresses and protocol uses, so that
// the replies of two flows never collide. The original source port is
// kept when it is in the range and free, as Linux does. The allocation is
// the entry itself: the port is free again when the flow is removed.
func (t *Table) CreateSNAT(orig, reply *Key, lo, hi uint16, st State, mark, now uint32, f *Flow) Outcome {
	if lo == 0 || hi < lo {
		t.stats.noPort.Add(1)
		return NoPort
	}
	return t.create(orig, reply, st, mark, now, f, lo, hi)
}

func (t *Table) create(orig, reply *Key, st State, mark, now uint32, f *Flow, lo, hi uint16) Outcome {
	po := pack(orig)
	boi := uint32(hash(&po, t.seed) & t.mask)
	bo := &t.buckets[boi]
	emb := embryonic(st)
	var slot uint32
	if emb {
		src := packed{po[0], po[1], 0, 0, uint64(orig.Family)}
		slot = uint32(hash(&src, t.embSeed) % embSlots)
		if t.emb[slot].Add(1) > t.embMax {
			t.emb[slot].Add(-1)
			t.stats.embryonic.Add(1)
			return EmbryonicLimit
		}
	}
	idx := t.pop()
	if idx == 0 {
		idx = t.evict()
		if idx == 0 {
			if emb {
				t.emb[slot].Add(-1)
			}
			t.stats.full.Add(1)
			return Full
		}
	}
	e := &t.entries[idx]
	s := e.seq.Load() // odd: free
	for i := range po {
		e.key[0][i].Store(po[i])
	}
	w := uint32(st) | ((s+1)>>1)<<wordTagShift
	if emb {
		w |= wordEmbryonic
	}
	e.state.Store(w)
	e.last.Store(now)
	e.created.Store(now)
	e.mark.Store(mark)
	e.slot.Store(slot)
	e.resetCounters()
	r := *reply
	span := uint32(hi) - uint32(lo) + 1
	tries := 1
	var start uint32
	if lo != 0 {
		tries = int(min(span, portTries))
		start = uint32(hash(&po, t.embSeed)) % span
		if orig.SPort >= lo && orig.SPort <= hi {
			start = uint32(orig.SPort - lo)
		}
	}
	out := Conflict
	for i := range tries {
		if lo != 0 {
			port := lo + uint16((start+uint32(i))%span)
			r.DPort = port
			if r.Proto == ProtoICMP || r.Proto == ProtoICMPv6 {
				r.SPort = port
			}
		}
		pr := pack(&r)
		bri := uint32(hash(&pr, t.seed) & t.mask)
		br := &t.buckets[bri]
		lock2(bo, br)
		if n := t.find(bo, &po); n != 0 {
			t.fill(n, f)
			unlock2(bo, br)
			out = Existed
			break
		}
		if t.find(br, &pr) != 0 {
			unlock2(bo, br)
			continue
		}
		for j := range pr {
			e.key[1][j].Store(pr[j])
		}
		e.bkt[0].Store(boi)
		e.bkt[1].Store(bri)
		e.seq.Store(s + 1) // live, before any reader can reach it
		e.next[0].Store(bo.head.Load())
		bo.head.Store(idx << 1)
		e.next[1].Store(br.head.Load())
		br.head.Store(idx<<1 | 1)
		unlock2(bo, br)
		t.stats.live.Add(1)
		t.stats.created.Add(1)
		f.Target = r.Reverse()
		f.Mark, f.Dir, f.State, f.idx, f.tag = mark, DirOriginal, st, idx, w>>wordTagShift
		return Created
	}
	// Not linked: back to the free list as it was.
	e.state.Store(0)
	t.push(idx)
	if emb {
		t.emb[slot].Add(-1)
	}
	switch {
	case out == Existed:
		t.stats.existed.Add(1)
	case lo != 0:
		out = NoPort
		t.stats.noPort.Add(1)
	default:
		t.stats.conflict.Add(1)
	}
	return out
}

func (t *Table) pop() uint32 {
	for {
		h := t.free.Load()
		idx := uint32(h)
		if idx == 0 {
			return 0
		}
		next := t.entries[idx].freeNext.Load()
		if t.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(next)) {
			return idx
		}
	}
}

func (t *Table) push(idx uint32) {
	for {
		h := t.free.Load()
		t.entries[idx].freeNext.Store(uint32(h))
		if t.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(idx)) {
			return
		}
	}
}

// evict removes the embryonic flow that has waited longest among the next
// t.scan entries of the clock hand and returns a free entry, or 0.
func (t *Table) evict() uint32 {
	if t.scan < 0 {
		return 0
	}
	n := uint32(len(t.entries) - 1)
	var best, bestSeq, bestLast uint32
	for range t.scan {
		i := t.hand.Add(1)%n + 1
		e := &t.entries[i]
		s := e.seq.Load()
		if s&1 != 0 || e.state.Load()&wordEmbryonic == 0 {
			continue
		}
		if l := e.last.Load(); best == 0 || int32(l-bestLast) < 0 {
			best, bestSeq, bestLast = i, s, l
		}
	}
	if best == 0 || !t.remove(best, bestSeq, removeEmbryonic, 0) {
		return 0
	}
	t.stats.evicted.Add(1)
	return t.pop()
}

const (
	removeAny = iota
	removeEmbryonic
	removeExpired
)

// remove takes entry idx, of generation seq, out of the table if it still
// is that generation and, by mode, still embryonic or expired at now.
func (t *Table) remove(idx, seq uint32, mode int, now uint32) bool {
	e := &t.entries[idx]
	var p [2]packed
	for d := range 2 {
		for i := range p[d] {
			p[d][i] = e.key[d][i].Load()
		}
	}
	b0 := &t.buckets[hash(&p[0], t.seed)&t.mask]
	b1 := &t.buckets[hash(&p[1], t.seed)&t.mask]
	lock2(b0, b1)
	if e.seq.Load() != seq {
		unlock2(b0, b1)
		return false
	}
	w := e.state.Load()
	switch mode {
	case removeEmbryonic:
		if w&wordEmbryonic == 0 {
			unlock2(b0, b1)
			return false
		}
	case removeExpired:
		if !t.expired(e, w, now) {
			unlock2(b0, b1)
			return false
		}
	}
	e.seq.Store(seq + 1) // readers on it restart
	t.unlink(b0, idx<<1)
	t.unlink(b1, idx<<1|1)
	unlock2(b0, b1)
	// The swap makes a concurrent Update's CAS fail, so the embryonic
	// count is given back once, here or there.
	if e.state.Swap(0)&wordEmbryonic != 0 {
		t.emb[e.slot.Load()].Add(-1)
	}
	t.stats.live.Add(-1)
	t.push(idx)
	return true
}

func (t *Table) expired(e *entry, w uint32, now uint32) bool {
	k4 := e.key[0][4].Load()
	to := t.timeouts[protoClass(uint8(k4>>8))][w&wordState]
	return int64(int32(now-e.last.Load())) >= int64(to)
}

// unlink removes node n from b's chain; b is locked. n's own link stays,
// so that a reader standing on it can go on (and will find seq changed).
func (t *Table) unlink(b *bucket, n uint32) {
	p := &b.head
	for c := p.Load(); c != 0; c = p.Load() {
		e := &t.entries[c>>1]
		if c == n {
			p.Store(e.next[c&1].Load())
			return
		}
		p = &e.next[c&1]
	}
}

func (b *bucket) acquire() {
	for i := 0; !b.lock.CompareAndSwap(0, 1); i++ {
		if i > 32 {
			runtime.Gosched()
		}
	}
}

func (b *bucket) release() { b.lock.Store(0) }

// lock2 locks two buckets in address order (once if they are the same),
// so that two writers never wait for each other in a cycle.
func lock2(a, b *bucket) {
	switch {
	case a == b:
		a.acquire()
	case uintptrOf(a) < uintptrOf(b):
		a.acquire()
		b.acquire()
	default:
		b.acquire()
		a.acquire()
	}
}

func unlock2(a, b *bucket) {
	a.release()
	if a != b {
		b.release()
	}
}

// count adds a packet to direction d's statistics. Plain loads and
// stores, without the race detector's instrumentation: an atomic store
// is a locked exchange on amd64, and two of them per packet cost more
// than the lookup. Aligned 64-bit words are never torn on the 64-bit
// machines xvs runs on; what can happen is that two workers carrying
// the same direction of one flow at the same instant lose an increment,
// or that a worker holding a stale Flow counts one packet into the
// entry's next flow. Statistics tolerate both; nothing decides on them.
//
//go:norace
func (e *entry) count(d uint8, size int) {
	e.pkts[d&1]++
	e.bytes[d&1] += uint64(size)
}

// counters reads the statistics; see count.
//
//go:norace
func (e *entry) counters() (pkts, bytes [2]uint64) { return e.pkts, e.bytes }

// resetCounters zeroes the statistics of an entry being created; see count.
//
//go:norace
func (e *entry) resetCounters() { e.pkts, e.bytes = [2]uint64{}, [2]uint64{} }
