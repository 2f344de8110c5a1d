package vswitch

import (
	"net/netip"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
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

// maxRemoteFast bounds the remote destinations in the fast path.
const maxRemoteFast = 1024

// remoteFast is a remote destination's fast-path entry; through a VXLAN
// tunnel (the kernel's device, tunnel.go) when remote is valid.
type remoteFast struct {
	ifindex, mtu int
	dst, src     [6]byte
	vni          uint32
	remote       netip.Addr
	local        netip.Addr // the tunnel's source; zero: the host route's
}

// putRemote writes e into the fast path for a.
func (s *Switch) putRemote(a netip.Addr, e remoteFast) error {
	if e.remote.IsValid() {
		return s.fast.AddTunnel(a, e.ifindex, e.mtu, e.dst, e.src, e.vni, e.remote, e.local)
	}
	return s.fast.Add(a, e.ifindex, e.mtu, e.dst, e.src, false)
}

// remoteFor says how the fast path would reach a in view v: out of an
// uplink to one resolved neighbour, or not at all.
func (s *Switch) remoteFor(v *fib.View, a netip.Addr) (remoteFast, bool) {
	var idx fib.Index
	if a.Is4() {
		idx = v.Lookup4(0, a.As4())
	} else {
		idx = v.Lookup6(0, a.As16())
	}
	if idx == fib.NoRoute {
		return remoteFast{}, false
	}
	nh := v.NextHop(idx)
	if nh.Kind == fib.KindVXLAN {
		return s.tunnelFor(v, nh)
	}
	if (nh.Kind != fib.KindAdjacency && nh.Kind != fib.KindPort) || !nh.Resolved {
		return remoteFast{}, false
	}
	ps := s.portByID(nh.Port)
	if ps == nil || ps.Kind != spec.PortUplink || ps.ifindex <= 0 || ps.MTU <= 0 {
		return remoteFast{}, false
	}
	return remoteFast{ifindex: ps.ifindex, mtu: ps.MTU, dst: nh.DstMAC, src: nh.SrcMAC}, true
}

// tunnelFor is remoteFor through the VXLAN tunnel nh: into the kernel's
// device, if there is one, when the FIB's route to the remote VTEP leaves
// by an uplink (whose MTU, less the overhead, is the tunnel's). The
// kernel resolves the underlay by the host's routes.
func (s *Switch) tunnelFor(v *fib.View, nh *fib.NextHop) (remoteFast, bool) {
	dev := int(s.ktunIndex.Load())
	if dev <= 0 || !nh.Remote.IsValid() {
		return remoteFast{}, false
	}
	var idx fib.Index
	if nh.Remote.Is4() {
		idx = v.Lookup4(0, nh.Remote.As4())
	} else {
		idx = v.Lookup6(0, nh.Remote.As16())
	}
	if idx == fib.NoRoute {
		return remoteFast{}, false
	}
	under := v.NextHop(idx)
	if under.Kind != fib.KindAdjacency && under.Kind != fib.KindPort {
		return remoteFast{}, false
	}
	ps := s.portByID(under.Port)
	if ps == nil || ps.Kind != spec.PortUplink || ps.MTU <= dataplane.VXLANOverhead(nh) {
		return remoteFast{}, false
	}
	e := remoteFast{
		ifindex: dev, mtu: ps.MTU - dataplane.VXLANOverhead(nh), dst: nh.DstMAC, src: nh.SrcMAC,
		vni: nh.VNI, remote: nh.Remote,
	}
	if src := s.ktunSrc.Load(); src != nil {
		e.local = src.v6
		if nh.Remote.Is4() {
			e.local = src.v4
		}
	}
	return e, true
}

// addRemote puts a into the fast path if the FIB sends it out of an
// uplink (event loop).
func (s *Switch) addRemote(a netip.Addr) {
	if s.fast == nil || !a.IsValid() {
		return
	}
	e, ok := s.remoteFor(s.fib.View(), a)
	if !ok {
		return
	}
	if old, had := s.remotes[a]; had && old == e {
		return
	}
	if len(s.remotes) >= maxRemoteFast {
		// Full: start over. The entries flows still use come back at
		// their next frame through a worker; the rest were stale.
		s.clearRemotes()
	}
	if err := s.putRemote(a, e); err != nil {
		s.log.Warn("tc fast path: add remote destination", "addr", a, "err", err)
		return
	}
	s.remotes[a] = e
	s.remoteAdds.Add(1)
}

// recheckRemotes looks every remote destination up again after a FIB
// change: updated, or removed where the fast path may no longer take it
// (event loop).
func (s *Switch) recheckRemotes() {
	if len(s.remotes) == 0 {
		return
	}
	v := s.fib.View()
	for a, old := range s.remotes {
		e, ok := s.remoteFor(v, a)
		switch {
		case !ok:
			if err := s.fast.Remove(a); err != nil {
				s.log.Warn("tc fast path: remove remote destination", "addr", a, "err", err)
			}
			delete(s.remotes, a)
		case e != old:
			if err := s.putRemote(a, e); err != nil {
				s.log.Warn("tc fast path: update remote destination", "addr", a, "err", err)
				s.fast.Remove(a)
				delete(s.remotes, a)
				continue
			}
			s.remotes[a] = e
		}
	}
}

// clearRemotes takes every remote destination out of the fast path
// (event loop).
func (s *Switch) clearRemotes() {
	for a := range s.remotes {
		if err := s.fast.Remove(a); err != nil {
			s.log.Warn("tc fast path: remove remote destination", "addr", a, "err", err)
		}
		delete(s.remotes, a)
	}
}
