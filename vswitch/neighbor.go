package vswitch

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/netmon"
	"github.com/xvs-project/xvs/spec"
)

// neighbors tracks the uplink's neighbours as the switch's monitor
// (package netmon) reports the kernel's table. A resolved neighbour
// becomes a prebuilt L2 rewrite in the FIB, and a host route when it sits
// on a connected subnet.
type neighbors struct {
	s *Switch

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

// uplinkByIfindex returns the uplink port on ifindex.
func (s *Switch) uplinkByIfindex(ifindex int) *portState {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.ports {
		if ps.Kind == spec.PortUplink && ps.ifindex == ifindex && ps.primary == nil {
			return ps
		}
	}
	return nil
}

// update follows one change of the kernel's neighbour table (from the
// monitor's goroutine).
func (n *neighbors) update(u netmon.Neighbor) {
	ps := n.s.uplinkByIfindex(u.Ifindex)
	if ps == nil {
		return
	}
	addr, valid, mac := u.Addr, u.Valid, u.MAC
	key := nbrKey{port: ps.ID, addr: addr}
	n.mu.Lock()
	old, had := n.entries[key]
	if u.Deleted {
		delete(n.entries, key)
	} else {
		n.entries[key] = nbrEntry{mac: mac, state: u.State}
	}
	n.mu.Unlock()
	if valid {
		if had && old.mac == mac && old.state != "incomplete" && old.state != "failed" && old.state != "none" {
			return
		}
		n.s.fib.SetRewrite(ps.ID, addr, fib.Rewrite{DstMAC: mac, SrcMAC: ps.MAC, Resolved: true})
		if ps.onSubnet(addr) {
			n.s.mu.Lock()
			err := n.s.applyLocked([]fib.Route{{
				Prefix:  netip.PrefixFrom(addr, addr.BitLen()),
				NextHop: fib.NextHop{Kind: fib.KindAdjacency, Port: ps.ID, Via: addr, DstMAC: mac, SrcMAC: ps.MAC, Resolved: true},
				Origin:  fib.OriginConnected,
			}}, nil)
			n.s.mu.Unlock()
			if err != nil {
				n.s.log.Warn("install neighbour route", "addr", addr, "err", err)
			}
		}
		n.s.log.Debug("neighbour resolved", "port", ps.Name, "addr", addr, "mac", fmtMAC(mac))
		return
	}
	if !had || old.mac == ([6]byte{}) {
		return
	}
	// Lost: unresolve gateways through it and drop its host route.
	n.s.fib.SetRewrite(ps.ID, addr, fib.Rewrite{SrcMAC: ps.MAC})
	p := netip.PrefixFrom(addr, addr.BitLen())
	n.s.mu.Lock()
	if r, ok := n.s.fib.Get(0, p); ok && r.NextHop.Kind == fib.KindAdjacency && r.NextHop.Via == addr && r.Origin == fib.OriginConnected {
		n.s.applyLocked(nil, []fib.RouteKey{{Prefix: p}})
	}
	n.s.mu.Unlock()
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
	ps := n.s.portByID(port)
	if ps == nil || ps.ifindex == 0 || ps.Kind != spec.PortUplink {
		return
	}
	if err := n.s.mon.Resolve(ps.ifindex, addr); err != nil {
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
			name = ps.Name
		}
		out = append(out, spec.Neighbor{Port: name, Addr: k.addr, MAC: ents[i].mac, State: ents[i].state})
	}
	return out
}
