package conntrack

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Sweep examines the next budget entries of the table (a cursor wraps
// around it) and removes the flows whose state's timeout has passed at
// now. It returns how many it removed. It is the control plane's: call
// it from one goroutine, for example every second with a budget of
// Size()/TimeoutResolution so the whole table is seen every few seconds.
func (t *Table) Sweep(now uint32, budget int) int {
	n := uint32(len(t.entries) - 1)
	removed := 0
	for range min(budget, int(n)) {
		t.gc = t.gc%n + 1
		e := &t.entries[t.gc]
		s := e.seq.Load()
		if s&1 != 0 || !t.expired(e, e.state.Load(), now) {
			continue
		}
		if t.remove(t.gc, s, removeExpired, now) {
			removed++
		}
	}
	t.stats.expired.Add(int64(removed))
	return removed
}

// Entry is a copy of one flow, for the control plane.
type Entry struct {
	Orig, Reply Key
	State       State
	Embryonic   bool
	// Expires is the seconds left before the sweep may remove the flow.
	Expires        uint32
	Packets, Bytes [2]uint64 // per direction
	Mark           uint32
	Age            uint32 // seconds since creation
}

// String formats e like conntrack -L.
func (e *Entry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %d ", ProtoName(e.Orig.Proto), e.Expires)
	if e.Orig.Proto == ProtoTCP {
		fmt.Fprintf(&b, "%s ", e.State)
	}
	dir := func(k Key, d int) {
		fmt.Fprintf(&b, "src=%s dst=%s ", k.SrcAddr(), k.DstAddr())
		if k.Proto == ProtoICMP || k.Proto == ProtoICMPv6 {
			fmt.Fprintf(&b, "id=%d ", k.SPort)
		} else {
			fmt.Fprintf(&b, "sport=%d dport=%d ", k.SPort, k.DPort)
		}
		fmt.Fprintf(&b, "packets=%d bytes=%d ", e.Packets[d], e.Bytes[d])
	}
	dir(e.Orig, 0)
	if e.State == Unreplied {
		b.WriteString("[UNREPLIED] ")
	}
	dir(e.Reply, 1)
	fmt.Fprintf(&b, "mark=%d", e.Mark)
	return b.String()
}

// Walk calls fn with a consistent copy of every live flow, in table
// order, until fn returns false. It takes no lock: flows created or
// removed while it runs may or may not be seen.
func (t *Table) Walk(now uint32, fn func(*Entry) bool) {
	var en Entry
	for i := 1; i < len(t.entries); i++ {
		if t.read(uint32(i), now, &en) && !fn(&en) {
			return
		}
	}
}

// read copies entry i into en if it is live.
func (t *Table) read(i, now uint32, en *Entry) bool {
	e := &t.entries[i]
	for range 4 {
		s := e.seq.Load()
		if s&1 != 0 {
			return false
		}
		var p [2]packed
		for d := range 2 {
			for j := range p[d] {
				p[d][j] = e.key[d][j].Load()
			}
		}
		en.Packets, en.Bytes = e.counters()
		w := e.state.Load()
		last, created := e.last.Load(), e.created.Load()
		en.Mark = e.mark.Load()
		if e.seq.Load() != s {
			continue
		}
		p[0].unpack(&en.Orig)
		p[1].unpack(&en.Reply)
		en.State = State(w & wordState)
		en.Embryonic = w&wordEmbryonic != 0
		to := t.timeouts[protoClass(en.Orig.Proto)][en.State]
		en.Expires = 0
		if idle := now - last; int32(idle) >= 0 && idle < to {
			en.Expires = to - idle
		}
		en.Age = now - created
		return true
	}
	return false
}

// DeleteFunc removes every flow for which match returns true (the flows
// of a removed backend, or all of them) and returns how many it removed.
func (t *Table) DeleteFunc(now uint32, match func(*Entry) bool) int {
	var en Entry
	n := 0
	for i := 1; i < len(t.entries); i++ {
		s := t.entries[i].seq.Load()
		if !t.read(uint32(i), now, &en) || !match(&en) {
			continue
		}
		if t.remove(uint32(i), s, removeAny, 0) {
			n++
		}
	}
	t.stats.deleted.Add(int64(n))
	return n
}

// Stats are the table's counters since it was made.
type Stats struct {
	Entries int64 // live flows
	Size    int
	Created int64
	// Existed counts creations that lost a race to another worker (or
	// followed a lookup that missed during a concurrent change).
	Existed int64
	Expired int64 // removed by Sweep
	Evicted int64 // embryonic flows removed early for a new one
	Deleted int64 // removed by DeleteFunc
	// Drops of new flows, by reason.
	DropFull, DropEmbryonic, DropConflict, DropNoPort int64
	// Stale counts updates through a Flow whose entry had been removed.
	Stale int64
}

// Stats reads the counters.
func (t *Table) Stats() Stats {
	s := &t.stats
	return Stats{
		Entries: s.live.Load(), Size: t.Size(), Created: s.created.Load(), Existed: s.existed.Load(),
		Expired: s.expired.Load(), Evicted: s.evicted.Load(), Deleted: s.deleted.Load(),
		DropFull: s.full.Load(), DropEmbryonic: s.embryonic.Load(), DropConflict: s.conflict.Load(),
		DropNoPort: s.noPort.Load(), Stale: s.stale.Load(),
	}
}

// Filter selects flows for `xvsctl show conntrack [filter]`. Zero fields
// match anything; Addr and Port match either address or port of either
// direction.
type Filter struct {
	Proto uint8
	Addr  netip.Addr
	Port  uint16
	State State
	Mark  uint32
	// HasMark tells Mark 0 from "any mark".
	HasMark bool
}

// ParseFilter reads a filter from words: a protocol (tcp, udp, icmp,
// icmpv6), an address, "port=N", "state=NAME" (ESTABLISHED, SYN_SENT,
// ...) and "mark=N", in any order.
func ParseFilter(words []string) (Filter, error) {
	var f Filter
	for _, w := range words {
		k, v, kv := strings.Cut(w, "=")
		switch {
		case !kv && (w == "tcp" || w == "udp" || w == "icmp" || w == "icmpv6"):
			f.Proto = map[string]uint8{"tcp": ProtoTCP, "udp": ProtoUDP, "icmp": ProtoICMP, "icmpv6": ProtoICMPv6}[w]
		case !kv:
			a, err := netip.ParseAddr(w)
			if err != nil {
				return Filter{}, fmt.Errorf("conntrack filter %q: not a protocol, address or key=value", w)
			}
			f.Addr = a.Unmap()
		case k == "port":
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil || p == 0 {
				return Filter{}, fmt.Errorf("conntrack filter port %q: want 1-65535", v)
			}
			f.Port = uint16(p)
		case k == "state":
			s, ok := ParseState(strings.ToUpper(v))
			if !ok || s == StateNone {
				return Filter{}, fmt.Errorf("conntrack filter state %q: unknown", v)
			}
			f.State = s
		case k == "mark":
			m, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return Filter{}, fmt.Errorf("conntrack filter mark %q: want a number", v)
			}
			f.Mark, f.HasMark = uint32(m), true
		default:
			return Filter{}, fmt.Errorf("conntrack filter %q: unknown key %q", w, k)
		}
	}
	return f, nil
}

// Match reports whether e passes f.
func (f *Filter) Match(e *Entry) bool {
	if f.Proto != 0 && e.Orig.Proto != f.Proto {
		return false
	}
	if f.State != StateNone && e.State != f.State {
		return false
	}
	if f.HasMark && e.Mark != f.Mark {
		return false
	}
	if f.Addr.IsValid() {
		a := f.Addr
		if !(e.Orig.SrcAddr() == a || e.Orig.DstAddr() == a || e.Reply.SrcAddr() == a || e.Reply.DstAddr() == a) {
			return false
		}
	}
	if f.Port != 0 {
		p := f.Port
		if e.Orig.SPort != p && e.Orig.DPort != p && e.Reply.SPort != p && e.Reply.DPort != p {
			return false
		}
	}
	return true
}
