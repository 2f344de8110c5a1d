package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrNotFound is returned when deleting a route that is not there.
var ErrNotFound = errors.New("route not found")

// ErrBadNextHop is returned for next hops that cannot be installed.
var ErrBadNextHop = errors.New("invalid next hop")

// Route is one prefix in one table with its next hop.
type Route struct {
	Table   uint32
	Prefix  netip.Prefix
	NextHop NextHop
	Origin  Origin
}

// RouteKey names a route for deletion.
type RouteKey struct {
	Table  uint32
	Prefix netip.Prefix
}

// FIB is the dual-stack forwarding table set. Writers (the control plane) call
// its methods from any goroutine; they are serialized internally. Readers (the
// workers) call View once per vector and look up in the returned immutable
// view without locks.
type FIB struct {
	view    atomic.Pointer[View]
	changed chan struct{} // signalled after each publish, see Changed

	mu      sync.Mutex      // guards everything below
	subs    []chan struct{} // Subscribe's channels, signalled as changed is
	trie    *trie
	tables  map[uint32]*table
	nhs     []nhEntry // index 0 is the reserved NoRoute entry
	nhIndex map[nhKey]Index
	free    []Index            // released next-hop slots
	nhCache [nhCacheSize]Index // recent entries by nhHash, checked with sameIdentity
	nhDirty bool               // nhs changed since the last publish
	tok     *epoch             // the published view's epoch
	updates uint64             // route changes applied
	pubs    uint64             // views published
	rate    [rateSlots]rateSlot

	// pending counts arena words in blocks retired but not yet reclaimed,
	// pendingBlocks the blocks.
	pending       int
	pendingBlocks int
	throttled     int // pending after the last throttle

	reclaimMu sync.Mutex // guards reclaimed
	reclaimed []uint64   // arena blocks whose grace period ended (size<<32 | offset), for trie.reuse
	gcRunning atomic.Bool
}

// table is one VRF: a trie root per family.
type table struct {
	root  [2]uint32 // node numbers, [0] IPv4, [1] IPv6
	count [2]int
}

type nhEntry struct {
	nh   NextHop
	refs int
	sel  *[256]Index // ECMP bucket map
}

// epoch marks one published view. Each epoch points at the next one, so an
// epoch stays reachable while any view up to its own is held; when the GC
// frees it, no reader can reach the arena slots its successor retired.
type epoch struct{ next *epoch }

// New returns an empty FIB with table 0.
func New() *FIB {
	f := &FIB{
		trie:    newTrie(),
		tables:  make(map[uint32]*table),
		nhs:     []nhEntry{{nh: NextHop{Kind: KindDrop}, refs: 1}},
		nhIndex: make(map[nhKey]Index),
		nhDirty: true,
		changed: make(chan struct{}, 1),
	}
	f.tableLocked(0)
	f.publishLocked()
	return f
}

// View returns the current immutable view. Callers hold it for a vector and
// then drop it; it stays valid (and unchanged) however long they keep it.
// Holding views for long delays the reuse of trie memory.
func (f *FIB) View() *View { return f.view.Load() }

// Add installs or replaces one route.
func (f *FIB) Add(r Route) error { return f.Apply([]Route{r}, nil) }

// Delete removes one route.
func (f *FIB) Delete(table uint32, p netip.Prefix) error {
	return f.Apply(nil, []RouteKey{{Table: table, Prefix: p}})
}

// Apply installs adds and removes dels as one update: readers see all of it
// or none of it. Deletes are applied first. On error nothing is applied.
// Only the trie nodes on the paths of the changed prefixes are copied, so a
// batch costs in proportion to its size, not to the table's.
func (f *FIB) Apply(adds []Route, dels []RouteKey) error {
	for i := range adds {
		if err := checkRoute(&adds[i]); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ws [warmWindow]warmItem
	for w := 0; w < len(dels); w += warmWindow {
		dw := dels[w:min(len(dels), w+warmWindow)]
		f.warmDels(dw, &ws)
		for _, d := range dw {
			t := f.tables[d.Table]
			k, v6 := keyOf(d.Prefix)
			if !d.Prefix.IsValid() || t == nil {
				return fmt.Errorf("delete %s table %d: %w", d.Prefix, d.Table, ErrNotFound)
			}
			if _, _, ok := f.trie.get(t.root[fam(v6)], k); !ok {
				return fmt.Errorf("delete %s table %d: %w", k.prefix(v6), d.Table, ErrNotFound)
			}
		}
	}
	var idxBuf [8]Index
	idxs := idxBuf[:0]
	for i := range adds {
		if i > 0 && sameIdentity(&adds[i].NextHop, &adds[i-1].NextHop) {
			// A BGP UPDATE's prefixes share one next hop: skip the map.
			idx := idxs[i-1]
			f.nhs[idx].refs++
			idxs = append(idxs, idx)
			continue
		}
		nh := adds[i].NextHop
		if nh.Kind == KindPort {
			nh.Resolved = true
		}
		idx, err := f.internLocked(&nh)
		if err != nil {
			for _, x := range idxs {
				f.unrefLocked(x)
			}
			return err
		}
		idxs = append(idxs, idx)
	}
	f.drainReclaimed()
	f.throttle()
	for w := 0; w < len(dels); w += warmWindow {
		dw := dels[w:min(len(dels), w+warmWindow)]
		if len(dels) > warmWindow {
			f.warmDels(dw, &ws) // the validation's walk is out of cache
		}
		for _, d := range dw {
			t := f.tables[d.Table]
			k, v6 := keyOf(d.Prefix)
			if old, ok := f.trie.remove(t.root[fam(v6)], k); ok { // !ok only for a repeated key
				t.count[fam(v6)]--
				f.unrefLocked(Index(old & nhMask))
			}
		}
	}
	for w := 0; w < len(adds); w += warmWindow {
		aw := adds[w:min(len(adds), w+warmWindow)]
		for i := range aw {
			k, v6 := keyOf(aw[i].Prefix)
			ws[i] = warmItem{k: k}
			if t := f.tables[aw[i].Table]; t != nil {
				ws[i].id = t.root[fam(v6)]
			}
		}
		f.trie.warm(ws[:len(aw)])
		for i := range aw {
			r := &aw[i]
			t := f.tableLocked(r.Table)
			k, v6 := ws[i].k, r.Prefix.Addr().Is6()
			root := t.root[fam(v6)]
			hint := ws[i].id
			if hint == 0 { // a new table
				hint = root
			}
			old, existed := f.trie.insertFrom(root, hint, k, idxs[w+i], r.Origin)
			if existed {
				f.unrefLocked(Index(old & nhMask))
			} else {
				t.count[fam(v6)]++
			}
		}
	}
	f.countUpdates(len(adds) + len(dels))
	f.publishLocked()
	return nil
}

// warmDels warms the trie for a window of deletes (see trie.warm).
func (f *FIB) warmDels(dels []RouteKey, ws *[warmWindow]warmItem) {
	for i, d := range dels {
		ws[i] = warmItem{}
		if t := f.tables[d.Table]; t != nil && d.Prefix.IsValid() {
			k, v6 := keyOf(d.Prefix)
			ws[i] = warmItem{k: k, id: t.root[fam(v6)]}
		}
	}
	f.trie.warm(ws[:len(dels)])
}

func fam(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

func checkRoute(r *Route) error {
	if !r.Prefix.IsValid() {
		return fmt.Errorf("prefix %v: %w", r.Prefix, ErrBadNextHop)
	}
	nh := &r.NextHop
	if nh.Kind > KindECMP {
		return fmt.Errorf("next hop kind %d: %w", nh.Kind, ErrBadNextHop)
	}
	if nh.Kind == KindECMP && len(nh.Group) == 0 {
		return fmt.Errorf("empty ecmp group: %w", ErrBadNextHop)
	}
	return nil
}

func (f *FIB) tableLocked(id uint32) *table {
	t := f.tables[id]
	if t == nil {
		r4, _ := f.trie.newNode(0, 0)
		r6, n6 := f.trie.newNode(0, 0)
		n6.state |= inV6
		t = &table{root: [2]uint32{r4, r6}}
		f.tables[id] = t
	}
	return t
}

// drainReclaimed hands the trie the slots whose grace period has ended.
func (f *FIB) drainReclaimed() {
	f.reclaimMu.Lock()
	f.trie.reuse(f.reclaimed)
	for _, b := range f.reclaimed {
		f.pending -= int(b >> 32)
	}
	f.pendingBlocks -= len(f.reclaimed)
	f.reclaimed = f.reclaimed[:0]
	f.reclaimMu.Unlock()
}

// throttle bounds the arena: when the background GCs fall behind (a large
// heap, a starved CPU) and as many slots wait as are live, the writer, not
// the readers, waits for a GC and its cleanups instead of growing the arena.
func (f *FIB) throttle() {
	limit := max(2*f.trie.live, minThrottle)
	// A held view can keep every block pinned; then another try waits for
	// more retirements rather than stalling every Apply.
	if f.pending < limit || f.trie.freeN > f.trie.live/8 || f.pending < f.throttled+limit/4 {
		return
	}
	runtime.GC()
	for range 100 {
		f.reclaimMu.Lock()
		n := len(f.reclaimed)
		f.reclaimMu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(100 * time.Microsecond) // cleanups run on their own goroutine
	}
	f.drainReclaimed()
	f.throttled = f.pending
}

// maybeCollect starts a GC in the background once many retired slots wait
// for one. The GC's own pacing is no help here: the arena is most of the
// heap, so the heap-size trigger would let the arena double between
// cycles, again and again, under sustained churn.
func (f *FIB) maybeCollect() {
	if f.pending < max(f.trie.live/2, minCollect) || !f.gcRunning.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer f.gcRunning.Store(false)
		runtime.GC()
	}()
}

// reclaim runs once the GC has proved that no view older than the one that
// retired ids is reachable.
func (f *FIB) reclaim(ids []uint64) {
	f.reclaimMu.Lock()
	f.reclaimed = append(f.reclaimed, ids...)
	f.reclaimMu.Unlock()
}

// Acquire interns nh and holds a reference on it without a route, for
// instance to name it as a member of an ECMP group. Release drops it.
func (f *FIB) Acquire(nh NextHop) (Index, error) {
	r := Route{Prefix: netip.PrefixFrom(netip.IPv4Unspecified(), 0), NextHop: nh}
	if err := checkRoute(&r); err != nil {
		return NoRoute, err
	}
	if nh.Kind == KindPort {
		nh.Resolved = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, err := f.internLocked(&nh)
	if err != nil {
		return NoRoute, err
	}
	if f.nhDirty {
		f.publishLocked()
	}
	return idx, nil
}

// Release drops a reference taken with Acquire.
func (f *FIB) Release(idx Index) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx == NoRoute || int(idx) >= len(f.nhs) || f.nhs[idx].refs == 0 {
		return fmt.Errorf("release next hop %d: %w", idx, ErrNotFound)
	}
	f.unrefLocked(idx)
	if f.nhDirty {
		f.publishLocked()
	}
	return nil
}

// Rewrite is the L2 rewrite of a next hop through a neighbour.
type Rewrite struct {
	DstMAC, SrcMAC [6]byte // the neighbour's, the port's
	Resolved       bool    // DstMAC is known
}

// SetRewrite updates the L2 rewrite of every next hop on port whose Via is
// via (a neighbour was resolved or changed). It reports how many changed.
// It republishes only the next-hop table.
func (f *FIB) SetRewrite(port uint16, via netip.Addr, rw Rewrite) int {
	dst, src, resolved := rw.DstMAC, rw.SrcMAC, rw.Resolved
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, ok := f.nhIndex[nhKey{kind: KindAdjacency, port: port, via: via}]
	if !ok {
		return 0
	}
	nh := &f.nhs[idx].nh
	if nh.DstMAC != dst || nh.SrcMAC != src || nh.Resolved != resolved {
		nh.DstMAC, nh.SrcMAC, nh.Resolved = dst, src, resolved
		f.nhDirty = true
		f.publishLocked()
	}
	return 1
}

// routesBatch is how many routes Routes gathers per lock hold.
var routesBatch = 1024

// Routes calls fn for every route of table, IPv4 then IPv6, each in
// (address, length) order, until fn returns false. fn runs without the
// FIB's lock held, so it may call the FIB; routes changed meanwhile may or
// may not be seen.
func (f *FIB) Routes(table uint32, fn func(Route) bool) {
	buf := make([]Route, 0, routesBatch)
	var after key
	resume := false
	fm := 0
	for fm < 2 {
		buf = buf[:0]
		f.mu.Lock()
		t := f.tables[table]
		if t == nil {
			f.mu.Unlock()
			return
		}
		for fm < 2 && len(buf) < cap(buf) {
			var from *key
			if resume {
				from = &after
			}
			done := f.trie.walk(t.root[fm], [16]byte{}, from, func(k key, v uint32, o Origin) bool {
				buf = append(buf, f.routeLocked(table, k, fm == 1, v, o))
				after = k
				return len(buf) < cap(buf)
			})
			resume = !done
			if done {
				fm++
			}
		}
		f.mu.Unlock()
		for _, r := range buf {
			if !fn(r) {
				return
			}
		}
	}
}

func (f *FIB) routeLocked(table uint32, k key, v6 bool, v uint32, o Origin) Route {
	nh := f.nhs[v&nhMask].nh
	nh.Group = append([]Index(nil), nh.Group...)
	return Route{Table: table, Prefix: k.prefix(v6), NextHop: nh, Origin: o}
}

// Get returns the route for exactly this prefix.
func (f *FIB) Get(table uint32, p netip.Prefix) (Route, bool) {
	if !p.IsValid() {
		return Route{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if t == nil {
		return Route{}, false
	}
	k, v6 := keyOf(p)
	v, o, ok := f.trie.get(t.root[fam(v6)], k)
	if !ok {
		return Route{}, false
	}
	return f.routeLocked(table, k, v6, v, o), true
}

// Lookup returns the route with the longest prefix covering a in table, with
// its origin, for the control plane and the CLI (`show routes PREFIX`).
func (f *FIB) Lookup(table uint32, a netip.Addr) (Route, bool) {
	if !a.IsValid() {
		return Route{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if t == nil {
		return Route{}, false
	}
	var b [16]byte
	v6, maxBits := true, 128
	if a.Is4() {
		v6, maxBits = false, 32
		a4 := a.As4()
		copy(b[:], a4[:])
	} else {
		b = a.As16()
	}
	k, v, o, ok := f.trie.longest(t.root[fam(v6)], b, maxBits)
	if !ok {
		return Route{}, false
	}
	return f.routeLocked(table, k, v6, v, o), true
}

// Count returns the number of IPv4 and IPv6 routes in table.
func (f *FIB) Count(table uint32) (v4, v6 int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tables[table]; t != nil {
		return t.count[0], t.count[1]
	}
	return 0, 0
}

// Tables returns the IDs of the tables that exist, in no particular order.
func (f *FIB) Tables() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]uint32, 0, len(f.tables))
	for id := range f.tables {
		ids = append(ids, id)
	}
	return ids
}

// Stats summarizes the FIB for `show fib summary` and metrics.
type Stats struct {
	Tables   int
	Routes4  int // IPv4 routes, all tables
	Routes6  int // IPv6 routes, all tables
	NextHops int // live next-hop entries, NoRoute included
	Nodes    int // trie nodes in use, both families
	// Retired is how many replaced trie nodes wait for their grace period.
	Retired int

	// MemoryBytes estimates what the FIB holds: the trie arena (reserved
	// chunks), the writer's per-node records and the next-hop table.
	MemoryBytes int64

	Updates    uint64  // route changes applied since New
	Publishes  uint64  // views published since New
	UpdateRate float64 // route changes per second over the last 10 s
}

// Stats returns current counters.
func (f *FIB) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Stats{Tables: len(f.tables), Nodes: f.trie.nodes, Retired: f.pendingBlocks, Updates: f.updates, Publishes: f.pubs}
	for _, t := range f.tables {
		s.Routes4 += t.count[0]
		s.Routes6 += t.count[1]
	}
	s.NextHops = len(f.nhs) - len(f.free)
	s.MemoryBytes = int64(len(f.trie.chunks))*chunkWords*4 + int64(unsafe.Sizeof(chunkDir{})) +
		int64(len(f.trie.wn))*nodesPerChunk*int64(unsafe.Sizeof(wnode{})) +
		int64(f.trie.itemWords)*4 + int64(len(f.nhs))*(2*int64(unsafeSizeofNextHop)+8)
	now := time.Now().Unix()
	var n uint64
	for _, r := range f.rate {
		if r.sec > now-rateSlots {
			n += r.n
		}
	}
	s.UpdateRate = float64(n) / rateSlots
	return s
}

const rateSlots = 10

// Retired words that start a background GC (minCollect, or half the live
// words) and that make Apply wait for one (minThrottle, or twice the live
// words, with few free words left).
const (
	minCollect  = 1 << 22 // 16 MiB
	minThrottle = 1 << 24 // 64 MiB
)

type rateSlot struct {
	sec int64
	n   uint64
}

func (f *FIB) countUpdates(n int) {
	f.updates += uint64(n)
	now := time.Now().Unix()
	r := &f.rate[now%rateSlots]
	if r.sec != now {
		*r = rateSlot{sec: now}
	}
	r.n += uint64(n)
}

// publishLocked makes the writer's state the current view. Arena slots
// retired while building it wait until the GC has freed the previous epoch,
// which proves every view that could reach them is gone.
func (f *FIB) publishLocked() {
	prev := f.view.Load()
	f.trie.encodeDirty()
	v := &View{dir: f.trie.dir}
	for id, t := range f.tables {
		r := tableRoots{root4: f.trie.node(t.root[0]).blk, root6: f.trie.node(t.root[1]).blk}
		if id < denseTables {
			if int(id) >= len(v.dense) {
				v.dense = append(v.dense, make([]tableRoots, int(id)+1-len(v.dense))...)
			}
			v.dense[id] = r
			continue
		}
		if v.sparse == nil {
			v.sparse = make(map[uint32]tableRoots)
		}
		v.sparse[id] = r
	}
	if f.nhDirty || prev == nil {
		v.nhs = make([]NextHop, len(f.nhs))
		v.sel = make([]*[256]Index, len(f.nhs))
		for i := range f.nhs {
			v.nhs[i] = f.nhs[i].nh
			v.sel[i] = f.nhs[i].sel
		}
		f.nhDirty = false
	} else {
		v.nhs, v.sel = prev.nhs, prev.sel
	}
	tok := &epoch{}
	v.tok = tok
	if f.tok != nil {
		f.tok.next = tok
		if len(f.trie.retired) > 0 {
			runtime.AddCleanup(f.tok, f.reclaim, f.trie.retired)
			for _, b := range f.trie.retired {
				f.pending += int(b >> 32)
			}
			f.pendingBlocks += len(f.trie.retired)
			f.trie.retired = nil
		}
	}
	f.tok = tok
	f.pubs++
	f.view.Store(v)
	select {
	case f.changed <- struct{}{}:
	default:
	}
	for _, c := range f.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	f.maybeCollect()
}

// Changed is signalled after a new view is published (routes or next hops
// changed), at most once while nobody receives: a receiver that then
// takes View sees that change and every one before it. It is for one
// receiver, which keeps something derived from the FIB in step with it.
func (f *FIB) Changed() <-chan struct{} { return f.changed }

// Subscribe returns a channel signalled as Changed is, for one more
// receiver: every reader that keeps something in step with the FIB takes
// one of its own. cancel stops the signals (the channel stays open).
func (f *FIB) Subscribe() (c <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, x := range f.subs {
			if x == ch {
				f.subs = append(f.subs[:i], f.subs[i+1:]...)
				return
			}
		}
	}
}
