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
// Trie nodes live in a chunked arena of uint32 words, one block per node,
// written once and never changed while a view can reach it: a batch
// re-encodes each node it touches into a fresh block when it is published.
// A replaced block is reused only after a grace period proved by the
// garbage collector: every published view carries an epoch object that
// points to the next view's epoch, so an epoch stays reachable while any
// view up to it is held; a runtime.AddCleanup on the epoch hands the
// blocks retired by its successor back to the writer. The GC's own pacing
// does not suffice (the arena is most of the heap, so the heap-size
// trigger would let it double between cycles, again and again: 1.9 GiB
// after 2.5M random route changes in a first version), so the writer
// starts a background runtime.GC once the retired words reach half the
// live ones (at least 16 MiB), and when they reach twice the live ones (at
// least 64 MiB) with few free words left, Apply itself waits for a GC and
// its cleanups rather than growing the arena. Consequences: under
// sustained churn the FIB holds a few times its freshly built size
// (BenchmarkUpdate reports it); a view held for long pins every block
// retired after it; the arena never shrinks below its high-water mark; and
// in a process with a large pointer-rich heap (GoBGP's RIB) each forced GC
// costs in proportion to that heap.
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
// The batch forms walk the whole vector one level at a time, so the cache
// misses of the vector's addresses overlap instead of queuing behind each
// other, and each level visits only the addresses still pending, kept in a
// list compacted without branches (IPv6 lookups end at very different
// depths: a random address leaves the trie after two or three levels, a /48
// takes six).
//
// The numbers that chose it (bart v0.30.0's real table, 901,899 IPv4 and
// 160,147 IPv6 prefixes; docs/BENCHMARKS.md "## FIB" has the run and the
// command):
//
//   - Node counts, computed from the table: stride-8 tries need 26,064 IPv4
//     and 38,161 IPv6 nodes; a 16-bit IPv4 root would save only 215 nodes
//     and one L1-resident level, but every update would copy a 256 KiB root,
//     so the root is an ordinary 1 KiB node.
//   - Batch walk: a first version visited every address at every level
//     (branch-free, leaves reading an all-zero node); it gave IPv6 batches of
//     64 only 1.8-2.2x bart.Fast. Visiting only pending addresses raised that
//     to about 2.5x, and IPv4 stayed at about 2.8x.
//   - Lookup against bart.Fast, same run, interleaved pass by pass, median
//     pass, on a freshly built table: batches of 32 and 64 are 2.77x and
//     2.74x faster for IPv4, 2.47x and 2.46x for IPv6, single lookups 2.49x
//     and 2.00x, with 1,024 rotating probes; with 2^20 probes, where lookups
//     miss the caches and overlapped misses pay off, batches are 3-6x faster.
//   - Aging: after millions of random route changes the same lookups ran up
//     to about 2x slower in one run (nodes scattered over a larger arena).
//   - Memory is the price: 80.6 MiB for the full table against bart.Table's
//     26.1 MiB and bart.Fast's 38.8 MiB, because sparse IPv6 nodes are stored
//     uncompressed. The goal of no more memory than bart.Table is not met;
//     the way there is a compressed (bitmap + dense runs, poptrie style)
//     encoding for nodes with few distinct entries, at one popcount per
//     level.
//   - Updates: the writer applies 0.7M random real-table route changes per
//     CPU-second in batches of 1,000 or 10,000 while a reader looks up
//     (copying a 1 KiB node per distinct node touched dominates, then the
//     cache misses of walking to it); the 1M/s goal is not met. Wall-clock
//     rates on the shared 2-core machine are a third of that.
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
