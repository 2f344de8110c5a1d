package vswitch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/xdpprog"
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
// vxlan.calico would, from the node's VTEP address (vxlan.vtep_v4/vtep_v6,
// else the uplink's) if the host has it, else from the one the host's
// route prefers (a warning says so). The other way, the uplink's program (XDP: over
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
	src     tunnelSource
}

// tunnelSource is the kernel tunnel's source address per underlay family
// (zero: the host route's).
type tunnelSource struct{ v4, v6 netip.Addr }

// kernelTunnelSource picks the VTEP addresses of vx the host has on an
// interface (in the calling thread's namespace): the kernel routes the
// outer packets from them. One it lacks (a vtep_v4 or vtep_v6 only the
// workers' headers carry) would make the kernel drop every packet; that
// family sends from the host route's source instead, as warned.
func kernelTunnelSource(vx dataplane.VXLAN, log *slog.Logger) tunnelSource {
	var src tunnelSource
	local := func(a netip.Addr, fam int) bool {
		addrs, err := netlink.AddrList(nil, fam)
		if err != nil {
			return false
		}
		for _, x := range addrs {
			if b, ok := netip.AddrFromSlice(x.IP); ok && b.Unmap() == a {
				return true
			}
		}
		if log != nil {
			log.Warn("the node's VTEP address is not the host's: the kernel's VXLAN device sends from its route's source", "vtep", a)
		}
		return false
	}
	if a := netip.AddrFrom4(vx.Src4); vx.Has4 && local(a, netlink.FAMILY_V4) {
		src.v4 = a
	}
	if a := netip.AddrFrom16(vx.Src6); vx.Has6 && local(a, netlink.FAMILY_V6) {
		src.v6 = a
	}
	return src
}

// openKernelTunnel creates the device for vx over an underlay of MTU mtu
// and attaches its tc program, which forwards with fast.
func openKernelTunnel(vx dataplane.VXLAN, mtu int, fast *xdpprog.FastPath, log *slog.Logger) (*kernelTunnel, error) {
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
		FlowBased: true, Port: int(vx.Port), Learning: false,
	}
	if err := netlink.LinkAdd(dev); err != nil {
		return nil, fmt.Errorf("create %s: %w", kernelTunnelName, err)
	}
	t := &kernelTunnel{src: kernelTunnelSource(vx, log)}
	l, err := netlink.LinkByName(kernelTunnelName)
	if err == nil {
		t.ifindex = l.Attrs().Index
		// No addresses, no IPv6 autoconfiguration: it only carries the
		// fast path's frames.
		os.WriteFile("/proc/sys/net/ipv6/conf/"+kernelTunnelName+"/disable_ipv6", []byte("1"), 0)
		err = netlink.LinkSetUp(l)
	}
	if err == nil {
		t.in, err = xdpprog.AttachTunnelIngress(t.ifindex, fast, vx.VNI, vx.MAC)
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
