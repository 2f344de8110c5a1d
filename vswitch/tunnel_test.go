package vswitch

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk/xsktest"
)

// TestKernelTunnelDevice: the switch's VXLAN device is made in metadata
// mode on the VXLAN port, 50 bytes under the uplink's MTU, up, with its tc
// program; closing deletes it; a stale one of its kind is replaced, and an
// interface of that name of another kind is left alone. The tunnel's
// source addresses are the node's VTEPs the host has.
func TestKernelTunnelDevice(t *testing.T) {
	ns := xsktest.NewNS(t)
	fp, err := xdpprog.NewFastPath(16)
	skipIfNotSupported(t, "fast path maps", err)
	defer fp.Close()
	vx := dataplane.VXLAN{On: true, VNI: DefaultVNI, Port: 4789, MAC: vtepMAC}
	get := func() netlink.Link {
		l, err := ns.NL.LinkByName(kernelTunnelName)
		if err != nil {
			return nil
		}
		return l
	}
	open := func() (kt *kernelTunnel, err error) {
		ns.Do(func() error { kt, err = openKernelTunnel(vx, 1500, fp, nil); return nil })
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
	// The tunnel's source: the VTEP addresses the host has; one it lacks
	// (only the workers' headers carry it) is left to the route.
	lo, err := ns.NL.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	ns.NL.LinkSetUp(lo)
	for _, a := range []string{"198.18.7.1/32", "fd00:18:7::1/128"} {
		if err := ns.NL.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(a), Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		v4, v6 string
		want   tunnelSource
	}{
		{"198.18.7.1", "fd00:18:7::1", tunnelSource{netip.MustParseAddr("198.18.7.1"), netip.MustParseAddr("fd00:18:7::1")}},
		{"198.18.7.2", "fd00:18:7::1", tunnelSource{v6: netip.MustParseAddr("fd00:18:7::1")}},
		{"198.18.7.1", "", tunnelSource{v4: netip.MustParseAddr("198.18.7.1")}},
	} {
		x := vx
		x.Has4, x.Src4 = true, netip.MustParseAddr(c.v4).As4()
		if c.v6 != "" {
			x.Has6, x.Src6 = true, netip.MustParseAddr(c.v6).As16()
		}
		var got tunnelSource
		ns.Do(func() error { got = kernelTunnelSource(x, nil); return nil })
		if got != c.want {
			t.Errorf("VTEPs %s, %s: tunnel source %+v, want %+v", c.v4, c.v6, got, c.want)
		}
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

func ipNet(cidr string) *net.IPNet {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}
