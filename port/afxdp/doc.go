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
// # Frames
//
// A port keeps its fill target of the worker's Umem posted (PodFill for
// pod and host ports, UplinkFill for an uplink) whether traffic comes or
// not: the kernel gives fill-ring frames back only by receiving into them,
// so targets cannot shrink under idle ports. The driver reports what it
// holds (port.Opened.Frames) and refuses, with xsk.ErrNoFrames and before
// attaching anything, a port whose target exceeds the worker's
// port.OpenRequest.FrameBudget; Open also fails if the Umem cannot stock
// the ring.
//
// # Modes
//
// Mode auto takes the driver hook (zero-copy, else copy), then generic
// XDP. Generic is refused (ErrFrameTooSmall) on an interface whose MTU
// is more than a Umem frame holds after the kernel's 256-byte headroom:
// the kernel would drop every longer frame on its way to the socket. The
// driver hook needs no such check, as drivers refuse XDP above a page's
// worth themselves (veth: ERANGE). So a jumbo veth opens in no XDP mode,
// and the switch's auto order falls back to AF_PACKET, with both
// reasons in the port's (e2e TestCNIXDPRefused).
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
