package afxdp

import (
	"fmt"

	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
)

// Driver opens AF_XDP ports: register it for ModeXDPZC, ModeXDPDrv and
// ModeXDPSKB, and first in ModeAuto's order (where it tries zero-copy,
// native, then generic XDP itself).
type Driver struct{}

var _ port.Driver = Driver{}

// Name implements port.Driver.
func (Driver) Name() string { return "xdp" }

// Open implements port.Driver.
func (Driver) Open(req port.OpenRequest) (port.Opened, error) {
	return open(req, nil)
}

// OpenQueue implements port.QueueOpener: queue req.Config.Queue of the
// port's interface, its socket in the port's steering program.
func (p *Port) OpenQueue(req port.OpenRequest) (port.Opened, error) {
	return open(req, p.prog)
}

// open opens req.Config's interface in its mode, with prog as its shared
// steering program when set.
func open(req port.OpenRequest, prog *xdpprog.Program) (port.Opened, error) {
	pc := req.Config
	op, err := port.Link(pc.Name)
	if err != nil {
		return port.Opened{}, err
	}
	// Every port sends TCP's super-frames whole (from af-packet pods, or
	// merged by GRO): the uplink for the NIC (or the kernel) to cut, a
	// pod's veth to the pod's stack in one piece.
	opts := Options{Program: prog, FastPath: req.FastPath, LargeTx: true, FillTarget: req.FillFrames}
	if opts.FillTarget == 0 {
		opts.FillTarget = DefaultFillTarget(pc.Kind, req.Umem.Frames())
	}
	if b := req.FrameBudget; b != 0 && opts.FillTarget > b {
		// Refused before anything is attached: auto mode falls back to
		// AF_PACKET, which keeps no frames.
		return port.Opened{}, fmt.Errorf("xdp port %s: its fill ring needs %d Umem frames, the worker has %d left of %d (the other ports' fill rings hold the rest; raise frames or workers): %w",
			pc.Name, opts.FillTarget, max(b, 0), req.Umem.Frames(), xsk.ErrNoFrames)
	}
	p, err := Open(pc.Name, pc.Queue, pc.Kind, pc.Mode, req.Umem, opts)
	if err != nil {
		return port.Opened{}, err
	}
	if err := p.LargeTxErr(); err != nil {
		op.Reason = fmt.Sprintf("super-frames cut in software (%v)", err)
		if req.Log != nil {
			req.Log.Warn("no GSO sender on the port", "err", err)
		}
	}
	op.Port = p.AsPort()
	op.Frames = p.FillTarget()
	return op, nil
}
