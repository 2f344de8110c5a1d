package podnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// undoStack holds what reverses each step done so far, run last first.
type undoStack []func() error

func (u *undoStack) push(f func() error) { *u = append(*u, f) }

func (u undoStack) run() error {
	var errs []error
	for i := len(u) - 1; i >= 0; i-- {
		if err := u[i](); err != nil && !errGone(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// side is one end while it is set up: its namespace's handles and link.
type side struct {
	field string // "host" or "pod", for errors
	e     *End
	h     *netlink.Handle
	eth   *ethtool
	link  netlink.Link
}

func (s *side) close() {
	if s.h != nil {
		s.h.Close()
		s.h = nil
	}
	if s.eth != nil {
		s.eth.close()
		s.eth = nil
	}
}

// Setup creates the pair and everything on it, in this order: open both
// namespaces; create the veth in Host.NS with its peer placed straight
// into Pod.NS (so the pod's name is never taken in the host namespace,
// even for a moment); sysctls; offloads; addresses; links up; routes;
// neighbours. Every step has its undo: on an error at any step the ones
// done are undone last first, so nothing is left behind (no veth, no
// address, no sysctl changed), and the error names the field and value
// that failed, with any failure to undo joined to it.
func Setup(p Pod) (Result, error) {
	if err := p.validate(); err != nil {
		return Result{}, err
	}
	host, pod := &side{field: "host", e: &p.Host}, &side{field: "pod", e: &p.Pod}
	// The handles must outlive the undo: a closed netlink.Handle falls
	// back to the calling thread's namespace, where an undo by ifindex
	// would hit someone else's link. So the undo runs here, explicitly,
	// before these deferred closes.
	defer host.close()
	defer pod.close()
	var undo undoStack
	res, err := setup(&p, host, pod, &undo)
	if err != nil {
		if uerr := undo.run(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
		}
		return Result{}, err
	}
	return res, nil
}

func setup(p *Pod, host, pod *side, undo *undoStack) (Result, error) {
	var err error
	for _, s := range []*side{host, pod} {
		if s.h, err = handleAt(s.e.NS); err != nil {
			return Result{}, fmt.Errorf("%s.ns %q: %w", s.field, s.e.NS, err)
		}
	}
	podNS, err := openNS(p.Pod.NS)
	if err != nil {
		return Result{}, fmt.Errorf("pod.ns %q: %w", p.Pod.NS, err)
	}
	defer podNS.Close()

	if err := createVeth(p, host, pod, podNS, undo); err != nil {
		return Result{}, err
	}
	for _, s := range []*side{host, pod} {
		if err := setSysctls(s, undo); err != nil {
			return Result{}, err
		}
	}
	for _, s := range []*side{host, pod} {
		if err := setOffloads(s, undo); err != nil {
			return Result{}, err
		}
	}
	for _, s := range []*side{host, pod} {
		if err := addAddrs(s, undo); err != nil {
			return Result{}, err
		}
	}
	for _, s := range []*side{pod, host} {
		if err := s.h.LinkSetUp(s.link); err != nil {
			return Result{}, fmt.Errorf("%s.name %s up in %s: %w", s.field, s.e.Name, nsName(s.e.NS), err)
		}
		undo.push(func() error { return s.h.LinkSetDown(s.link) })
	}
	for _, s := range []*side{host, pod} {
		if err := addRoutes(s, undo); err != nil {
			return Result{}, err
		}
	}
	for _, s := range []*side{host, pod} {
		if err := addNeighbors(s, undo); err != nil {
			return Result{}, err
		}
	}
	return Result{
		HostIndex: host.link.Attrs().Index, HostMAC: host.link.Attrs().HardwareAddr,
		PodIndex: pod.link.Attrs().Index, PodMAC: pod.link.Attrs().HardwareAddr,
	}, nil
}

func createVeth(p *Pod, host, pod *side, podNS netns.NsHandle, undo *undoStack) error {
	for _, s := range []*side{host, pod} {
		if l, err := s.h.LinkByName(s.e.Name); err == nil {
			return fmt.Errorf("%s.name %q: taken in %s (a %s): %w", s.field, s.e.Name, nsName(s.e.NS), l.Type(), os.ErrExist)
		}
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: p.Host.Name, HardwareAddr: p.Host.MAC, MTU: p.MTU},
		PeerName:         p.Pod.Name,
		PeerHardwareAddr: p.Pod.MAC,
	}
	if p.Host.NS != p.Pod.NS {
		veth.PeerNamespace = netlink.NsFd(podNS)
	}
	if p.Queues > 0 {
		veth.NumTxQueues, veth.NumRxQueues = p.Queues, p.Queues
		veth.PeerNumTxQueues, veth.PeerNumRxQueues = uint32(p.Queues), uint32(p.Queues)
	}
	if err := host.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth host.name %s (%s) - pod.name %s (%s): %w",
			p.Host.Name, nsName(p.Host.NS), p.Pod.Name, nsName(p.Pod.NS), err)
	}
	// The kernel made both ends or neither; deleting one deletes both.
	var err error
	if host.link, err = host.h.LinkByName(p.Host.Name); err != nil {
		host.h.LinkDel(veth)
		return fmt.Errorf("host.name %s after create: %w", p.Host.Name, err)
	}
	undo.push(func() error { return host.h.LinkDel(host.link) })
	if pod.link, err = pod.h.LinkByName(p.Pod.Name); err != nil {
		return fmt.Errorf("pod.name %s after create in %s: %w", p.Pod.Name, nsName(p.Pod.NS), err)
	}
	return nil
}

func setSysctls(s *side, undo *undoStack) error {
	for i, sc := range s.e.Sysctls {
		old, err := GetSysctl(s.e.NS, sc.Key)
		if err != nil {
			return fmt.Errorf("%s.sysctls[%d] in %s: %w", s.field, i, nsName(s.e.NS), err)
		}
		if err := SetSysctl(s.e.NS, sc.Key, sc.Value); err != nil {
			return fmt.Errorf("%s.sysctls[%d] in %s: %w", s.field, i, nsName(s.e.NS), err)
		}
		ns, key := s.e.NS, sc.Key
		undo.push(func() error { return SetSysctl(ns, key, old) })
	}
	return nil
}

func setOffloads(s *side, undo *undoStack) error {
	if s.e.Offloads.IsZero() {
		return nil
	}
	var err error
	if s.eth == nil {
		if s.eth, err = openEthtool(s.e.NS); err != nil {
			return fmt.Errorf("%s.offloads in %s: %w", s.field, nsName(s.e.NS), err)
		}
	}
	prev, err := s.eth.apply(s.e.Name, s.e.Offloads)
	if err != nil {
		return fmt.Errorf("%s.%w", s.field, err)
	}
	eth, dev := s.eth, s.e.Name
	undo.push(func() error { return eth.restore(dev, prev) })
	return nil
}

func addAddrs(s *side, undo *undoStack) error {
	if len(s.e.Addrs) == 0 {
		return nil
	}
	have, err := retry(func() ([]netlink.Addr, error) { return s.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("%s: list addresses in %s: %w", s.field, nsName(s.e.NS), err)
	}
	names := map[int]string{}
	for i, a := range s.e.Addrs {
		// The kernel lets two links hold one address; for a pod that is
		// a mistake that would black-hole one of them, so it is refused.
		for _, h := range have {
			ip, ok := netip.AddrFromSlice(h.IP)
			if ok && ip.Unmap() == a.Addr() {
				if _, ok := names[h.LinkIndex]; !ok {
					names[h.LinkIndex] = fmt.Sprintf("ifindex %d", h.LinkIndex)
					if l, err := s.h.LinkByIndex(h.LinkIndex); err == nil {
						names[h.LinkIndex] = l.Attrs().Name
					}
				}
				return fmt.Errorf("%s.addrs[%d] %s: already on %s in %s: %w", s.field, i, a, names[h.LinkIndex], nsName(s.e.NS), os.ErrExist)
			}
		}
		addr := nlAddr(a)
		if err := s.h.AddrAdd(s.link, addr); err != nil {
			return fmt.Errorf("%s.addrs[%d] %s on %s in %s: %w", s.field, i, a, s.e.Name, nsName(s.e.NS), err)
		}
		undo.push(func() error { return s.h.AddrDel(s.link, addr) })
	}
	return nil
}

func addRoutes(s *side, undo *undoStack) error {
	for i, r := range s.e.Routes {
		nr := nlRoute(s.link.Attrs().Index, r)
		if err := s.h.RouteAdd(nr); err != nil {
			return fmt.Errorf("%s.routes[%d] %s dev %s in %s: %w", s.field, i, r, s.e.Name, nsName(s.e.NS), err)
		}
		undo.push(func() error { return s.h.RouteDel(nr) })
	}
	return nil
}

func addNeighbors(s *side, undo *undoStack) error {
	for i, n := range s.e.Neighbors {
		nn := nlNeigh(s.link.Attrs().Index, n)
		if err := s.h.NeighSet(nn); err != nil {
			return fmt.Errorf("%s.neighbors[%d] %s lladdr %s dev %s in %s: %w", s.field, i, n.Addr, n.MAC, s.e.Name, nsName(s.e.NS), err)
		}
		undo.push(func() error { return s.h.NeighDel(nn) })
	}
	return nil
}

// Teardown deletes the pair that Setup made for p, by the names and
// namespaces in p. It is idempotent: a namespace that no longer exists, a
// veth already gone (deleting either end takes both, and so does deleting
// the pod's namespace) are success. It deletes only veths: a link of
// another kind under one of the names is an error and is left alone.
// Sysctls that are not per interface are not put back: other pods may
// count on them.
func Teardown(p Pod) error {
	for _, e := range []struct {
		field string
		e     *End
	}{{"host", &p.Host}, {"pod", &p.Pod}} {
		done, err := delVeth(e.field, e.e)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// delVeth deletes end e's link if it is there; done tells that it was.
func delVeth(field string, e *End) (done bool, err error) {
	h, err := handleAt(e.NS)
	if err != nil {
		if nsGone(err) {
			return false, nil
		}
		return false, fmt.Errorf("%s.ns %q: %w", field, e.NS, err)
	}
	defer h.Close()
	l, err := h.LinkByName(e.Name)
	if err != nil {
		if errGone(err) {
			return false, nil
		}
		return false, fmt.Errorf("%s.name %s in %s: %w", field, e.Name, nsName(e.NS), err)
	}
	if l.Type() != "veth" {
		return false, fmt.Errorf("%s.name %s in %s: is a %s, not a veth; left alone", field, e.Name, nsName(e.NS), l.Type())
	}
	if err := h.LinkDel(l); err != nil && !errGone(err) {
		return false, fmt.Errorf("delete %s.name %s in %s: %w", field, e.Name, nsName(e.NS), err)
	}
	return true, nil
}

// nsGone tells whether opening a namespace failed because it is gone: no
// file, or a file that is no longer a namespace (unmounted, not removed).
func nsGone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, errNotNS)
}
