package vswitch

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
)

// neighbors tracks the uplink's neighbours. The switch never answers or
// sends ARP/NDP on the uplink itself: the host's kernel owns that link, so
// the switch asks the kernel to resolve (NTF_USE, as if it had traffic for
// the address) and follows the kernel's neighbour table over netlink. A
// resolved neighbour becomes a prebuilt L2 rewrite in the FIB, and a host
// route when it sits on a connected subnet.
type neighbors struct {
	s    *Switch
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex // guards entries
	entries map[nbrKey]nbrEntry
}

type nbrKey struct {
	port uint16
	addr netip.Addr
}

type nbrEntry struct {
	mac   [6]byte
	state string
}

func newNeighbors(s *Switch) *neighbors {
	return &neighbors{s: s, entries: make(map[nbrKey]nbrEntry)}
}

func (n *neighbors) start() error {
	ch := make(chan netlink.NeighUpdate, 256)
	n.done = make(chan struct{})
	err := netlink.NeighSubscribeWithOptions(ch, n.done, netlink.NeighSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			if !n.s.closing.Load() {
				n.s.log.Warn("neighbour monitor", "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for u := range ch {
			n.update(u)
		}
	}()
	return nil
}

func (n *neighbors) stop() {
	if n.done != nil {
		close(n.done)
		n.done = nil
		n.wg.Wait()
	}
}

// uplinkByIfindex returns the uplink port on ifindex.
func (s *Switch) uplinkByIfindex(ifindex int) *portState {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.ports {
		if ps.kind == spec.PortUplink && ps.ifindex == ifindex && ps.primary == nil {
			return ps
		}
	}
	return nil
}

func nudString(state int) string {
	switch {
	case state&netlink.NUD_PERMANENT != 0:
		return "permanent"
	case state&netlink.NUD_REACHABLE != 0:
		return "reachable"
	case state&netlink.NUD_STALE != 0:
		return "stale"
	case state&netlink.NUD_DELAY != 0:
		return "delay"
	case state&netlink.NUD_PROBE != 0:
		return "probe"
	case state&netlink.NUD_INCOMPLETE != 0:
		return "incomplete"
	case state&netlink.NUD_FAILED != 0:
		return "failed"
	case state&netlink.NUD_NOARP != 0:
		return "noarp"
	}
	return "none"
}

const nudValid = netlink.NUD_PERMANENT | netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_NOARP

func (n *neighbors) update(u netlink.NeighUpdate) {
	ps := n.s.uplinkByIfindex(u.LinkIndex)
	if ps == nil {
		return
	}
	addr, ok := netip.AddrFromSlice(u.IP)
	if !ok {
		return
	}
	addr = addr.Unmap()
	if addr.IsMulticast() {
		return // the kernel's NOARP multicast entries are no next hops
	}
	key := nbrKey{port: ps.id, addr: addr}
	valid := u.Type == unix.RTM_NEWNEIGH && u.State&nudValid != 0 && len(u.HardwareAddr) == 6
	var mac [6]byte
	if valid {
		copy(mac[:], u.HardwareAddr)
	}
	n.mu.Lock()
	old, had := n.entries[key]
	if u.Type == unix.RTM_DELNEIGH {
		delete(n.entries, key)
	} else {
		n.entries[key] = nbrEntry{mac: mac, state: nudString(u.State)}
	}
	n.mu.Unlock()
	if valid {
		if had && old.mac == mac && old.state != "incomplete" && old.state != "failed" && old.state != "none" {
			return
		}
		n.s.fib.SetRewrite(ps.id, addr, mac, ps.mac, true)
		if ps.onSubnet(addr) {
			err := n.s.fib.Add(fib.Route{
				Prefix:  netip.PrefixFrom(addr, addr.BitLen()),
				NextHop: fib.NextHop{Kind: fib.KindAdjacency, Port: ps.id, Via: addr, DstMAC: mac, SrcMAC: ps.mac, Resolved: true},
				Origin:  fib.OriginConnected,
			})
			if err != nil {
				n.s.log.Warn("install neighbour route", "addr", addr, "err", err)
			}
		}
		n.s.log.Debug("neighbour resolved", "port", ps.name, "addr", addr, "mac", fmtMAC(mac))
		return
	}
	if !had || old.mac == ([6]byte{}) {
		return
	}
	// Lost: unresolve gateways through it and drop its host route.
	n.s.fib.SetRewrite(ps.id, addr, [6]byte{}, ps.mac, false)
	p := netip.PrefixFrom(addr, addr.BitLen())
	if r, ok := n.s.fib.Get(0, p); ok && r.NextHop.Kind == fib.KindAdjacency && r.NextHop.Via == addr && r.Origin == fib.OriginConnected {
		n.s.fib.Delete(0, p)
	}
}

// onSubnet reports whether a is on one of the port's connected subnets.
func (ps *portState) onSubnet(a netip.Addr) bool {
	for _, p := range ps.cfg.Addrs {
		if !p.IsSingleIP() && p.Contains(a) && p.Addr() != a {
			return true
		}
	}
	return false
}

// lookup returns the resolved MAC of addr on port.
func (n *neighbors) lookup(port uint16, addr netip.Addr) ([6]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.entries[nbrKey{port: port, addr: addr}]
	return e.mac, ok && e.mac != [6]byte{}
}

// resolve asks the kernel to resolve addr on the port's link.
func (n *neighbors) resolve(port uint16, addr netip.Addr) {
	if n.s.noKernel {
		return
	}
	ps := n.s.portByID(port)
	if ps == nil || ps.ifindex == 0 || ps.kind != spec.PortUplink {
		return
	}
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	err := netlink.NeighSet(&netlink.Neigh{
		LinkIndex: ps.ifindex, Family: fam, IP: net.IP(addr.AsSlice()),
		Flags: netlink.NTF_USE, State: netlink.NUD_NONE,
	})
	if err != nil {
		n.s.log.Debug("ask kernel to resolve neighbour", "addr", addr, "err", err)
	}
}

func (n *neighbors) list() []spec.Neighbor {
	n.mu.Lock()
	keys := make([]nbrKey, 0, len(n.entries))
	ents := make([]nbrEntry, 0, len(n.entries))
	for k, e := range n.entries {
		keys = append(keys, k)
		ents = append(ents, e)
	}
	n.mu.Unlock()
	out := make([]spec.Neighbor, 0, len(keys))
	for i, k := range keys {
		name := fmt.Sprint(k.port)
		if ps := n.s.portByID(k.port); ps != nil {
			name = ps.name
		}
		out = append(out, spec.Neighbor{Port: name, Addr: k.addr, MAC: ents[i].mac, State: ents[i].state})
	}
	return out
}

func (s *Switch) startLinkMonitor() error {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if !s.closing.Load() {
				s.log.Warn("link monitor", "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.stopCh:
				close(done)
				for range ch {
				}
				return
			case u, ok := <-ch:
				if !ok {
					return
				}
				if u.Header.Type == unix.RTM_DELLINK {
					s.portDown(int(u.Index), "link deleted")
				}
			}
		}
	}()
	return nil
}

// neighUpdate builds the netlink update the kernel sends for a resolved
// neighbour (tests feed it to neighbors.update).
func neighUpdate(ifindex int, a netip.Addr, mac [6]byte) netlink.NeighUpdate {
	return netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH, Neigh: netlink.Neigh{
		LinkIndex: ifindex, IP: net.IP(a.AsSlice()), HardwareAddr: net.HardwareAddr(mac[:]), State: netlink.NUD_REACHABLE,
	}}
}
