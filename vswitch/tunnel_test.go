package vswitch

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/vswitch/xdpprog"
	"github.com/xvs-project/xvs/vswitch/xsk/xsktest"
)

// TestKernelTunnelDevice: the switch's VXLAN device is made in metadata
// mode on the VXLAN port, 50 bytes under the uplink's MTU, up, with its tc
// program; closing deletes it; a stale one of its kind is replaced, and an
// interface of that name of another kind is left alone.
func TestKernelTunnelDevice(t *testing.T) {
	ns := xsktest.NewNS(t)
	fp, err := xdpprog.NewFastPath(16)
	if err != nil {
		t.Skipf("fast path maps: %v", err)
	}
	defer fp.Close()
	s := &Switch{fast: fp}
	vx := vxlanState{on: true, vni: DefaultVNI, port: 4789, mac: vtepMAC}
	get := func() netlink.Link {
		l, err := ns.NL.LinkByName(kernelTunnelName)
		if err != nil {
			return nil
		}
		return l
	}
	open := func() (kt *kernelTunnel, err error) {
		ns.Do(func() error { kt, err = s.openKernelTunnel(vx, 1500); return nil })
		return kt, err
	}
	kt, err := open()
	if err != nil {
		t.Fatal(err)
	}
	l := get()
	v, ok := l.(*netlink.Vxlan)
	if !ok || !v.FlowBased || v.Port != 4789 || v.Learning || l.Attrs().MTU != 1450 || l.Attrs().Flags&1 == 0 {
		t.Fatalf("device %+v", l)
	}
	// Left behind (xvsd killed): replaced.
	kt.in.Close()
	kt2, err := open()
	if err != nil {
		t.Fatalf("replacing a stale device: %v", err)
	}
	if l2 := get(); l2 == nil || l2.Attrs().Index == l.Attrs().Index {
		t.Errorf("stale device not replaced")
	}
	ns.Do(func() error { return kt2.close() })
	if get() != nil {
		t.Fatal("device left after close")
	}
	// Someone else's interface of that name: not ours to touch.
	if err := ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: kernelTunnelName}, PeerName: "xvs-other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := open(); err == nil {
		t.Error("took over a veth named like the device")
	}
	if l := get(); l == nil || l.Type() != "veth" {
		t.Errorf("the veth named %s is gone or changed: %v", kernelTunnelName, l)
	}
}
