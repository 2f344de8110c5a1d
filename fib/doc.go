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
// and leaf pushing. Conceptually a node is 256 uint32 entries; an entry is
// either a child (childBit, flatBit if the child is flat, block offset) or
// a leaf holding the answer for every address reaching that slot: prefix
// length<<23 | next-hop index
// (hence MaxNextHops = 2^23). Readers see each node as one block in a
// chunked uint32 arena (64Ki words per 256 KiB chunk), in one of two
// encodings (trie.go has the layout):
//
//   - flat, the 256 entries: one load per level. Roots, IPv4's second
//     level, IPv6's second and third, and any node with more than 96 runs
//     of equal entries (3,655 of 64,227 nodes on the real table, mostly
//     IPv4 /16s full of /24s).
//   - compressed, poptrie-style: a 256-bit run-start bitmap, per-32-slot
//     cumulative counts and one entry per run; a lookup reads one bitmap
//     word and one count word (independent loads from the same header),
//     a popcount, then the entry. The sparse IPv6 nodes shrink from 1 KiB
//     to 50-60 bytes.
//
// The writer keeps its own record per node (wnode: ART-indexed prefix
// bitmap, child bitmap, one compact slice of values and child numbers) and
// encodes a node only when a batch is published, once per batch however
// many of its prefixes changed, children before parents. A node whose only
// changes are next-hop values of existing prefixes or its children's new
// blocks is not re-encoded: its block is copied and patched (leaf values
// replaced in the prefix's runs, child entries repointed), unless a
// patched run is shared with an equal neighbour, which falls back to a full
// encode.
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
// command; 2 cores, Go 1.26):
//
//   - Memory: the first design stored every node flat (80.6 MiB against
//     bart.Table's 26.1 MiB). Compressed nodes hold the same table in
//     23.0 MiB (0.88x bart.Table): 9.2 MiB arena, 8.4 MiB of wnodes,
//     4.7 MiB of prefix values and child numbers. Trimming append's slack
//     from the value slices at encode time saved 1.4 MiB.
//   - Lookup cost of compression, batches of 32/64 with 1,024 rotating
//     probes against bart.Fast in the same run: all-flat gave 2.7x (IPv4)
//     and 2.5x (IPv6); compressing every node but roots and >96-run nodes
//     gave 2.35x and 1.54x. Flat IPv6 second and third levels (59 nodes,
//     about 60 KiB) brought IPv6 to 1.9x, and math/bits.OnesCount32 instead
//     of a branch-free SWAR popcount to 2.0x (the POPCNT feature check costs
//     less than the extra instructions). Final: 2.48-2.67x IPv4, 2.01-2.02x
//     IPv6; with 2^20 probes (cache-missing) 6-8x and 3.8-4.1x. Single
//     lookups lost most of their lead (1.3x IPv4, 1.0x IPv6): step is too
//     large to inline.
//   - Updates, random real-table next-hop changes with a reader looking up
//     without pause, per writer CPU-second: all-flat copy-on-write 0.70M
//     (batches of 1,000 and 10,000); encoding each touched node once per
//     publish 0.76-0.80M (painting the 256 entries and finding runs is
//     most of it); copying and patching blocks instead 0.92M, and linking
//     patches per node instead of sorting them 1.0M at batches of 10,000,
//     0.81M at 1,000. What remains is mostly cache misses: walking to the
//     writer's node, reading the old block and writing the new one.
//   - Memory under churn: retired blocks wait for a GC (above); after the
//     update benchmark the FIB holds 87-117 MiB (Stats.MemoryBytes), against
//     172-187 MiB for the all-flat design.
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
