package lab

import (
	"errors"
	"fmt"
)

// KernelRouting makes node's own kernel forward for its pods the way a
// Calico node does (forwarding on, a host route and a permanent neighbour
// per pod on its host end, a permanent gateway neighbour in each pod,
// since the host ends have no IPv4 address to proxy-ARP from, and routes
// to the other nodes' pod blocks through the outside). It is the
// baseline benchmarks compare xvsd against, and lets the lab's own tests
// drive traffic without xvsd. Stop xvsd on the node first: its XDP
// programs see the frames before the kernel does. Undo with
// NoKernelRouting, which also turns forwarding back off.
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
	for _, c := range otherNodeRoutes(l.T, n, "replace") {
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
	for _, c := range otherNodeRoutes(l.T, n, "del") {
		if _, err := l.Exec(c[0], c[1:]...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
