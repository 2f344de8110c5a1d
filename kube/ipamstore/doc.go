// Package ipamstore is an ipam.Store on the Kubernetes API, for a
// cluster whose nodes share their pools and blocks through the API server
// (Calico's Kubernetes-datastore mode) instead of each keeping a local
// bbolt file.
//
//   - Pools are IPPool objects (group xvs.dev). Pools that fail the
//     allocator's rules (overlap, block size, node selector) are refused
//     one by one, listed by Refused and, with Options.Kube, reported as an
//     Event (reason InvalidIPPool) naming the field; the others apply.
//   - Blocks are IPAMBlock objects holding their node affinity and their
//     allocations, so an address and its owner are one object and one
//     update, as the ipam.Store contract asks. A block's Revision is its
//     resourceVersion: CreateBlock maps AlreadyExists to ipam.ErrExists
//     (another node claimed the CIDR first), UpdateBlock and DeleteBlock
//     send the resourceVersion and map Conflict to ipam.ErrConflict, so two
//     nodes never hold the same block or address.
//   - Reads come from informer caches, with an overlay of this process's
//     own completed writes (overlay.go) so an Assign repeated at once sees
//     its address before the watch brings it back. BlocksByHandle is an
//     informer index.
//   - There is no BatchStore: the API has no multi-object transaction. A
//     dual-stack pod's two families are two block updates, and a crash
//     between them leaves one address, which the allocator's repeated
//     Assign completes and Release or GC frees (see ipam.BatchStore).
//   - Reclaimer releases the blocks and addresses of nodes whose Node
//     object has been gone for a grace period. Every node runs one, with
//     no leader: the compare-and-swap makes concurrent reclaims safe.
//
// Tests run the ipam/ipamtest conformance suite, read-your-writes, six
// nodes racing for the last free block, restart re-adoption and the
// reclaimer against a real etcd and kube-apiserver (e2e/kubeapi).
//
// Not yet done: xvsd does not use this store; with a kubernetes: section
// its CNI server still allocates from the local bbolt store, fed with the
// cluster's IPPools by the node agent (kube/agent).
package ipamstore
