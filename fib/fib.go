package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
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
	view atomic.Pointer[View]

	mu sync.Mutex // guards everything below
	// routes holds every installed route by key.
	routes map[RouteKey]*routeEntry
	nhs    []nhEntry // index 0 is the reserved NoRoute entry
	free   []Index   // released next-hop slots
}

type routeEntry struct {
	origin Origin
	nh     Index
}

type nhEntry struct {
	nh   NextHop
	refs int
}

// New returns an empty FIB with table 0.
func New() *FIB {
	f := &FIB{routes: make(map[RouteKey]*routeEntry), nhs: []nhEntry{{nh: NextHop{Kind: KindDrop}, refs: 1}}}
	f.publishLocked()
	return f
}

// View returns the current immutable view. Callers hold it for a vector and
// then drop it; it stays valid (and unchanged) however long they keep it.
func (f *FIB) View() *View { return f.view.Load() }

// Add installs or replaces one route.
func (f *FIB) Add(r Route) error { return f.Apply([]Route{r}, nil) }

// Delete removes one route.
func (f *FIB) Delete(table uint32, p netip.Prefix) error {
	return f.Apply(nil, []RouteKey{{Table: table, Prefix: p}})
}

// Apply installs adds and removes dels as one update: readers see all of it
// or none of it. Deletes are applied first. On error nothing is applied.
func (f *FIB) Apply(adds []Route, dels []RouteKey) error {
	for i := range adds {
		if err := checkRoute(&adds[i]); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range dels {
		k.Prefix = k.Prefix.Masked()
		if _, ok := f.routes[k]; !ok {
			return fmt.Errorf("delete %s table %d: %w", k.Prefix, k.Table, ErrNotFound)
		}
	}
	for _, k := range dels {
		k.Prefix = k.Prefix.Masked()
		e := f.routes[k]
		delete(f.routes, k)
		f.unrefLocked(e.nh)
	}
	for _, r := range adds {
		k := RouteKey{Table: r.Table, Prefix: r.Prefix.Masked()}
		idx := f.internLocked(&r.NextHop)
		if old, ok := f.routes[k]; ok {
			f.unrefLocked(old.nh)
		}
		f.routes[k] = &routeEntry{origin: r.Origin, nh: idx}
	}
	f.publishLocked()
	return nil
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
	if nh.Kind == KindPort {
		nh.Resolved = true
	}
	return nil
}

func (f *FIB) internLocked(nh *NextHop) Index {
	for i := 1; i < len(f.nhs); i++ {
		if f.nhs[i].refs > 0 && sameIdentity(&f.nhs[i].nh, nh) {
			f.nhs[i].refs++
			return Index(i)
		}
	}
	cp := *nh
	cp.Group = append([]Index(nil), nh.Group...)
	if n := len(f.free); n > 0 {
		idx := f.free[n-1]
		f.free = f.free[:n-1]
		f.nhs[idx] = nhEntry{nh: cp, refs: 1}
		return idx
	}
	f.nhs = append(f.nhs, nhEntry{nh: cp, refs: 1})
	return Index(len(f.nhs) - 1)
}

func (f *FIB) unrefLocked(idx Index) {
	e := &f.nhs[idx]
	e.refs--
	if e.refs == 0 {
		e.nh = NextHop{}
		f.free = append(f.free, idx)
	}
}

// SetRewrite updates the L2 rewrite of every next hop on port whose Via is
// via (a neighbour was resolved or changed). It reports how many changed.
func (f *FIB) SetRewrite(port uint16, via netip.Addr, dst, src [6]byte, resolved bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for i := 1; i < len(f.nhs); i++ {
		nh := &f.nhs[i].nh
		if f.nhs[i].refs > 0 && nh.Kind == KindAdjacency && nh.Port == port && nh.Via == via {
			nh.DstMAC, nh.SrcMAC, nh.Resolved = dst, src, resolved
			n++
		}
	}
	if n > 0 {
		f.publishLocked()
	}
	return n
}

// Routes calls fn for every route of table in no particular order until fn
// returns false.
func (f *FIB) Routes(table uint32, fn func(Route) bool) {
	f.mu.Lock()
	rs := make([]Route, 0, len(f.routes))
	for k, e := range f.routes {
		if k.Table == table {
			rs = append(rs, Route{Table: k.Table, Prefix: k.Prefix, NextHop: f.nhs[e.nh].nh, Origin: e.origin})
		}
	}
	f.mu.Unlock()
	for _, r := range rs {
		if !fn(r) {
			return
		}
	}
}

// Get returns the route for exactly this prefix.
func (f *FIB) Get(table uint32, p netip.Prefix) (Route, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := RouteKey{Table: table, Prefix: p.Masked()}
	e, ok := f.routes[k]
	if !ok {
		return Route{}, false
	}
	return Route{Table: table, Prefix: k.Prefix, NextHop: f.nhs[e.nh].nh, Origin: e.origin}, true
}

// Count returns the number of IPv4 and IPv6 routes in table.
func (f *FIB) Count(table uint32) (v4, v6 int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.routes {
		if k.Table != table {
			continue
		}
		if k.Prefix.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	return v4, v6
}

func (f *FIB) publishLocked() {
	v := &View{tables: make(map[uint32]*tableView), nhs: make([]NextHop, len(f.nhs))}
	for i := range f.nhs {
		v.nhs[i] = f.nhs[i].nh
	}
	for k, e := range f.routes {
		t := v.tables[k.Table]
		if t == nil {
			t = &tableView{}
			v.tables[k.Table] = t
		}
		t.add(k.Prefix, e.nh)
	}
	f.view.Store(v)
}

// View is an immutable snapshot of every table and the next-hop table.
type View struct {
	tables map[uint32]*tableView
	nhs    []NextHop
}

// NextHop returns the next hop for idx. The pointer is into the immutable
// view: do not modify it.
func (v *View) NextHop(idx Index) *NextHop { return &v.nhs[idx] }

// Lookup4 returns the next hop of the longest prefix covering a.
func (v *View) Lookup4(table uint32, a [4]byte) Index {
	t := v.tables[table]
	if t == nil {
		return NoRoute
	}
	return t.lookup4(a)
}

// Lookup6 returns the next hop of the longest prefix covering a.
func (v *View) Lookup6(table uint32, a [16]byte) Index {
	t := v.tables[table]
	if t == nil {
		return NoRoute
	}
	return t.lookup6(a)
}

// LookupBatch4 looks up addrs[i] into out[i]; out must be at least as long.
func (v *View) LookupBatch4(table uint32, addrs [][4]byte, out []Index) {
	for i := range addrs {
		out[i] = v.Lookup4(table, addrs[i])
	}
}

// LookupBatch6 looks up addrs[i] into out[i]; out must be at least as long.
func (v *View) LookupBatch6(table uint32, addrs [][16]byte, out []Index) {
	for i := range addrs {
		out[i] = v.Lookup6(table, addrs[i])
	}
}

// LookupPrefix returns the longest prefix covering a and its next hop, for
// the control plane and the CLI.
func (v *View) LookupPrefix(table uint32, a netip.Addr) (netip.Prefix, Index, bool) {
	t := v.tables[table]
	if t == nil {
		return netip.Prefix{}, NoRoute, false
	}
	return t.lookupPrefix(a)
}

// tableView is the first, simple LPM: one map per prefix length, probed from
// the longest length present. Correct, allocation-free on lookup, slow.
type tableView struct {
	v4len []int // lengths present, longest first
	v6len []int
	v4    [33]map[[4]byte]Index
	v6    [129]map[[16]byte]Index
}

func (t *tableView) add(p netip.Prefix, idx Index) {
	bits := p.Bits()
	if p.Addr().Is4() {
		if t.v4[bits] == nil {
			t.v4[bits] = make(map[[4]byte]Index)
			t.v4len = insertDesc(t.v4len, bits)
		}
		t.v4[bits][p.Addr().As4()] = idx
		return
	}
	if t.v6[bits] == nil {
		t.v6[bits] = make(map[[16]byte]Index)
		t.v6len = insertDesc(t.v6len, bits)
	}
	t.v6[bits][p.Addr().As16()] = idx
}

func insertDesc(s []int, v int) []int {
	i := 0
	for i < len(s) && s[i] > v {
		i++
	}
	s = append(s, 0)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func mask4(a [4]byte, bits int) [4]byte {
	u := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	if bits == 0 {
		u = 0
	} else {
		u &= ^uint32(0) << (32 - bits)
	}
	return [4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}
}

func mask6(a [16]byte, bits int) [16]byte {
	for i := range a {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			a[i] &= ^byte(0) << (8 - bits)
			bits = 0
		default:
			a[i] = 0
		}
	}
	return a
}

func (t *tableView) lookup4(a [4]byte) Index {
	for _, l := range t.v4len {
		if idx, ok := t.v4[l][mask4(a, l)]; ok {
			return idx
		}
	}
	return NoRoute
}

func (t *tableView) lookup6(a [16]byte) Index {
	for _, l := range t.v6len {
		if idx, ok := t.v6[l][mask6(a, l)]; ok {
			return idx
		}
	}
	return NoRoute
}

func (t *tableView) lookupPrefix(a netip.Addr) (netip.Prefix, Index, bool) {
	if a.Is4() {
		for _, l := range t.v4len {
			m := mask4(a.As4(), l)
			if idx, ok := t.v4[l][m]; ok {
				return netip.PrefixFrom(netip.AddrFrom4(m), l), idx, true
			}
		}
		return netip.Prefix{}, NoRoute, false
	}
	for _, l := range t.v6len {
		m := mask6(a.As16(), l)
		if idx, ok := t.v6[l][m]; ok {
			return netip.PrefixFrom(netip.AddrFrom16(m), l), idx, true
		}
	}
	return netip.Prefix{}, NoRoute, false
}
