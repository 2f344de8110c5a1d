// Package afxdp is the AF_XDP port driver: one socket per NIC queue over
// the serving worker's Umem (package xsk), fed by the port's XDP program
// (package xdpprog) — everything on a pod or host veth, only pod prefixes
// and VXLAN for the node on an uplink — and, beside the ring, a send-only
// AF_PACKET socket (afpacket.Sender) that sends GSO super-frames whole.
//
// A Port implements port.PrefixSteerer and port.VTEPSteerer (its program's
// maps), port.KernelStats (XDP_STATISTICS), port.FastPathPort (its program
// carries the fast path) and port.QueueOpener (further queues share its
// program). Through AsPort it is a port.LargePort when its GSO sender is
// open.
//
// # Concurrency
//
// As package port: one worker calls a port; Close after the worker
// stopped. The steering setters are map updates, safe from the control
// plane while the worker runs.
//
// # Allocation
//
// Receive, Transmit and Flush allocate nothing (TestXDPPortReceiveAllocs).
package afxdp
