package dataplane

import (
	"net/netip"
	"time"
)

// PollMode is how an idle worker waits.
type PollMode uint8

const (
	// PollAdaptive spins briefly after traffic, then sleeps in poll(2).
	PollAdaptive PollMode = iota
	// PollBusy never sleeps: lowest latency, one core per worker.
	PollBusy
)

// Config is what a worker is built with: the switch's configuration as
// the workers need it, defaults already applied.
type Config struct {
	BatchSize int      // frames per vector
	Poll      PollMode // how an idle worker waits
	// IdleSpin is how long an adaptive worker keeps polling after its last
	// frame before it sleeps; negative: sleep at once.
	IdleSpin  time.Duration
	Frames    int // Umem frames per worker
	FrameSize int // Umem frame size

	// The pods' gateway addresses and MAC, which the workers answer for.
	GatewayV4  netip.Addr
	GatewayV6  netip.Addr
	GatewayMAC [6]byte

	ICMPRate   int   // ICMP errors per second per worker
	WorkerCPUs []int // worker i is pinned to WorkerCPUs[i], if there is one
}

// vxlanTTL is the outer TTL and hop limit (Linux's default for a vxlan
// device, which inherits the route's 64).
const vxlanTTL = 64
