package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/podnet"
)

// handles keeps one netlink handle per namespace while a topology is built.
type handles struct {
	ns map[string]netns.NsHandle
	h  map[string]*netlink.Handle
}

func (hs *handles) get(name string) (*netlink.Handle, netns.NsHandle, error) {
	if h, ok := hs.h[name]; ok {
		return h, hs.ns[name], nil
	}
	n, err := netns.GetFromName(name)
	if err != nil {
		return nil, -1, fmt.Errorf("open namespace %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(n)
	if err != nil {
		n.Close()
		return nil, -1, fmt.Errorf("netlink in %s: %w", name, err)
	}
	hs.ns[name], hs.h[name] = n, h
	return h, n, nil
}

func (hs *handles) close() {
	for k, h := range hs.h {
		h.Close()
		n := hs.ns[k]
		n.Close()
	}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// build creates t's namespaces, links, addresses, sysctls, routes and
// neighbours. Veths are created inside the namespace of their A end with
// the B end placed straight into its own namespace, so nothing the lab
// makes ever appears in the namespace this process runs in. On error the
// caller deletes the namespaces, which deletes everything else.
func build(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	for _, ns := range t.Namespaces {
		if err := addNS(ctx, ns); err != nil {
			return err
		}
	}
	hs := &handles{ns: map[string]netns.NsHandle{}, h: map[string]*netlink.Handle{}}
	defer hs.close()

	for _, ns := range t.Namespaces {
		h, _, err := hs.get(ns)
		if err != nil {
			return err
		}
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("lo in %s: %w", ns, err)
		}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("lo up in %s: %w", ns, err)
		}
	}

	for _, l := range t.Links {
		ha, _, err := hs.get(l.A.NS)
		if err != nil {
			return err
		}
		_, nb, err := hs.get(l.B.NS)
		if err != nil {
			return err
		}
		mtu := t.MTU
		if l.MTU != 0 {
			mtu = l.MTU
		}
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: l.A.Name, HardwareAddr: l.A.MAC, MTU: mtu},
			PeerName:         l.B.Name,
			PeerHardwareAddr: l.B.MAC,
			PeerNamespace:    netlink.NsFd(nb),
		}
		if l.Queues > 1 {
			q := uint32(l.Queues)
			veth.NumTxQueues, veth.NumRxQueues = int(q), int(q)
			veth.PeerNumTxQueues, veth.PeerNumRxQueues = q, q
		}
		if err := ha.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s/%s - %s/%s: %w", l.A.NS, l.A.Name, l.B.NS, l.B.Name, err)
		}
		logf("veth %s/%s <-> %s/%s", l.A.NS, l.A.Name, l.B.NS, l.B.Name)
	}

	for _, b := range t.Bridges {
		h, _, err := hs.get(b.NS)
		if err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.Name, HardwareAddr: b.MAC, MTU: t.MTU}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge %s in %s: %w", b.Name, b.NS, err)
		}
		for _, m := range b.Members {
			link, err := h.LinkByName(m)
			if err != nil {
				return fmt.Errorf("%s in %s: %w", m, b.NS, err)
			}
			if err := h.LinkSetMaster(link, br); err != nil {
				return fmt.Errorf("%s into bridge %s in %s: %w", m, b.Name, b.NS, err)
			}
		}
		for _, a := range b.Addrs {
			addr := &netlink.Addr{IPNet: prefixNet(a)}
			if a.Addr().Is6() {
				addr.Flags = unix.IFA_F_NODAD
			}
			if err := h.AddrAdd(br, addr); err != nil {
				return fmt.Errorf("add %s to %s in %s: %w", a, b.Name, b.NS, err)
			}
		}
		if err := h.LinkSetUp(br); err != nil {
			return fmt.Errorf("%s up in %s: %w", b.Name, b.NS, err)
		}
		logf("bridge %s/%s: %v", b.NS, b.Name, b.Members)
	}

	// Sysctls after the links exist (some name them) and before any link
	// is up, so DAD settings hold from the first address.
	for _, s := range t.Sysctls {
		if err := writeSysctl(s.NS, s.Key, s.Value); err != nil {
			return err
		}
	}

	for _, l := range t.Links {
		for _, e := range []End{l.A, l.B} {
			h, _, err := hs.get(e.NS)
			if err != nil {
				return err
			}
			link, err := h.LinkByName(e.Name)
			if err != nil {
				return fmt.Errorf("%s in %s: %w", e.Name, e.NS, err)
			}
			for _, a := range e.Addrs {
				addr := &netlink.Addr{IPNet: prefixNet(a)}
				if a.Addr().Is6() {
					addr.Flags = unix.IFA_F_NODAD
				}
				if err := h.AddrAdd(link, addr); err != nil {
					return fmt.Errorf("add %s to %s in %s: %w", a, e.Name, e.NS, err)
				}
			}
			if err := h.LinkSetUp(link); err != nil {
				return fmt.Errorf("%s up in %s: %w", e.Name, e.NS, err)
			}
		}
	}

	for _, ifr := range t.TxChecksumOff {
		if err := podnet.SetOffloads(podnet.NamedPath(ifr.NS), ifr.Dev, podnet.Offloads{TxChecksum: podnet.Off}); err != nil {
			return fmt.Errorf("tx checksum offload off on %s in %s: %w", ifr.Dev, ifr.NS, err)
		}
	}

	for _, ifr := range t.GROOn {
		if err := podnet.SetOffloads(podnet.NamedPath(ifr.NS), ifr.Dev, podnet.Offloads{GRO: podnet.On}); err != nil {
			return fmt.Errorf("gro on on %s in %s: %w", ifr.Dev, ifr.NS, err)
		}
	}

	for _, r := range t.Routes {
		h, _, err := hs.get(r.NS)
		if err != nil {
			return err
		}
		link, err := h.LinkByName(r.Dev)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", r.Dev, r.NS, err)
		}
		nr := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixNet(r.Dst), Gw: r.Via.AsSlice()}
		if r.OnLink {
			nr.Flags = int(netlink.FLAG_ONLINK)
		}
		if err := h.RouteAdd(nr); err != nil {
			return fmt.Errorf("route %s via %s dev %s in %s: %w", r.Dst, r.Via, r.Dev, r.NS, err)
		}
	}

	for _, n := range t.Neighbors {
		h, _, err := hs.get(n.NS)
		if err != nil {
			return err
		}
		link, err := h.LinkByName(n.Dev)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", n.Dev, n.NS, err)
		}
		fam := netlink.FAMILY_V4
		if n.Addr.Is6() {
			fam = netlink.FAMILY_V6
		}
		if err := h.NeighSet(&netlink.Neigh{
			LinkIndex: link.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT,
			IP: n.Addr.AsSlice(), HardwareAddr: n.MAC,
		}); err != nil {
			return fmt.Errorf("neighbour %s on %s in %s: %w", n.Addr, n.Dev, n.NS, err)
		}
	}
	return nil
}
