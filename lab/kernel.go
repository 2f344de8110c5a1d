package lab

import (
	"errors"
	"fmt"
	"strings"
)

// KernelRouting makes node's own kernel forward for its pods the way a
// Calico node does (forwarding on, a host route and a permanent neighbour
// per pod on its host end, a permanent gateway neighbour in each pod,
// since the host ends have no IPv4 address to proxy-ARP from, and routes
// to the other nodes' pod blocks through the outside; with Encap vxlan,
// Calico's vxlan devices instead, see kernelVXLAN). It is the
// baseline benchmarks compare xvsd against, and lets the lab's own tests
// drive traffic without xvsd. Stop xvsd on the node first: its XDP
// programs see the frames before the kernel does. Calling it again is
// harmless. Undo with NoKernelRouting, which also turns forwarding back
// off.
func (l *Lab) KernelRouting(node string) error {
	n := l.T.NodeByName(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	for _, name := range n.Pods {
		p := l.T.PodByName(name)
		cmds := [][]string{
			{n.NS, "ip", "route", "replace", p.V4.String() + "/32", "dev", p.HostIf},
			{n.NS, "ip", "-6", "route", "replace", p.V6.String() + "/128", "dev", p.HostIf},
			{n.NS, "ip", "neigh", "replace", p.V4.String(), "lladdr", p.MAC.String(), "dev", p.HostIf, "nud", "permanent"},
			{n.NS, "ip", "-6", "neigh", "replace", p.V6.String(), "lladdr", p.MAC.String(), "dev", p.HostIf, "nud", "permanent"},
			{p.NS, "ip", "neigh", "replace", GatewayV4.String(), "lladdr", GatewayMAC.String(), "dev", PodIf, "nud", "permanent"},
		}
		for _, c := range cmds {
			if _, err := l.Exec(c[0], c[1:]...); err != nil {
				return err
			}
		}
	}
	cmds := otherNodeRoutes(l.T, n, "replace")
	if l.T.Encap == EncapVXLAN {
		// Everything else here is a replace; the devices are made anew,
		// so a second call neither fails nor keeps stale entries.
		if err := l.delLinks(n.NS, vxlanDev4, vxlanDev6); err != nil {
			return err
		}
		cmds = kernelVXLAN(l.T, n)
	}
	for _, c := range cmds {
		if _, err := l.Exec(c[0], c[1:]...); err != nil {
			return err
		}
	}
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if err := writeSysctl(n.NS, k, "1"); err != nil {
			return err
		}
	}
	return nil
}

// delLinks deletes those of the named devices that exist in namespace ns.
func (l *Lab) delLinks(ns string, devs ...string) error {
	out, err := l.Exec(ns, "ip", "-o", "link", "show")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		// "7: vxlan.calico: <...> mtu 1450 ..."; a veth's name ends in @peer.
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			have[name] = true
		}
	}
	for _, d := range devs {
		if have[d] {
			if _, err := l.Exec(ns, "ip", "link", "del", d); err != nil {
				return err
			}
		}
	}
	return nil
}

// The kernel's VXLAN devices, named as Calico names them.
const (
	vxlanDev4 = "vxlan.calico"
	vxlanDev6 = "vxlan-v6.calico"
)

// underlayRoutes are the routes from n to m's uplink subnet through the
// outside: a VTEP's kernel needs them to send to m's VTEP address.
func underlayRoutes(n, m *Node, verb string) [][]string {
	return [][]string{
		{n.NS, "ip", "route", verb, m.UplinkV4.Masked().String(), "via", n.GatewayV4.String(), "dev", n.Uplink},
		{n.NS, "ip", "-6", "route", verb, m.UplinkV6.Masked().String(), "via", n.GatewayV6.String(), "dev", n.Uplink},
	}
}

// kernelVXLAN sets node n up as Calico's VXLAN mode does: a vxlan device
// per underlay family (VNI 4096, port 4789, learning off, n's VTEP MAC,
// the uplink's MTU less the overhead), and for every other node m routes
// to m's uplink subnet through the outside (the underlay), a route
// to m's pod block via an address of that block on the device (onlink),
// a permanent neighbour entry for that address with m's VTEP MAC, and an
// FDB entry sending that MAC to m's uplink address.
func kernelVXLAN(t *Topology, n *Node) [][]string {
	if n.Uplink == "" {
		return nil
	}
	mtu := t.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	vni, port := fmt.Sprint(VXLANVNI), fmt.Sprint(VXLANPort)
	cmds := [][]string{
		{n.NS, "ip", "link", "add", vxlanDev4, "type", "vxlan", "id", vni, "dstport", port,
			"local", n.UplinkV4.Addr().String(), "dev", n.Uplink, "nolearning"},
		{n.NS, "ip", "link", "set", vxlanDev4, "address", n.VTEPMAC.String(), "mtu", fmt.Sprint(mtu - 50), "up"},
		{n.NS, "ip", "link", "add", vxlanDev6, "type", "vxlan", "id", vni, "dstport", port,
			"local", n.UplinkV6.Addr().String(), "dev", n.Uplink, "nolearning"},
		{n.NS, "ip", "link", "set", vxlanDev6, "address", n.VTEPMAC.String(), "mtu", fmt.Sprint(mtu - 70), "up"},
	}
	for _, m := range t.Nodes {
		if m == n {
			continue
		}
		gw4, gw6 := m.PodsV4.Addr(), m.PodsV6.Addr()
		cmds = append(cmds, underlayRoutes(n, m, "replace")...)
		cmds = append(cmds,
			[]string{n.NS, "ip", "neigh", "replace", gw4.String(), "lladdr", m.VTEPMAC.String(), "dev", vxlanDev4, "nud", "permanent"},
			[]string{n.NS, "bridge", "fdb", "append", m.VTEPMAC.String(), "dev", vxlanDev4, "dst", m.UplinkV4.Addr().String()},
			[]string{n.NS, "ip", "route", "replace", m.PodsV4.String(), "via", gw4.String(), "dev", vxlanDev4, "onlink"},
			[]string{n.NS, "ip", "-6", "neigh", "replace", gw6.String(), "lladdr", m.VTEPMAC.String(), "dev", vxlanDev6, "nud", "permanent"},
			[]string{n.NS, "bridge", "fdb", "append", m.VTEPMAC.String(), "dev", vxlanDev6, "dst", m.UplinkV6.Addr().String()},
			[]string{n.NS, "ip", "-6", "route", "replace", m.PodsV6.String(), "via", gw6.String(), "dev", vxlanDev6, "onlink"},
		)
	}
	return cmds
}

// otherNodeRoutes are the routes from n to the other nodes' pod blocks
// through the outside namespace, which routes between the uplinks.
func otherNodeRoutes(t *Topology, n *Node, verb string) [][]string {
	if n.Uplink == "" {
		return nil
	}
	var cmds [][]string
	for _, m := range t.Nodes {
		if m != n {
			cmds = append(cmds,
				[]string{n.NS, "ip", "route", verb, m.PodsV4.String(), "via", n.GatewayV4.String(), "dev", n.Uplink},
				[]string{n.NS, "ip", "-6", "route", verb, m.PodsV6.String(), "via", n.GatewayV6.String(), "dev", n.Uplink})
		}
	}
	return cmds
}

// NoKernelRouting undoes KernelRouting: forwarding off first, then the
// routes and neighbours it added.
func (l *Lab) NoKernelRouting(node string) error {
	n := l.T.NodeByName(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	var errs []error
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if err := writeSysctl(n.NS, k, "0"); err != nil {
			errs = append(errs, err)
		}
	}
	static := false
	for _, nb := range l.T.Neighbors {
		static = static || nb.Addr == GatewayV4
	}
	for _, name := range n.Pods {
		p := l.T.PodByName(name)
		cmds := [][]string{
			{n.NS, "ip", "route", "del", p.V4.String() + "/32", "dev", p.HostIf},
			{n.NS, "ip", "-6", "route", "del", p.V6.String() + "/128", "dev", p.HostIf},
			{n.NS, "ip", "neigh", "del", p.V4.String(), "dev", p.HostIf},
			{n.NS, "ip", "-6", "neigh", "del", p.V6.String(), "dev", p.HostIf},
		}
		if !static {
			cmds = append(cmds, []string{p.NS, "ip", "neigh", "del", GatewayV4.String(), "dev", PodIf})
		}
		for _, c := range cmds {
			if _, err := l.Exec(c[0], c[1:]...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	cmds := otherNodeRoutes(l.T, n, "del")
	if l.T.Encap == EncapVXLAN && n.Uplink != "" {
		// The devices take their routes, neighbours and FDB with them;
		// the underlay routes are the topology's, and stay.
		cmds = [][]string{{n.NS, "ip", "link", "del", vxlanDev4}, {n.NS, "ip", "link", "del", vxlanDev6}}
	}
	for _, c := range cmds {
		if _, err := l.Exec(c[0], c[1:]...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
