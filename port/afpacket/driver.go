package afpacket

import (
	"fmt"

	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// Driver opens AF_PACKET ports: register it for ModeAFPacket, and last in
// ModeAuto's order. A pod or host port drops its ingress behind the
// socket's tap (the kernel sees none of its frames); an uplink is steered
// by its tc program. What cannot attach is said in Opened.Reason.
type Driver struct{}

var _ port.Driver = Driver{}

// Name implements port.Driver.
func (Driver) Name() string { return "af-packet" }

// Open implements port.Driver.
func (Driver) Open(req port.OpenRequest) (port.Opened, error) {
	pc := req.Config
	op, err := port.Link(pc.Name)
	if err != nil {
		return port.Opened{}, err
	}
	up := pc.Kind == spec.PortUplink
	p, err := Open(pc.Name, req.Umem, Options{DropIngress: !up, FastPath: req.FastPath, Steer: up})
	if err != nil {
		return port.Opened{}, err
	}
	warn := func(msg string, err error) {
		if req.Log != nil {
			req.Log.Warn(msg, "err", err)
		}
	}
	if err := p.SteerErr(); err != nil {
		op.Reason = port.JoinReasons(op.Reason, fmt.Sprintf("unsteered: the switch sees copies of all the host's frames (%v)", err))
		warn("uplink tc steering unavailable", err)
	}
	if err := p.FastPathErr(); err != nil {
		op.Reason = port.JoinReasons(op.Reason, fmt.Sprintf("no tc fast path (%v)", err))
		warn("tc fast path unavailable", err)
	}
	if err := p.DropIngressErr(); err != nil {
		// It still forwards; the node's kernel just sees the frames too.
		op.Reason = port.JoinReasons(op.Reason, fmt.Sprintf("kernel also sees this port's frames (%v)", err))
		warn("tc ingress drop unavailable", err)
	}
	op.Port = p
	return op, nil
}
