package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"sort"
	"sync"
)

// Options configures an Allocator.
type Options struct {
	// Node is the node this allocator claims blocks for. Required.
	Node string
	// NodeLabels are matched against pools' nodeSelectors.
	NodeLabels map[string]string
	// Logger receives block claims, borrows and releases; nil discards.
	Logger *slog.Logger
	// Retries bounds how often one call retries after losing a
	// compare-and-swap to another writer; 0 means 64.
	Retries int
}

// Allocator assigns pod addresses for one node from the pools and blocks
// in a Store. See the package documentation for the concurrency contract.
type Allocator struct {
	store   Store
	batch   BatchStore // store, when it commits several blocks at once; else nil
	node    string
	log     *slog.Logger
	retries int

	// mu serializes this allocator's writes, as Calico's CNI plugin holds a
	// host-wide IPAM lock: pods of one node then never race each other for
	// the same free address, and compare-and-swap retries remain for
	// writers in other processes or on other nodes. It also guards labels.
	mu     sync.Mutex
	labels map[string]string

	// qmu guards queue, the Assigns waiting for mu (see Assign).
	qmu   sync.Mutex
	queue []*pendingAssign
}

// New returns an allocator for opts.Node on store.
func New(store Store, opts Options) (*Allocator, error) {
	if opts.Node == "" {
		return nil, fmt.Errorf("ipam: node name is empty: %w", ErrInvalidRequest)
	}
	a := &Allocator{store: store, node: opts.Node, log: opts.Logger, retries: opts.Retries, labels: copyLabels(opts.NodeLabels)}
	if b, ok := store.(BatchStore); ok {
		a.batch = b
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.retries <= 0 {
		a.retries = 64
	}
	return a, nil
}

// Node is the node the allocator works for.
func (a *Allocator) Node() string { return a.node }

// SetNodeLabels replaces the labels nodeSelectors are matched against.
func (a *Allocator) SetNodeLabels(labels map[string]string) {
	a.mu.Lock()
	a.labels = copyLabels(labels)
	a.mu.Unlock()
}

func copyLabels(l map[string]string) map[string]string {
	c := make(map[string]string, len(l))
	for k, v := range l {
		c[k] = v
	}
	return c
}

// AddPool validates p, checks it against the other pools and stores it
// (creating it or replacing the pool of that name). The block size and
// encapsulation are stored with their defaults applied. A pool's cidr and
// blockSize cannot change while it has blocks (ErrPoolInUse).
func (a *Allocator) AddPool(ctx context.Context, p Pool) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p.BlockSize = p.EffectiveBlockSize()
	p.Encapsulation = p.EffectiveEncapsulation()
	pools, err := a.store.ListPools(ctx)
	if err != nil {
		return fmt.Errorf("list pools: %w", err)
	}
	var old *Pool
	for i, q := range pools {
		if q.Name == p.Name {
			old = &pools[i]
			continue
		}
		if q.CIDR.Overlaps(p.CIDR) {
			return poolErr(p.Name, "cidr", p.CIDR.String(), ErrPoolOverlap, "overlaps pool %q (%s)", q.Name, q.CIDR)
		}
	}
	if old != nil && (old.CIDR != p.CIDR || old.BlockSize != p.BlockSize) {
		blocks, err := a.store.ListBlocks(ctx)
		if err != nil {
			return fmt.Errorf("list blocks: %w", err)
		}
		for _, b := range blocks {
			if old.Contains(b.CIDR) {
				field, value := "cidr", p.CIDR.String()
				if old.CIDR == p.CIDR {
					field, value = "blockSize", fmt.Sprint(p.BlockSize)
				}
				return poolErr(p.Name, field, value, ErrPoolInUse, "cannot change while block %s exists (was %s /%d)", b.CIDR, old.CIDR, old.BlockSize)
			}
		}
	}
	if err := a.store.PutPool(ctx, p); err != nil {
		return fmt.Errorf("put pool %q: %w", p.Name, err)
	}
	return nil
}

// DeletePool removes a pool that has no allocations, with its empty
// blocks. It disables the pool first, so allocators that read it from then
// on stop claiming from it. ErrPoolInUse names a block still in use.
func (a *Allocator) DeletePool(ctx context.Context, name string) error {
	pools, err := a.store.ListPools(ctx)
	if err != nil {
		return fmt.Errorf("list pools: %w", err)
	}
	var p *Pool
	for i := range pools {
		if pools[i].Name == name {
			p = &pools[i]
		}
	}
	if p == nil {
		return poolErr(name, "", "", ErrUnknownPool, "")
	}
	if !p.Disabled {
		p.Disabled = true
		if err := a.store.PutPool(ctx, *p); err != nil {
			return fmt.Errorf("disable pool %q: %w", name, err)
		}
	}
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return fmt.Errorf("list blocks: %w", err)
	}
	for _, b := range blocks {
		if !p.Contains(b.CIDR) {
			continue
		}
		if b.Used() > 0 {
			return poolErr(name, "", "", ErrPoolInUse, "block %s holds %d addresses (the pool stays, disabled)", b.CIDR, b.Used())
		}
		if err := a.store.DeleteBlock(ctx, b); err != nil {
			if errors.Is(err, ErrConflict) {
				return poolErr(name, "", "", ErrPoolInUse, "block %s changed while deleting (the pool stays, disabled)", b.CIDR)
			}
			return fmt.Errorf("delete block %s: %w", b.CIDR, err)
		}
	}
	if err := a.store.DeletePool(ctx, name); err != nil {
		return fmt.Errorf("delete pool %q: %w", name, err)
	}
	return nil
}

// commit writes the updated blocks, all at once when the store can.
func (a *Allocator) commit(ctx context.Context, updates []Block) error {
	_, err := a.commitBlocks(ctx, updates)
	return err
}

func (a *Allocator) commitBlocks(ctx context.Context, updates []Block) ([]Block, error) {
	switch {
	case len(updates) == 0:
		return nil, nil
	case a.batch != nil && len(updates) > 1:
		return a.batch.UpdateBlocks(ctx, updates)
	}
	out := make([]Block, 0, len(updates))
	for _, b := range updates {
		nb, err := a.store.UpdateBlock(ctx, b)
		if err != nil {
			return nil, err
		}
		out = append(out, nb)
	}
	return out, nil
}

// commitRelease commits blocks that lost allocations, then deletes those
// left empty without affinity (their node is gone, as Calico does), so
// their CIDRs can be claimed again. A failed delete (someone allocated in
// the meantime) leaves the block, which is harmless.
func (a *Allocator) commitRelease(ctx context.Context, updates []Block) error {
	done, err := a.commitBlocks(ctx, updates)
	if err != nil {
		return err
	}
	for _, b := range done {
		if b.Affinity == "" && b.Used() == 0 {
			if err := a.store.DeleteBlock(ctx, b); err == nil {
				a.log.Info("deleted empty block without affinity", "block", b.CIDR)
			}
		}
	}
	return nil
}

// Release frees the handle's addresses and returns them. Releasing a
// handle that holds nothing succeeds (CNI DEL may repeat).
func (a *Allocator) Release(ctx context.Context, h Handle) ([]Allocation, error) {
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone []Allocation
	err := a.retry(ctx, func() error {
		gone = nil
		held, err := a.store.BlocksByHandle(ctx, h.String())
		if err != nil {
			return fmt.Errorf("look up handle: %w", err)
		}
		var updates []Block
		for _, b := range held {
			nb := b.Clone()
			if g := nb.remove(h); len(g) > 0 {
				gone = append(gone, g...)
				updates = append(updates, nb)
			}
		}
		return a.commitRelease(ctx, updates)
	})
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", h, err)
	}
	return gone, nil
}

// GC releases every allocation made by this node whose handle is not in
// valid, the attachments the runtime still holds (CNI GC's
// cni.dev/valid-attachments), and returns what it released.
func (a *Allocator) GC(ctx context.Context, valid []Handle) ([]Allocation, error) {
	keep := make(map[Handle]bool, len(valid))
	for _, h := range valid {
		keep[h] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone []Allocation
	err := a.retry(ctx, func() error {
		gone = nil
		blocks, err := a.store.ListBlocks(ctx)
		if err != nil {
			return fmt.Errorf("list blocks: %w", err)
		}
		var updates []Block
		for _, b := range blocks {
			nb := b.Clone()
			nb.Allocations = nb.Allocations[:0]
			for _, al := range b.Allocations {
				if al.Node == a.node && !keep[al.Handle] {
					gone = append(gone, al)
				} else {
					nb.Allocations = append(nb.Allocations, al)
				}
			}
			if len(nb.Allocations) != len(b.Allocations) {
				updates = append(updates, nb)
			}
		}
		return a.commitRelease(ctx, updates)
	})
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, al := range gone {
		a.log.Info("gc released address", "addr", al.Addr, "handle", al.Handle.String(), "pod", al.Namespace+"/"+al.Pod)
	}
	return gone, nil
}

// ReleaseNodeBlocks gives up the affinity of every block of node (a node
// that left the cluster): empty blocks are deleted, blocks still holding
// addresses stay without affinity until they empty, borrowable by all.
// It returns the blocks it changed.
func (a *Allocator) ReleaseNodeBlocks(ctx context.Context, node string) ([]netip.Prefix, error) {
	var changed []netip.Prefix
	err := a.retry(ctx, func() error {
		changed = changed[:0]
		blocks, err := a.store.ListBlocks(ctx)
		if err != nil {
			return fmt.Errorf("list blocks: %w", err)
		}
		for _, b := range blocks {
			if b.Affinity != node {
				continue
			}
			if b.Used() == 0 {
				err = a.store.DeleteBlock(ctx, b)
			} else {
				b.Affinity = ""
				_, err = a.store.UpdateBlock(ctx, b)
			}
			if err != nil {
				return err
			}
			changed = append(changed, b.CIDR)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release blocks of node %q: %w", node, err)
	}
	return changed, nil
}

// Get returns the handle's allocations (CNI CHECK), IPv4 first.
func (a *Allocator) Get(ctx context.Context, h Handle) ([]Allocation, error) {
	held, err := a.store.BlocksByHandle(ctx, h.String())
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", h, err)
	}
	var out []Allocation
	for _, b := range held {
		for _, al := range b.Allocations {
			if al.Handle == h {
				out = append(out, al)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

// NodeBlocks returns the blocks affine to node: the prefixes it
// advertises through BGP.
func (a *Allocator) NodeBlocks(ctx context.Context, node string) ([]netip.Prefix, error) {
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	var out []netip.Prefix
	for _, b := range blocks {
		if b.Affinity == node {
			out = append(out, b.CIDR)
		}
	}
	return out, nil
}

// PoolUsage is a pool with its blocks' usage, for `xvsctl show pools`.
type PoolUsage struct {
	Pool
	Size      *big.Int `json:"size"`      // addresses in the pool
	Blocks    int      `json:"blocks"`    // blocks claimed
	Capacity  int      `json:"capacity"`  // addresses in claimed blocks
	Allocated int      `json:"allocated"` // addresses allocated
}

// BlockUsage is a block with its pool and usage, for `xvsctl show blocks`.
type BlockUsage struct {
	CIDR      netip.Prefix `json:"cidr"`
	Pool      string       `json:"pool"` // "" if no pool contains it any more
	Affinity  string       `json:"affinity"`
	Capacity  int          `json:"capacity"`
	Allocated int          `json:"allocated"`
}

// Usage returns every pool and every block with their usage.
func (a *Allocator) Usage(ctx context.Context) ([]PoolUsage, []BlockUsage, error) {
	pools, err := a.store.ListPools(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list pools: %w", err)
	}
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list blocks: %w", err)
	}
	pu := make([]PoolUsage, len(pools))
	for i, p := range pools {
		pu[i] = PoolUsage{Pool: p, Size: p.Size()}
	}
	bu := make([]BlockUsage, len(blocks))
	for i, b := range blocks {
		bu[i] = BlockUsage{CIDR: b.CIDR, Affinity: b.Affinity, Capacity: b.Capacity(), Allocated: b.Used()}
		for j, p := range pools {
			if p.Contains(b.CIDR) {
				bu[i].Pool = p.Name
				pu[j].Blocks++
				pu[j].Capacity += b.Capacity()
				pu[j].Allocated += b.Used()
				break
			}
		}
	}
	return pu, bu, nil
}

// Allocations returns every allocation in the store, sorted by address,
// for `xvsctl show endpoints` and for re-adopting pods after a restart.
func (a *Allocator) Allocations(ctx context.Context) ([]Allocation, error) {
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	var out []Allocation
	for _, b := range blocks {
		out = append(out, b.Allocations...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}
