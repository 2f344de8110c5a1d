package vswitch

import (
	"net/netip"
	"time"

	"github.com/xvs-project/xvs/xdpprog"
)

// PortKind is the role a port plays.
type PortKind uint8

const (
	// PortPod is the host end of a pod's veth: everything it receives is the
	// switch's, and the switch answers ARP/NDP for the pod's gateway on it.
	PortPod PortKind = iota
	// PortUplink is a NIC queue shared with the host: its XDP program steers
	// only pod-prefix and VXLAN traffic to the switch and passes the rest.
	PortUplink
	// PortHost is a veth into the host namespace for pod<->node traffic.
	PortHost
)

var portKindNames = [...]string{"pod", "uplink", "host"}

func (k PortKind) String() string {
	if int(k) < len(portKindNames) {
		return portKindNames[k]
	}
	return "unknown"
}

// ParsePortKind parses a kind name as String prints it.
func ParsePortKind(s string) (PortKind, bool) {
	for i, n := range portKindNames {
		if n == s {
			return PortKind(i), true
		}
	}
	return 0, false
}

// PollMode is how an idle worker waits.
type PollMode uint8

const (
	// PollAdaptive spins briefly after traffic, then sleeps in poll(2).
	PollAdaptive PollMode = iota
	// PollBusy never sleeps: lowest latency, one core per worker.
	PollBusy
)

// PortConfig describes one port to add.
type PortConfig struct {
	Name  string   // interface name in xvsd's network namespace
	Kind  PortKind // pod, uplink or host
	Mode  Mode     // ModeAuto unless forced
	Queue int      // NIC queue (uplink); 0 for veths
	// Queues is how many NIC queues, from Queue on, the uplink serves
	// (default 1). Each gets its own AF_XDP socket under one shared steering
	// program, is served by worker queue%Workers, and shows as a port of its
	// own ("eth0/q1"); routes name the first.
	Queues int
	// Addrs: for a pod port, the pod's /32 and /128 addresses (routes to the
	// pod are installed for them); for the uplink, the node's addresses with
	// their subnet length (connected routes).
	Addrs []netip.Prefix
	// PeerMAC is the pod's eth0 MAC (pod ports); zero means learn it from
	// the pod's ARP/NDP.
	PeerMAC [6]byte
	// MTU overrides the link MTU when non-zero.
	MTU int

	// program is the first queue's steering program, set by the switch
	// when it opens an uplink's further queues.
	program *xdpprog.Program
	// fast is the switch's XDP fast path, set for pod ports when enabled.
	fast *xdpprog.FastPath
}

// StaticRoute is a route from configuration or the API.
type StaticRoute struct {
	Prefix    netip.Prefix
	Via       netip.Addr // gateway; invalid for an attached or blackhole route
	Port      string     // output port name; empty to infer from Via
	Blackhole bool
	// VXLAN, when set, sends the prefix into a VXLAN tunnel instead (Via
	// and Port stay empty); it needs Config.VXLAN.
	VXLAN *VXLANRoute
}

// VXLANRoute is where a VXLAN route's tunnel ends: Calico's VXLAN mode
// gives every node a VTEP address (its own underlay address) and MAC, and
// routes each other node's pod blocks to them.
type VXLANRoute struct {
	// Remote is the other node's VTEP address. Its family picks the
	// outer header: IPv4 (50 bytes with the inner Ethernet header) or IPv6
	// (70), whatever the prefix's family. The switch reaches it through
	// its own routes, like any destination on the underlay.
	Remote netip.Addr
	// MAC is the other node's VTEP MAC, the inner frame's destination.
	MAC [6]byte
}

// VXLANConfig is the node's VXLAN tunnel endpoint. With it set, every
// uplink steers UDP to the VTEP addresses' port to the switch, which
// decapsulates what carries its VNI and inner MAC and routes the inner
// packet; VXLAN routes encapsulate toward their Remote.
type VXLANConfig struct {
	VNI  uint32  // the node's VNI, 1..16777215 (default DefaultVNI, Calico's)
	Port uint16  // UDP port (default 4789)
	MAC  [6]byte // the node's VTEP MAC (default: the first uplink's MAC)
	// VTEP4 and VTEP6 are the tunnel's source addresses and the ones the
	// switch decapsulates for (default: the first uplink's first global
	// address of each family). Each must be an address of an uplink.
	VTEP4, VTEP6 netip.Addr
}

// DefaultVNI is Calico's VXLAN network identifier.
const DefaultVNI = 4096

// Config is the switch's whole configuration.
type Config struct {
	Workers   int      // worker goroutines (default 1)
	BatchSize int      // frames per vector (default 256, the max: measured faster than 64 on veth)
	Poll      PollMode // default adaptive
	// IdleSpin is how long an adaptive worker keeps polling after its last
	// frame before it sleeps in poll(2) (0: DefaultIdleSpin; NoIdleSpin:
	// sleep at once). Spinning saves a wake-up per burst on a core of its
	// own, and takes the core from the pods on a node without one to spare.
	IdleSpin  time.Duration
	Frames    int // UMEM frames per worker (default 4096)
	FrameSize int // UMEM frame size (default 4096)

	// Pod gateway addresses the switch answers for on pod ports (Calico's
	// convention: 169.254.1.1 and the link-local of ee:ee:ee:ee:ee:ee).
	GatewayV4  netip.Addr
	GatewayV6  netip.Addr
	GatewayMAC [6]byte

	// ICMPRate bounds the ICMP errors the switch generates, per second per worker.
	ICMPRate int
	// XDPFastPath forwards pod-to-pod frames in the pod ports' own BPF
	// programs (xdpprog.FastPath): XDP for AF_XDP ports, tc for AF_PACKET
	// ones; TTL, checksum and MACs done in the kernel, no trip through a
	// worker. AF_XDP pods' eth0 must run NAPI (GRO on) to take redirected
	// frames. Off by default.
	XDPFastPath bool
	// WorkerCPUs pins worker i to CPU WorkerCPUs[i] (empty: no pinning).
	// A pinned worker keeps its caches and never migrates; the kernel still
	// runs other tasks on that CPU while the worker sleeps.
	WorkerCPUs []int
	// StatsInterval is how often workers publish counters (default 100ms).
	StatsInterval time.Duration

	// VXLAN turns on the node's VXLAN tunnel endpoint; nil: off, and
	// VXLAN routes are refused.
	VXLAN *VXLANConfig

	Ports  []PortConfig
	Routes []StaticRoute
}

// Defaults used when a Config field is zero.
var (
	DefaultGatewayV4  = netip.MustParseAddr("169.254.1.1")
	DefaultGatewayV6  = netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")
	DefaultGatewayMAC = [6]byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
)

// NoIdleSpin as Config.IdleSpin makes an idle adaptive worker sleep at once.
const NoIdleSpin time.Duration = -1

const (
	// DefaultIdleSpin: an idle worker sleeps at once. Measured on 2 cores
	// (docs/BENCHMARKS.md), a worker that spins takes the core the pods
	// need: 200 µs of spin doubled the median latency and cost a few
	// percent of packet rate.
	DefaultIdleSpin  = NoIdleSpin
	DefaultBatchSize = 256
	MaxBatchSize     = 256
	DefaultFrames    = 16384
	DefaultFrameSize = 4096
	DefaultICMPRate  = 100
)

func (c *Config) setDefaults() {
	if c.IdleSpin == 0 {
		c.IdleSpin = DefaultIdleSpin
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Frames == 0 {
		c.Frames = DefaultFrames
	}
	if c.FrameSize == 0 {
		c.FrameSize = DefaultFrameSize
	}
	if !c.GatewayV4.IsValid() {
		c.GatewayV4 = DefaultGatewayV4
	}
	if !c.GatewayV6.IsValid() {
		c.GatewayV6 = DefaultGatewayV6
	}
	if c.GatewayMAC == [6]byte{} {
		c.GatewayMAC = DefaultGatewayMAC
	}
	if c.ICMPRate == 0 {
		c.ICMPRate = DefaultICMPRate
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 100 * time.Millisecond
	}
	if c.VXLAN != nil {
		vx := *c.VXLAN // the caller's stays as it was
		vx.setDefaults()
		c.VXLAN = &vx
	}
}

// PortStatus is what the API shows of a port.
type PortStatus struct {
	ID      uint16
	Name    string
	Kind    PortKind
	Mode    Mode   // the mode actually in use
	Up      bool   // false once the link went away or failed
	Reason  string // why the port is down or fell back ("xdp attach: ...")
	MAC     [6]byte
	PeerMAC [6]byte
	Addrs   []netip.Prefix
	MTU     int
	Worker  int
	Stats   PortStats
}

// PortStats counts one port's traffic.
type PortStats struct {
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	TxDrops            uint64 // frames the port's ring refused
	// Kernel-side AF_XDP counters (XDP_STATISTICS); zero for other ports.
	KernelRxDropped  uint64
	KernelRxRingFull uint64
	KernelFillEmpty  uint64
	KernelTxInvalid  uint64
}

// Neighbor is one resolved (or static) neighbour.
type Neighbor struct {
	Port   string
	Addr   netip.Addr
	MAC    [6]byte
	State  string // "static", "reachable", "stale", "incomplete", "failed"
	Static bool
}

// RouteInfo is one route as the API shows it.
type RouteInfo struct {
	Table   uint32
	Prefix  netip.Prefix
	Origin  string
	Kind    string
	Port    string
	Via     netip.Addr
	NextHop string
}
