package porttest

import (
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// Driver is a port.Driver that opens whatever its function returns: tests
// build their fake ports in it (NewFakePort over req.Umem) and give the
// switch Registry(driver), so the switch opens them through the same seam
// as real ports.
type Driver func(req port.OpenRequest) (port.Opened, error)

var _ port.Driver = Driver(nil)

// Name implements port.Driver.
func (Driver) Name() string { return "fake" }

// Open implements port.Driver. A FakePort it returns opens its further
// queues through d as well.
func (d Driver) Open(req port.OpenRequest) (port.Opened, error) {
	op, err := d(req)
	if err != nil {
		return op, err
	}
	switch p := op.Port.(type) {
	case *FakePort:
		p.driver = d
	case *FakeOffloadPort:
		p.driver = d
	}
	return op, nil
}

// Registry returns a registry in which d opens every mode.
func Registry(d Driver) *port.Registry {
	r := port.NewRegistry()
	r.Register(d, spec.ModeAuto, spec.ModeXDPZC, spec.ModeXDPDrv, spec.ModeXDPSKB, spec.ModeAFPacket)
	r.SetAuto(port.Fallback{Mode: spec.ModeAuto})
	return r
}
