package fib

import "net/netip"

// View is an immutable snapshot of every table and the next-hop table.
// Everything reachable from it stays unchanged while anyone holds it.
type View struct {
	chunks []*chunk     // the arena; nodes reachable from the roots below are frozen
	dense  []tableRoots // by table ID, for IDs below denseTables
	sparse map[uint32]tableRoots
	nhs    []NextHop
	sel    []*[256]Index // ECMP bucket maps by next-hop index, nil for other kinds
	tok    *epoch        // keeps the grace period of this view's predecessors open
}

// tableRoots names the root node of each family; 0 means no such table.
type tableRoots struct{ root4, root6 uint32 }

// denseTables is how many table IDs a view indexes by slice; larger IDs go
// through a map.
const denseTables = 256

func (v *View) roots(table uint32) tableRoots {
	if table < uint32(len(v.dense)) {
		return v.dense[table]
	}
	return v.sparse[table]
}

// NextHop returns the next hop for idx. The pointer is into the immutable
// view: do not modify it.
func (v *View) NextHop(idx Index) *NextHop { return &v.nhs[idx] }

// SelectECMP returns the member of ECMP group idx that flow hash picks, or
// idx itself when it is not a group. Members map to 256 buckets by
// rendezvous hashing, so adding or removing one member moves only the flows
// of the buckets it gains or loses.
func (v *View) SelectECMP(idx Index, hash uint32) Index {
	if int(idx) < len(v.sel) {
		if s := v.sel[idx]; s != nil {
			return s[(hash*0x9e3779b1)>>24]
		}
	}
	return idx
}

func (v *View) node(id uint32) *[256]uint32 {
	c := v.chunks[id>>chunkShift]
	return (*[256]uint32)(c[uint16(id<<nodeShift):])
}

// Lookup4 returns the next hop of the longest prefix covering a.
func (v *View) Lookup4(table uint32, a [4]byte) Index {
	id := v.roots(table).root4
	if id == 0 {
		return NoRoute
	}
	for i := range 4 {
		c := v.chunks[id>>chunkShift]
		e := c[uint16(id<<nodeShift)|uint16(a[i])]
		if e&childBit == 0 {
			return Index(e & nhMask)
		}
		id = e &^ childBit
	}
	return NoRoute
}

// Lookup6 returns the next hop of the longest prefix covering a.
func (v *View) Lookup6(table uint32, a [16]byte) Index {
	id := v.roots(table).root6
	if id == 0 {
		return NoRoute
	}
	for i := range 16 {
		c := v.chunks[id>>chunkShift]
		e := c[uint16(id<<nodeShift)|uint16(a[i])]
		if e&childBit == 0 {
			return Index(e & nhMask)
		}
		id = e &^ childBit
	}
	return NoRoute
}

// LookupBatch4 looks up addrs[i] into out[i]; out must be at least as long.
//
// It walks the batch level by level rather than address by address, so the
// cache misses of different addresses overlap, and without branches on the
// entry kind (see step).
func (v *View) LookupBatch4(table uint32, addrs [][4]byte, out []Index) {
	out = out[:len(addrs)]
	id := v.roots(table).root4
	if id == 0 {
		clear(out)
		return
	}
	root := v.node(id)
	pending := uint32(0)
	for i := range addrs {
		e := root[addrs[i][0]]
		out[i] = Index(e)
		pending |= e
	}
	chunks := v.chunks
	if pending&childBit != 0 {
		pending = 0
		for i := range addrs {
			e := step(chunks, uint32(out[i]), addrs[i][1])
			out[i] = Index(e)
			pending |= e
		}
	}
	if pending&childBit != 0 {
		pending = 0
		for i := range addrs {
			e := step(chunks, uint32(out[i]), addrs[i][2])
			out[i] = Index(e)
			pending |= e
		}
	}
	if pending&childBit != 0 {
		for i := range addrs {
			out[i] = Index(step(chunks, uint32(out[i]), addrs[i][3]))
		}
	}
	for i := range out {
		out[i] &= nhMask
	}
}

// step advances one trie level for entry e and address byte b. A leaf reads
// the all-zero node 0 and keeps its own value, so the loop has no
// data-dependent branch to mispredict.
func step(chunks []*chunk, e uint32, b byte) uint32 {
	m := uint32(int32(e) >> 31) // all ones for a child
	n := e & m &^ childBit
	x := chunks[n>>chunkShift][uint16(n<<nodeShift)|uint16(b)]
	return x&m | e&^m
}

// LookupBatch6 looks up addrs[i] into out[i]; out must be at least as long.
// See LookupBatch4.
func (v *View) LookupBatch6(table uint32, addrs [][16]byte, out []Index) {
	out = out[:len(addrs)]
	id := v.roots(table).root6
	if id == 0 {
		clear(out)
		return
	}
	root := v.node(id)
	pending := uint32(0)
	for i := range addrs {
		e := root[addrs[i][0]]
		out[i] = Index(e)
		pending |= e
	}
	chunks := v.chunks
	for lvl := 1; lvl < 16 && pending&childBit != 0; lvl++ {
		pending = 0
		for i := range addrs {
			e := step(chunks, uint32(out[i]), addrs[i][lvl])
			out[i] = Index(e)
			pending |= e
		}
	}
	for i := range out {
		out[i] &= nhMask
	}
}

// LookupPrefix returns the longest prefix covering a and its next hop, for
// the control plane and the CLI. It answers from this view.
func (v *View) LookupPrefix(table uint32, a netip.Addr) (netip.Prefix, Index, bool) {
	e, ok := v.lookupLeaf(table, a)
	if !ok {
		return netip.Prefix{}, NoRoute, false
	}
	p, _ := a.Prefix(int(e >> lenShift & 0xff))
	return p, Index(e & nhMask), true
}

func (v *View) lookupLeaf(table uint32, a netip.Addr) (uint32, bool) {
	r := v.roots(table)
	var b [16]byte
	id, n := r.root6, 16
	if a.Is4() {
		id, n = r.root4, 4
		a4 := a.As4()
		copy(b[:], a4[:])
	} else if a.IsValid() {
		b = a.As16()
	} else {
		return 0, false
	}
	if id == 0 {
		return 0, false
	}
	for i := range n {
		e := v.node(id)[b[i]]
		if e&childBit == 0 {
			return e, e&nhMask != 0
		}
		id = e &^ childBit
	}
	return 0, false
}
