package fib

import (
	"math/bits"
	"net/netip"
)

// The lookup structure is a multibit trie with 8-bit strides and leaf
// pushing, for both families. Every node is 256 uint32 entries in a chunked
// arena; an entry is either a child node (childBit | node ID) or a leaf that
// already holds the answer for every address reaching that slot:
// prefix length << lenShift | next-hop index. A lookup is therefore one
// dependent load per byte of the address until a leaf, with no bitmaps or
// popcounts on the reader side.
//
// The writer keeps, beside the arena, a wnode per node with the prefixes
// stored at that level (ART-indexed bitmap plus compact values), from which
// the leaf-pushed entries are recomputed when a prefix changes.
const (
	childBit  = 1 << 31
	lenShift  = 23
	nhMask    = 1<<lenShift - 1
	lenMask   = 0xff << lenShift
	nodeShift = 8 // entries per node = 256

	chunkShift    = 8 // nodes per chunk = 256
	chunkEntries  = 1 << (chunkShift + nodeShift)
	chunkNodeMask = 1<<chunkShift - 1
)

// MaxNextHops bounds the next-hop table: leaf entries carry the next-hop
// index in their low 23 bits.
const MaxNextHops = nhMask + 1

type chunk [chunkEntries]uint32

// leaf encodes a leaf entry.
func leaf(bits int, nh Index) uint32 { return uint32(bits)<<lenShift | uint32(nh) }

// wnode is the writer's record of one trie node. Readers never touch it.
type wnode struct {
	id    uint32 // arena slot of the node's current entries
	gen   uint64 // writer generation that allocated id; equal to the current one means unpublished, writable in place
	depth uint8  // address bits above this node (0, 8, 16, ...)
	nkids uint16 // slots holding a child
	dflt  uint32 // leaf inherited from above for slots no prefix here covers

	// Prefixes stored here: lengths depth+1..depth+8 (and /0 in a root),
	// keyed by ART index (1<<r | bits>>(8-r), r = length-depth), values in
	// index order.
	pfx  [8]uint64
	vals []uint32 // leaf(length, next hop)
	orig []Origin
}

func (n *wnode) has(idx uint) bool { return n.pfx[idx>>6]&(1<<(idx&63)) != 0 }

func (n *wnode) rank(idx uint) int {
	r := 0
	w := int(idx >> 6)
	for i := 0; i < w; i++ {
		r += bits.OnesCount64(n.pfx[i])
	}
	return r + bits.OnesCount64(n.pfx[w]&(1<<(idx&63)-1))
}

// best returns the leaf for slot s: the longest prefix stored here that
// covers it, else the inherited default. own reports which.
func (n *wnode) best(s uint) (v uint32, own bool) {
	if len(n.vals) == 0 {
		return n.dflt, false
	}
	for idx := 256 | s; idx > 0; idx >>= 1 {
		if n.has(idx) {
			return n.vals[n.rank(idx)], true
		}
	}
	return n.dflt, false
}

func (n *wnode) put(idx uint, v uint32, o Origin) (old uint32, existed bool) {
	r := n.rank(idx)
	if n.has(idx) {
		old = n.vals[r]
		n.vals[r], n.orig[r] = v, o
		return old, true
	}
	n.pfx[idx>>6] |= 1 << (idx & 63)
	n.vals = append(n.vals, 0)
	copy(n.vals[r+1:], n.vals[r:])
	n.vals[r] = v
	n.orig = append(n.orig, 0)
	copy(n.orig[r+1:], n.orig[r:])
	n.orig[r] = o
	return 0, false
}

func (n *wnode) remove(idx uint) {
	r := n.rank(idx)
	n.pfx[idx>>6] &^= 1 << (idx & 63)
	n.vals = append(n.vals[:r], n.vals[r+1:]...)
	n.orig = append(n.orig[:r], n.orig[r+1:]...)
}

// trie is the writer side of the arena shared by every table and family.
type trie struct {
	chunks  []*chunk // published by slice header; only ever appended to
	nodes   []*wnode // by arena slot; nil for free or retired slots
	next    uint32   // first never-used slot
	free    []uint32 // slots no reader can reach
	retired []uint32 // slots replaced since the last publish
	gen     uint64
	live    int // slots in use
}

func newTrie() *trie {
	t := &trie{next: 1, gen: 1} // slot 0 is never a node: a zero root means "no such table"
	t.chunks = append(t.chunks, new(chunk))
	t.nodes = make([]*wnode, chunkEntries>>nodeShift)
	return t
}

func (t *trie) entries(id uint32) []uint32 {
	c := t.chunks[id>>chunkShift]
	o := (id & chunkNodeMask) << nodeShift
	return c[o : o+256 : o+256]
}

func (t *trie) alloc() uint32 {
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = t.next
		t.next++
		if int(id>>chunkShift) >= len(t.chunks) {
			t.chunks = append(t.chunks, new(chunk))
			t.nodes = append(t.nodes, make([]*wnode, 1<<chunkShift)...)
		}
	}
	t.live++
	return id
}

// release gives up slot id of n: at once if it was never published,
// otherwise after a grace period (see FIB.publishLocked).
func (t *trie) release(id uint32, gen uint64) {
	t.nodes[id] = nil
	t.live--
	if gen == t.gen {
		t.free = append(t.free, id)
		return
	}
	t.retired = append(t.retired, id)
}

func (t *trie) newNode(depth uint8, dflt uint32) *wnode {
	n := &wnode{id: t.alloc(), gen: t.gen, depth: depth, dflt: dflt}
	t.nodes[n.id] = n
	e := t.entries(n.id)
	for i := range e {
		e[i] = dflt
	}
	return n
}

// cow makes n writable: a published node is copied to a fresh slot. The
// caller repoints n's parent slot.
func (t *trie) cow(n *wnode) {
	if n.gen == t.gen {
		return
	}
	id := t.alloc()
	copy(t.entries(id), t.entries(n.id))
	t.release(n.id, n.gen)
	t.nodes[id] = n
	n.id, n.gen = id, t.gen
}

func (t *trie) child(e uint32) *wnode {
	if e&childBit == 0 {
		return nil
	}
	return t.nodes[e&^childBit]
}

// key is a masked prefix in the trie's terms.
type key struct {
	a    [16]byte // address, IPv4 in the first 4 bytes
	bits int
}

func keyOf(p netip.Prefix) (k key, v6 bool) {
	p = p.Masked()
	k.bits = p.Bits()
	if p.Addr().Is4() {
		a := p.Addr().As4()
		copy(k.a[:], a[:])
		return k, false
	}
	k.a = p.Addr().As16()
	return k, true
}

func (k key) prefix(v6 bool) netip.Prefix {
	if v6 {
		return netip.PrefixFrom(netip.AddrFrom16(k.a), k.bits)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(k.a[:4])), k.bits)
}

// artIndex is where k lives in the node at depth d (d < bits <= d+8, or a
// /0 in a root).
func artIndex(k key, d uint8) uint {
	r := uint(k.bits) - uint(d)
	if r == 0 {
		return 1
	}
	return 1<<r | uint(k.a[d>>3])>>(8-r)
}

// find returns the node that stores k, or nil.
func (t *trie) find(root *wnode, k key) *wnode {
	n := root
	for k.bits > int(n.depth)+8 {
		n = t.child(t.entries(n.id)[k.a[n.depth>>3]])
		if n == nil {
			return nil
		}
	}
	return n
}

// get returns the stored leaf and origin of exactly k.
func (t *trie) get(root *wnode, k key) (uint32, Origin, bool) {
	n := t.find(root, k)
	if n == nil {
		return 0, 0, false
	}
	idx := artIndex(k, n.depth)
	if !n.has(idx) {
		return 0, 0, false
	}
	r := n.rank(idx)
	return n.vals[r], n.orig[r], true
}

// descend copies the path to the node storing k, creating nodes if create,
// and records it in path (path[0] is root). It returns nil if the node does
// not exist and create is false; then nothing was copied.
func (t *trie) descend(root *wnode, k key, create bool, path *[17]*wnode) (n *wnode, depth int) {
	if !create && t.find(root, k) == nil {
		return nil, 0
	}
	n = root
	t.cow(n)
	path[0] = n
	for k.bits > int(n.depth)+8 {
		s := k.a[n.depth>>3]
		e := t.entries(n.id)
		c := t.child(e[s])
		if c == nil {
			c = t.newNode(n.depth+8, e[s])
			n.nkids++
		} else {
			t.cow(c)
		}
		e[s] = childBit | c.id
		n = c
		depth++
		path[depth] = n
	}
	return n, depth
}

// insert stores k with leaf value v. It returns the previous leaf if k was
// there.
func (t *trie) insert(root *wnode, k key, v uint32, o Origin) (old uint32, existed bool) {
	if ov, oo, ok := t.get(root, k); ok && ov == v && oo == o {
		return ov, true
	}
	var path [17]*wnode
	n, _ := t.descend(root, k, true, &path)
	idx := artIndex(k, n.depth)
	old, existed = n.put(idx, v, o)
	t.refresh(n, idx)
	return old, existed
}

// remove deletes k and returns its leaf value.
func (t *trie) remove(root *wnode, k key) (old uint32, ok bool) {
	if _, _, ok := t.get(root, k); !ok {
		return 0, false
	}
	var path [17]*wnode
	n, d := t.descend(root, k, false, &path)
	idx := artIndex(k, n.depth)
	old = n.vals[n.rank(idx)]
	n.remove(idx)
	t.refresh(n, idx)
	// Drop nodes left with nothing to say.
	for ; d > 0; d-- {
		c := path[d]
		if len(c.vals) != 0 || c.nkids != 0 {
			break
		}
		p := path[d-1]
		p.nkids--
		t.entries(p.id)[k.a[p.depth>>3]] = c.dflt
		t.release(c.id, c.gen)
	}
	return old, true
}

// refresh recomputes the slots of writable node n covered by ART index idx.
func (t *trie) refresh(n *wnode, idx uint) {
	r := uint(bits.Len(idx)) - 1
	lo := (idx &^ (1 << r)) << (8 - r)
	hi := lo + 1<<(8-r)
	e := t.entries(n.id)
	for s := lo; s < hi; s++ {
		v, _ := n.best(s)
		if c := t.child(e[s]); c != nil {
			t.setDefault(c, v)
			e[s] = childBit | c.id
		} else {
			e[s] = v
		}
	}
}

// setDefault changes what c inherits from above, copying c if it changes.
func (t *trie) setDefault(c *wnode, v uint32) {
	if c.dflt == v {
		return
	}
	t.cow(c)
	c.dflt = v
	e := t.entries(c.id)
	for s := uint(0); s < 256; s++ {
		if _, own := c.best(s); own {
			continue
		}
		if g := t.child(e[s]); g != nil {
			t.setDefault(g, v)
			e[s] = childBit | g.id
		} else {
			e[s] = v
		}
	}
}

// longest returns the longest stored prefix covering address a (writer
// side), with its leaf and origin.
func (t *trie) longest(root *wnode, a [16]byte, maxBits int) (k key, v uint32, o Origin, ok bool) {
	n := root
	for {
		s := uint(a[n.depth>>3])
		if len(n.vals) != 0 {
			for idx := 256 | s; idx > 0; idx >>= 1 {
				if n.has(idx) {
					r := n.rank(idx)
					v, o, ok = n.vals[r], n.orig[r], true
					break
				}
			}
		}
		c := t.child(t.entries(n.id)[s])
		if c == nil || int(c.depth) >= maxBits {
			break
		}
		n = c
	}
	if !ok {
		return key{}, 0, 0, false
	}
	k.bits = int(v >> lenShift & 0xff)
	k.a = maskBytes(a, k.bits)
	return k, v, o, true
}

func maskBytes(a [16]byte, n int) [16]byte {
	for i := range a {
		switch {
		case n >= 8:
			n -= 8
		case n > 0:
			a[i] &= ^byte(0) << (8 - n)
			n = 0
		default:
			a[i] = 0
		}
	}
	return a
}

// walk visits the prefixes under n in (address, length) order, skipping
// those not after `after` when from is set. visit returns false to stop.
// base holds the address bits above n.
func (t *trie) walk(n *wnode, base [16]byte, after *key, visit func(k key, v uint32, o Origin) bool) bool {
	bi := n.depth >> 3
	var ab byte
	if after != nil {
		// Slots before after's slot hold only earlier prefixes.
		ab = after.a[bi]
		if base != maskBytes(after.a, int(n.depth)) {
			if less(base, after.a) {
				return true
			}
			after = nil
			ab = 0
		}
	}
	e := t.entries(n.id)
	for s := uint(ab); s < 256; s++ {
		base[bi] = byte(s)
		if len(n.vals) != 0 {
			for r := uint(0); r <= 8; r++ {
				if r == 0 && n.depth != 0 {
					continue
				}
				if s&(1<<(8-r)-1) != 0 {
					continue
				}
				idx := uint(1)
				if r > 0 {
					idx = 1<<r | s>>(8-r)
				}
				if !n.has(idx) {
					continue
				}
				k := key{a: base, bits: int(n.depth) + int(r)}
				if after != nil && !keyAfter(k, *after) {
					continue
				}
				ri := n.rank(idx)
				if !visit(k, n.vals[ri], n.orig[ri]) {
					return false
				}
			}
		}
		if c := t.child(e[s]); c != nil {
			if !t.walk(c, base, after, visit) {
				return false
			}
		}
		base[bi] = 0
		after = nil // later slots come after
	}
	return true
}

func less(a, b [16]byte) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func keyAfter(k, after key) bool {
	if k.a != after.a {
		return less(after.a, k.a)
	}
	return k.bits > after.bits
}
