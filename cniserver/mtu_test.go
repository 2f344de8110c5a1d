package cniserver

import (
	"net/netip"
	"testing"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/memstore"
	"github.com/xvs-project/xvs/podnet"
	"github.com/xvs-project/xvs/spec"
)

// fakeDP stands in for the switch where only its port list matters.
type fakeDP struct{ ports []spec.PortStatus }

func (f *fakeDP) Ready() bool                                         { return true }
func (f *fakeDP) AddPort(pc spec.PortConfig) (spec.PortStatus, error) { return spec.PortStatus{}, nil }
func (f *fakeDP) DelPort(string) error                                { return nil }
func (f *fakeDP) Ports() []spec.PortStatus                            { return f.ports }
func (f *fakeDP) ApplyRoutes(fib.Origin, []spec.Route, []netip.Prefix) error {
	return nil
}

func TestMTUAndOffloads(t *testing.T) {
	alloc, err := ipam.New(memstore.New(), ipam.Options{Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	none := ipam.Assigned{Pool: ipam.Pool{Encapsulation: ipam.EncapNone}}
	vx := ipam.Assigned{Pool: ipam.Pool{Encapsulation: ipam.EncapVXLAN}}
	tests := []struct {
		name     string
		uplink   int // 0: no uplink port
		overhead int
		as       []ipam.Assigned
		want     int
	}{
		{"no uplink, native", 0, 50, []ipam.Assigned{none}, 1500},
		{"vxlan over ipv4", 1500, 50, []ipam.Assigned{none, vx}, 1450},
		{"vxlan over ipv6", 1500, 70, []ipam.Assigned{vx}, 1430},
		{"jumbo uplink, native", 9000, 50, []ipam.Assigned{none, none}, 9000},
	}
	for _, tc := range tests {
		dp := &fakeDP{}
		if tc.uplink > 0 {
			dp.ports = []spec.PortStatus{{Name: "eth0", Kind: spec.PortUplink, MTU: tc.uplink}}
		}
		s, err := New(alloc, dp, Options{Node: "n", StateDir: t.TempDir(), VXLANOverhead: tc.overhead})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.mtuFor(tc.as); got != tc.want {
			t.Errorf("%s: MTU %d, want %d", tc.name, got, tc.want)
		}
	}
	s, _ := New(alloc, &fakeDP{}, Options{Node: "n", StateDir: t.TempDir(), FastPath: true})
	for _, tc := range []struct {
		mode spec.Mode
		want podnet.Offloads
	}{
		{spec.ModeAuto, podnet.Offloads{TxChecksum: podnet.Off, GRO: podnet.On}},
		{spec.ModeXDPDrv, podnet.Offloads{TxChecksum: podnet.Off, GRO: podnet.On}},
		{spec.ModeAFPacket, podnet.Offloads{}},
	} {
		if got := s.offloads(tc.mode); got.TxChecksum != tc.want.TxChecksum || got.GRO != tc.want.GRO {
			t.Errorf("offloads(%s) = %+v, want %+v", tc.mode, got, tc.want)
		}
	}
}
