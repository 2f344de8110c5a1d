package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// TestBGPECMP: three xvsd nodes in a mesh with bgp.maxPaths 2. node1 and
// node2 both advertise the same (anycast) prefix at equal cost; node3's
// FIB holds it as an ECMP group of both next hops, and node3's pod's
// pings to 64 addresses in it spread over both (counted where they end:
// the prefix is local to node1's and node2's kernels, whose ICMP echo
// counters say how many came; the uplinks steer only pod addresses to
// the switch). node1 withdraws it: node3 keeps the route through node2
// alone, and every ping goes there.
func TestBGPECMP(t *testing.T) {
	o := lab.Options{Nodes: 3, PodsPerNode: 1, BGP: true}
	o.XVSDArgs = func(cfg string) []string {
		b, err := os.ReadFile(cfg)
		if err == nil {
			b = []byte(strings.Replace(string(b), "bgp:\n", "bgp:\n  maxPaths: 2\n", 1))
			err = os.WriteFile(cfg+".ecmp.yaml", b, 0o644)
		}
		if err != nil {
			t.Errorf("ecmp config: %v", err)
		}
		return []string{"-config", cfg + ".ecmp.yaml"}
	}
	l := newLab(t, o)
	wantBGPRoutes(t, l, "adjacency", 60*time.Second)
	n1, n2, n3 := l.T.Nodes[0], l.T.Nodes[1], l.T.Nodes[2]
	any4 := netip.MustParsePrefix("198.18.210.0/24")
	advertise := func(n *lab.Node, extra ...string) {
		t.Helper()
		args := append([]string{"bgp", "advertise", n.PodsV4.String(), n.PodsV6.String()}, extra...)
		if out, err := xvsctl(t, l, n.Name, args...); err != nil {
			t.Fatalf("xvsctl %v on %s: %v\n%s", args, n.Name, err, out)
		}
	}
	for _, n := range []*lab.Node{n1, n2} {
		if out, err := l.Exec(n.Name, "ip", "route", "add", "local", any4.String(), "dev", "lo"); err != nil {
			t.Fatalf("%s: %v\n%s", n.Name, err, out)
		}
	}
	echos := func(n *lab.Node) uint64 {
		t.Helper()
		out, err := l.Exec(n.Name, "cat", "/proc/net/snmp")
		if err != nil {
			t.Fatal(err)
		}
		var head []string
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Icmp:" {
				continue
			}
			if head == nil {
				head = f
				continue
			}
			for i, h := range head {
				if h == "InEchos" && i < len(f) {
					var v uint64
					fmt.Sscan(f[i], &v)
					return v
				}
			}
		}
		t.Fatalf("%s: no Icmp InEchos in /proc/net/snmp:\n%s", n.Name, out)
		return 0
	}
	advertise(n1, any4.String())
	advertise(n2, any4.String())
	kindOn3 := func(want string) func() error {
		return func() error {
			got, err := bgpRoutes(n3)
			if err != nil {
				return err
			}
			if got[any4] != want {
				return fmt.Errorf("%s: %q, want %q (bgp routes %v)", any4, got[any4], want, got)
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, "node3 routes "+any4.String()+" through node1 and node2", kindOn3("ecmp"))
	if out, err := xvsctl(t, l, n3.Name, "show", "routes"); err == nil {
		t.Logf("node3's routes:\n%s", out)
		for _, nh := range []netip.Addr{n1.UplinkV4.Addr(), n2.UplinkV4.Addr()} {
			if !strings.Contains(out, nh.String()) {
				t.Errorf("node3's routes lack next hop %s", nh)
			}
		}
	}
	// Two pings to each of 64 addresses of the prefix.
	flows := func() (at1, at2 uint64) {
		t.Helper()
		b1, b2 := echos(n1), echos(n2)
		script := "for i in $(seq 1 64); do ping -n -q -c 2 -i 0.2 -W 1 198.18.210.$i >/dev/null 2>&1 & done; wait"
		// The replies find no way back (the underlay has no pod routes
		// and the nodes' kernels do not forward), so the exit status
		// says nothing.
		if out, err := l.Exec(l.T.Pods[2].Name, "sh", "-c", script); err != nil && !strings.Contains(err.Error(), "exit status") {
			t.Fatalf("pings from %s: %v\n%s", l.T.Pods[2].Name, err, out)
		}
		time.Sleep(500 * time.Millisecond)
		return echos(n1) - b1, echos(n2) - b2
	}
	at1, at2 := flows()
	t.Logf("ECMP: %d echo requests at node1, %d at node2", at1, at2)
	if at1 == 0 || at2 == 0 || at1+at2 < 64 {
		t.Errorf("flows over the ECMP group: %d at node1, %d at node2; want both paths used, 128 in all", at1, at2)
	}

	advertise(n1) // node1 withdraws the prefix
	eventually(t, 30*time.Second, "node3 routes "+any4.String()+" through node2 alone", kindOn3("adjacency"))
	at1, at2 = flows()
	t.Logf("after node1's withdrawal: %d echo requests at node1, %d at node2", at1, at2)
	if at1 != 0 || at2 < 64 {
		t.Errorf("after node1 withdrew: %d at node1, %d at node2; want all at node2", at1, at2)
	}
}
