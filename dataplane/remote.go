package dataplane

import (
	"net/netip"
)

// Destinations on other nodes in the tc fast path.
//
// An af-packet pod's tc program forwards to the node's own pods
// (xdpprog.FastPath). For traffic to other nodes the switch puts, into
// the same map, the addresses its workers route out of an uplink for such
// a pod: the worker asks the control plane (ReqRemote, at most once a
// second per address and worker), which looks the address up in the FIB
// itself and, if it leaves by an uplink through one resolved neighbour
// (no ECMP group, no tunnel, nothing local), adds it with the
// neighbour's MAC and the uplink's MTU. From then on the pod's frames,
// TSO super-frames whole, leave through the uplink from its tc program,
// in the pod's softirq, as the kernel's routing sends them; the next hop
// and the TTL are the FIB's. Frames the program refuses (TTL 1, too big)
// still reach the worker, which answers as usual.
//
// Every FIB change (fib.Changed: routes, next hops, neighbours) makes the
// control plane look every such address up again: one that now routes
// elsewhere is updated or removed, so no entry outlives the route it
// copies. At most maxRemoteFast of them (a full set is cleared, and what
// is still in use comes back); they live only in the map and
// in Switch.remotes, which only the event loop touches. A flow moves from
// the worker to tc once, when its destination is added, and may see a
// few of its frames reordered then, as when a pod joins the fast path.
//
// Plain next hops, and VXLAN tunnels when the kernel's VXLAN device is
// there (tunnel.go); an ECMP group stays with the workers (one entry per
// address would pin every flow to one member).

// learnRemote asks the control plane to put dst, which this worker just
// routed out of an uplink for a pod with a tc fast path, into the fast
// path.
func (w *Worker) learnRemote(dst netip.Addr) {
	if !w.remotes.allow(dst, w.now) {
		return
	}
	select {
	case w.events <- Request{Kind: ReqRemote, Addr: dst}:
	default:
	}
}
