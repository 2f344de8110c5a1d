package daemon

import (
	"net"
	"net/netip"
	"time"

	"github.com/xvs-project/xvs/netmon"
	"github.com/xvs-project/xvs/spec"
)

// Next-hop tracking: a learned route forwards only through a next hop
// the switch can reach now. A native next hop is usable while it sits on
// the connected subnet of a port that is up and the kernel has not
// marked its neighbour failed; a next hop (or peer) of bgp.vxlan is
// always usable (the tunnel's underlay is the uplink's business). The
// speaker holds prefixes with no usable next hop out of the FIB and
// brings them back when one is (bgp.Options.NextHopUsable).

// nextHopInterval is how often the daemon re-asks about the next hops in
// use and probes the native ones.
const nextHopInterval = time.Second

// portView is what the predicate needs of the switch.
type portView interface {
	Ports() []spec.PortStatus
	Neighbors() []spec.Neighbor
}

// onConnected returns the up port whose connected subnet holds a (not the
// port's own address), false if none.
func onConnected(ports []spec.PortStatus, a netip.Addr) (spec.PortStatus, bool) {
	for _, ps := range ports {
		if !ps.Up {
			continue
		}
		for _, p := range ps.Addrs {
			if !p.IsSingleIP() && p.Contains(a) && p.Addr() != a {
				return ps, true
			}
		}
	}
	return spec.PortStatus{}, false
}

// nextHopUsable is bgp.Options.NextHopUsable for xvsd.
func (s *routeSink) nextHopUsable(sw portView) func(nh, peer netip.Addr) bool {
	return func(nh, peer netip.Addr) bool {
		if _, ok := s.vxlan[nh]; ok {
			return true
		}
		if _, ok := s.vxlan[peer]; ok {
			return true
		}
		ps, ok := onConnected(sw.Ports(), nh)
		if !ok {
			return false
		}
		for _, n := range sw.Neighbors() {
			if n.Port == ps.Name && n.Addr == nh {
				return n.State != "failed"
			}
		}
		return true // not asked about yet: the first frame (or the probe) resolves it
	}
}

// trackNextHops re-checks the speaker's next hops every interval and asks
// the kernel to resolve (or confirm) each native one, as traffic of the
// host's own would: a neighbour that stopped answering turns failed and
// its routes leave the FIB; one that answers again turns reachable and
// they return. It returns when stop is closed.
func (b *bgpNode) trackNextHops(sw portView, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var mon netmon.Netlink // Resolve needs no Start
	t := time.NewTicker(nextHopInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if n := b.speaker.RecheckNextHops(); n > 0 {
			b.log.Info("bgp: next hops changed reachability", "changed", n, "nextHops", b.speaker.NextHops())
		}
		var ports []spec.PortStatus
		for _, h := range b.speaker.NextHops() {
			if _, ok := b.sink.vxlan[h.NextHop]; ok {
				continue
			}
			if _, ok := b.sink.vxlan[h.Peer]; ok {
				continue
			}
			if ports == nil {
				ports = sw.Ports()
			}
			ps, ok := onConnected(ports, h.NextHop)
			if !ok || ps.Kind != spec.PortUplink {
				continue
			}
			ifi, err := net.InterfaceByName(ps.Name)
			if err != nil {
				continue
			}
			if err := mon.Resolve(ifi.Index, h.NextHop); err != nil {
				b.log.Debug("bgp: probe next hop", "nextHop", h.NextHop, "err", err)
			}
		}
	}
}
