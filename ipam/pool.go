package ipam

import (
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"sort"
)

// Encapsulation is how pod traffic of a pool crosses between nodes, as
// Calico's vxlanMode says it: Never, Always, CrossSubnet.
type Encapsulation string

const (
	EncapNone             Encapsulation = "none"              // native routing (vxlanMode Never)
	EncapVXLAN            Encapsulation = "vxlan"             // always VXLAN (vxlanMode Always)
	EncapVXLANCrossSubnet Encapsulation = "vxlan-crosssubnet" // VXLAN only to nodes in another subnet
)

// Block sizes, as Calico allows and defaults them.
const (
	DefaultBlockSize4 = 26
	DefaultBlockSize6 = 122
	MinBlockSize4     = 20
	MaxBlockSize4     = 32
	MinBlockSize6     = 116
	MaxBlockSize6     = 128
)

// Pool is an IP pool: a CIDR carved into blocks of BlockSize that nodes
// claim. The field names follow Calico's IPPool so that the Kubernetes
// store can map the CRD onto it one to one.
type Pool struct {
	// Name identifies the pool; pods name it in the ipv4pools/ipv6pools
	// annotations. A DNS-1123 subdomain, as a Kubernetes object name.
	Name string `json:"name"`
	// CIDR is the pool's prefix, host bits zero. Its family is the pool's.
	CIDR netip.Prefix `json:"cidr"`
	// BlockSize is the prefix length of the blocks the pool is carved
	// into; 0 means the default (26, or 122 for IPv6).
	BlockSize int `json:"blockSize,omitempty"`
	// Encapsulation of traffic between nodes; "" means none.
	Encapsulation Encapsulation `json:"encapsulation,omitempty"`
	// NATOutgoing: pod traffic leaving every pool is source-NATed to the node.
	NATOutgoing bool `json:"natOutgoing,omitempty"`
	// NodeSelector picks the nodes that may allocate from the pool, in
	// Calico's selector syntax (see ParseSelector); "" means all().
	NodeSelector string `json:"nodeSelector,omitempty"`
	// Disabled pools keep their allocations but give no new addresses.
	Disabled bool `json:"disabled,omitempty"`
}

// Is6 reports whether the pool is an IPv6 pool.
func (p Pool) Is6() bool { return p.CIDR.Addr().Is6() }

// EffectiveBlockSize is BlockSize with the default applied.
func (p Pool) EffectiveBlockSize() int {
	if p.BlockSize != 0 {
		return p.BlockSize
	}
	if p.Is6() {
		return DefaultBlockSize6
	}
	return DefaultBlockSize4
}

// EffectiveEncapsulation is Encapsulation with the default applied.
func (p Pool) EffectiveEncapsulation() Encapsulation {
	if p.Encapsulation == "" {
		return EncapNone
	}
	return p.Encapsulation
}

// Size is the number of addresses in the pool (2^64 and more for IPv6
// pools, hence a big.Int).
func (p Pool) Size() *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(p.CIDR.Addr().BitLen()-p.CIDR.Bits()))
}

// Contains reports whether the block prefix b lies inside the pool.
func (p Pool) Contains(b netip.Prefix) bool {
	return p.CIDR.Bits() <= b.Bits() && p.CIDR.Contains(b.Addr())
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Validate checks one pool on its own: name, CIDR, block size,
// encapsulation and node selector. The error is a *PoolError naming the
// field and value, wrapping ErrBadBlockSize or ErrInvalidPool.
func (p Pool) Validate() error {
	if len(p.Name) == 0 || len(p.Name) > 253 || !nameRE.MatchString(p.Name) {
		return poolErr(p.Name, "name", fmt.Sprintf("%q", p.Name), ErrInvalidPool, "want a lowercase DNS-1123 subdomain")
	}
	if !p.CIDR.IsValid() {
		return poolErr(p.Name, "cidr", fmt.Sprintf("%q", p.CIDR.String()), ErrInvalidPool, "missing or not a prefix")
	}
	a := p.CIDR.Addr()
	if a.Is4In6() || a.Zone() != "" {
		return poolErr(p.Name, "cidr", p.CIDR.String(), ErrInvalidPool, "IPv4-mapped or zoned addresses are not pool prefixes")
	}
	if p.CIDR.Masked() != p.CIDR {
		return poolErr(p.Name, "cidr", p.CIDR.String(), ErrInvalidPool, "host bits set (want %s)", p.CIDR.Masked())
	}
	bs := p.EffectiveBlockSize()
	lo, hi, fam := MinBlockSize4, MaxBlockSize4, "IPv4"
	if p.Is6() {
		lo, hi, fam = MinBlockSize6, MaxBlockSize6, "IPv6"
	}
	if bs < lo || bs > hi {
		return poolErr(p.Name, "blockSize", fmt.Sprint(bs), ErrBadBlockSize, "%s allows %d-%d", fam, lo, hi)
	}
	if bs < p.CIDR.Bits() {
		return poolErr(p.Name, "blockSize", fmt.Sprint(bs), ErrBadBlockSize, "blocks larger than the pool's /%d", p.CIDR.Bits())
	}
	switch p.Encapsulation {
	case "", EncapNone, EncapVXLAN, EncapVXLANCrossSubnet:
	default:
		return poolErr(p.Name, "encapsulation", fmt.Sprintf("%q", p.Encapsulation), ErrInvalidPool, "want none, vxlan or vxlan-crosssubnet")
	}
	if _, err := ParseSelector(p.NodeSelector); err != nil {
		return poolErr(p.Name, "nodeSelector", fmt.Sprintf("%q", p.NodeSelector), ErrInvalidPool, "%v", err)
	}
	return nil
}

// ValidatePools validates each pool and checks that no two share a name or
// overlap. It returns the first error (a *PoolError).
func ValidatePools(pools []Pool) error {
	for _, p := range pools {
		if err := p.Validate(); err != nil {
			return err
		}
	}
	sorted := append([]Pool(nil), pools...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return poolErr(sorted[i].Name, "name", fmt.Sprintf("%q", sorted[i].Name), ErrInvalidPool, "two pools have this name")
		}
	}
	for i := range pools {
		for j := i + 1; j < len(pools); j++ {
			if pools[i].CIDR.Overlaps(pools[j].CIDR) {
				return poolErr(pools[j].Name, "cidr", pools[j].CIDR.String(), ErrPoolOverlap, "overlaps pool %q (%s)", pools[i].Name, pools[i].CIDR)
			}
		}
	}
	return nil
}

// blockAt is the i-th block of size bits inside the pool prefix: the pool's
// base address plus i << (addrbits - bits), in 128-bit arithmetic so that
// IPv6 pools with more than 2^64 blocks work. ok is false past the pool.
func blockAt(pool netip.Prefix, bits int, i uint64) (netip.Prefix, bool) {
	width := bits - pool.Bits() // log2 of the block count
	if width < 64 && i >= uint64(1)<<width {
		return netip.Prefix{}, false
	}
	shift := uint(pool.Addr().BitLen() - bits)
	hi, lo := shl128(0, i, shift)
	return netip.PrefixFrom(addOffset(pool.Addr(), hi, lo), bits), true
}

// blockIndex is the inverse of blockAt for a block inside the pool. Only
// the low 64 bits of the index are kept, which is all blockAt takes.
func blockIndex(pool netip.Prefix, bits int, b netip.Prefix) uint64 {
	hi, lo := offsetOf(pool.Addr(), b.Addr())
	_, lo = shr128(hi, lo, uint(pool.Addr().BitLen()-bits))
	return lo
}

func shl128(hi, lo uint64, s uint) (uint64, uint64) {
	switch {
	case s == 0:
		return hi, lo
	case s >= 64:
		return lo << (s - 64), 0
	default:
		return hi<<s | lo>>(64-s), lo << s
	}
}

func shr128(hi, lo uint64, s uint) (uint64, uint64) {
	switch {
	case s == 0:
		return hi, lo
	case s >= 64:
		return 0, hi >> (s - 64)
	default:
		return hi >> s, lo>>s | hi<<(64-s)
	}
}

func addrWords(a netip.Addr) (uint64, uint64) {
	b := a.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[i+8])
	}
	return hi, lo
}

func wordsAddr(hi, lo uint64, is4 bool) netip.Addr {
	var b [16]byte
	for i := 7; i >= 0; i-- {
		b[i], b[i+8] = byte(hi), byte(lo)
		hi >>= 8
		lo >>= 8
	}
	a := netip.AddrFrom16(b)
	if is4 {
		return a.Unmap()
	}
	return a
}

// addOffset adds the 128-bit value (hi, lo) to a.
func addOffset(a netip.Addr, hi, lo uint64) netip.Addr {
	ahi, alo := addrWords(a)
	nlo := alo + lo
	carry := uint64(0)
	if nlo < alo {
		carry = 1
	}
	return wordsAddr(ahi+hi+carry, nlo, a.Is4())
}

// offsetOf is b - a in 128 bits (b >= a).
func offsetOf(a, b netip.Addr) (uint64, uint64) {
	ahi, alo := addrWords(a)
	bhi, blo := addrWords(b)
	lo := blo - alo
	borrow := uint64(0)
	if blo < alo {
		borrow = 1
	}
	return bhi - ahi - borrow, lo
}
