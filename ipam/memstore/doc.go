// Package memstore is an in-memory ipam.Store and ipam.BatchStore: the
// allocator's unit tests use it, and so can a node whose allocations need
// not survive a restart.
//
// # What it owns
//
// Maps of pools by name and blocks by CIDR, a handle index kept in step
// with every block write, and a revision counter (Block.Revision is its
// decimal value at the block's last write).
//
// # Concurrency contract
//
// Every method is safe for concurrent use; one mutex guards the maps, so
// UpdateBlocks is atomic as the BatchStore contract asks.
//
// # Allocation contract
//
// Each call copies what it stores and what it returns (blocks with their
// allocation slices), so callers may change either freely.
package memstore
