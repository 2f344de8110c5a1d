package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
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

// AssignRequest asks for a pod's addresses.
type AssignRequest struct {
	Handle    Handle
	Namespace string
	Pod       string
	// IPv4 and IPv6 say which families the pod gets (both: dual-stack).
	IPv4, IPv6 bool
	// IPv4Pools and IPv6Pools restrict the pools, by name or CIDR, tried
	// in order (PodPools reads them from annotations and config). Empty:
	// every enabled pool of the family selecting the node, by name.
	IPv4Pools, IPv6Pools []string
}

// Assigned is one address given to a pod, with its pool (for the MTU,
// encapsulation and natOutgoing) and block.
type Assigned struct {
	Addr  netip.Addr
	Pool  Pool
	Block netip.Prefix
}

// Assign gives the handle one address of each requested family. It is
// idempotent: a handle that already holds an address of a family gets
// that address again (and only the missing family is allocated), so a
// repeated ADD, or one cut short by a crash, returns the same addresses.
// IPv4 comes first in the result.
//
// Per family it uses, in order: a free address in a block of the
// requested pools affine to this node; a newly claimed block; an address
// in another node's block (borrowing, only once no pool can give a block).
func (a *Allocator) Assign(ctx context.Context, req AssignRequest) ([]Assigned, error) {
	if err := req.Handle.Validate(); err != nil {
		return nil, fmt.Errorf("assign: %w", err)
	}
	if !req.IPv4 && !req.IPv6 {
		return nil, fmt.Errorf("assign %s: neither IPv4 nor IPv6 requested: %w", req.Handle, ErrInvalidRequest)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var res []Assigned
	err := a.retry(ctx, func() (err error) {
		res, err = a.assignOnce(ctx, req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("assign %s: %w", req.Handle, err)
	}
	return res, nil
}

// retry runs f until it does not lose a compare-and-swap, a bounded
// number of times, with a short random backoff so that racing nodes
// spread out.
func (a *Allocator) retry(ctx context.Context, f func() error) error {
	for attempt := 0; ; attempt++ {
		err := f()
		if !errors.Is(err, ErrConflict) || attempt >= a.retries {
			return err
		}
		d := time.Duration(rand.Int64N(int64(attempt+1) * int64(200*time.Microsecond)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

func (a *Allocator) assignOnce(ctx context.Context, req AssignRequest) ([]Assigned, error) {
	held, err := a.store.BlocksByHandle(ctx, req.Handle.String())
	if err != nil {
		return nil, fmt.Errorf("look up handle: %w", err)
	}
	pools, err := a.store.ListPools(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	var blocks []Block // read once, the first time a family needs a new address
	var res []Assigned
	var updates []Block
	for _, fam := range []struct {
		want  bool
		is6   bool
		pools []string
	}{{req.IPv4, false, req.IPv4Pools}, {req.IPv6, true, req.IPv6Pools}} {
		if !fam.want {
			continue
		}
		if al, b, ok := findHeld(held, req.Handle, fam.is6); ok {
			p, _ := poolOf(pools, b)
			res = append(res, Assigned{Addr: al.Addr, Pool: p, Block: b})
			continue
		}
		cands, err := a.resolvePools(pools, fam.pools, fam.is6)
		if err != nil {
			return nil, err
		}
		if blocks == nil {
			if blocks, err = a.store.ListBlocks(ctx); err != nil {
				return nil, fmt.Errorf("list blocks: %w", err)
			}
		}
		nb, al, p, err := a.allocate(ctx, cands, &blocks, Allocation{Handle: req.Handle, Namespace: req.Namespace, Pod: req.Pod, Node: a.node})
		if err != nil {
			return nil, err
		}
		updates = append(updates, nb)
		res = append(res, Assigned{Addr: al.Addr, Pool: p, Block: nb.CIDR})
	}
	if err := a.commit(ctx, updates); err != nil {
		return nil, err
	}
	return res, nil
}

func findHeld(held []Block, h Handle, is6 bool) (Allocation, netip.Prefix, bool) {
	for _, b := range held {
		if b.CIDR.Addr().Is6() != is6 {
			continue
		}
		for _, al := range b.Allocations {
			if al.Handle == h {
				return al, b.CIDR, true
			}
		}
	}
	return Allocation{}, netip.Prefix{}, false
}

func poolOf(pools []Pool, b netip.Prefix) (Pool, bool) {
	for _, p := range pools {
		if p.Contains(b) {
			return p, true
		}
	}
	return Pool{}, false
}

func famName(is6 bool) string {
	if is6 {
		return "IPv6"
	}
	return "IPv4"
}

// resolvePools turns the request's names and CIDRs into pools of the
// family, in the request's order.
func (a *Allocator) resolvePools(pools []Pool, requested []string, is6 bool) ([]Pool, error) {
	if len(requested) == 0 {
		var out []Pool
		for _, p := range pools {
			if p.Is6() == is6 && !p.Disabled && a.selects(p) {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no enabled %s pool selects node %q: %w", famName(is6), a.node, ErrUnknownPool)
		}
		return out, nil
	}
	var out []Pool
	seen := map[string]bool{}
	for _, r := range requested {
		p, ok := findPool(pools, r)
		if !ok {
			return nil, poolErr(r, "", "", ErrUnknownPool, "listed in %s pools, but no pool has this name or CIDR", famName(is6))
		}
		if p.Is6() != is6 {
			return nil, poolErr(r, "", "", ErrPoolConflict, "listed in %s pools, but it is an %s pool (%s)", famName(is6), famName(p.Is6()), p.CIDR)
		}
		if p.Disabled {
			return nil, poolErr(p.Name, "", "", ErrPoolDisabled, "")
		}
		if !a.selects(p) {
			return nil, poolErr(p.Name, "nodeSelector", p.NodeSelector, ErrPoolNotSelected, "node %q", a.node)
		}
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func findPool(pools []Pool, r string) (Pool, bool) {
	for _, p := range pools {
		if p.Name == r {
			return p, true
		}
	}
	if pfx, err := netip.ParsePrefix(r); err == nil {
		for _, p := range pools {
			if p.CIDR == pfx.Masked() {
				return p, true
			}
		}
	}
	return Pool{}, false
}

func (a *Allocator) selects(p Pool) bool {
	s, err := ParseSelector(p.NodeSelector)
	if err != nil {
		// A pool the store holds with a selector that does not parse
		// (written around AddPool) selects nothing rather than everything.
		return false
	}
	return s.Matches(a.labels)
}

// allocate picks an address for al in the candidate pools and returns the
// updated (not yet committed) block. Claiming a block is committed here: a
// claimed block with nothing in it is no leak, it is the node's.
func (a *Allocator) allocate(ctx context.Context, cands []Pool, blocks *[]Block, al Allocation) (Block, Allocation, Pool, error) {
	// Affine blocks first.
	for _, p := range cands {
		for _, b := range *blocks {
			if b.Affinity == a.node && p.Contains(b.CIDR) {
				nb := b.Clone()
				if got, ok := nb.add(al); ok {
					return nb, got, p, nil
				}
			}
		}
	}
	// Then a new block.
	for _, p := range cands {
		for try := 0; ; try++ {
			cidr, ok := freeBlock(p, *blocks)
			if !ok {
				break
			}
			nb, err := a.store.CreateBlock(ctx, Block{CIDR: cidr, Affinity: a.node})
			if errors.Is(err, ErrExists) {
				// Another node claimed it first: read again and take the next.
				if try > a.retries {
					return Block{}, Allocation{}, Pool{}, fmt.Errorf("claim block in pool %q: %w", p.Name, ErrConflict)
				}
				if *blocks, err = a.store.ListBlocks(ctx); err != nil {
					return Block{}, Allocation{}, Pool{}, fmt.Errorf("list blocks: %w", err)
				}
				continue
			}
			if err != nil {
				return Block{}, Allocation{}, Pool{}, fmt.Errorf("claim block %s: %w", cidr, err)
			}
			a.log.Info("claimed block", "block", cidr, "pool", p.Name, "node", a.node)
			*blocks = append(*blocks, nb)
			got, _ := nb.add(al)
			return nb, got, p, nil
		}
	}
	// Borrow from other nodes' blocks only now.
	for _, p := range cands {
		for _, b := range *blocks {
			if b.Affinity != a.node && p.Contains(b.CIDR) {
				nb := b.Clone()
				if got, ok := nb.add(al); ok {
					a.log.Info("borrowed address", "addr", got.Addr, "block", b.CIDR, "affinity", b.Affinity, "node", a.node)
					return nb, got, p, nil
				}
			}
		}
	}
	names := make([]string, len(cands))
	for i, p := range cands {
		names[i] = p.Name
	}
	return Block{}, Allocation{}, Pool{}, poolErr(strings.Join(names, ","), "", "", ErrPoolExhausted, "no free %s address, other nodes' blocks included", famName(cands[0].Is6()))
}

// freeBlock is the lowest block of the pool that no block in blocks
// overlaps.
func freeBlock(p Pool, blocks []Block) (netip.Prefix, bool) {
	bs := p.EffectiveBlockSize()
	var in []Block
	for _, b := range blocks {
		if b.CIDR.Overlaps(p.CIDR) {
			in = append(in, b)
		}
	}
	used := map[uint64]bool{}
	for _, b := range in {
		if b.CIDR.Bits() == bs && p.Contains(b.CIDR) {
			used[blockIndex(p.CIDR, bs, b.CIDR)] = true
		}
	}
	// Candidates past len(in) cannot all be taken, so the scan is bounded
	// by the blocks the pool has, not by its size.
	for i := uint64(0); i <= uint64(len(in)); i++ {
		if used[i] {
			continue
		}
		c, ok := blockAt(p.CIDR, bs, i)
		if !ok {
			return netip.Prefix{}, false
		}
		clash := false
		for _, b := range in {
			if b.CIDR.Overlaps(c) {
				clash = true
				break
			}
		}
		if !clash {
			return c, true
		}
	}
	return netip.Prefix{}, false
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
