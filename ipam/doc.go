// Package ipam is xvs's pod address management, shaped like Calico's: IP
// pools carved into per-node blocks, addresses keyed by CNI attachment,
// state in a Store that survives crashes and can be shared by nodes.
//
// # What it owns
//
//   - Pools (Pool): name, CIDR, block size (default /26 and /122; 20–32
//     and 116–128 allowed), encapsulation (none, vxlan,
//     vxlan-crosssubnet), natOutgoing, a node selector in Calico's syntax
//     (ParseSelector), disabled. Validate and ValidatePools check them;
//     AddPool refuses overlaps and changes of cidr or blockSize under
//     existing blocks.
//   - Blocks with node affinity, claimed lowest-first when a node's blocks
//     are full; the node's blocks are what it advertises (NodeBlocks).
//   - Allocations keyed by Handle (container ID, interface name), with the
//     pod's namespace and name and the allocating node, stored inside the
//     block: Assign is idempotent (the same addresses again, completing a
//     family a crash left out), Release is idempotent, GC releases this
//     node's allocations the runtime no longer lists.
//   - Pool choice per pod: PodPools reads Calico's
//     cni.projectcalico.org/ipv4pools and ipv6pools annotations (pod over
//     namespace over network config), Assign resolves names or CIDRs and
//     refuses unknown, disabled, unselected and wrong-family pools.
//   - Per family, Assign takes an affine block of the requested pools in
//     order, then claims a new block (in the first pool that has one),
//     and borrows from another node's block only when no requested pool
//     can give a block.
//   - Listings for xvsctl: Usage (pools and blocks with usage),
//     Allocations, Get.
//   - The Store interface, and the sentinel errors the CNI plugin maps to
//     codes (ErrPoolExhausted, ErrUnknownPool, ErrPoolDisabled,
//     ErrBadBlockSize, ErrPoolOverlap, …), wrapped in *PoolError naming
//     the pool, field and value.
//
// Stores: boltstore (the embedded default, a bbolt file, transactional),
// memstore (in memory, for tests and throwaway nodes); ipamtest holds the
// conformance tests every Store passes. A Kubernetes store (IPAM blocks as
// custom resources, resourceVersion as Block.Revision, an informer indexer
// for BlocksByHandle) implements the same interface without BatchStore.
//
// # Crash safety
//
// An address and its owner are one record in the block, so allocating is
// one compare-and-swap of the block: after a crash an address is either
// allocated with its handle or free. Claiming a block is a separate,
// earlier write; a crash after it leaves an empty block affine to the node,
// which it uses next time. With a BatchStore a dual-stack pod's two
// addresses commit together; without one, a crash between them leaves the
// pod one address, which the runtime's retried ADD completes (Assign is
// idempotent per family) or its DEL or GC frees.
//
// # Concurrency contract
//
// An Allocator's methods are safe for concurrent use. Writes of one
// Allocator are serialized by a mutex (Calico's CNI plugin holds a
// host-wide lock for the same reason), and Assigns that queue on it are
// computed together against one read of the store and committed in one
// write (group commit; each still succeeds or fails on its own, and a
// handle asked for twice at once is answered in a second round); writers
// of different allocators,
// processes or nodes meet only in the store's compare-and-swap, and the
// loser retries against what it then reads, a bounded number of times
// (Options.Retries) with a short random backoff. Two nodes racing for the
// last free block: one CreateBlock wins, the other gets ErrExists and
// takes the next block, borrows, or reports ErrPoolExhausted.
//
// AddPool checks overlaps against the pools it reads; two AddPool calls
// racing with overlapping CIDRs in different processes can both succeed
// (pools are an administrator's writes; the Kubernetes store will refuse
// overlaps in its admission path).
//
// # Allocation contract
//
// Control-plane code: one Assign or Release per CNI ADD or DEL, each
// reading the pools and blocks it needs from the store. Nothing here runs
// per packet. On the in-memory store an Assign costs about 25-30 µs and
// 190 allocations, on bbolt 0.6-3.3 ms, most of it the commit's two
// fdatasyncs (docs/BENCHMARKS.md "## IPAM").
//
// # Tests
//
// `go test ./ipam/...`: table tests of pools, selectors, annotations,
// assignment, borrowing, release, GC and listings; a randomized run of
// three nodes against a reference model (TestRandomAgainstReference), on
// memory, memory without batches and bbolt; group commits (requests that
// fail alone inside a group, blocks claimed under a group); 50
// concurrent goroutines over
// one node, four nodes and four allocators of one node racing through the
// compare-and-swap; two nodes racing for the last block; the store
// conformance suite on both stores; the kill -9 crash test and its
// broken-store twin (boltstore); fuzzing of the selector, the annotations
// and the bbolt block decoder. Benchmarks: `go test -run '^$' -bench .
// -benchtime 3x ./ipam/boltstore/` (Assign and Release p50/p99 in
// process, and exec'd against the host-local reference plugin).
package ipam
