package port

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
)

// ErrModeUnavailable is wrapped when a forced port mode cannot be had.
var ErrModeUnavailable = errors.New("port mode unavailable")

// OpenRequest is what a driver is asked to open.
type OpenRequest struct {
	Config spec.PortConfig
	// Umem is the serving worker's: the port receives into it and
	// transmits from it.
	Umem *xsk.Umem
	Log  *slog.Logger
	// FastPath is the switch's fast path for pod and uplink ports, nil
	// when off: the port's own program forwards to the node's pods.
	FastPath *xdpprog.FastPath
	// FillFrames is how many Umem frames the port shall keep posted for
	// the kernel to receive into (an AF_XDP fill ring); 0 is the
	// driver's default.
	FillFrames int
	// FrameBudget is the most Umem frames the port may keep for itself
	// (Opened.Frames): what the worker's other ports and its own working
	// set leave. Every port of a worker draws on one Umem; a driver that
	// needs more fails with xsk.ErrNoFrames rather than open a port that
	// cannot receive. 0 is no limit (a Umem of the caller's own); a
	// negative budget is none left.
	FrameBudget int
}

// Opened is an open port and the link facts the pipeline needs.
type Opened struct {
	Port    Port
	MAC     [6]byte
	MTU     int
	Ifindex int
	Reason  string // why the port runs in a lesser mode than asked, if it does
	// Frames is how many of the worker's Umem frames the port keeps for
	// itself while open (posted in its fill ring); frames it holds only
	// for the length of a call are not counted.
	Frames int
}

// Driver opens ports of the modes it is registered for. Open runs on the
// serving worker's goroutine (or before the worker starts), in the
// switch's network namespace.
type Driver interface {
	// Name names the driver in fallback reasons ("xdp", "af-packet").
	Name() string
	Open(req OpenRequest) (Opened, error)
}

// Fallback is one step of ModeAuto's order.
type Fallback struct {
	// Mode picks the step's driver: the one registered for Mode, which
	// is then asked for ModeAuto (its best).
	Mode spec.Mode
	// Refuse, when set, may refuse this step for a port the earlier
	// steps could not open (failed says why): its error ends the search.
	Refuse func(pc spec.PortConfig, failed error) error
}

// Registry chooses a port's driver by its mode. It is filled before the
// switch starts and read-only after.
type Registry struct {
	drivers map[spec.Mode]Driver
	auto    []Fallback
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{drivers: make(map[spec.Mode]Driver)} }

// Register makes d the driver of modes.
func (r *Registry) Register(d Driver, modes ...spec.Mode) {
	for _, m := range modes {
		r.drivers[m] = d
	}
}

// SetAuto sets the order ModeAuto tries, first to last.
func (r *Registry) SetAuto(order ...Fallback) { r.auto = order }

// Open opens req.Config with the driver of its mode; ModeAuto tries the
// fallback order and keeps in Opened.Reason why it fell back.
func (r *Registry) Open(req OpenRequest) (Opened, error) {
	pc := req.Config
	if pc.Mode != spec.ModeAuto {
		d := r.drivers[pc.Mode]
		if d == nil {
			return Opened{}, fmt.Errorf("port %s: mode %s: no driver: %w", pc.Name, pc.Mode, ErrModeUnavailable)
		}
		return d.Open(req)
	}
	if len(r.auto) == 0 {
		return Opened{}, fmt.Errorf("port %s: mode auto: no drivers: %w", pc.Name, ErrModeUnavailable)
	}
	var failed error
	var prev Driver
	for i, step := range r.auto {
		d := r.drivers[step.Mode]
		if d == nil {
			return Opened{}, fmt.Errorf("port %s: mode auto: no driver for %s: %w", pc.Name, step.Mode, ErrModeUnavailable)
		}
		reason := ""
		if i > 0 {
			if step.Refuse != nil {
				if err := step.Refuse(pc, failed); err != nil {
					return Opened{}, err
				}
			}
			reason = fmt.Sprintf("%s unavailable (%v); fell back to %s", prev.Name(), failed, d.Name())
			if req.Log != nil {
				req.Log.Warn("port driver unavailable, falling back", "driver", prev.Name(), "fallback", d.Name(), "err", failed)
			}
		}
		op, err := d.Open(req)
		if err == nil {
			op.Reason = JoinReasons(reason, op.Reason)
			return op, nil
		}
		failed, prev = err, d
	}
	return Opened{}, failed
}

// JoinReasons joins a port's reasons for running in a lesser mode.
func JoinReasons(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
