package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// TestBGPNextHopUnreachable: BIRD 2 in the outside announces a network
// with a third-party next hop on the segment (198.18.0.253, a second
// address of the outside's). The node routes it through that next hop
// and its pod reaches the network. The address goes away: the kernel's
// neighbour turns failed under xvsd's probes, and the route leaves the
// FIB while BGP still has it; the address comes back: the neighbour
// answers, the route returns and the pod reaches the network again.
// (BIRD puts the node's pod block in the outside's kernel, for the
// replies.)
func TestBGPNextHopUnreachable(t *testing.T) {
	if _, err := exec.LookPath("bird"); err != nil {
		t.Fatal("bird not installed: `make deps` installs bird2")
	}
	l := newLab(t, lab.Options{Nodes: 1, PodsPerNode: 1, BGP: true, BGPOutsideAS: 65000})
	n := l.T.Nodes[0]
	nh := netip.MustParseAddr("198.18.0.253")
	net201 := netip.MustParsePrefix("198.18.201.0/24")
	dst := netip.MustParseAddr("198.18.201.1")
	// The outside's segment device: the one holding 198.18.0.254.
	out, err := l.Exec("outside", "ip", "-o", "-4", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	var seg string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[3], "198.18.0.254/") {
			seg = f[1]
		}
	}
	if seg == "" {
		t.Fatalf("no device with 198.18.0.254 in the outside:\n%s", out)
	}
	for _, cmd := range [][]string{
		{"ip", "addr", "add", nh.String() + "/24", "dev", seg},
		{"ip", "link", "add", "net201", "type", "veth", "peer", "name", "net201p"},
		{"ip", "addr", "add", "198.18.201.1/24", "dev", "net201"},
		{"ip", "link", "set", "net201p", "up"},
		{"ip", "link", "set", "net201", "up"},
	} {
		if _, err := l.Exec("outside", cmd...); err != nil {
			t.Fatal(err)
		}
	}
	// Quick neighbour ageing on the node, so that the test does not wait
	// the kernel's default 15-45 s before a silent neighbour is probed.
	for _, kv := range []string{"base_reachable_time_ms=1000", "delay_first_probe_time=1"} {
		if _, err := l.Exec(n.Name, "sysctl", "-qw", "net.ipv4.neigh."+n.Uplink+"."+kv); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`router id 198.18.0.254;
protocol device {}
protocol static s201 { ipv4; route %s via %s; }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }
protocol bgp %s_v4 { local 198.18.0.254 as 65000; neighbor %s as 64512; ipv4 { import all; export where proto = "s201"; }; }
protocol bgp %s_v6 { local fd00:18::fe as 65000; neighbor %s as 64512; ipv6 { import none; export none; }; }
`, net201, nh, n.Name, n.UplinkV4.Addr(), n.Name, n.UplinkV6.Addr())
	startBIRD(t, l, conf, "show", "route", "all")
	routed := func(want bool) func() error {
		return func() error {
			got, err := bgpRoutes(n)
			if err != nil {
				return err
			}
			if (got[net201] == "adjacency") != want {
				return fmt.Errorf("%s: %q (bgp routes %v)", net201, got[net201], got)
			}
			return nil
		}
	}
	eventually(t, 60*time.Second, "the node learns "+net201.String()+" via "+nh.String(), routed(true))
	if xvsctlBin != "" {
		out, err := execOut(xvsctlBin, "-s", n.Socket, "bgp", "routes", "-family", "v4")
		if err != nil || !strings.Contains(out, nh.String()) {
			t.Fatalf("xvsctl bgp routes: %v, want next hop %s in:\n%s", err, nh, out)
		}
	}
	ping(t, l, l.T.Pods[0].Name, dst)

	if _, err := l.Exec("outside", "ip", "addr", "del", nh.String()+"/24", "dev", seg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, net201.String()+" leaves the FIB when "+nh.String()+" stops answering", routed(false))
	code, body, err := l.HTTPGet(n.Name, "http://127.0.0.1:9091/metrics", 5*time.Second)
	if err != nil || code != 200 {
		t.Fatalf("metrics: %d %v", code, err)
	}
	for _, want := range []string{"xvs_bgp_held_prefixes 1", "xvs_bgp_unusable_next_hops 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if xvsctlBin != "" {
		// BGP still has the route: only forwarding lost it.
		out, err := execOut(xvsctlBin, "-s", n.Socket, "bgp", "routes", "-family", "v4")
		if err != nil || !strings.Contains(out, net201.String()) {
			t.Errorf("xvsctl bgp routes: %v, want %s still learned in:\n%s", err, net201, out)
		}
	}

	if _, err := l.Exec("outside", "ip", "addr", "add", nh.String()+"/24", "dev", seg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, net201.String()+" back in the FIB when "+nh.String()+" answers again", routed(true))
	ping(t, l, l.T.Pods[0].Name, dst)
}
