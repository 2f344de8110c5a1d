package dataplane

import "sync/atomic"

// Drop is why the pipeline discarded a frame.
type Drop uint8

const (
	DropBadEthernet   Drop = iota // shorter than an Ethernet header
	DropBadL3                     // bad IPv4/IPv6 header: version, IHL, length, checksum
	DropBadARP                    // malformed or uninteresting ARP
	DropBadNDP                    // malformed or uninteresting NDP / ICMPv6
	DropUnknownProto              // ethertype the switch does not handle
	DropTTL                       // TTL or hop limit expired
	DropNoRoute                   // no route, or a blackhole route
	DropNoNeighbor                // next hop not resolved yet
	DropMTU                       // too big for the output port
	DropRingFull                  // output ring (or UMEM) full
	DropPortDown                  // output port down or gone
	DropLocal                     // addressed to the switch, not answered
	DropMartian                   // source or destination not forwardable (multicast, loopback, ...)
	DropICMPRateLimit             // an ICMP error was not sent: rate limit
	DropPunt                      // meant for the host, no host port
	DropNoFrames                  // no free UMEM frame to build a reply
	DropBadOffload                // GSO super-frame whose offload header does not fit it
	DropBadVXLAN                  // VXLAN to the node's VTEP: bad UDP length or checksum, no I flag, fragment, short inner frame
	DropVXLANVNI                  // VXLAN with a VNI other than the node's
	DropVXLANMAC                  // decapsulated frame not addressed to the node's VTEP MAC
	// The NAT stage's: a packet to a VIP (or one natOutgoing would
	// translate) that nat.Parse refuses, by nat.Reason (same order) ...
	DropNATFragment
	DropNATExtHeader
	DropNATTruncated
	DropNATBadLength
	DropNATBadChecksum
	DropNATProto
	DropNATICMPType
	DropNATInner
	DropNATFamily
	// ... and the flows it cannot make.
	DropNATNoEndpoint // to a service port without endpoints (an ICMP port unreachable went back)
	DropNATUntracked  // no flow and a packet that cannot start one (a TCP RST, a lone ACK is taken loose)
	DropNATTableFull  // conntrack full, nothing evictable
	DropNATEmbryonic  // the source's embryonic-flow limit
	DropNATConflict   // the translated reply would be another flow's
	DropNATNoPort     // no free SNAT port (or no node address to translate to)
	NumDrops
)

var dropNames = [...]string{
	"bad-ethernet", "bad-l3", "bad-arp", "bad-ndp", "unknown-proto", "ttl-expired",
	"no-route", "no-neighbor", "mtu-exceeded", "ring-full", "port-down", "local",
	"martian", "icmp-rate-limited", "punt-no-host", "no-frames", "bad-offload",
	"bad-vxlan", "vxlan-vni", "vxlan-mac",
	"nat-fragment", "nat-ext-header", "nat-truncated", "nat-bad-length", "nat-bad-checksum",
	"nat-proto", "nat-icmp-type", "nat-icmp-inner", "nat-family",
	"nat-no-endpoint", "nat-untracked", "nat-table-full", "nat-embryonic-limit", "nat-conflict", "nat-no-port",
}

func (d Drop) String() string {
	if int(d) < len(dropNames) {
		return dropNames[d]
	}
	return "unknown"
}

// Event counts something the pipeline did that is not a drop.
type Event uint8

const (
	EvRxPackets Event = iota
	EvForwarded4
	EvForwarded6
	EvARPReplies
	EvNDPAdverts
	EvEchoReplies
	EvICMPErrors
	EvGleans // resolution requests raised
	EvVectors
	EvGSOWhole       // GSO super-frames sent on whole to an offloading port
	EvGSOSegmented   // GSO super-frames cut into segments in software
	EvXDPForwarded4  // IPv4 frames the pod programs forwarded themselves (XDP fast path)
	EvXDPForwarded6  // IPv6 likewise
	EvTCForwarded4   // IPv4 frames AF_PACKET pod ports' tc programs forwarded themselves (tc fast path)
	EvTCForwarded6   // IPv6 likewise
	EvGROMerged      // super-frames merged from TCP segments for a port that takes them
	EvGROSegments    // the segments that went into them
	EvVXLANEncap     // frames sent into a VXLAN tunnel
	EvVXLANDecap     // VXLAN frames for the node's VTEP, decapsulated
	EvUDPGROMerged   // UDP GSO super-frames merged from datagrams of one flow (VXLAN toward one VTEP)
	EvUDPGROSegments // the datagrams that went into them
	EvFastRemote     // destinations on other nodes put into the tc fast path (see remote.go)
	EvNATTranslated  // packets the NAT stage rewrote
	EvNATNewDNAT     // service flows created (DNAT)
	EvNATNewSNAT     // natOutgoing flows created (SNAT)
	NumEvents
)

var eventNames = [...]string{
	"rx-packets", "forwarded-ipv4", "forwarded-ipv6", "arp-replies", "ndp-adverts",
	"echo-replies", "icmp-errors", "neighbor-requests", "vectors",
	"gso-whole", "gso-segmented", "xdp-forwarded-ipv4", "xdp-forwarded-ipv6",
	"tc-forwarded-ipv4", "tc-forwarded-ipv6", "gro-merged", "gro-segments",
	"vxlan-encap", "vxlan-decap", "udp-gro-merged", "udp-gro-segments",
	"fast-path-remotes", "nat-translated", "nat-new-dnat", "nat-new-snat",
}

func (e Event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return "unknown"
}

// counters is one worker's counters: the worker adds to local with plain
// stores, and publishes deltas to shared with one atomic add per touched
// counter at most once per vector, so readers on other goroutines see
// consistent, race-free totals and the hot path pays no atomics per packet.
type counters struct {
	local  [NumDrops + Drop(NumEvents)]uint64
	shared [NumDrops + Drop(NumEvents)]atomic.Uint64
	dirty  bool
}

func (c *counters) drop(d Drop)   { c.local[d]++; c.dirty = true }
func (c *counters) event(e Event) { c.local[NumDrops+Drop(e)]++; c.dirty = true }
func (c *counters) add(e Event, n int) {
	c.local[NumDrops+Drop(e)] += uint64(n)
	c.dirty = true
}

func (c *counters) publish() {
	if !c.dirty {
		return
	}
	for i := range c.local {
		if v := c.local[i]; v != 0 {
			c.shared[i].Add(v)
			c.local[i] = 0
		}
	}
	c.dirty = false
}

// Counters is a snapshot of the switch-wide counters.
type Counters struct {
	Drops  [NumDrops]uint64
	Events [NumEvents]uint64
}

func (c *counters) snapshot(into *Counters) {
	for i := Drop(0); i < NumDrops; i++ {
		into.Drops[i] += c.shared[i].Load()
	}
	for i := Event(0); i < NumEvents; i++ {
		into.Events[i] += c.shared[NumDrops+Drop(i)].Load()
	}
}

// DropNames returns the names of all drop reasons, indexed by Drop.
func DropNames() []string { return dropNames[:] }

// EventNames returns the names of all events, indexed by Event.
func EventNames() []string { return eventNames[:] }
