package ipam

import (
	"context"
	"net/netip"
)

// Store is where pools and blocks live. The allocator keeps no state of
// its own: every decision is read from the store and committed with a
// compare-and-swap on a block's Revision, so several allocators (one per
// node, in different processes or on different machines) can share one
// store, and a crash at any point leaves the store as the last committed
// write left it.
//
// An address and its owner are one record inside the block (Allocation),
// so committing an allocation is one block update: there is no separate
// handle object that could disagree with the block. The handle index
// (BlocksByHandle) is derived from the blocks; an implementation keeps it
// in step in the same transaction (bbolt) or derives it from the blocks it
// watches (a Kubernetes informer's indexer on IPAM block objects, whose
// resourceVersion is the Revision).
//
// Reads may lag behind other processes' writes (an informer cache): a
// write against a stale Revision fails with ErrConflict and the allocator
// reads again. They must show this process's own completed writes, or an
// Assign repeated at once would not find the handle's address and would
// give it a second one.
//
// Every method returns copies: callers may modify what they get.
type Store interface {
	// ListPools returns every pool, sorted by name.
	ListPools(ctx context.Context) ([]Pool, error)
	// PutPool creates or replaces the pool with p.Name. Validation is the
	// allocator's (AddPool); the store only stores.
	PutPool(ctx context.Context, p Pool) error
	// DeletePool removes a pool; ErrNotFound if there is none.
	DeletePool(ctx context.Context, name string) error

	// ListBlocks returns every block, sorted by CIDR (IPv4 first).
	ListBlocks(ctx context.Context) ([]Block, error)
	// GetBlock returns one block; ErrNotFound if there is none.
	GetBlock(ctx context.Context, cidr netip.Prefix) (Block, error)
	// CreateBlock stores a new block and returns it with its Revision;
	// ErrExists if the CIDR has a block (another node won the claim).
	CreateBlock(ctx context.Context, b Block) (Block, error)
	// UpdateBlock replaces a block if b.Revision is still current and
	// returns it with its new Revision; ErrConflict if it is not,
	// ErrNotFound if the block is gone.
	UpdateBlock(ctx context.Context, b Block) (Block, error)
	// DeleteBlock removes a block if b.Revision is still current.
	DeleteBlock(ctx context.Context, b Block) error
	// BlocksByHandle returns the blocks holding an allocation of the
	// handle (its String()).
	BlocksByHandle(ctx context.Context, handle string) ([]Block, error)

	Close() error
}

// BatchStore is a Store that can commit updates of several blocks all or
// nothing (a dual-stack pod's IPv4 and IPv6 addresses, one GC pass). The
// allocator uses it when the store has it; without it a crash between the
// two families' updates leaves the pod with one address, which a repeated
// Assign completes and Release or GC frees.
type BatchStore interface {
	Store
	// UpdateBlocks applies every update if every Revision is current, or
	// none (ErrConflict, ErrNotFound). It returns the blocks with their
	// new revisions, in order.
	UpdateBlocks(ctx context.Context, bs []Block) ([]Block, error)
}
