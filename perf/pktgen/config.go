package pktgen

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/xvs-project/xvs/perf/gen"
)

// Caps every run stays under.
const (
	MaxDuration = time.Hour
	MaxCount    = math.MaxUint32
	MaxRate     = 100e6 // pps
	MaxFlows    = 65536
)

// Mode is what a run does.
type Mode string

const (
	ModeTx   Mode = "tx"
	ModeRx   Mode = "rx"
	ModeTxRx Mode = "txrx"
)

// IO is how frames are moved.
type IO string

const (
	IOAuto     IO = "auto" // AF_XDP when the ring layer works here, else AF_PACKET
	IOAFXDP    IO = "afxdp"
	IOAFPacket IO = "afpacket"
	IOAsavie   IO = "asavie" // AF_XDP through github.com/asavie/xdp: the ring benchmark's baseline
)

// Config is one run. Tx fields are ignored in rx mode and the other way
// round.
type Config struct {
	Mode    Mode
	Iface   string // sending interface (tx, txrx) or receiving one (rx)
	Netns   string // namespace of Iface; "" for the caller's
	RxIface string // txrx: receiving interface; "" for Iface
	RxNetns string // txrx: its namespace; "" for Netns
	IO      IO
	RxIO    IO // sink: afpacket (default) or afxdp; auto tries afxdp first

	SrcMAC, DstMAC   net.HardwareAddr // SrcMAC "" : the interface's
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Sizes            []int // cycled; see gen.ParseSizes
	IMIX             bool  // Sizes is gen.IMIX, to be fitted to the template and MTU
	Flows            int
	FlowBy           gen.FlowField
	VXLAN            *gen.VXLAN
	Stream           uint16

	Rate     float64       // packets per second; 0: as fast as possible
	Count    uint64        // packets to send (tx) or to wait for (rx); 0: no count bound
	Duration time.Duration // 0: no time bound
	Linger   time.Duration // txrx: how long to wait for stragglers after the last send; 0: 300ms
	Batch    int           // frames per system call; 0: 64

	Progress bool // print a line a second
}

// UsageError is a configuration the run refuses. The command exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usage(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// IsUsage reports whether err is a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

func (c *Config) sends() bool    { return c.Mode == ModeTx || c.Mode == ModeTxRx }
func (c *Config) receives() bool { return c.Mode == ModeRx || c.Mode == ModeTxRx }

// Check validates everything that does not need the interface; Run calls
// it, then checks the interface.
func (c *Config) Check() error {
	switch c.Mode {
	case ModeTx, ModeRx, ModeTxRx:
	default:
		return usage("mode %q: want tx, rx or txrx", c.Mode)
	}
	switch c.IO {
	case "":
		c.IO = IOAuto
	case IOAuto, IOAFXDP, IOAFPacket, IOAsavie:
	default:
		return usage("io %q: want auto, afxdp, afpacket or asavie", c.IO)
	}
	switch c.RxIO {
	case "":
		c.RxIO = IOAFPacket
	case IOAuto, IOAFXDP, IOAFPacket:
	default:
		return usage("rx-io %q: want auto, afxdp or afpacket", c.RxIO)
	}
	if c.Iface == "" {
		return usage("no interface: -iface is required")
	}
	if c.Count == 0 && c.Duration <= 0 {
		return usage("no bound: give -count or -duration (or both)")
	}
	if c.Duration < 0 {
		return usage("duration %v is negative", c.Duration)
	}
	if c.Duration > MaxDuration {
		return usage("duration %v is over the %v cap", c.Duration, MaxDuration)
	}
	if c.Count > MaxCount {
		return usage("count %d is over the %d cap (the sequence number is 32 bits)", c.Count, uint64(MaxCount))
	}
	if c.Batch < 0 || c.Batch > 1024 {
		return usage("batch %d: want 1..1024", c.Batch)
	}
	if c.Batch == 0 {
		c.Batch = 64
	}
	if c.Linger == 0 {
		c.Linger = 300 * time.Millisecond
	}
	if c.Linger < 0 || c.Linger > time.Minute {
		return usage("linger %v: want 0..1m", c.Linger)
	}
	if c.Mode == ModeRx && c.RxIface != "" {
		return usage("-rx-iface is for txrx; in rx mode -iface is the receiving interface")
	}
	if !c.sends() {
		return nil
	}
	if math.IsNaN(c.Rate) || c.Rate < 0 {
		return usage("rate %v: must be 0 (as fast as possible) or a positive packets-per-second figure", c.Rate)
	}
	if c.Rate > MaxRate {
		return usage("rate %v pps is over the %v cap", c.Rate, MaxRate)
	}
	if c.Rate > 0 && c.Rate < 1 {
		return usage("rate %v pps is below 1", c.Rate)
	}
	if !c.Src.IsValid() || !c.Dst.IsValid() {
		return usage("-src and -dst addresses are required to send")
	}
	c.Src, c.Dst = c.Src.Unmap(), c.Dst.Unmap()
	if c.Src.Is4() != c.Dst.Is4() {
		return usage("-src %s and -dst %s are different address families", c.Src, c.Dst)
	}
	for _, a := range []netip.Addr{c.Src, c.Dst} {
		if a.IsMulticast() || a.IsUnspecified() || (a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
			return usage("address %s: want a unicast address", a)
		}
	}
	if len(c.DstMAC) == 0 {
		return usage("-dst-mac is required to send (the next hop's MAC, e.g. the forwarder's port)")
	}
	if len(c.DstMAC) != 6 || (len(c.SrcMAC) != 0 && len(c.SrcMAC) != 6) {
		return usage("MAC addresses must be 6 bytes")
	}
	if c.SrcMAC != nil && c.SrcMAC[0]&1 == 1 {
		return usage("-src-mac %s is a multicast address", c.SrcMAC)
	}
	if c.Flows == 0 {
		c.Flows = 1
	}
	if c.Flows < 0 || c.Flows > MaxFlows {
		return usage("flows %d: want 1..%d", c.Flows, MaxFlows)
	}
	if c.SrcPort == 0 {
		c.SrcPort = 1024
	}
	if c.DstPort == 0 {
		c.DstPort = 9 // discard
	}
	if c.FlowBy == gen.FlowSrcPort && int(c.SrcPort)+c.Flows-1 > 0xffff {
		return usage("source port %d + %d flows passes 65535", c.SrcPort, c.Flows)
	}
	if vx := c.VXLAN; vx != nil {
		if vx.VNI >= 1<<24 {
			return usage("vni %d does not fit in 24 bits", vx.VNI)
		}
		if !vx.Src.IsValid() || !vx.Dst.IsValid() {
			return usage("VXLAN needs -outer-src and -outer-dst")
		}
		if vx.Src.Unmap().Is4() != vx.Dst.Unmap().Is4() {
			return usage("-outer-src %s and -outer-dst %s are different address families", vx.Src, vx.Dst)
		}
	}
	if len(c.Sizes) == 0 {
		return usage("no packet size")
	}
	min := gen.MinSize(c.Src.Is6(), c.VXLAN)
	if !c.IMIX {
		for _, n := range c.Sizes {
			if n < min {
				return usage("size %d is below %d, the smallest frame that holds this header stack and the %d-byte generator header", n, min, gen.HeaderLen)
			}
			if n > gen.MaxFrame {
				return usage("size %d is above %d", n, gen.MaxFrame)
			}
		}
	}
	return nil
}
