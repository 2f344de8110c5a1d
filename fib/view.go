package fib

import (
	"math/bits"
	"net/netip"
)

// View is an immutable snapshot of every table and the next-hop table.
// Everything reachable from it stays unchanged while anyone holds it.
type View struct {
	dir    *chunkDir    // the arena; nodes reachable from the roots below are frozen
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

// root returns the flat block that root entry e points at.
func (v *View) root(e uint32) *[256]uint32 {
	off := e & offMask
	o := off & (chunkWords - 1)
	return (*[256]uint32)(v.dir[off>>chunkShift&(maxChunks-1)][o : o+256])
}

// Lookup4 returns the next hop of the longest prefix covering a.
func (v *View) Lookup4(table uint32, a [4]byte) Index {
	e := v.roots(table).root4
	if e == 0 {
		return NoRoute
	}
	for i := range 4 {
		e = step(v.dir, e, a[i])
		if e&childBit == 0 {
			return Index(e & nhMask)
		}
	}
	return NoRoute
}

// Lookup6 returns the next hop of the longest prefix covering a.
func (v *View) Lookup6(table uint32, a [16]byte) Index {
	e := v.roots(table).root6
	if e == 0 {
		return NoRoute
	}
	for i := range 16 {
		e = step(v.dir, e, a[i])
		if e&childBit == 0 {
			return Index(e & nhMask)
		}
	}
	return NoRoute
}

// LookupBatch4 looks up addrs[i] into out[i]; out must be at least as long.
// See lookupBatch for how it walks the batch.
func (v *View) LookupBatch4(table uint32, addrs [][4]byte, out []Index) {
	lookupBatch(v, v.roots(table).root4, addrs, out)
}

// LookupBatch6 looks up addrs[i] into out[i]; out must be at least as long.
// See lookupBatch for how it walks the batch.
func (v *View) LookupBatch6(table uint32, addrs [][16]byte, out []Index) {
	lookupBatch(v, v.roots(table).root6, addrs, out)
}

// lookupBatch walks a batch level by level rather than address by address,
// so the cache misses of different addresses overlap. Lookups end at very
// different depths (an IPv6 address often leaves the trie after two or three
// levels, a /48 takes six, a pod /128 sixteen), so each level visits only the
// addresses still pending, kept in a list compacted without branches. It is
// instantiated once per address size ([4]byte and [16]byte have different
// shapes), so it costs what two hand-written copies did.
func lookupBatch[A [4]byte | [16]byte](v *View, rootEntry uint32, addrs []A, out []Index) {
	out = out[:len(addrs)]
	if rootEntry == 0 {
		clear(out)
		return
	}
	root := v.root(rootEntry)
	dir := v.dir
	var zero A
	depth := len(zero) // 4 or 16 levels of one byte
	flatLevels := 2    // the root and depth 8, and for IPv6 depth 16
	if depth == 16 {
		flatLevels = 3
	}
	for len(addrs) > 0 {
		n := min(len(addrs), 256)
		as, os := addrs[:n], out[:n]
		addrs, out = addrs[n:], out[n:]
		// Entries so far by position, and the positions still pending:
		// both indexed by uint8, so without bounds checks.
		var res [256]uint32
		var pend [256]uint8
		np := 0
		for i := range as {
			e := root[as[i][0]]
			res[uint8(i)] = e
			pend[np] = uint8(i)
			np += int(e >> 31)
		}
		// The levels below the root that are always flat (depth 8, and
		// 16 for IPv6; see trie.encodeDirty) need no test of the kind.
		lvl := 1
		for ; np > 0 && lvl < flatLevels; lvl++ {
			k := 0
			for _, i := range pend[:np] {
				e := res[i]
				e = dir[e>>chunkShift&(maxChunks-1)][uint16(e)+uint16(as[i][lvl])]
				res[i] = e
				pend[k] = i
				k += int(e >> 31)
			}
			np = k
		}
		for ; np > 0 && lvl < depth; lvl++ {
			k := 0
			for _, i := range pend[:np] {
				// step, by hand: the compiler will not inline it.
				e := res[i]
				c := dir[e>>chunkShift&(maxChunks-1)]
				o, b := uint16(e), as[i][lvl]
				if e&flatBit != 0 {
					e = c[o+uint16(b)]
				} else {
					w := uint16(b >> 5)
					x := c[o+2*w] << (^b & 31) // the run starts up to slot b
					e = c[o+uint16(c[o+2*w+1])+uint16(bits.OnesCount32(x))]
				}
				res[i] = e
				pend[k] = i
				k += int(e >> 31)
			}
			np = k
		}
		for i := range os {
			os[i] = Index(res[uint8(i)] & nhMask)
		}
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
	e := id
	for i := range n {
		e = step(v.dir, e, b[i])
		if e&childBit == 0 {
			return e, e&nhMask != 0
		}
	}
	return 0, false
}
