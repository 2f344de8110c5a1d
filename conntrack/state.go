package conntrack

// State is a flow's tracking state. TCP flows move through the TCP states
// from the flags they carry (Table.Update); UDP and ICMP flows are Unreplied until
// a packet in the reply direction is seen, then Replied.
type State uint8

// Flow states. The TCP ones follow Linux's conntrack (nf_conntrack_proto_tcp)
// without its window tracking: FinWait is "a FIN seen", CloseWait "that FIN
// acknowledged by the other side", LastAck "FINs seen both ways", TimeWait
// "the last FIN acknowledged".
const (
	StateNone State = iota
	SynSent
	SynRecv
	Established
	FinWait
	CloseWait
	LastAck
	TimeWait
	Close
	Unreplied // UDP, ICMP: no reply seen yet
	Replied   // UDP, ICMP: a reply seen
	numStates
)

var stateNames = [numStates]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "UNREPLIED", "REPLIED"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "INVALID"
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// TCP flags as they sit in the TCP header's flags byte.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagACK uint8 = 0x10
)

// Directions of a packet relative to its flow.
const (
	DirOriginal uint8 = 0
	DirReply    uint8 = 1
)

// InitialState is the state a flow starts in from its first packet, or
// StateNone if that packet must not create one: a TCP RST or a lone FIN
// (nothing to track), and a TCP packet without SYN is picked up mid-stream
// as Established (xvsd restarted under live connections, as Linux's
// nf_conntrack_tcp_loose does) only when loose is set.
func InitialState(proto, flags uint8, loose bool) State {
	if proto != ProtoTCP {
		return Unreplied
	}
	switch {
	case flags&FlagRST != 0:
		return StateNone
	case flags&(FlagSYN|FlagACK) == FlagSYN:
		return SynSent
	case flags&FlagSYN != 0: // SYN+ACK first: we missed the SYN
		return StateNone
	case loose && flags&FlagACK != 0 && flags&FlagFIN == 0:
		return Established
	}
	return StateNone
}

// embryonic reports whether a flow in state s has not proved it has a live
// peer yet: the entries a flood creates, which the per-source limit and
// early eviction act on.
func embryonic(s State) bool { return s == SynSent || s == SynRecv || s == Unreplied }

// The state word of an entry packs, so that one compare-and-swap moves all
// of it: the state (bits 0-3), the embryonic accounting bit, the direction
// of the first FIN, and a tag of the entry's generation (bits 16-31) so
// that an update from a worker holding a stale Flow fails instead of
// changing a reused entry.
const (
	wordState     = 0x0f
	wordEmbryonic = 1 << 4
	wordFinReply  = 1 << 5 // the first FIN came in the reply direction
	wordTagShift  = 16
)

// transition returns the state word after a packet of proto with TCP flags
// in direction dir.
func transition(w uint32, proto, dir, flags uint8) uint32 {
	st := State(w & wordState)
	nst := st
	fin := w&wordFinReply != 0 // first FIN's direction is reply
	if proto != ProtoTCP {
		if dir == DirReply {
			nst = Replied
		}
	} else {
		nst, fin = tcpNext(st, dir, flags, fin)
	}
	nw := w&^(wordState|wordFinReply) | uint32(nst)
	if fin {
		nw |= wordFinReply
	}
	if !embryonic(nst) {
		nw &^= wordEmbryonic
	}
	return nw
}

// tcpNext is the TCP state machine. finReply is the direction of the
// first FIN (true: reply).
func tcpNext(st State, dir, flags uint8, finReply bool) (State, bool) {
	if flags&FlagRST != 0 {
		return Close, finReply
	}
	syn, ack, fin := flags&FlagSYN != 0, flags&FlagACK != 0, flags&FlagFIN != 0
	other := (dir == DirReply) != finReply // dir is not the first FIN's direction
	switch st {
	case SynSent:
		if dir == DirReply && syn && ack {
			return SynRecv, finReply
		}
	case SynRecv:
		if dir == DirOriginal && ack && !syn {
			if fin {
				return FinWait, false
			}
			return Established, finReply
		}
	case Established:
		if fin {
			return FinWait, dir == DirReply
		}
	case FinWait:
		switch {
		case other && fin:
			return LastAck, finReply
		case other && ack:
			return CloseWait, finReply
		}
	case CloseWait:
		if other && fin {
			return LastAck, finReply
		}
	case LastAck:
		if !other && ack {
			return TimeWait, finReply
		}
	case TimeWait, Close:
		if dir == DirOriginal && syn && !ack {
			// The client reuses the port for a new connection.
			return SynSent, false
		}
	}
	return st, finReply
}

// Timeouts are how long, in seconds, a flow stays in each state without a
// packet before the sweep removes it. Zero fields take the defaults, which
// are Linux's (nf_conntrack_tcp_timeout_*, nf_conntrack_udp_timeout*,
// nf_conntrack_icmp_timeout).
type Timeouts struct {
	SynSent, SynRecv, Established, FinWait, CloseWait, LastAck, TimeWait, Close uint32
	// UDPNew is for UDP without a reply, UDPReplied after one.
	UDPNew, UDPReplied uint32
	// ICMP covers echo flows of both families.
	ICMP uint32
}

// DefaultTimeouts are Linux's defaults.
var DefaultTimeouts = Timeouts{
	SynSent: 120, SynRecv: 60, Established: 432000, FinWait: 120, CloseWait: 60,
	LastAck: 30, TimeWait: 120, Close: 10, UDPNew: 30, UDPReplied: 120, ICMP: 30,
}

// timeoutTable is Timeouts indexed by state, for TCP, UDP and ICMP.
type timeoutTable [3][numStates]uint32

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	for _, f := range []struct{ v, def *uint32 }{
		{&t.SynSent, &d.SynSent}, {&t.SynRecv, &d.SynRecv}, {&t.Established, &d.Established},
		{&t.FinWait, &d.FinWait}, {&t.CloseWait, &d.CloseWait}, {&t.LastAck, &d.LastAck},
		{&t.TimeWait, &d.TimeWait}, {&t.Close, &d.Close}, {&t.UDPNew, &d.UDPNew},
		{&t.UDPReplied, &d.UDPReplied}, {&t.ICMP, &d.ICMP},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return t
}

func (t Timeouts) table() timeoutTable {
	var tt timeoutTable
	tcp := &tt[0]
	tcp[StateNone], tcp[SynSent], tcp[SynRecv], tcp[Established] = t.Close, t.SynSent, t.SynRecv, t.Established
	tcp[FinWait], tcp[CloseWait], tcp[LastAck], tcp[TimeWait], tcp[Close] = t.FinWait, t.CloseWait, t.LastAck, t.TimeWait, t.Close
	tcp[Unreplied], tcp[Replied] = t.Close, t.Close
	for s := range numStates {
		tt[1][s], tt[2][s] = t.UDPNew, t.ICMP
	}
	tt[1][Replied] = t.UDPReplied
	return tt
}

func protoClass(p uint8) int {
	switch p {
	case ProtoTCP:
		return 0
	case ProtoUDP:
		return 1
	}
	return 2
}
