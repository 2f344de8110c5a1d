package bgp

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// member is one path of a prefix's multipath set.
type member struct {
	nh   netip.Addr
	id   uint32 // ADD-PATH identifier of the path at its peer
	peer uint16 // index into rib.peers
}

// entry is a prefix's paths and whether the sink has it.
type entry struct {
	set       []member
	installed bool
	held      bool // has paths, but none with a usable next hop: not in the sink
}

// hop is a next hop as the learning peer announced it, the key of the
// usability verdicts.
type hop struct {
	nh   netip.Addr
	peer uint16
}

// rib is the adapter between GoBGP's best-path events and the RouteSink:
// it keeps each learned prefix's set of best paths (GoBGP reports
// multipath changes as deltas), marks changed prefixes dirty, and a
// flusher hands the dirty prefixes' current state to the sink in one
// batch once a burst ends (or grows to maxBatch). Coalescing by state
// rather than by event means an announce and a withdraw of the same prefix
// within one burst cost the sink nothing.
type rib struct {
	log      *slog.Logger
	sink     RouteSink
	maxPaths int
	// multipath: GoBGP reports multipath deltas (UseMultiplePaths, on when
	// maxPaths > 1); without it, each event carries a prefix's new best.
	multipath bool
	delay     time.Duration
	maxBatch  int
	// usable says whether a next hop (learned from peer) can forward now;
	// nil: all can. Its verdicts are cached in verdict until recheck.
	usable func(nh, peer netip.Addr) bool

	mu       sync.Mutex // guards everything below
	paths    map[netip.Prefix]entry
	peers    []netip.Addr
	peerIdx  map[netip.Addr]uint16
	dirty    map[netip.Prefix]struct{}
	stats    RIBCounters
	live     int // prefixes with at least one path
	held     int // prefixes whose next hops are all unusable
	verdict  map[hop]bool
	lastSent time.Time

	kick chan struct{}
}

// RIBCounters count what the adapter saw and did.
type RIBCounters struct {
	PathUpdates   uint64 `json:"pathUpdates"`   // best-path additions and changes from GoBGP
	PathWithdraws uint64 `json:"pathWithdraws"` // best-path withdrawals from GoBGP
	Ignored       uint64 `json:"ignored"`       // paths with no usable prefix or next hop
	Batches       uint64 `json:"batches"`       // ApplyRoutes calls
	RoutesAdded   uint64 `json:"routesAdded"`   // routes handed to the sink as adds
	RoutesDeleted uint64 `json:"routesDeleted"` // prefixes handed to the sink as deletes
	SinkErrors    uint64 `json:"sinkErrors"`
	Installed     int    `json:"installed"` // prefixes with at least one path now
	// Held are prefixes with paths none of whose next hops is usable (not
	// on a connected subnet, neighbour failed): out of the sink until one
	// is. Installed counts them too.
	Held int `json:"held"`
	// UnusableNextHops are the next hops (per learning peer) found
	// unusable at the last check.
	UnusableNextHops int `json:"unusableNextHops"`
}

func newRIB(log *slog.Logger, sink RouteSink, maxPaths int, delay time.Duration, maxBatch int) *rib {
	return &rib{
		log: log, sink: sink, maxPaths: maxPaths, multipath: maxPaths > 1, delay: delay, maxBatch: maxBatch,
		paths:   make(map[netip.Prefix]entry),
		peerIdx: make(map[netip.Addr]uint16),
		dirty:   make(map[netip.Prefix]struct{}),
		verdict: make(map[hop]bool),
		kick:    make(chan struct{}, 1),
	}
}

// usableLocked is the cached verdict on m's next hop.
func (r *rib) usableLocked(m member) bool {
	if r.usable == nil {
		return true
	}
	k := hop{nh: m.nh, peer: m.peer}
	v, ok := r.verdict[k]
	if !ok {
		v = r.usable(m.nh, r.peers[m.peer])
		r.verdict[k] = v
	}
	return v
}

// recheck asks usable again about every next hop seen and marks dirty
// the prefixes through a next hop whose verdict changed, so that they
// leave the sink (no usable next hop left, or one member less of an
// ECMP set) or come back. It returns how many next hops changed. The
// walk over the prefixes happens only when one did.
func (r *rib) recheck() int {
	if r.usable == nil {
		return 0
	}
	r.mu.Lock()
	changed := map[hop]bool{}
	for k, old := range r.verdict {
		if v := r.usable(k.nh, r.peers[k.peer]); v != old {
			changed[k] = true
			r.verdict[k] = v
		}
	}
	n := 0
	if len(changed) > 0 {
		seen := make(map[hop]bool, len(r.verdict))
		for pfx, e := range r.paths {
			for _, m := range e.set {
				k := hop{nh: m.nh, peer: m.peer}
				seen[k] = true
				if changed[k] {
					r.dirty[pfx] = struct{}{}
					n++
				}
			}
		}
		// Forget next hops no path uses any more.
		for k := range r.verdict {
			if !seen[k] {
				delete(r.verdict, k)
			}
		}
	}
	r.mu.Unlock()
	if n > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return len(changed)
}

// nextHops lists the next hops in use, with their learning peers and
// verdicts, for the caller that probes them.
func (r *rib) nextHops() []NextHopState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]NextHopState, 0, len(r.verdict))
	for k, v := range r.verdict {
		out = append(out, NextHopState{NextHop: k.nh, Peer: r.peers[k.peer], Usable: v})
	}
	slices.SortFunc(out, func(a, b NextHopState) int {
		if c := a.NextHop.Compare(b.NextHop); c != 0 {
			return c
		}
		return a.Peer.Compare(b.Peer)
	})
	return out
}

// pathPrefix returns the path's unicast prefix.
func pathPrefix(p *apiutil.Path) (netip.Prefix, bool) {
	if p.Family != gbgp.RF_IPv4_UC && p.Family != gbgp.RF_IPv6_UC {
		return netip.Prefix{}, false
	}
	n, ok := p.Nlri.(*gbgp.IPAddrPrefix)
	if !ok || !n.Prefix.IsValid() {
		return netip.Prefix{}, false
	}
	return n.Prefix, true
}

// pathNextHop picks the forwarding next hop: NEXT_HOP, else MP_REACH's
// global address, else its link-local one. IPv4-mapped addresses are
// unmapped: the FIB resolves an IPv4 gateway for any family.
func pathNextHop(p *apiutil.Path) netip.Addr {
	var nh, ll netip.Addr
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *gbgp.PathAttributeNextHop:
			if !nh.IsValid() {
				nh = a.Value
			}
		case *gbgp.PathAttributeMpReachNLRI:
			if a.Nexthop.IsValid() && !a.Nexthop.IsUnspecified() && !a.Nexthop.IsLinkLocalUnicast() {
				nh = a.Nexthop
			} else if a.Nexthop.IsLinkLocalUnicast() {
				ll = a.Nexthop
			}
			if a.LinkLocalNexthop.IsValid() && !ll.IsValid() {
				ll = a.LinkLocalNexthop
			}
		}
	}
	if !nh.IsValid() || nh.IsUnspecified() {
		nh = ll
	}
	return nh.Unmap().WithZone("")
}

func (r *rib) peerIndex(a netip.Addr) uint16 {
	if i, ok := r.peerIdx[a]; ok {
		return i
	}
	i := uint16(len(r.peers))
	r.peers = append(r.peers, a)
	r.peerIdx[a] = i
	return i
}

// onBest applies one best-path event (GoBGP's watcher goroutine).
func (r *rib) onBest(paths []*apiutil.Path, _ time.Time) {
	r.mu.Lock()
	n := 0
	for _, p := range paths {
		if !p.PeerAddress.IsValid() {
			continue // our own advertisement
		}
		pfx, ok := pathPrefix(p)
		if !ok {
			r.stats.Ignored++
			continue
		}
		peer := r.peerIndex(p.PeerAddress)
		e := r.paths[pfx]
		set := e.set
		at := -1
		for i := range set {
			if set[i].peer == peer && set[i].id == p.RemoteID {
				at = i
				break
			}
		}
		if !r.multipath {
			// GoBGP without multipath reports the new best path of the
			// prefix, or its withdrawal: it replaces whatever was there.
			if p.Withdrawal {
				r.stats.PathWithdraws++
				set = set[:0]
			} else {
				r.stats.PathUpdates++
				nh := pathNextHop(p)
				if !nh.IsValid() {
					r.stats.Ignored++
					continue
				}
				if len(e.set) == 1 {
					set = e.set
					set[0] = member{nh: nh, id: p.RemoteID, peer: peer}
				} else {
					set = []member{{nh: nh, id: p.RemoteID, peer: peer}}
				}
			}
		} else if p.Withdrawal {
			r.stats.PathWithdraws++
			if at < 0 {
				continue
			}
			set = slices.Delete(set, at, at+1)
		} else {
			r.stats.PathUpdates++
			nh := pathNextHop(p)
			if !nh.IsValid() {
				r.stats.Ignored++
				continue
			}
			m := member{nh: nh, id: p.RemoteID, peer: peer}
			if at >= 0 {
				set[at] = m
			} else {
				set = append(set, m)
			}
		}
		switch {
		case len(e.set) == 0 && len(set) > 0:
			r.live++
		case len(e.set) > 0 && len(set) == 0:
			r.live--
		}
		e.set = set
		if len(set) == 0 && !e.installed {
			if e.held {
				r.held--
			}
			delete(r.paths, pfx) // the sink never had it
		} else {
			r.paths[pfx] = e
		}
		r.dirty[pfx] = struct{}{}
		n++
	}
	r.mu.Unlock()
	if n > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// run is the flusher; it returns when stop is closed, after a last flush.
func (r *rib) run(stop <-chan struct{}) {
	var retry <-chan time.Time
	for {
		select {
		case <-stop:
			r.flush()
			return
		case <-r.kick:
		case <-retry:
			retry = nil
		}
		// Let the burst settle: wait while events keep arriving, up to
		// maxBatch dirty prefixes.
		t := time.NewTimer(r.delay)
	settle:
		for {
			select {
			case <-r.kick:
				r.mu.Lock()
				full := len(r.dirty) >= r.maxBatch
				r.mu.Unlock()
				if full {
					break settle
				}
				t.Reset(r.delay)
			case <-t.C:
				break settle
			case <-stop:
				break settle
			}
		}
		t.Stop()
		if !r.flush() && retry == nil {
			retry = time.After(time.Second)
		}
	}
}

// flush hands the dirty prefixes to the sink, at most maxBatch per call.
// It reports whether the sink took everything.
func (r *rib) flush() bool {
	for {
		r.mu.Lock()
		if len(r.dirty) == 0 {
			r.mu.Unlock()
			return true
		}
		var adds []Route
		var dels []netip.Prefix
		// One backing array for the batch's next hops.
		nhs := make([]netip.Addr, 0, min(len(r.dirty), r.maxBatch)+8)
		taken := make([]netip.Prefix, 0, min(len(r.dirty), r.maxBatch))
		for pfx := range r.dirty {
			if len(taken) == r.maxBatch {
				break
			}
			taken = append(taken, pfx)
			delete(r.dirty, pfx)
			e, ok := r.paths[pfx]
			set := e.set
			if !ok {
				continue // announced and withdrawn within the burst
			}
			if len(set) == 0 {
				if e.held {
					r.held--
				}
				if e.installed {
					dels = append(dels, pfx)
				}
				delete(r.paths, pfx)
				continue
			}
			start := len(nhs)
			first := -1
			for i, m := range set {
				if !r.usableLocked(m) {
					continue
				}
				if first < 0 {
					first = i
				}
				if !slices.Contains(nhs[start:], m.nh) {
					nhs = append(nhs, m.nh)
				}
			}
			if first < 0 {
				// No next hop can forward: out of the sink until one can.
				if !e.held {
					e.held = true
					r.held++
				}
				if e.installed {
					e.installed = false
					dels = append(dels, pfx)
				}
				r.paths[pfx] = e
				continue
			}
			if e.held || !e.installed {
				if e.held {
					e.held = false
					r.held--
				}
				e.installed = true
				r.paths[pfx] = e
			}
			hop := nhs[start:len(nhs):len(nhs)]
			slices.SortFunc(hop, func(a, b netip.Addr) int { return a.Compare(b) })
			if len(hop) > r.maxPaths {
				hop = hop[:r.maxPaths]
			}
			adds = append(adds, Route{Prefix: pfx, NextHops: hop, Peer: r.peers[set[first].peer]})
		}
		if len(adds) == 0 && len(dels) == 0 {
			r.mu.Unlock()
			continue
		}
		r.stats.Batches++
		r.mu.Unlock()

		err := r.sink.ApplyRoutes(adds, dels)

		r.mu.Lock()
		if err != nil {
			// The sink's state is unknown: mark the batch's prefixes
			// installed (a retried delete must reach it) and dirty.
			r.stats.SinkErrors++
			for _, p := range taken {
				r.dirty[p] = struct{}{}
			}
			for _, p := range dels {
				e := r.paths[p] // a held prefix keeps its paths
				e.installed = true
				r.paths[p] = e
			}
			r.mu.Unlock()
			r.log.Error("bgp routes not applied, retrying", "adds", len(adds), "dels", len(dels), "err", err)
			return false
		}
		r.stats.RoutesAdded += uint64(len(adds))
		r.stats.RoutesDeleted += uint64(len(dels))
		r.lastSent = time.Now()
		r.mu.Unlock()
	}
}

func (r *rib) counters() RIBCounters {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.stats
	c.Installed = r.live
	c.Held = r.held
	for _, v := range r.verdict {
		if !v {
			c.UnusableNextHops++
		}
	}
	return c
}
