package podnet

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// ErrMismatch is what a CheckError is: the plumbing is not as configured.
var ErrMismatch = errors.New("pod plumbing differs")

// CheckError lists every way a pod's plumbing differs from its Pod.
type CheckError struct {
	Diffs []string
}

func (e *CheckError) Error() string {
	return ErrMismatch.Error() + ": " + strings.Join(e.Diffs, "; ")
}

func (e *CheckError) Is(target error) bool { return target == ErrMismatch }

// Check verifies that the plumbing Setup made for p is still there as p
// says (for CNI CHECK): both ends exist, are veths peered with each other,
// are up, with p's MTU, queue count and MACs, and every address, route,
// neighbour, sysctl and offload of each end is in place. What it finds
// different comes back as one *CheckError naming each difference; other
// errors mean it could not look. Things p does not ask for (the kernel's
// link-local address, routes of other links) are not differences.
func Check(p Pod) error {
	if err := p.validate(); err != nil {
		return err
	}
	var diffs []string
	links := map[string]netlink.Link{}
	for _, s := range []struct {
		field string
		e     *End
	}{{"host", &p.Host}, {"pod", &p.Pod}} {
		d, l, err := checkEnd(&p, s.field, s.e)
		if err != nil {
			return err
		}
		diffs = append(diffs, d...)
		links[s.field] = l
	}
	if h, q := links["host"], links["pod"]; h != nil && q != nil {
		// A veth's IFLA_LINK is its peer's ifindex, in the peer's netns.
		if h.Attrs().ParentIndex != q.Attrs().Index || q.Attrs().ParentIndex != h.Attrs().Index {
			diffs = append(diffs, fmt.Sprintf("%s and %s are not each other's peer", p.Host.Name, p.Pod.Name))
		}
	}
	if len(diffs) > 0 {
		return &CheckError{Diffs: diffs}
	}
	return nil
}

// checkEnd compares one end with e; it returns the link when it exists.
func checkEnd(p *Pod, field string, e *End) (diffs []string, _ netlink.Link, _ error) {
	add := func(format string, args ...any) {
		diffs = append(diffs, field+": "+fmt.Sprintf(format, args...))
	}
	h, err := handleAt(e.NS)
	if err != nil {
		if nsGone(err) {
			add("namespace %s is gone", e.NS)
			return diffs, nil, nil
		}
		return nil, nil, fmt.Errorf("%s.ns %q: %w", field, e.NS, err)
	}
	defer h.Close()
	l, err := h.LinkByName(e.Name)
	if err != nil {
		if errGone(err) {
			add("no link %s in %s", e.Name, nsName(e.NS))
			return diffs, nil, nil
		}
		return nil, nil, fmt.Errorf("%s.name %s: %w", field, e.Name, err)
	}
	a := l.Attrs()
	if l.Type() != "veth" {
		add("%s is a %s, not a veth", e.Name, l.Type())
	}
	if p.MTU != 0 && a.MTU != p.MTU {
		add("%s has mtu %d, want %d", e.Name, a.MTU, p.MTU)
	}
	if q := p.Queues; q > 0 && (a.NumTxQueues != q || a.NumRxQueues != q) {
		add("%s has %d tx and %d rx queues, want %d", e.Name, a.NumTxQueues, a.NumRxQueues, q)
	}
	if e.MAC != nil && !bytes.Equal(a.HardwareAddr, e.MAC) {
		add("%s has mac %s, want %s", e.Name, a.HardwareAddr, e.MAC)
	}
	if a.Flags&0x1 == 0 { // net.FlagUp
		add("%s is down", e.Name)
	}

	addrs, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, nil, fmt.Errorf("%s: addresses of %s: %w", field, e.Name, err)
	}
	for _, want := range e.Addrs {
		if !slices.ContainsFunc(addrs, func(got netlink.Addr) bool {
			ip, ok := netip.AddrFromSlice(got.IP)
			ones, _ := got.Mask.Size()
			return ok && ip.Unmap() == want.Addr() && ones == want.Bits()
		}) {
			add("address %s missing on %s", want, e.Name)
		}
	}

	routes, err := retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: a.Index}, netlink.RT_FILTER_OIF)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: routes of %s: %w", field, e.Name, err)
	}
	for _, want := range e.Routes {
		if !slices.ContainsFunc(routes, func(got netlink.Route) bool { return sameRoute(got, want) }) {
			add("route %s dev %s missing", want, e.Name)
		}
	}

	neighs, err := retry(func() ([]netlink.Neigh, error) { return h.NeighList(a.Index, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, nil, fmt.Errorf("%s: neighbours of %s: %w", field, e.Name, err)
	}
	for _, want := range e.Neighbors {
		i := slices.IndexFunc(neighs, func(got netlink.Neigh) bool {
			ip, ok := netip.AddrFromSlice(got.IP)
			return ok && ip.Unmap() == want.Addr
		})
		switch {
		case i < 0:
			add("neighbour %s missing on %s", want.Addr, e.Name)
		case !bytes.Equal(neighs[i].HardwareAddr, want.MAC):
			add("neighbour %s on %s has lladdr %s, want %s", want.Addr, e.Name, neighs[i].HardwareAddr, want.MAC)
		case neighs[i].State&netlink.NUD_PERMANENT == 0:
			add("neighbour %s on %s is not permanent (state %#x)", want.Addr, e.Name, neighs[i].State)
		}
	}

	for _, sc := range e.Sysctls {
		v, err := GetSysctl(e.NS, sc.Key)
		if err != nil {
			add("sysctl %s: %v", sc.Key, err)
		} else if v != sc.Value {
			add("sysctl %s is %s, want %s", sc.Key, v, sc.Value)
		}
	}

	if !e.Offloads.IsZero() {
		eth, err := openEthtool(e.NS)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.offloads: %w", field, err)
		}
		d, err := eth.differs(e.Name, e.Offloads)
		eth.close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s.%w", field, err)
		}
		for _, s := range d {
			add("%s", s)
		}
	}
	return diffs, l, nil
}

func sameRoute(got netlink.Route, want Route) bool {
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if !want.Dst.Addr().Is4() {
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if got.Dst != nil {
		ip, ok := netip.AddrFromSlice(got.Dst.IP)
		ones, _ := got.Dst.Mask.Size()
		if !ok {
			return false
		}
		dst = netip.PrefixFrom(ip.Unmap(), ones)
	} else if got.Family != family(want.Dst.Addr()) {
		return false
	}
	if dst != want.Dst.Masked() {
		return false
	}
	gw, _ := netip.AddrFromSlice(got.Gw)
	if want.Via.IsValid() != gw.IsValid() || (gw.IsValid() && gw.Unmap() != want.Via) {
		return false
	}
	return !want.OnLink || got.Flags&int(netlink.FLAG_ONLINK) != 0
}
