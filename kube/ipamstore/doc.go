// Package ipamstore is ipam.Store on the Kubernetes API: pools are
// IPPool objects, blocks are IPAMBlock objects (name
// v1.BlockName(cidr), node affinity and allocations in the spec),
// Block.Revision is the object's resourceVersion.
//
//   - CreateBlock is a Create: AlreadyExists is ipam.ErrExists, and the
//     existing object is read at once so the allocator's next read has it.
//   - UpdateBlock is an Update carrying the revision, DeleteBlock a Delete
//     with a resourceVersion precondition: 409 is ipam.ErrConflict (the
//     winner is read live), 404 ipam.ErrNotFound. An empty revision is
//     refused (the API server would take it as unconditional).
//   - Reads come from informers (BlocksByHandle from a handle index) plus
//     an overlay of this process's own writes and live reads (overlay.go),
//     so a process sees its completed writes at once, as ipam.Store
//     requires; an entry goes once the cache shows that version or newer.
//   - Not a BatchStore: Kubernetes has no multi-object transaction, so a
//     dual-stack pod's two blocks are two updates; the allocator's
//     documented path (a repeated Assign completes a family, DEL or GC
//     frees a half) covers a crash between them.
//   - ListPools leaves out refused pools (PoolFromObject, ValidPools: the
//     selector's syntax, overlaps (the older pool stays), and what CEL
//     already checks at admission for objects stored before it) and
//     reports each once per version in the log, Refused and, with
//     Options.Kube, a Warning Event "InvalidIPPool" naming the field.
//   - Reclaimer (every agent runs one, no leader): a node with no Node
//     object for the grace period (confirmed by a live Get) has its
//     addresses released and its blocks un-affined or deleted.
//
// Concurrency: a Store and a Reclaimer are safe for concurrent use.
// Allocation: control plane only; reads decode the cached objects.
//
// Tests: `go test -run TestAPIServer ./kube/ipamstore/` against a real
// etcd and kube-apiserver (e2e/kubeapi).
//
// xvsd uses it with a kubernetes: and an ipam: section (the daemon's
// cni.go and kubeipam.go): its CNI server's allocator claims blocks
// through it, and every node runs a Reclaimer. e2e's
// TestKubeIPAMThreeNodes runs three xvsd nodes on one shared IPPool pair
// against a real API server.
package ipamstore
