package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
)

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
//
// Concurrent Assigns on one allocator are committed together: the caller
// that gets the allocator's lock takes every request queued behind it and
// commits them in one store write (group commit), so ten pods starting at
// once cost about one commit, not ten. Each request still succeeds or
// fails on its own; the batch runs under the context of the caller that
// took the lock.
func (a *Allocator) Assign(ctx context.Context, req AssignRequest) ([]Assigned, error) {
	if err := req.Handle.Validate(); err != nil {
		return nil, fmt.Errorf("assign: %w", err)
	}
	if !req.IPv4 && !req.IPv6 {
		return nil, fmt.Errorf("assign %s: neither IPv4 nor IPv6 requested: %w", req.Handle, ErrInvalidRequest)
	}
	p := &pendingAssign{req: req, done: make(chan struct{})}
	a.qmu.Lock()
	a.queue = append(a.queue, p)
	a.qmu.Unlock()
	a.mu.Lock()
	select {
	case <-p.done: // a caller before us committed it
	default:
		// p is still queued: whoever took it would have finished it
		// before releasing mu.
		a.qmu.Lock()
		batch := a.queue
		a.queue = nil
		a.qmu.Unlock()
		a.runAssigns(ctx, batch)
	}
	a.mu.Unlock()
	if p.err != nil {
		return nil, fmt.Errorf("assign %s: %w", req.Handle, p.err)
	}
	return p.res, nil
}

// pendingAssign is one queued Assign; res and err are written before done
// is closed.
type pendingAssign struct {
	req  AssignRequest
	res  []Assigned
	err  error
	done chan struct{}
}

// runAssigns commits the batch in rounds of distinct handles (a handle
// asked for twice at once gets its second answer from the first's
// commit), retrying a round that lost a compare-and-swap, and finishes
// every request.
func (a *Allocator) runAssigns(ctx context.Context, batch []*pendingAssign) {
	for len(batch) > 0 {
		var round, rest []*pendingAssign
		seen := map[Handle]bool{}
		for _, p := range batch {
			if seen[p.req.Handle] {
				rest = append(rest, p)
				continue
			}
			seen[p.req.Handle] = true
			round = append(round, p)
		}
		err := a.retry(ctx, func() error { return a.assignRound(ctx, round) })
		for _, p := range round {
			if err != nil {
				p.res, p.err = nil, err
			}
			close(p.done)
		}
		batch = rest
	}
}

// work is a round's view of the blocks: what the store returned, with the
// round's allocations applied, not yet committed.
type work struct {
	blocks  []Block
	loaded  bool
	dirty   map[netip.Prefix]bool  // blocks the round changed
	created map[netip.Prefix]Block // blocks claimed this round, as created
}

func (w *work) index(c netip.Prefix) int {
	for i := range w.blocks {
		if w.blocks[i].CIDR == c {
			return i
		}
	}
	return -1
}

// set replaces (or adds) a block the round changed.
func (w *work) set(b Block) {
	if i := w.index(b.CIDR); i >= 0 {
		w.blocks[i] = b
	} else {
		w.blocks = append(w.blocks, b)
	}
	w.dirty[b.CIDR] = true
}

// merge adds blocks other writers created since the round read; the
// round's own versions stay (if they are stale, the commit fails and the
// round starts again).
func (w *work) merge(fresh []Block) {
	for _, b := range fresh {
		if w.index(b.CIDR) < 0 {
			w.blocks = append(w.blocks, b)
		}
	}
}

type workMark struct {
	blocks []Block
	dirty  map[netip.Prefix]bool
}

func (w *work) mark() workMark {
	d := make(map[netip.Prefix]bool, len(w.dirty))
	for k := range w.dirty {
		d[k] = true
	}
	return workMark{blocks: append([]Block(nil), w.blocks...), dirty: d}
}

// undo drops one request's changes. Blocks it claimed stay, empty: their
// claim is committed already.
func (w *work) undo(m workMark) {
	w.blocks, w.dirty = m.blocks, m.dirty
	for c, b := range w.created {
		if w.index(c) < 0 {
			w.blocks = append(w.blocks, b)
		}
	}
}

// assignRound computes every request's addresses against one read of the
// store and commits them in one write. A request that fails on its own
// (pool errors, exhaustion) gets its error and leaves no trace in the
// write; a store error or a lost compare-and-swap fails the round.
func (a *Allocator) assignRound(ctx context.Context, round []*pendingAssign) error {
	pools, err := a.store.ListPools(ctx)
	if err != nil {
		return fmt.Errorf("list pools: %w", err)
	}
	w := &work{dirty: map[netip.Prefix]bool{}, created: map[netip.Prefix]Block{}}
	for _, p := range round {
		p.res, p.err = nil, nil
		held, err := a.store.BlocksByHandle(ctx, p.req.Handle.String())
		if err != nil {
			return fmt.Errorf("look up handle: %w", err)
		}
		m := w.mark()
		if err := a.assignOne(ctx, p, pools, held, w); err != nil {
			if isRoundError(err) {
				return err
			}
			w.undo(m)
			p.res, p.err = nil, err
		}
	}
	var updates []Block
	for _, b := range w.blocks {
		if w.dirty[b.CIDR] {
			updates = append(updates, b)
		}
	}
	return a.commit(ctx, updates)
}

// roundError marks errors that fail the whole round (the store's), as
// opposed to one request's.
type roundError struct{ error }

func (e roundError) Unwrap() error { return e.error }

func isRoundError(err error) bool {
	var re roundError
	return errors.As(err, &re) || errors.Is(err, ErrConflict)
}

func (a *Allocator) assignOne(ctx context.Context, p *pendingAssign, pools []Pool, held []Block, w *work) error {
	req := p.req
	for _, fam := range []struct {
		want  bool
		is6   bool
		pools []string
	}{{req.IPv4, false, req.IPv4Pools}, {req.IPv6, true, req.IPv6Pools}} {
		if !fam.want {
			continue
		}
		if al, b, ok := findHeld(held, req.Handle, fam.is6); ok {
			pl, _ := poolOf(pools, b)
			p.res = append(p.res, Assigned{Addr: al.Addr, Pool: pl, Block: b})
			continue
		}
		cands, err := a.resolvePools(pools, fam.pools, fam.is6)
		if err != nil {
			return err
		}
		if !w.loaded {
			bs, err := a.store.ListBlocks(ctx)
			if err != nil {
				return roundError{fmt.Errorf("list blocks: %w", err)}
			}
			w.blocks, w.loaded = bs, true
		}
		nb, al, pl, err := a.allocate(ctx, cands, w, Allocation{Handle: req.Handle, Namespace: req.Namespace, Pod: req.Pod, Node: a.node})
		if err != nil {
			return err
		}
		w.set(nb)
		p.res = append(p.res, Assigned{Addr: al.Addr, Pool: pl, Block: nb.CIDR})
	}
	return nil
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
// changed block (not committed; the caller puts it in w). Claiming a block
// is committed here: a claimed block with nothing in it is no leak, it is
// the node's.
func (a *Allocator) allocate(ctx context.Context, cands []Pool, w *work, al Allocation) (Block, Allocation, Pool, error) {
	for try := 0; ; try++ {
		// Affine blocks first.
		for _, p := range cands {
			for _, b := range w.blocks {
				if b.Affinity == a.node && p.Contains(b.CIDR) {
					nb := b.Clone()
					if got, ok := nb.add(al); ok {
						return nb, got, p, nil
					}
				}
			}
		}
		// Then a new block.
		nb, p, err := a.claim(ctx, cands, w)
		if errors.Is(err, ErrExists) {
			// Another writer claimed it first: learn its blocks (one may
			// be this node's, claimed by another process) and look again.
			if try >= a.retries {
				return Block{}, Allocation{}, Pool{}, fmt.Errorf("claim block in pool %q: %w", p.Name, ErrConflict)
			}
			fresh, err := a.store.ListBlocks(ctx)
			if err != nil {
				return Block{}, Allocation{}, Pool{}, roundError{fmt.Errorf("list blocks: %w", err)}
			}
			w.merge(fresh)
			continue
		}
		if err != nil {
			return Block{}, Allocation{}, Pool{}, err
		}
		if nb.CIDR.IsValid() {
			got, _ := nb.add(al)
			return nb, got, p, nil
		}
		break // no pool has a block left
	}
	// Borrow from other nodes' blocks only now.
	for _, p := range cands {
		for _, b := range w.blocks {
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

// claim creates the lowest free block of the first candidate pool that
// has one, affine to this node, and adds it to w. It returns a zero Block
// if no pool has a free block, and ErrExists (with the pool) if another
// writer took the block first.
func (a *Allocator) claim(ctx context.Context, cands []Pool, w *work) (Block, Pool, error) {
	for _, p := range cands {
		cidr, ok := freeBlock(p, w.blocks)
		if !ok {
			continue
		}
		nb, err := a.store.CreateBlock(ctx, Block{CIDR: cidr, Affinity: a.node})
		if errors.Is(err, ErrExists) {
			return Block{}, p, err
		}
		if err != nil {
			return Block{}, p, roundError{fmt.Errorf("claim block %s: %w", cidr, err)}
		}
		a.log.Info("claimed block", "block", cidr, "pool", p.Name, "node", a.node)
		w.created[cidr] = nb
		w.blocks = append(w.blocks, nb)
		return nb, p, nil
	}
	return Block{}, Pool{}, nil
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
