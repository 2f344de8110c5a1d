package fib

import (
	"math/bits"
	"net/netip"
	"slices"
)

// The lookup structure is a multibit trie with 8-bit strides and leaf
// pushing, for both families. Conceptually every node is 256 uint32
// entries; an entry is either a child (childBit | block) or a leaf that
// already holds the answer for every address reaching that slot:
// prefix length << lenShift | next-hop index.
//
// Readers see each node as one block in a chunked uint32 arena, in one of
// two encodings (flatBit in the entry pointing at the block says which):
//
//   - flat: the 256 entries as they are; roots, the nodes at depth 8 (and
//     16 for IPv6), and nodes with more than flatRuns runs.
//   - compressed: the entries cut into runs of equal consecutive entries.
//     The header is 8 pairs of words: word 2w is bits 32w..32w+31 of a
//     256-bit bitmap, bit s%32 of word 2(s/32) set where a run starts at
//     slot s; word 2w+1 is hdrWords-1 plus the number of runs starting
//     before slot 32w. The runs' entries follow. With w = s/32, slot s
//     reads word (word 2w+1) + popcount(word 2w up to bit s%32): two
//     independent loads from the same 8 bytes, then the entry.
//
// Readers never see a block change: the writer edits its own records
// (wnode), marks the nodes a batch touches dirty and, when it publishes,
// encodes each dirty node once into a fresh block, children before parents
// (or, when only leaf values and children's blocks changed, copies the old
// block and patches it: repatch).
const (
	childBit = 1 << 31
	flatBit  = 1 << 30
	offMask  = flatBit - 1
	lenShift = 23
	nhMask   = 1<<lenShift - 1
	lenMask  = 0xff << lenShift

	chunkShift = 16 // words per chunk = 64Ki (256 KiB)
	chunkWords = 1 << chunkShift

	hdrWords  = 16 // compressed header: 8 bitmap words, each with where its runs start
	flatWords = 256

	// flatRuns is the most runs a node may have and still be compressed.
	// Denser nodes are stored flat: they are few (3,655 of 64,227 on the
	// real table, mostly IPv4 /16s full of /24s), hot, and a compressed
	// block would save them little.
	flatRuns = 96
	maxBlock = flatWords
)

// MaxNextHops bounds the next-hop table: leaf entries carry the next-hop
// index in their low 23 bits.
const MaxNextHops = nhMask + 1

type chunk [chunkWords]uint32

// leaf encodes a leaf entry.
func leaf(bits int, nh Index) uint32 { return uint32(bits)<<lenShift | uint32(nh) }

// maxChunks bounds the arena (4 GiB): entries carry a 30-bit offset.
const maxChunks = (offMask >> chunkShift) + 1

// chunkDir finds the arena's chunks. It has a fixed size so that readers
// index it without a bounds check; the writer only ever fills slots past
// the ones any published view can reach.
type chunkDir [maxChunks]*chunk

// step reads slot b of the node that child entry e points at.
func step(dir *chunkDir, e uint32, b byte) uint32 {
	c := dir[e>>chunkShift&(maxChunks-1)]
	o := uint16(e)
	if e&flatBit != 0 {
		return c[o+uint16(b)]
	}
	w := uint16(b >> 5)
	x := c[o+2*w] << (^b & 31) // the run starts up to slot b
	return c[o+uint16(c[o+2*w+1])+uint16(bits.OnesCount32(x))]
}

// arena holds the reader blocks. Chunks are only ever appended; a block
// never straddles two chunks, so readers index a chunk with a uint16.
type arena struct {
	dir     *chunkDir
	chunks  []*chunk // the chunks in use, as in dir
	top     uint32   // first never-used word
	free    [maxBlock + 1][]uint32
	retired []uint64 // size<<32 | offset of blocks replaced since the last publish
	live    int      // words in blocks in use
	freeN   int      // words in free lists
}

func (a *arena) alloc(size uint32) uint32 {
	if l := a.free[size]; len(l) > 0 {
		off := l[len(l)-1]
		a.free[size] = l[:len(l)-1]
		a.freeN -= int(size)
		a.live += int(size)
		return off
	}
	if a.top&(chunkWords-1)+size > chunkWords {
		a.top = (a.top>>chunkShift + 1) << chunkShift
	}
	if int(a.top>>chunkShift) >= len(a.chunks) {
		if len(a.chunks) == maxChunks {
			panic("fib: trie arena full")
		}
		c := new(chunk)
		a.dir[len(a.chunks)] = c
		a.chunks = append(a.chunks, c)
	}
	off := a.top
	a.top += size
	a.live += int(size)
	return off
}

// reuse takes back blocks no reader can reach any more.
func (a *arena) reuse(blocks []uint64) {
	for _, b := range blocks {
		size := uint32(b >> 32)
		a.free[size] = append(a.free[size], uint32(b))
		a.freeN += int(size)
	}
}

func (a *arena) words(off, size uint32) []uint32 {
	c := a.chunks[off>>chunkShift]
	o := off & (chunkWords - 1)
	return c[o : o+size : o+size]
}

// wnode is the writer's record of one trie node. Readers never touch it.
type wnode struct {
	blk   uint32 // entry pointing at the node's published block; 0 before its first publish
	size  uint16 // words of that block
	npfx  uint16 // prefixes stored here
	dflt  uint32 // leaf inherited from above for slots no prefix here covers
	depth uint8  // address bits above this node (0, 8, 16, ...)
	state uint8  // dirty, dead, inV6, reshape
	phead uint16 // 1 + index in trie.patches of the node's last patch, 0 for none

	// Prefixes stored here: lengths depth+1..depth+8 (and /0 in a root),
	// keyed by ART index (1<<r | bits>>(8-r), r = length-depth).
	pfx [8]uint64
	// Slots holding a child.
	kids [4]uint64
	// items holds npfx prefix values (origin<<24 | next hop) in ART-index
	// order, then the children's node numbers in slot order.
	items []uint32
}

const (
	dirty = 1 << iota
	dead
	inV6    // an IPv6 node
	reshape // its runs may have changed: encode from scratch, not by patching its block
)

// patch records that the leaf of one prefix of a node changed value, or
// that one of its children will get a new block, so that the node's block
// can be copied and patched instead of re-encoded.
type patch struct {
	prev     uint16 // 1 + index of the node's previous patch, 0 for none
	lo, hi   uint16 // slots the prefix covers; hi == 0: the child at slot lo
	old, new uint32 // leaves; for a child, new is its node number
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

func (n *wnode) krank(s uint) int {
	r := int(n.npfx)
	w := int(s >> 6)
	for i := 0; i < w; i++ {
		r += bits.OnesCount64(n.kids[i])
	}
	return r + bits.OnesCount64(n.kids[w]&(1<<(s&63)-1))
}

// kid returns the node number of the child at slot s, or 0.
func (n *wnode) kid(s uint) uint32 {
	if n.kids[s>>6]&(1<<(s&63)) == 0 {
		return 0
	}
	return n.items[n.krank(s)]
}

func (n *wnode) value(r int, idx uint) uint32 {
	return leaf(int(n.depth)+bits.Len(idx)-1, Index(n.items[r]&nhMask))
}

// best returns the leaf for slot s: the longest prefix stored here that
// covers it, else the inherited default. own reports which.
func (n *wnode) best(s uint) (v uint32, own bool) {
	if n.npfx == 0 {
		return n.dflt, false
	}
	for idx := 256 | s; idx > 0; idx >>= 1 {
		if n.has(idx) {
			return n.value(n.rank(idx), idx), true
		}
	}
	return n.dflt, false
}

func (n *wnode) put(idx uint, nh Index, o Origin) (old uint32, existed bool) {
	r := n.rank(idx)
	it := uint32(o)<<24 | uint32(nh)
	if n.has(idx) {
		old = n.value(r, idx)
		n.items[r] = it
		return old, true
	}
	n.pfx[idx>>6] |= 1 << (idx & 63)
	n.items = slices.Insert(n.items, r, it)
	n.npfx++
	return 0, false
}

func (n *wnode) remove(idx uint) {
	r := n.rank(idx)
	n.pfx[idx>>6] &^= 1 << (idx & 63)
	n.items = slices.Delete(n.items, r, r+1)
	n.npfx--
}

func (n *wnode) nkids() int {
	return bits.OnesCount64(n.kids[0]) + bits.OnesCount64(n.kids[1]) +
		bits.OnesCount64(n.kids[2]) + bits.OnesCount64(n.kids[3])
}

const nodesPerChunk = 1024

// trie is the writer side of the arena shared by every table and family.
type trie struct {
	arena
	wn        []*[nodesPerChunk]wnode // by node number; 0 is never a node
	nextNode  uint32
	freeNodes []uint32
	dirty     []uint32 // nodes to encode at the next publish
	patches   []patch  // value changes since the last publish, for nodes not reshaped
	pscratch  []patch
	order     []uint32 // scratch: dirty, deepest first
	nodes     int      // nodes in use
	itemWords int      // capacity of all items slices, for Stats
	warmSum   uint32   // what warm read, so that the reads stay
}

func newTrie() *trie {
	t := &trie{nextNode: 1}
	t.dir = new(chunkDir)
	t.dir[0] = new(chunk)
	t.chunks = append(t.chunks, t.dir[0])
	t.top = 1 // a zero entry means "no such table"
	return t
}

func (t *trie) node(id uint32) *wnode { return &t.wn[id/nodesPerChunk][id%nodesPerChunk] }

func (t *trie) newNode(depth uint8, dflt uint32) (uint32, *wnode) {
	var id uint32
	if n := len(t.freeNodes); n > 0 {
		id = t.freeNodes[n-1]
		t.freeNodes = t.freeNodes[:n-1]
	} else {
		id = t.nextNode
		t.nextNode++
		if int(id/nodesPerChunk) >= len(t.wn) {
			t.wn = append(t.wn, new([nodesPerChunk]wnode))
		}
	}
	t.nodes++
	n := t.node(id)
	*n = wnode{depth: depth, dflt: dflt, state: reshape}
	t.markDirty(id, n)
	return id, n
}

func (t *trie) markDirty(id uint32, n *wnode) {
	if n.state&dirty == 0 {
		n.state |= dirty
		t.dirty = append(t.dirty, id)
	}
}

// markKid marks child c (node id, at slot s of p) dirty. Unless p is
// encoded from scratch anyway, p records that slot s needs c's new block,
// so that patching p's block visits only the children that changed.
func (t *trie) markKid(p *wnode, s uint, id uint32, c *wnode) {
	if c.state&dirty != 0 {
		return
	}
	c.state |= dirty
	t.dirty = append(t.dirty, id)
	if p.state&reshape == 0 {
		t.addPatch(p, patch{lo: uint16(s), new: id})
	}
}

// addPatch links p into n's patches, or gives up patching n when there
// are too many to link.
func (t *trie) addPatch(n *wnode, p patch) {
	if len(t.patches) >= 1<<16-1 {
		n.state |= reshape
		return
	}
	p.prev = n.phead
	t.patches = append(t.patches, p)
	n.phead = uint16(len(t.patches))
}

// kill drops node n: its block is retired, its number freed once the
// pending encodings have skipped it.
func (t *trie) kill(id uint32, n *wnode) {
	if n.blk != 0 {
		t.retire(n.blk, n.size)
	}
	n.state |= dead
	t.markDirty(id, n)
	t.nodes--
}

func (t *trie) retire(blk uint32, size uint16) {
	t.retired = append(t.retired, uint64(size)<<32|uint64(blk&offMask))
	t.live -= int(size)
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
func (t *trie) find(root uint32, k key) *wnode {
	n := t.node(root)
	for k.bits > int(n.depth)+8 {
		c := n.kid(uint(k.a[n.depth>>3]))
		if c == 0 {
			return nil
		}
		n = t.node(c)
	}
	return n
}

// warmItem is one prefix of a batch on its way down the trie, for warm.
type warmItem struct {
	k  key
	id uint32 // node reached so far; 0 to skip
}

// warmWindow is how many prefixes of a batch warm walks at once: enough to
// overlap many cache misses, few enough that what it brings in stays cached
// until the batch's changes use it.
const warmWindow = 128

// warm walks to the nodes storing the keys of ws (at most warmWindow) level
// by level, reading what insert and remove will read, so that the cache
// misses of different prefixes overlap instead of queuing behind each other
// (the writer's records of a large table are mostly out of cache). It
// changes nothing but ws's node numbers.
func (t *trie) warm(ws []warmItem) {
	var pend [warmWindow]uint8
	np := 0
	for i := range ws {
		if ws[i].id != 0 {
			pend[np] = uint8(i)
			np++
		}
	}
	var sum uint32
	for np > 0 {
		k := 0
		for _, i := range pend[:np] {
			w := &ws[i]
			n := t.node(w.id)
			if w.k.bits > int(n.depth)+8 {
				if c := n.kid(uint(w.k.a[n.depth>>3])); c != 0 {
					w.id = c
					pend[k] = i
					k++
				}
				continue
			}
			if l := len(n.items); l > 0 {
				sum += n.items[min(n.rank(artIndex(w.k, n.depth)), l-1)]
			}
		}
		np = k
	}
	t.warmSum += sum
}

// get returns the stored leaf and origin of exactly k.
func (t *trie) get(root uint32, k key) (uint32, Origin, bool) {
	n := t.find(root, k)
	if n == nil {
		return 0, 0, false
	}
	idx := artIndex(k, n.depth)
	if !n.has(idx) {
		return 0, 0, false
	}
	r := n.rank(idx)
	return n.value(r, idx), Origin(n.items[r] >> 24), true
}

// descend marks the path to the node storing k dirty, creating nodes, and
// records it in path (path[0] is root).
func (t *trie) descend(root uint32, k key, path *[17]uint32) (n *wnode, depth int) {
	id := root
	n = t.node(id)
	t.markDirty(id, n)
	path[0] = id
	for k.bits > int(n.depth)+8 {
		s := uint(k.a[n.depth>>3])
		c := n.kid(s)
		if c == 0 {
			v, _ := n.best(s)
			var cn *wnode
			c, cn = t.newNode(n.depth+8, v)
			cn.state |= n.state & inV6
			n.kids[s>>6] |= 1 << (s & 63)
			n.state |= reshape
			r := n.krank(s)
			t.itemWords -= cap(n.items)
			n.items = slices.Insert(n.items, r, c)
			t.itemWords += cap(n.items)
			n = cn
		} else {
			cn := t.node(c)
			t.markKid(n, s, c, cn)
			n = cn
		}
		id = c
		depth++
		path[depth] = id
	}
	return n, depth
}

// insert stores k with next hop nh. It returns the previous leaf if k was
// there.
func (t *trie) insert(root uint32, k key, nh Index, o Origin) (old uint32, existed bool) {
	return t.insertFrom(root, root, k, nh, o)
}

// insertFrom is insert with a hint: node hint is on k's path (warm's
// answer), so that checking for an unchanged route need not walk from the
// root when the hint is the node that stores k. Adds never remove nodes, so
// within a batch's adds the hint stays on the path.
func (t *trie) insertFrom(root, hint uint32, k key, nh Index, o Origin) (old uint32, existed bool) {
	n := t.node(hint)
	if k.bits > int(n.depth)+8 {
		n = t.find(root, k)
	}
	if n != nil {
		if idx := artIndex(k, n.depth); n.has(idx) {
			r := n.rank(idx)
			if ov, oo := n.value(r, idx), Origin(n.items[r]>>24); ov&nhMask == uint32(nh) && oo == o {
				return ov, true
			}
		}
	}
	var path [17]uint32
	n, _ = t.descend(root, k, &path)
	idx := artIndex(k, n.depth)
	t.itemWords -= cap(n.items)
	old, existed = n.put(idx, nh, o)
	t.itemWords += cap(n.items)
	if existed {
		r := uint(bits.Len(idx)) - 1
		lo := (idx &^ (1 << r)) << (8 - r)
		if n.state&reshape == 0 {
			t.addPatch(n, patch{lo: uint16(lo), hi: uint16(lo + 1<<(8-r)), old: old, new: leaf(k.bits, nh)})
		}
	} else {
		n.state |= reshape
	}
	t.refresh(n, idx)
	return old, existed
}

// remove deletes k and returns its leaf value.
func (t *trie) remove(root uint32, k key) (old uint32, ok bool) {
	old, _, ok = t.get(root, k)
	if !ok {
		return 0, false
	}
	var path [17]uint32
	n, d := t.descend(root, k, &path)
	idx := artIndex(k, n.depth)
	t.itemWords -= cap(n.items)
	n.remove(idx)
	n.state |= reshape
	t.itemWords += cap(n.items)
	t.refresh(n, idx)
	// Drop nodes left with nothing to say.
	for ; d > 0; d-- {
		c := t.node(path[d])
		if c.npfx != 0 || c.nkids() != 0 {
			break
		}
		p := t.node(path[d-1])
		s := uint(k.a[p.depth>>3])
		r := p.krank(s)
		p.kids[s>>6] &^= 1 << (s & 63)
		p.state |= reshape
		p.items = slices.Delete(p.items, r, r+1)
		t.kill(path[d], c)
	}
	return old, true
}

// refresh passes the new defaults to the children under ART index idx of
// n after a prefix there changed.
func (t *trie) refresh(n *wnode, idx uint) {
	if n.nkids() == 0 {
		return
	}
	r := uint(bits.Len(idx)) - 1
	lo := (idx &^ (1 << r)) << (8 - r)
	hi := lo + 1<<(8-r)
	for s := lo; s < hi; s++ {
		if c := n.kid(s); c != 0 {
			v, _ := n.best(s)
			t.setDefault(n, s, c, v)
		}
	}
}

// setDefault changes what node id, the child at slot s of p, inherits from
// above.
func (t *trie) setDefault(p *wnode, s uint, id uint32, v uint32) {
	c := t.node(id)
	if c.dflt == v {
		return
	}
	c.dflt = v
	c.state |= reshape
	t.markKid(p, s, id, c)
	if c.nkids() == 0 {
		return
	}
	for s := uint(0); s < 256; s++ {
		g := c.kid(s)
		if g == 0 {
			continue
		}
		if _, own := c.best(s); !own {
			t.setDefault(c, s, g, v)
		}
	}
}

// encodeDirty gives every dirty node a fresh block, children before
// parents, and frees the nodes removed since the last publish.
func (t *trie) encodeDirty() {
	if len(t.dirty) == 0 {
		return
	}
	// Deepest first: a parent's entries name its children's new blocks.
	// Depths are multiples of 8 below 128, so a counting sort does.
	var at [17]int
	for _, id := range t.dirty {
		at[15-t.node(id).depth>>3+1]++
	}
	for i := 1; i < len(at); i++ {
		at[i] += at[i-1]
	}
	order := t.order[:0]
	order = append(order, t.dirty...)
	for _, id := range t.dirty {
		d := 15 - t.node(id).depth>>3
		order[at[d]] = id
		at[d]++
	}
	t.order = order
	var e [256]uint32
	var dst [warmWindow]uint32
	for i, id := range order {
		if i%warmWindow == 0 {
			t.warmBlocks(order[i:min(len(order), i+warmWindow)], &dst)
		}
		n := t.node(id)
		if n.state&dead != 0 {
			*n = wnode{}
			t.freeNodes = append(t.freeNodes, id)
			continue
		}
		if n.state&reshape == 0 && n.blk != 0 {
			// Only leaf values or children's blocks changed: the runs
			// stay, so copy the block and patch it, unless a patched
			// run turns out to be shared with a neighbour.
			ps := t.pscratch[:0]
			for i := n.phead; i != 0; i = t.patches[i-1].prev {
				ps = append(ps, t.patches[i-1])
			}
			slices.Reverse(ps) // in the order they happened
			t.pscratch = ps
			n.phead = 0
			if blk, ok := t.repatch(n, ps, dst[i%warmWindow]); ok {
				t.retire(n.blk, n.size)
				n.blk = blk
				n.state &^= dirty
				continue
			}
		}
		n.state &^= dirty | reshape
		n.phead = 0
		if l := len(n.items); cap(n.items)-l > l/4+4 {
			// Drop append's slack: items are most of the writer's memory.
			t.itemWords += l - cap(n.items)
			n.items = slices.Clip(slices.Clone(n.items))
		}
		bm := t.paint(n, &e)
		if n.blk != 0 {
			t.retire(n.blk, n.size)
		}
		n.blk, n.size = t.store(&e, bm, n.depth < 16 || n.depth == 16 && n.state&inV6 != 0)
	}
	t.dirty = t.dirty[:0]
	t.patches = t.patches[:0]
}

// warmBlocks allocates the fresh blocks of the nodes in ids that will be
// copied and patched (into dst), and reads one word per cache line of them
// and of the published blocks they copy, so that the cache misses of the
// copies overlap instead of queuing behind each other (see warm).
func (t *trie) warmBlocks(ids []uint32, dst *[warmWindow]uint32) {
	var sum uint32
	for i, id := range ids {
		n := t.node(id)
		if n.state&(reshape|dead) != 0 || n.blk == 0 {
			continue
		}
		size := uint32(n.size)
		off := t.alloc(size)
		dst[i] = off
		b := t.words(n.blk&offMask, size)
		d := t.words(off, size)
		for j := 0; j < len(b); j += 16 {
			sum += b[j] + d[j]
		}
	}
	t.warmSum += sum
}

// repatch copies n's block to a fresh one with the changes ps applied:
// leaf changes, and children's new blocks. It fails, allocating nothing, if
// a changed leaf's run reaches outside its prefix (a neighbour with an
// equal leaf shares it).
func (t *trie) repatch(n *wnode, ps []patch, off uint32) (uint32, bool) {
	size := uint32(n.size)
	b := t.words(off, size)
	copy(b, t.words(n.blk&offMask, size))
	if n.blk&flatBit != 0 {
		for _, p := range ps {
			if p.hi == 0 {
				b[p.lo] = t.node(p.new).blk
				continue
			}
			for s := p.lo; s < p.hi; s++ {
				if b[s] == p.old {
					b[s] = p.new
				}
			}
		}
		return n.blk&(childBit|flatBit) | off, true
	}
	out := b[hdrWords:]
	for _, p := range ps {
		s := uint(p.lo)
		if p.hi == 0 {
			out[runIndex(b, s)] = t.node(p.new).blk
			continue
		}
		// The runs overlapping [lo, hi), from the one holding lo.
		j := runIndex(b, s)
		start := runStart(b, s)
		for start < uint(p.hi) {
			end := nextRun(b, start)
			if out[j] == p.old {
				if start < uint(p.lo) || end > uint(p.hi) {
					// Never published: free at once.
					t.reuse([]uint64{uint64(size)<<32 | uint64(off)})
					t.live -= int(size)
					return 0, false
				}
				out[j] = p.new
			}
			start = end
			j++
		}
	}
	return n.blk&(childBit|flatBit) | off, true
}

// runIndex returns the index of the run holding slot s in compressed block
// b, as a reader computes it.
func runIndex(b []uint32, s uint) int {
	w := s >> 5
	x := b[2*w] & (^uint32(0) >> (31 - s&31))
	return int(b[2*w+1]) + bits.OnesCount32(x) - hdrWords
}

// runStart returns the slot where the run holding slot s starts, in
// compressed block b.
func runStart(b []uint32, s uint) uint {
	w := int(s >> 5)
	x := b[2*w] & (^uint32(0) >> (31 - s&31))
	for x == 0 {
		w--
		x = b[2*w]
	}
	return uint(w)<<5 | uint(31-bits.LeadingZeros32(x))
}

// nextRun returns the slot where the run after the one starting at s
// starts, in compressed block b, or 256.
func nextRun(b []uint32, s uint) uint {
	s++
	for w := s >> 5; w < 8; w++ {
		x := b[2*w]
		if w == s>>5 {
			x &= ^uint32(0) << (s & 31)
		}
		if x != 0 {
			return w<<5 | uint(bits.TrailingZeros32(x))
		}
	}
	return 256
}

// paint computes n's 256 leaf-pushed entries and the bitmap of the slots
// where a run of equal entries starts. Runs can start only where a prefix's
// range starts or ends, or around a child, so only those slots are
// compared.
func (t *trie) paint(n *wnode, e *[256]uint32) (bm [4]uint64) {
	for i := range e {
		e[i] = n.dflt
	}
	bm[0] = 1
	r := 0
	for w := uint(0); w < 8; w++ {
		for b := n.pfx[w]; b != 0; b &= b - 1 {
			idx := w<<6 | uint(bits.TrailingZeros64(b))
			l := uint(bits.Len(idx)) - 1
			lo := (idx &^ (1 << l)) << (8 - l)
			hi := lo + 1<<(8-l)
			v := n.value(r, idx)
			r++
			fill := e[lo:hi]
			for i := range fill {
				fill[i] = v
			}
			bm[lo>>6] |= 1 << (lo & 63)
			if hi < 256 {
				bm[hi>>6] |= 1 << (hi & 63)
			}
		}
	}
	for w := uint(0); w < 4; w++ {
		for b := n.kids[w]; b != 0; b &= b - 1 {
			s := w<<6 | uint(bits.TrailingZeros64(b))
			e[s] = t.node(n.items[r]).blk
			r++
			bm[w] |= 1 << (s & 63)
			if s < 255 {
				bm[(s+1)>>6] |= 1 << ((s + 1) & 63)
			}
		}
	}
	// Drop candidates that continue the run before them.
	for w := range 4 {
		for x := bm[w]; x != 0; x &= x - 1 {
			s := w<<6 | bits.TrailingZeros64(x)
			if s > 0 && e[s] == e[s-1] {
				bm[w] &^= 1 << (s & 63)
			}
		}
	}
	return bm
}

// store writes entries e, whose runs start where bm says, into a fresh
// block and returns the entry that points at it and its size.
func (t *trie) store(e *[256]uint32, bm [4]uint64, flat bool) (uint32, uint16) {
	runs := bits.OnesCount64(bm[0]) + bits.OnesCount64(bm[1]) +
		bits.OnesCount64(bm[2]) + bits.OnesCount64(bm[3])
	if flat || runs > flatRuns {
		off := t.alloc(flatWords)
		copy(t.words(off, flatWords), e[:])
		return childBit | flatBit | off, flatWords
	}
	size := uint32(hdrWords + runs)
	off := t.alloc(size)
	b := t.words(off, size)
	c := hdrWords - 1
	for w := range 8 {
		x := uint32(bm[w/2] >> (32 * (w % 2)))
		b[2*w] = x
		b[2*w+1] = uint32(c)
		c += bits.OnesCount32(x)
	}
	out := b[hdrWords:]
	j := 0
	for w := range 4 {
		for x := bm[w]; x != 0; x &= x - 1 {
			out[j] = e[w<<6|bits.TrailingZeros64(x)]
			j++
		}
	}
	return childBit | off, uint16(size)
}

// longest returns the longest stored prefix covering address a (writer
// side), with its leaf and origin.
func (t *trie) longest(root uint32, a [16]byte, maxBits int) (k key, v uint32, o Origin, ok bool) {
	n := t.node(root)
	for {
		s := uint(a[n.depth>>3])
		if n.npfx != 0 {
			for idx := 256 | s; idx > 0; idx >>= 1 {
				if n.has(idx) {
					r := n.rank(idx)
					v, o, ok = n.value(r, idx), Origin(n.items[r]>>24), true
					break
				}
			}
		}
		c := n.kid(s)
		if c == 0 {
			break
		}
		n = t.node(c)
		if int(n.depth) >= maxBits {
			break
		}
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
func (t *trie) walk(id uint32, base [16]byte, after *key, visit func(k key, v uint32, o Origin) bool) bool {
	n := t.node(id)
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
	for s := uint(ab); s < 256; s++ {
		base[bi] = byte(s)
		if n.npfx != 0 {
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
				if !visit(k, n.value(ri, idx), Origin(n.items[ri]>>24)) {
					return false
				}
			}
		}
		if c := n.kid(s); c != 0 {
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
