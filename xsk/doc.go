// Package xsk is xvs's AF_XDP layer, on golang.org/x/sys/unix: the Umem
// (frames shared by all ports of one worker, with an O(1) free stack), its
// registration with the kernel (XDP_UMEM_REG), and sockets with their four
// mmap'd rings.
//
// What it owns:
//   - Umem: the frame memory and which frames the kernel holds. Each frame
//     is owned by user space (free stack or a worker's vector) or by exactly
//     one socket's kernel rings; Socket.Close gives back what its rings held.
//   - Socket: one AF_XDP socket on a device queue. The first socket on a Umem
//     registers it; later ones share that registration (XDP_SHARED_UMEM) and
//     each gets its own fill and completion ring, so one Umem serves sockets
//     on several devices and queues. The kernel takes the copy/zero-copy mode
//     of a shared socket from the first one; when that does not fit (a
//     zero-copy NIC and a copy-only veth) Open registers the same memory
//     anew for the socket, so frame addresses still mean the same everywhere.
//   - Rings: FillRing and TxRing are producer rings (Reserve, Set, Submit,
//     Cancel); RxRing and CompletionRing consumer rings (Peek, Get, Release).
//     Sizes are powers of two; indices run freely and are masked. Each ring
//     caches the kernel's index and loads the shared atomic only when the
//     cache says full (producer) or empty (consumer); Submit and Release
//     publish with one atomic store per batch.
//   - need_wakeup: sockets bind with XDP_USE_NEED_WAKEUP; KickTx and KickRx
//     make the sendto/recvfrom only when the kernel set the ring's flag (copy
//     mode always asks on tx).
//
// Bind falls back from zero-copy to copy mode unless told otherwise
// (Config.Bind). A queue freed by a socket closed a moment ago may still be
// busy (the kernel releases it from a work item); Open retries EBUSY for up
// to half a second.
//
// Concurrency: a Umem and its sockets belong to one worker goroutine; nothing
// here locks. Close a Umem only after all its sockets.
//
// Allocation: the per-batch calls (ring methods, Refill, RxTake, TxPut,
// Reclaim, KickTx, KickRx, Umem.Alloc/Free/Bytes/Frame) do not allocate;
// tests hold them to zero with testing.AllocsPerRun. Open, Stats and Close
// may.
//
// Package xsktest holds the namespace and veth helpers the kernel tests of
// this package, xdpprog and the vswitch ports share.
package xsk
