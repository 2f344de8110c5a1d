package vswitch

import (
	"net/netip"
	"time"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

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
	Workers   int                // worker goroutines (default 1)
	BatchSize int                // frames per vector (default 256, the max: measured faster than 64 on veth)
	Poll      dataplane.PollMode // default adaptive
	// IdleSpin is how long an adaptive worker keeps polling after its last
	// frame before it sleeps in poll(2) (0: DefaultIdleSpin; NoIdleSpin:
	// sleep at once). Spinning saves a wake-up per burst on a core of its
	// own, and takes the core from the pods on a node without one to spare.
	IdleSpin  time.Duration
	Frames    int // UMEM frames per worker (default DefaultFrames)
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

	// ConntrackSize is the flows the NAT stage's connection-tracking
	// table holds (default DefaultConntrackSize); the table is allocated
	// when services or natOutgoing are first configured.
	ConntrackSize int

	Ports  []spec.PortConfig
	Routes []spec.Route
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
	MaxBatchSize     = port.MaxBatch
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

// workerConfig is what the workers need of c.
func (c *Config) workerConfig() dataplane.Config {
	return dataplane.Config{
		BatchSize: c.BatchSize, Poll: c.Poll, IdleSpin: c.IdleSpin, Frames: c.Frames, FrameSize: c.FrameSize,
		GatewayV4: c.GatewayV4, GatewayV6: c.GatewayV6, GatewayMAC: c.GatewayMAC,
		ICMPRate: c.ICMPRate, WorkerCPUs: c.WorkerCPUs,
	}
}
