// Package port is the boundary between the switch and the kernel's (or a
// peer's) packet interfaces: the batched Port interface every driver
// implements, the frames it moves (Packet in a worker's Umem with
// Headroom in front, LargeFrame for GSO super-frames), the capabilities a
// driver may add (capability.go: offloads, prefix and VTEP steering,
// fast-path attach state, kernel statistics, further NIC queues, links
// that come and go, extra status), and the
// Registry that picks a port's driver by its mode, ModeAuto's fallback
// order included.
//
// The drivers live beside it, one package each: afxdp (AF_XDP rings over
// the worker's Umem), afpacket (AF_PACKET with PACKET_VNET_HDR),
// memif (shared-memory rings with a pod's application, ModeMemif) and
// porttest (channel-backed doubles for tests).
//
// # Concurrency
//
// A port belongs to one worker and is called only from its goroutine,
// except Close, after the worker stopped. Driver.Open runs on the serving
// worker's goroutine or before the worker starts. A Registry is filled
// before use and read-only after.
//
// # Allocation
//
// Receive, Transmit, Flush and TransmitLarge allocate nothing per call;
// opening a port allocates.
package port
