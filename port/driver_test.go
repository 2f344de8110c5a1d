package port_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// stub is a driver that fails with err, or opens with reason.
type stub struct {
	name   string
	err    error
	reason string
	opened *[]string
}

func (d stub) Name() string { return d.name }

func (d stub) Open(req port.OpenRequest) (port.Opened, error) {
	*d.opened = append(*d.opened, d.name)
	if d.err != nil {
		return port.Opened{}, d.err
	}
	return port.Opened{Reason: d.reason}, nil
}

// TestRegistry: a forced mode opens with its driver only; auto tries the
// order, says why it fell back, and stops where a step refuses.
func TestRegistry(t *testing.T) {
	errXDP := errors.New("no xdp here")
	refuseUplinks := func(pc spec.PortConfig, failed error) error {
		if pc.Kind == spec.PortUplink {
			return errors.New("uplink needs xdp")
		}
		return nil
	}
	for _, tc := range []struct {
		name       string
		pc         spec.PortConfig
		xdpErr     error
		wantOpened []string
		wantReason string
		wantErr    string
	}{
		{name: "forced xdp", pc: spec.PortConfig{Mode: spec.ModeXDPDrv}, wantOpened: []string{"xdp"}},
		{name: "forced xdp fails", pc: spec.PortConfig{Mode: spec.ModeXDPDrv}, xdpErr: errXDP, wantOpened: []string{"xdp"}, wantErr: "no xdp here"},
		{name: "forced af-packet", pc: spec.PortConfig{Mode: spec.ModeAFPacket}, wantOpened: []string{"af-packet"}, wantReason: "unsteered"},
		{name: "forced mode without driver", pc: spec.PortConfig{Name: "p", Mode: spec.ModeXDPZC}, wantErr: "port p: mode xdp-zerocopy: no driver: port mode unavailable"},
		{name: "auto first", pc: spec.PortConfig{}, wantOpened: []string{"xdp"}},
		{name: "auto falls back", pc: spec.PortConfig{}, xdpErr: errXDP, wantOpened: []string{"xdp", "af-packet"},
			wantReason: "xdp unavailable (no xdp here); fell back to af-packet; unsteered"},
		{name: "auto refused", pc: spec.PortConfig{Kind: spec.PortUplink}, xdpErr: errXDP, wantOpened: []string{"xdp"}, wantErr: "uplink needs xdp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opened []string
			r := port.NewRegistry()
			r.Register(stub{name: "xdp", err: tc.xdpErr, opened: &opened}, spec.ModeXDPDrv, spec.ModeXDPSKB)
			r.Register(stub{name: "af-packet", reason: "unsteered", opened: &opened}, spec.ModeAFPacket)
			r.SetAuto(port.Fallback{Mode: spec.ModeXDPDrv}, port.Fallback{Mode: spec.ModeAFPacket, Refuse: refuseUplinks})
			op, err := r.Open(port.OpenRequest{Config: tc.pc})
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Errorf("error %q, want %q", gotErr, tc.wantErr)
			}
			if !slices.Equal(tc.wantOpened, opened) {
				t.Errorf("drivers tried (-want +got):\n-%q\n+%q", tc.wantOpened, opened)
			}
			if err == nil && op.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q", op.Reason, tc.wantReason)
			}
		})
	}
}
