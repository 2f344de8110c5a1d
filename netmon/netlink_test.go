package netmon_test

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/netmon"
	"github.com/xvs-project/xvs/xsk/xsktest"
)

// TestNetlinkMonitor runs the monitor in a namespace of its own: an entry
// that was there before Start is reported, one added after it too,
// Resolve makes the kernel probe (an incomplete entry appears), deleting
// an entry and the link are reported, and Close stops it all.
func TestNetlinkMonitor(t *testing.T) {
	xsktest.RequireRoot(t)
	xsktest.CheckGoroutines(t)
	a, b := xsktest.NewNS(t), xsktest.NewNS(t)
	ifA, _ := xsktest.Veth(t, a, b, []netip.Prefix{netip.MustParsePrefix("198.18.5.1/24")}, []netip.Prefix{netip.MustParsePrefix("198.18.5.2/24")})
	idx := a.Ifindex(t, ifA)
	before, after := netip.MustParseAddr("198.18.5.10"), netip.MustParseAddr("198.18.5.11")
	mac := [6]byte{0x02, 0xbb, 0, 0, 0, 7}
	addNeigh := func(ip netip.Addr) {
		t.Helper()
		n := &netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, IP: net.IP(ip.AsSlice()), HardwareAddr: net.HardwareAddr(mac[:]), State: netlink.NUD_PERMANENT}
		if err := a.NL.NeighAdd(n); err != nil {
			t.Fatal(err)
		}
	}
	addNeigh(before)

	var mu sync.Mutex
	var got []netmon.Neighbor
	var gone []int
	m := &netmon.Netlink{}
	err := a.Do(func() error {
		return m.Start(netmon.Handler{
			Neighbor: func(n netmon.Neighbor) { mu.Lock(); got = append(got, n); mu.Unlock() },
			LinkGone: func(i int) { mu.Lock(); gone = append(gone, i); mu.Unlock() },
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	seen := func(want func(netmon.Neighbor) bool) bool {
		return xsktest.WaitFor(3*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, n := range got {
				if want(n) {
					return true
				}
			}
			return false
		})
	}
	valid := func(ip netip.Addr) func(netmon.Neighbor) bool {
		return func(n netmon.Neighbor) bool {
			return n.Ifindex == idx && n.Addr == ip && n.Valid && n.MAC == mac && n.State == "permanent" && !n.Deleted
		}
	}
	if !seen(valid(before)) {
		t.Fatalf("the entry there before Start was not listed: %+v", got)
	}
	addNeigh(after)
	if !seen(valid(after)) {
		t.Fatalf("the entry added after Start was not reported: %+v", got)
	}
	probe := netip.MustParseAddr("198.18.5.2")
	if err := a.Do(func() error { return m.Resolve(idx, probe) }); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if !seen(func(n netmon.Neighbor) bool { return n.Addr == probe }) {
		t.Errorf("resolving %s made no event: %+v", probe, got)
	}
	if err := a.NL.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, IP: net.IP(after.AsSlice())}); err != nil {
		t.Fatal(err)
	}
	if !seen(func(n netmon.Neighbor) bool { return n.Addr == after && n.Deleted && !n.Valid }) {
		t.Errorf("the deleted entry was not reported deleted: %+v", got)
	}
	lk, err := a.NL.LinkByIndex(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.NL.LinkDel(lk); err != nil {
		t.Fatal(err)
	}
	if !xsktest.WaitFor(3*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, i := range gone {
			if i == idx {
				return true
			}
		}
		return false
	}) {
		t.Errorf("link deletion not reported: %v", gone)
	}
}

// TestFromNeighUpdate: what is no next hop is left out; a failed entry is
// not valid and keeps no MAC.
func TestFromNeighUpdate(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	for _, tc := range []struct {
		name string
		u    netlink.NeighUpdate
		ok   bool
		want netmon.Neighbor
	}{
		{"reachable", netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH, Neigh: netlink.Neigh{LinkIndex: 3, IP: net.ParseIP("198.18.0.9"), HardwareAddr: mac, State: netlink.NUD_REACHABLE}},
			true, netmon.Neighbor{Ifindex: 3, Addr: netip.MustParseAddr("198.18.0.9"), MAC: [6]byte(mac), State: "reachable", Valid: true}},
		{"failed", netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH, Neigh: netlink.Neigh{LinkIndex: 3, IP: net.ParseIP("fd00::9"), State: netlink.NUD_FAILED}},
			true, netmon.Neighbor{Ifindex: 3, Addr: netip.MustParseAddr("fd00::9"), State: "failed"}},
		{"deleted", netlink.NeighUpdate{Type: unix.RTM_DELNEIGH, Neigh: netlink.Neigh{LinkIndex: 3, IP: net.ParseIP("198.18.0.9"), HardwareAddr: mac, State: netlink.NUD_REACHABLE}},
			true, netmon.Neighbor{Ifindex: 3, Addr: netip.MustParseAddr("198.18.0.9"), State: "reachable", Deleted: true}},
		{"multicast", netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH, Neigh: netlink.Neigh{LinkIndex: 3, IP: net.ParseIP("ff02::1"), State: netlink.NUD_NOARP}}, false, netmon.Neighbor{}},
		{"no address", netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH}, false, netmon.Neighbor{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := netmon.FromNeighUpdate(tc.u)
			if ok != tc.ok || got != tc.want {
				t.Errorf("(-want +got):\n-%+v %v\n+%+v %v", tc.want, tc.ok, got, ok)
			}
		})
	}
}
