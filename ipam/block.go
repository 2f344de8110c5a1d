package ipam

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
)

// Handle keys an allocation the way CNI keys an attachment: the container
// ID and the interface name inside it. One handle holds at most one
// address per family.
type Handle struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
}

var containerIDRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// Validate checks the handle as the CNI spec restricts its parts: a
// container ID of letters, digits, '_', '.', '-' (so it cannot hold the
// '/' of String or the NUL of a store key), and a Linux interface name
// (1-15 bytes, no '/', ':', NUL or space, not "." or "..").
func (h Handle) Validate() error {
	if !containerIDRE.MatchString(h.ContainerID) {
		return fmt.Errorf("containerID %q: want letters, digits, '_', '.' or '-': %w", h.ContainerID, ErrInvalidRequest)
	}
	if n := len(h.IfName); n == 0 || n > 15 || h.IfName == "." || h.IfName == ".." || strings.ContainsAny(h.IfName, "/: \t\n\x00") {
		return fmt.Errorf("ifName %q: want a Linux interface name: %w", h.IfName, ErrInvalidRequest)
	}
	return nil
}

// String is the handle's key in stores and indexes: "containerID/ifName"
// (a container ID holds no '/').
func (h Handle) String() string { return h.ContainerID + "/" + h.IfName }

// Allocation is one address held by one handle. It lives inside its
// block, so a block update commits the address and its owner together.
type Allocation struct {
	Addr      netip.Addr `json:"addr"`
	Handle    Handle     `json:"handle"`
	Namespace string     `json:"namespace,omitempty"`
	Pod       string     `json:"pod,omitempty"`
	// Node is the node that allocated the address. It differs from the
	// block's Affinity when the address was borrowed; GC of a node
	// releases only that node's allocations.
	Node string `json:"node"`
}

// Block is a prefix of a pool claimed by a node (Affinity), and the
// addresses allocated from it.
//
// Invariants: Allocations is sorted by Addr, each Addr lies in CIDR and
// appears once; a handle appears at most once per block (a block has one
// family).
type Block struct {
	CIDR netip.Prefix `json:"cidr"`
	// Affinity is the node that claimed the block and advertises it;
	// "" for a block whose node released it.
	Affinity    string       `json:"affinity,omitempty"`
	Allocations []Allocation `json:"allocations,omitempty"`
	// Revision is the store's version of the block, opaque to the
	// allocator (a Kubernetes resourceVersion, a bbolt sequence). Updates
	// and deletes succeed only against the current revision.
	Revision string `json:"-"`
}

// Capacity is the number of addresses in the block.
func (b *Block) Capacity() int { return 1 << (b.CIDR.Addr().BitLen() - b.CIDR.Bits()) }

// Used is the number of allocated addresses.
func (b *Block) Used() int { return len(b.Allocations) }

// Clone is a deep copy.
func (b Block) Clone() Block {
	b.Allocations = append([]Allocation(nil), b.Allocations...)
	return b
}

// Handles lists the distinct handle keys allocated in the block.
func (b *Block) Handles() []string {
	var hs []string
	seen := map[string]bool{}
	for _, a := range b.Allocations {
		k := a.Handle.String()
		if !seen[k] {
			seen[k] = true
			hs = append(hs, k)
		}
	}
	return hs
}

// firstFree is the lowest address of the block not allocated, and its
// position in Allocations. Calico hands out every address of a block,
// the network and broadcast addresses included (pods get /32 and /128
// routes, nothing uses the block as a subnet), and so does this.
func (b *Block) firstFree() (netip.Addr, int, bool) {
	a := b.CIDR.Addr()
	for i, al := range b.Allocations {
		if al.Addr != a {
			return a, i, true
		}
		a = a.Next()
	}
	if len(b.Allocations) < b.Capacity() {
		return a, len(b.Allocations), true
	}
	return netip.Addr{}, 0, false
}

// add inserts an allocation at the first free address; false if full.
func (b *Block) add(al Allocation) (Allocation, bool) {
	addr, i, ok := b.firstFree()
	if !ok {
		return Allocation{}, false
	}
	al.Addr = addr
	b.Allocations = append(b.Allocations, Allocation{})
	copy(b.Allocations[i+1:], b.Allocations[i:])
	b.Allocations[i] = al
	return al, true
}

// remove drops the handle's allocations and returns them.
func (b *Block) remove(h Handle) []Allocation {
	var gone []Allocation
	kept := b.Allocations[:0:0]
	for _, al := range b.Allocations {
		if al.Handle == h {
			gone = append(gone, al)
		} else {
			kept = append(kept, al)
		}
	}
	b.Allocations = kept
	return gone
}

// CheckBlock verifies a block's invariants (stores call it before writing
// what they decode, tests after crashes).
func CheckBlock(b *Block) bool {
	if !b.CIDR.IsValid() || b.CIDR.Masked() != b.CIDR {
		return false
	}
	if !sort.SliceIsSorted(b.Allocations, func(i, j int) bool { return b.Allocations[i].Addr.Less(b.Allocations[j].Addr) }) {
		return false
	}
	seen := map[Handle]bool{}
	for i, al := range b.Allocations {
		if !b.CIDR.Contains(al.Addr) || (i > 0 && b.Allocations[i-1].Addr == al.Addr) || seen[al.Handle] {
			return false
		}
		seen[al.Handle] = true
	}
	return true
}

// SortBlocks sorts blocks by CIDR, IPv4 first: the order Store.ListBlocks
// returns.
func SortBlocks(bs []Block) {
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i].CIDR, bs[j].CIDR
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		return a.Bits() < b.Bits()
	})
}
