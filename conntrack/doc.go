// Package conntrack is the dataplane's connection-tracking table: the
// flows the NAT stage translates (services, natOutgoing) and remembers,
// one entry per flow holding both directions' keys.
//
// # What it owns
//
//   - Flow keys (Key): family, protocol, addresses and ports, for TCP,
//     UDP and ICMP/ICMPv6 echo (the identifier as both ports). An ICMP
//     error is looked up with the reverse of the key of the packet it
//     quotes (package nat parses it), so it finds the flow it is about.
//   - Per-flow state: the original and reply keys (the translation is
//     what they differ by: a packet matching one key is rewritten to the
//     reverse of the other, Flow.Target), the TCP state from the flags
//     seen (SYN_SENT ... TIME_WAIT, CLOSE; Linux's machine without window
//     tracking), UNREPLIED/REPLIED for UDP and ICMP, state-aware timeouts
//     (Linux's defaults), per-direction packet and byte counters, and a
//     caller's mark (service or backend number).
//   - SNAT port allocation (CreateSNAT): a port from the caller's range
//     per node address and protocol, chosen so that the reply key is no
//     other flow's. The entry is the allocation: nothing else to free.
//   - Limits: a fixed size; at most MaxEmbryonicPerSource flows per source
//     address that have not completed a handshake or seen a reply (a SYN
//     flood from one address is capped there; TestSYNFlood measures it);
//     and when the table is full, early eviction of the oldest embryonic
//     flow among the next EvictScan entries of a clock hand, so that a
//     flood from many addresses takes room from other embryonic flows but
//     never from established ones. What cannot be placed is refused with
//     an Outcome the caller counts as a drop; Stats counts them too.
//   - The control plane's side: Sweep (expiry), Walk and Filter (for
//     `xvsctl show conntrack [filter]`), DeleteFunc (flows of a removed
//     backend), Stats.
//
// # Concurrency contract
//
// One table is shared by every worker; no flow is pinned to a worker.
// Pinning (per-worker shards) would need both directions of a flow on the
// same worker, which RSS and AF_XDP queues do not give once the reply
// carries other addresses than the request (DNAT, SNAT), and a handoff per
// packet costs more than the lookup. Instead:
//
//   - Lookup takes no lock. Entries live in a slab allocated at New; each
//     is linked into two hash chains (one per direction) of a bucket array
//     twice the size of the slab. Every field a reader loads is atomic,
//     and each entry has a sequence number, even while live and bumped
//     when it is removed and again when it is reused: a reader that sees
//     the same even number before and after reading an entry read one
//     generation of it, otherwise it walks the chain again (after four
//     tries it takes the bucket's lock). Each node also records its
//     bucket: a link of an entry removed and reused under the reader
//     would lead it into another chain, where it would miss a live flow;
//     seeing a node of another bucket, it walks again (TestConcurrent
//     missed 2 of 80,000 lookups under -race without this check). A lookup that misses because its
//     chain changed under it only sends the caller to Create, which looks
//     again under the lock and returns Existed.
//   - Create and removal take the spin locks of the one or two buckets
//     they change (in address order). With 2 to 8 workers and a bucket per
//     half entry, two writers meet on a bucket only when their flows hash
//     together; no global lock is taken per flow (the free list is a
//     lock-free stack, counters are atomics).
//   - Update (state, counters, last-seen time) takes no lock: the state
//     moves by compare-and-swap on a word tagged with the entry's
//     generation, so a worker holding a Flow of a removed entry fails
//     instead of changing the entry's next flow. The per-flow packet and
//     byte counts are statistics kept with plain loads and stores (a
//     locked operation per packet cost more than the lookup): two workers
//     carrying one direction of a flow at the same instant may lose an
//     increment.
//   - Sweep is for one goroutine (it keeps a cursor); Walk, DeleteFunc and
//     Stats may run from any goroutine, concurrently with the workers.
//
// # Allocation contract
//
// Lookup, Update, Create and CreateSNAT allocate nothing (TestZeroAlloc);
// New allocates everything: about 150 bytes per flow for the entry and 16
// for its two buckets. Walk, Entry.String and ParseFilter allocate (they
// are the control plane's).
//
// # Time
//
// Every time is a uint32 count of seconds (Table.Now). Workers read the
// clock once per vector and pass it down; nothing here reads it per
// packet.
package conntrack
