package netmon

import (
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Netlink is the Monitor on the kernel's netlink subscriptions, in the
// network namespace of the goroutine that calls Start.
type Netlink struct {
	done chan struct{}
	wg   sync.WaitGroup
}

var _ Monitor = (*Netlink)(nil)

// Start implements Monitor.
func (m *Netlink) Start(h Handler) error {
	report := func(err error) {
		if h.Error != nil {
			h.Error(err)
		}
	}
	m.done = make(chan struct{})
	nch := make(chan netlink.NeighUpdate, 256)
	err := netlink.NeighSubscribeWithOptions(nch, m.done, netlink.NeighSubscribeOptions{ListExisting: true, ErrorCallback: report})
	if err != nil {
		close(m.done)
		m.done = nil
		return err
	}
	lch := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(lch, m.done, netlink.LinkSubscribeOptions{ErrorCallback: report}); err != nil {
		close(m.done)
		for range nch {
		}
		m.done = nil
		return err
	}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		for u := range nch {
			if n, ok := FromNeighUpdate(u); ok && h.Neighbor != nil {
				h.Neighbor(n)
			}
		}
	}()
	go func() {
		defer m.wg.Done()
		for u := range lch {
			if u.Header.Type == unix.RTM_DELLINK && h.LinkGone != nil {
				h.LinkGone(int(u.Index))
			}
		}
	}()
	return nil
}

// Close implements Monitor.
func (m *Netlink) Close() {
	if m.done == nil {
		return
	}
	close(m.done)
	m.done = nil
	m.wg.Wait()
}

// Resolve implements Monitor: NTF_USE, as if the host had traffic for
// addr, so the kernel resolves it (or refreshes it) and says so on the
// neighbour subscription.
func (m *Netlink) Resolve(ifindex int, addr netip.Addr) error {
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	return netlink.NeighSet(&netlink.Neigh{
		LinkIndex: ifindex, Family: fam, IP: net.IP(addr.AsSlice()),
		Flags: netlink.NTF_USE, State: netlink.NUD_NONE,
	})
}

const nudValid = netlink.NUD_PERMANENT | netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_NOARP

// FromNeighUpdate converts a netlink neighbour update; it reports false
// for what is no next hop (no address, multicast entries).
func FromNeighUpdate(u netlink.NeighUpdate) (Neighbor, bool) {
	addr, ok := netip.AddrFromSlice(u.IP)
	if !ok {
		return Neighbor{}, false
	}
	addr = addr.Unmap()
	if addr.IsMulticast() {
		return Neighbor{}, false // the kernel's NOARP multicast entries are no next hops
	}
	n := Neighbor{
		Ifindex: u.LinkIndex, Addr: addr, State: NUDString(u.State),
		Deleted: u.Type == unix.RTM_DELNEIGH,
		Valid:   u.Type == unix.RTM_NEWNEIGH && u.State&nudValid != 0 && len(u.HardwareAddr) == 6,
	}
	if n.Valid {
		copy(n.MAC[:], u.HardwareAddr)
	}
	return n, true
}

// NUDString names a NUD state as `ip neigh` does.
func NUDString(state int) string {
	switch {
	case state&netlink.NUD_PERMANENT != 0:
		return "permanent"
	case state&netlink.NUD_REACHABLE != 0:
		return "reachable"
	case state&netlink.NUD_STALE != 0:
		return "stale"
	case state&netlink.NUD_DELAY != 0:
		return "delay"
	case state&netlink.NUD_PROBE != 0:
		return "probe"
	case state&netlink.NUD_INCOMPLETE != 0:
		return "incomplete"
	case state&netlink.NUD_FAILED != 0:
		return "failed"
	case state&netlink.NUD_NOARP != 0:
		return "noarp"
	}
	return "none"
}
