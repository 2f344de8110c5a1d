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
// chunked uint32 arena (64Ki words per 256 KiB chunk, found through a
// fixed-size directory so that a reader's chunk index needs no bounds
// check), in one of two encodings (trie.go has the layout):
//
//   - flat, the 256 entries: one load per level. Roots, IPv4's second
//     level, IPv6's second and third, and any node with more than 96 runs
//     of equal entries (3,655 of 64,227 nodes on the real table, mostly
//     IPv4 /16s full of /24s).
//   - compressed, poptrie-style: a 256-bit run-start bitmap, and for each
//     of its eight 32-bit words the index where that word's runs start,
//     stored next to it; then one entry per run. A lookup reads one
//     bitmap word and its neighbour (the same 8 bytes), shifts away the
//     bits after its slot, adds the popcount to the base and reads the
//     entry. The sparse IPv6 nodes shrink from 1 KiB to 70-90 bytes.
//
// The writer keeps its own record per node (wnode: ART-indexed prefix
// bitmap, child bitmap, one compact slice of values and child numbers) and
// encodes a node only when a batch is published, once per batch however
// many of its prefixes changed, children before parents. A node whose only
// changes are next-hop values of existing prefixes or its children's new
// blocks is not re-encoded: its block is copied and patched. Each node
// links the patches it needs: a prefix's leaf changed (replaced in the
// prefix's runs, unless a run is shared with an equal neighbour, which falls
// back to a full encode), or a child will have a new block (a child is
// linked to its parent's patches when it is first marked dirty, so patching
// a parent visits only the children that changed, not all of them).
//
// The writer's cost is mostly cache misses: its records (13 MiB for the
// real table) and the arena (11 MiB fresh, about 100 MiB under churn) are
// far larger than the caches, and a batch of random
// routes touches a different node for nearly every route. So Apply walks
// each window of 128 routes down the trie level by level first (trie.warm,
// reading what the changes will read), and encodeDirty, for each window of
// 128 nodes it will copy, allocates their fresh blocks and reads a word per
// cache line of the old and the new block (trie.warmBlocks): the misses of
// different routes and nodes overlap instead of queuing behind each other,
// as the batch lookups overlap theirs. The walk's answer also spares
// insert its own walk to an existing route. Next hops are interned through
// a 1,024-entry cache (a cheap hash of the identity fields, verified with
// sameIdentity) in front of the map, and a route with the same next hop as
// the one before it in the batch (a BGP UPDATE's prefixes) skips both.
//
// The batch forms walk the whole vector one level at a time, so the cache
// misses of the vector's addresses overlap instead of queuing behind each
// other, and each level visits only the addresses still pending, kept in a
// list compacted without branches (IPv6 lookups end at very different
// depths: a random address leaves the trie after two or three levels, a /48
// takes six). Entries and pending positions live in stack arrays indexed by
// uint8 (no bounds checks), and the levels that are always flat (depth 8,
// and 16 for IPv6) skip the test of the node's kind.
//
// The numbers that chose it (bart v0.30.0's real table, 901,899 IPv4 and
// 160,147 IPv6 prefixes; docs/BENCHMARKS.md "## FIB" has the runs and the
// commands; 2 cores shared with other work, Go 1.26; min-max of 3 or more
// interleaved runs):
//
//   - Memory: the first design stored every node flat (80.6 MiB against
//     bart.Table's 26.1 MiB). Compressed nodes held the same table in
//     23.0 MiB with a 10-word header (bitmap, then the per-word run counts
//     packed in bytes); the 16-word header that saves the lookup the
//     unpacking costs 1.5 MiB: 24.7 MiB now (0.94x bart.Table). Trimming
//     append's slack from the value slices at encode time saved 1.4 MiB.
//   - Lookup cost of compression, batches of 32/64 with 1,024 rotating
//     probes against bart.Fast in the same run: all-flat gave 2.7x (IPv4)
//     and 2.5x (IPv6); compressing every node but roots and >96-run nodes
//     gave 2.35x and 1.54x. Flat IPv6 second and third levels (59 nodes,
//     about 60 KiB) brought IPv6 to 1.9x, and math/bits.OnesCount32 instead
//     of a branch-free SWAR popcount to 2.0x (2.42-2.51x IPv4, 2.02-2.04x
//     IPv6 re-measured alongside the current code). Then: the fixed-size
//     chunk directory and uint8-indexed stack arrays, +6-9% (a SWAR
//     popcount, or selecting the flat/compressed index without a branch,
//     lost 10-20% again: the flat levels are predictable); the 16-word
//     header, bitmap and base words side by side, and a shift instead of a
//     mask, roughly another +5% for IPv6. Now
//     2.53-2.89x IPv4 and 2.19-2.35x IPv6; with 2^20 probes
//     (cache-missing) 7.3-9.5x and 3.6-4.7x. Raising the flat threshold to
//     48 runs did little for IPv6 and cost 3 MiB (over bart.Table);
//     fusing the always-flat levels into the first pass without branches,
//     and walking groups of 64 instead of 256, were slower. step now
//     inlines, so single lookups are 1.95-2.08x (IPv4) and 1.47-1.50x
//     (IPv6) bart.Fast, from 1.3x and 1.05x.
//   - Updates, random real-table next-hop changes with a reader looking up
//     without pause, per writer CPU-second (BenchmarkUpdate "routes/cpu-s";
//     "apply-routes/cpu-s" counts only the CPU inside Apply, leaving out
//     drawing the random routes): all-flat copy-on-write 0.70M; encoding
//     each touched node once per publish 0.76-0.80M; copying and patching
//     blocks and linking the patches per node 0.67-0.76M at batches of
//     1,000 and 0.92-1.01M at 10,000 (re-measured alongside the current
//     code; 0.81M and 1.01M when first measured, on a quieter machine).
//     Child patches (the parents' patching had read every child's record:
//     a /8 node has 256) and the warm passes: 0.92-1.03M at 1,000 and
//     1.19-1.34M at 10,000 (inside Apply 1.06-1.22M and 1.48-1.62M). What
//     remains: the copies themselves (at 1,000 a batch copies ~790 KiB,
//     a quarter of it the ~190 flat IPv4 /8 nodes, each copied whole for a
//     few changed children), the misses the warm passes overlap but cannot
//     avoid, and the GC, which the retired blocks keep running nearly back
//     to back: letting 64 MiB wait instead of 16 MiB gave +10-15% for
//     more memory, and was not kept. Those GCs marked the benchmark's own
//     bart tables too; without them (BenchmarkUpdate now releases the
//     lookup fixture) the wall-clock rate with the reader spinning on the
//     other core is 1.18-1.25M routes/s at batches of 10,000 and
//     0.76-0.90M at 1,000 (per writer CPU-second 1.43-1.48M and
//     1.11-1.18M). Replacing GC-proved reclamation by the workers'
//     quiescent states (each worker publishes the view it is done with)
//     would take the GC off the writer's path; not done.
//   - Memory under churn: retired blocks wait for a GC (above); after the
//     update benchmark the FIB holds 88-146 MiB (Stats.MemoryBytes),
//     against 172-187 MiB for the all-flat design. It follows the GC's
//     latency times the retirement rate, so it swings from run to run.
//
// Not built: path compression. On the real table few lookups pass through
// nodes with one child and no prefix (73 of 3,407 IPv6 lookup steps for
// the benchmark's probes), so it would not move these figures; it would
// shorten pod /128 lookups (16 levels, most of them such nodes), which no
// benchmark here measures yet.
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
// with -race) and the fuzz seeds; -short shrinks all of them. patch_test.go
// drives the copy-and-patch path (leaf and child patches in flat and
// compressed parents, the shared-run fallback, more patches than a batch
// can link), the compressed-header helpers and the next-hop cache. XVS_LONG=1
// runs the heavy variants (millions of random operations). Benchmarks:
// `go test -run='^$' -bench=. ./fib/`.
package fib
