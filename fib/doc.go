// Package fib is xvs's forwarding information base: IPv4 and IPv6
// longest-prefix match for the workers, fed by the control plane (static,
// connected, pod and BGP routes).
//
// # What it owns
//
//   - Routing tables by table ID (VRF-ready; table 0 is the default and
//     always exists, others appear with their first route), one trie per
//     family per table.
//   - The next-hop table: small integer handles (Index) to adjacencies
//     (port + prebuilt L2 rewrite), VXLAN tunnels, pod ports, punt, drop and
//     ECMP groups. Next hops are interned by identity (a map) and reference
//     counted: routes, ECMP groups (on their members) and Acquire hold
//     references, and an entry dies with its last one.
//   - ECMP member selection: 256 flow-hash buckets per group filled by
//     rendezvous hashing (View.SelectECMP), so adding or removing a member
//     moves only the flows of the buckets it gains or loses.
//   - The data behind `xvsctl show routes [prefix]` and `show fib summary`:
//     Routes (ordered walk), Get, Lookup (longest match with prefix and
//     origin), Count and Stats.
//
// # Concurrency contract
//
// Writers (Add, Delete, Apply, SetRewrite, Acquire, Release) may be called
// from any goroutine; a mutex serializes them. Readers call View once per
// vector and look up in the returned *View with no lock and no atomic
// beyond that one load: a View is immutable and stays valid however long it
// is held. Apply publishes a batch atomically (readers see all of it or
// none of it), and copies only the trie nodes on the paths of the prefixes
// it changes, so its cost is proportional to the batch, not the table.
// SetRewrite republishes only the next-hop slice.
//
// Trie nodes live in an arena of fixed 256-entry slots. A slot replaced by
// copy-on-write is reused only after a grace period proved by the garbage
// collector: every published view carries an epoch object that points to
// the next view's epoch, so an epoch stays reachable while any view up to
// it is held; a runtime.AddCleanup on the epoch hands the slots retired by
// its successor back to the writer. Consequences: memory is reclaimed only
// as often as the GC runs (under sustained churn the arena can run ahead by
// up to the GOGC headroom), a view held for long pins every slot retired
// after it, and the arena never shrinks below its high-water mark.
//
// # Allocation contract
//
// View, Lookup4, Lookup6, LookupBatch4, LookupBatch6, NextHop, SelectECMP
// and LookupPrefix allocate nothing (TestLookupAllocs). Writers allocate:
// a View per publish, new nodes, next-hop copies.
//
// # Design, and the measurements that decided it
//
// Both families use the same structure: a multibit trie with 8-bit strides
// and leaf pushing, whose nodes are flat arrays of 256 uint32 entries. An
// entry is either childBit|node or a leaf holding the answer for every
// address reaching that slot: prefix length<<23 | next-hop index (hence
// MaxNextHops = 2^23). A lookup is one dependent load per address byte until
// a leaf: no bitmaps, no popcount, no pointer chasing through Go objects.
// Node IDs index a chunked arena (256 nodes per 256 KiB chunk); the chunk
// directory is tiny and stays in L1.
//
// The batch forms walk the whole vector one level at a time and without
// branches on the entry kind (a leaf reads the all-zero node 0 and keeps its
// value), so the cache misses of the vector's addresses overlap instead of
// queuing behind each other.
//
// The numbers that chose it (bart v0.30.0's real table, 901,899 IPv4 and
// 160,147 IPv6 prefixes; see docs/BENCHMARKS.md "## FIB" for the run):
//
//   - Node counts, computed from the table: stride-8 tries need 26,064 IPv4
//     and 38,161 IPv6 nodes; a 16-bit IPv4 root would save only 215 nodes
//     and one L1-resident level, but every update would copy a 256 KiB root,
//     so the root is an ordinary 1 KiB node.
//   - Lookup, 1,024 rotating random probes, same run: single lookups beat
//     bart.Fast several-fold for both families, and batches of 32 and 64
//     beat it by more than the 2x goal (figures in docs/BENCHMARKS.md).
//   - Memory is the price: about 80 MiB for the full table against bart.Table's
//     26 MiB and bart.Fast's 39 MiB, because sparse IPv6 nodes are stored
//     uncompressed. The goal of no more memory than bart.Table is not met;
//     the way there is a compressed (poptrie-style bitmap + dense runs)
//     encoding for nodes with few distinct entries, at one popcount per level.
//   - Updates: Apply of random real-table prefixes under a concurrent batch
//     reader reaches a few hundred thousand route changes per second on the
//     shared 2-core machine (batches of 1,000); bart.Table's persistent
//     insert, the way to get lock-free readers from bart, is an order of
//     magnitude slower per route.
//
// Per-length hashing for IPv6 was not built: with 40+ distinct lengths in
// the real table it needs a binary search over lengths with markers (five
// or more dependent hash probes), against four to six array loads here.
//
// # Tests
//
// `go test ./fib/` runs the randomized comparison with the reference
// (slowTable, a map probed at every length), the real table against bart on
// a million random addresses, the churn test with concurrent readers (run it
// with -race) and the fuzz seeds; -short shrinks all of them. XVS_LONG=1
// runs the heavy variants (millions of random operations). Benchmarks:
// `go test -run='^$' -bench=. ./fib/`.
package fib
