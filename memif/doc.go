// Package memif is xvs's side of the memif shared-memory interface,
// protocol version 2 as FD.io VPP's libmemif defines it (memif.h): xvs is
// the server (master); pods and packet applications (DPDK's net_memif,
// libmemif, VPP, gomemif) connect as clients (slaves). A port driver wraps
// an Interface's queues; nothing here knows about the switch.
//
// What it owns:
//   - Server: one SOCK_SEQPACKET unix socket (a path, or "@name" for an
//     abstract socket), serving any number of interfaces told apart by the
//     id the client asks for in INIT. Per connection it runs the handshake
//     (HELLO, INIT, ADD_REGION with the memfd, ADD_RING with the eventfd,
//     CONNECT, CONNECTED; an ACK per client message) and owns what the
//     client handed over: the mapped regions and the eventfds. Everything a
//     client says is checked before use: message size and type, version,
//     id, mode, secret, region and ring indices and counts, a region's
//     memfd size and its F_SEAL_SHRINK seal (a mapping past the end of its
//     file would kill the process with SIGBUS), each ring's bounds,
//     alignment and cookie. A refusal is counted and sent as DISCONNECT
//     with the reason; the peer may try again.
//   - Interface: fixed RxQueue and TxQueue objects per queue pair, filled
//     at CONNECT and emptied when the peer disconnects, dies or breaks the
//     ring protocol; its Status is what `xvsctl show ports` prints.
//   - The rings: the client lays out rings S2M then M2S then buffers; the
//     client writes head, the server tail, of both. Head and tail are read
//     and written with atomics (acquire/release; Go's are sequentially
//     consistent), the rest of the ring is plain memory ordered by them.
//     The server keeps its own copy of every index it owns and never trusts
//     the shared one; each descriptor is copied out once, checked
//     (CheckDesc: region, bounds in 64-bit arithmetic, length) and only the
//     copy is used, so a peer rewriting shared memory cannot move a read or
//     write outside the mapping. A head that moves by more than the ring
//     holds (forwards or backwards), a bad descriptor or a chain longer
//     than the ring closes the connection with a DISCONNECT naming it.
//   - Client: the slave side, for tests, benchmarks and tools.
//
// Data path: RxQueue.Receive copies frames (chained buffers joined) into
// caller slices at a caller offset (UMEM frames with headroom);
// TxQueue.Transmit copies caller frames into the peer's buffers, chaining
// when needed, and publishes a burst with one store. Frames never stay in
// shared memory after a call returns, so a peer that goes away takes no xvs
// buffer with it: in-flight frames are the peer's own. Interrupt mode: the
// peer signals RxQueue.EventFD after filling a ring, TxQueue.Kick signals
// the peer unless it masked interrupts; with InterfaceConfig.Polling the
// server masks its rings and the peer never signals.
//
// Negotiation: memif has no buffer-size negotiation; the client sizes its
// buffers and Status reports what its M2S descriptors offer. HELLO goes out
// before INIT names an interface, so it offers the largest queue count and
// ring size among the socket's interfaces (max ring fields are the highest
// index, as libmemif and DPDK read them); ADD_RING refuses what the chosen
// interface cannot serve. The socket file is created with the process's
// umask; whoever places it for a pod sets its mode.
//
// Peers seen in tests: DPDK 22.11's net_memif overruns its S2M ring when a
// chained frame takes exactly the last free slots (its free-slot counter
// wraps below zero); the server sees head jump past the ring and
// disconnects. gomemif v0.1.0 reads HELLO's max ring fields as counts and
// copies a frame's start into every buffer of a chain.
//
// Concurrency: one goroutine per queue (the worker) calls Receive/Transmit,
// Kick and ClearInterrupt; Status, Counters and the Server/Interface calls
// are safe from any goroutine. Each connection has a control goroutine;
// before it unmaps a region it withdraws the queue state (an atomic
// pointer) and waits until no burst is using it (a per-queue in-use mark set
// around each burst), so a disconnect never pulls memory from under a
// worker. OnState runs on the control goroutine.
//
// Allocation: Receive, Transmit, Kick, ClearInterrupt and Counters do not
// allocate (testing.AllocsPerRun holds them to zero); they take no lock and
// make no system call except the eventfd read or write. Control-plane calls
// allocate.
package memif
