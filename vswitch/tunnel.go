package vswitch

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/vswitch/xdpprog"
)

// The kernel's VXLAN device under the tc fast path.
//
// With VXLAN and the fast path on, the switch creates a VXLAN device of
// its own in its namespace, in metadata mode (collect_md: no VNI, no
// remote; every packet carries its tunnel key), named kernelTunnelName.
// The tc fast path sends af-packet pods' frames for other nodes' pods
// into it with a tunnel key (xdpprog.FastPath.AddTunnel): the kernel
// encapsulates them, TSO super-frames whole (UDP-tunnel GSO), and routes
// the outer packet by the host's own routes to the remote VTEP, as its
// vxlan.calico would, from the address the host's route to it prefers
// (the uplink's, unless vxlan.vtep_v4/vtep_v6 name another, which this
// path does not follow). The other way, the uplink's program (XDP: over
// IPv4; tc on an af-packet uplink: over IPv4 and IPv6) hands VXLAN whose
// inner frame goes to such a pod to the kernel whole
// (SetKernelVXLAN); the device decapsulates it and merges
// its segments (GRO), and its tc program (xdpprog.AttachTunnelIngress)
// checks the VNI and the VTEP MAC and forwards to the pod. Everything else
// about VXLAN stays with the workers. The device goes with the switch; a
// stale one (xvsd killed) is replaced at start. An interface of that name
// that is not such a device is left alone, and the fast path then leaves
// VXLAN to the workers.
const kernelTunnelName = "xvs.vxlan"

type kernelTunnel struct {
	ifindex int
	in      *xdpprog.IngressDrop
}

// openKernelTunnel creates the device for vx over an underlay of MTU mtu
// and attaches its tc program.
func (s *Switch) openKernelTunnel(vx vxlanState, mtu int) (*kernelTunnel, error) {
	if l, err := netlink.LinkByName(kernelTunnelName); err == nil {
		if v, ok := l.(*netlink.Vxlan); !ok || !v.FlowBased {
			return nil, fmt.Errorf("interface %s exists and is not a metadata-mode VXLAN device", kernelTunnelName)
		}
		if err := netlink.LinkDel(l); err != nil {
			return nil, fmt.Errorf("delete stale %s: %w", kernelTunnelName, err)
		}
	}
	dev := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: kernelTunnelName, MTU: mtu - 50},
		FlowBased: true, Port: int(vx.port), Learning: false,
	}
	if err := netlink.LinkAdd(dev); err != nil {
		return nil, fmt.Errorf("create %s: %w", kernelTunnelName, err)
	}
	t := &kernelTunnel{}
	l, err := netlink.LinkByName(kernelTunnelName)
	if err == nil {
		t.ifindex = l.Attrs().Index
		// No addresses, no IPv6 autoconfiguration: it only carries the
		// fast path's frames.
		os.WriteFile("/proc/sys/net/ipv6/conf/"+kernelTunnelName+"/disable_ipv6", []byte("1"), 0)
		err = netlink.LinkSetUp(l)
	}
	if err == nil {
		t.in, err = xdpprog.AttachTunnelIngress(t.ifindex, s.fast, vx.vni, vx.mac)
	}
	if err != nil {
		netlink.LinkDel(dev)
		return nil, fmt.Errorf("%s: %w", kernelTunnelName, err)
	}
	return t, nil
}

// close detaches the program and deletes the device.
func (t *kernelTunnel) close() error {
	if t == nil {
		return nil
	}
	var errs []error
	errs = append(errs, t.in.Close())
	if l, err := netlink.LinkByIndex(t.ifindex); err == nil && l.Attrs().Name == kernelTunnelName {
		errs = append(errs, netlink.LinkDel(l))
	}
	return errors.Join(errs...)
}
