// Package maglev chooses a service's backend for a new flow: Maglev
// consistent hashing (Table) over the service's ready backends, and the
// sessionAffinity: ClientIP table (Affinity).
//
// # What it owns
//
//   - Table: the paper's lookup table of M slots (M prime, SizeFor picks
//     it, at most 65537), filled from each backend's permutation of the
//     slots, which depends on the backend's name only. A change of
//     backends moves about 1/N of the flows (TestDisruption: removing one
//     of N, adding one to N, at a fixed M). Established flows do not
//     depend on it: conntrack remembers their backend.
//   - Affinity: client address and service to backend, with the
//     service's timeout, in a fixed-size 4-way set-associative table.
//
// # Concurrency contract
//
// A Table is immutable once built: the control plane builds a new one
// when a service's endpoints change and publishes it (atomic.Pointer);
// any number of workers look up in it. Affinity is shared by the
// workers: Lookup takes no lock (a sequence number per way), Set and
// Forget take one spin lock per set of four ways.
//
// # Allocation contract
//
// Table.Lookup, Affinity.Lookup and Affinity.Set allocate nothing
// (TestLookupZeroAlloc); New and NewAffinity allocate everything: 2 bytes
// per slot of a Table, 40 bytes per client of an Affinity.
package maglev
