package memif

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Ring layout (memif_ring_t): one cache line holding cookie (u32 at 0),
// flags (u16 at 4) and head (u16 at 6); tail (u16) alone on the next line
// at 64; descriptors from 128 on.
//
//	0        4       6       8                64      66            128
//	+--------+-------+-------+----------------+-------+-------------+------
//	| cookie | flags | head  |   (padding)    | tail  | (padding)   | desc[0]...
//	+--------+-------+-------+----------------+-------+-------------+------
//
// The slave (client) writes head on both rings, the master (server) tail.
// Go has no 16-bit atomics, so head is read through the aligned 32-bit word
// it shares with flags, and written with a compare-and-swap on that word so
// a concurrent flags update by the other side is never lost. tail's word
// holds only padding besides tail, so a 32-bit store is exact.
const (
	ringHdrSize   = 128
	ringCookieOff = 0
	ringFlagsOff  = 4 // flags | head<<16 as one little-endian word
	ringTailOff   = 64
	descSize      = 16
	ringFlagMask  = 1 // MEMIF_RING_FLAG_MASK_INT: reader polls, no interrupts
	descFlagNext  = 1
	maxLog2Ring   = 15 // indices are u16: a ring of 2^16 could not tell full from empty
	ringAlign     = 8  // ring offsets must allow the 32-bit atomics above
)

// ringBytes is the size of a ring of 2^log2 descriptors with its header.
func ringBytes(log2 uint8) uint64 { return ringHdrSize + descSize<<log2 }

// ring is a view of one memif ring inside a mapped region. mem covers the
// ring header and its descriptors exactly; every access stays inside it.
type ring struct {
	mem  []byte
	size uint16 // number of descriptors (0 means 65536, never allowed here)
	mask uint16
}

func newRing(region []byte, off uint64, log2 uint8) ring {
	n := uint64(1) << log2
	return ring{mem: region[off : off+ringHdrSize+descSize*n : off+ringHdrSize+descSize*n], size: uint16(n), mask: uint16(n - 1)}
}

func (r *ring) word(off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[off]))
}

func (r *ring) cookie() uint32 { return atomic.LoadUint32(r.word(ringCookieOff)) }

func (r *ring) setCookie(c uint32) { atomic.StoreUint32(r.word(ringCookieOff), c) }

// head is an acquire load: descriptors the other side wrote before
// publishing head are visible once head is.
func (r *ring) head() uint16 { return uint16(atomic.LoadUint32(r.word(ringFlagsOff)) >> 16) }

func (r *ring) flags() uint16 { return uint16(atomic.LoadUint32(r.word(ringFlagsOff))) }

func (r *ring) tail() uint16 { return uint16(atomic.LoadUint32(r.word(ringTailOff))) }

// storeTail is a release store: descriptor and buffer writes before it are
// visible to the peer that loads tail.
func (r *ring) storeTail(t uint16) { atomic.StoreUint32(r.word(ringTailOff), uint32(t)) }

// storeHead publishes head without losing a concurrent flags change.
func (r *ring) storeHead(h uint16) {
	w := r.word(ringFlagsOff)
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&0xffff|uint32(h)<<16) {
			return
		}
	}
}

// setFlags sets or clears flag bits without losing a concurrent head store.
func (r *ring) setFlags(set, clr uint16) {
	w := r.word(ringFlagsOff)
	for {
		old := atomic.LoadUint32(w)
		nw := old&^uint32(clr) | uint32(set)
		if atomic.CompareAndSwapUint32(w, old, nw) {
			return
		}
	}
}

// Desc is one 16-byte memif descriptor, copied out of shared memory so the
// peer cannot change it between the check and the use.
type Desc struct {
	Flags    uint16
	Region   uint16
	Length   uint32
	Offset   uint32
	Metadata uint32
}

func (r *ring) desc(slot uint16) Desc {
	b := r.mem[ringHdrSize+int(slot&r.mask)*descSize:][:descSize]
	le := binary.LittleEndian
	return Desc{Flags: le.Uint16(b[0:]), Region: le.Uint16(b[2:]), Length: le.Uint32(b[4:]), Offset: le.Uint32(b[8:]), Metadata: le.Uint32(b[12:])}
}

func (r *ring) putDesc(slot uint16, d Desc) {
	b := r.mem[ringHdrSize+int(slot&r.mask)*descSize:][:descSize]
	le := binary.LittleEndian
	le.PutUint16(b[0:], d.Flags)
	le.PutUint16(b[2:], d.Region)
	le.PutUint32(b[4:], d.Length)
	le.PutUint32(b[8:], d.Offset)
	le.PutUint32(b[12:], d.Metadata)
}

// setDescLenFlags writes only the fields the master may change on an M2S
// descriptor; region and offset stay the slave's.
func (r *ring) setDescLenFlags(slot uint16, length uint32, flags uint16) {
	b := r.mem[ringHdrSize+int(slot&r.mask)*descSize:][:descSize]
	binary.LittleEndian.PutUint16(b[0:], flags)
	binary.LittleEndian.PutUint32(b[4:], length)
}

// DescError says why a descriptor was refused.
type DescError uint8

const (
	DescOK DescError = iota
	DescBadRegion
	DescOutOfRegion
	DescZeroLength
	DescTooLong
)

var descErrorNames = [...]string{"ok", "bad region", "outside region", "zero length", "too long"}

func (e DescError) String() string {
	if int(e) < len(descErrorNames) {
		return descErrorNames[e]
	}
	return "unknown"
}

// CheckDesc validates a descriptor against the mapped regions: the region
// exists, [offset, offset+length) lies inside it (in 64-bit arithmetic, so
// no wrap), the length is not zero and at most maxLen. Only a descriptor that
// passes may be turned into a slice with descBytes.
func CheckDesc(d Desc, regions [][]byte, maxLen uint32) DescError {
	if int(d.Region) >= len(regions) {
		return DescBadRegion
	}
	if d.Length == 0 {
		return DescZeroLength
	}
	if d.Length > maxLen {
		return DescTooLong
	}
	if uint64(d.Offset)+uint64(d.Length) > uint64(len(regions[d.Region])) {
		return DescOutOfRegion
	}
	return DescOK
}

// descBytes is the buffer a checked descriptor points at.
func descBytes(d Desc, regions [][]byte) []byte {
	return regions[d.Region][d.Offset : d.Offset+d.Length : d.Offset+d.Length]
}
