package daemon

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/xvs-project/xvs/spec"
)

// portsView is a portView with fixed ports and neighbours.
type portsView struct {
	ports []spec.PortStatus
	nbrs  []spec.Neighbor
}

func (v *portsView) Ports() []spec.PortStatus   { return v.ports }
func (v *portsView) Neighbors() []spec.Neighbor { return v.nbrs }

// TestNextHopUsable: a next hop is usable on an up port's connected
// subnet unless its neighbour failed, through a VXLAN node (by next hop
// or by peer) always, and otherwise not; the real switch's ports agree.
func TestNextHopUsable(t *testing.T) {
	A, P := netip.MustParseAddr, netip.MustParsePrefix
	vtep := spec.VXLANRoute{Remote: A("198.18.5.1"), MAC: [6]byte{2, 0x58, 3, 0, 5, 1}}
	sw := sinkSwitch(t)
	s := newRouteSink(sw, sw.FIB, map[netip.Addr]spec.VXLANRoute{A("198.18.5.1"): vtep}, slog.New(slog.DiscardHandler))
	v := &portsView{ports: sw.Ports()}
	if len(v.ports) != 1 || !v.ports[0].Up {
		t.Fatalf("the switch's ports: %+v, want one up uplink", v.ports)
	}
	usable := s.nextHopUsable(v)
	for _, c := range []struct {
		nh, peer string
		want     bool
	}{
		{"198.18.0.2", "198.18.0.2", true},   // on the uplink's subnet, not asked about yet
		{"fd00:18::2", "fd00:18::2", true},   // IPv6 too
		{"198.18.0.1", "198.18.0.1", false},  // the uplink's own address
		{"203.0.113.1", "198.18.0.2", false}, // on no subnet
		{"198.18.5.1", "198.18.5.1", true},   // a VXLAN node
		{"fd00:18:5::9", "198.18.5.1", true}, // announced by a VXLAN node
		{"198.18.0.3", "198.18.0.3", true},   // reachable neighbour
		{"198.18.0.4", "198.18.0.4", false},  // failed neighbour
		{"198.18.0.5", "198.18.0.5", true},   // incomplete: still resolving
	} {
		v.nbrs = []spec.Neighbor{
			{Port: "uplink0", Addr: A("198.18.0.3"), State: "reachable"},
			{Port: "uplink0", Addr: A("198.18.0.4"), State: "failed"},
			{Port: "uplink0", Addr: A("198.18.0.5"), State: "incomplete"},
		}
		if got := usable(A(c.nh), A(c.peer)); got != c.want {
			t.Errorf("next hop %s from %s: usable %v, want %v", c.nh, c.peer, got, c.want)
		}
	}
	// The port goes down, or its subnet changes: not usable.
	v.ports[0].Up = false
	if usable(A("198.18.0.2"), A("198.18.0.2")) {
		t.Error("usable through a port that is down")
	}
	v.ports[0].Up = true
	v.ports[0].Addrs = []netip.Prefix{P("198.18.7.1/24")}
	if usable(A("198.18.0.2"), A("198.18.0.2")) || !usable(A("198.18.7.2"), A("198.18.7.2")) {
		t.Error("the uplink's new subnet not followed")
	}
}
