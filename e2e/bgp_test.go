package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/lab"
)

// bgpRoutes returns node's FIB routes of origin bgp, by prefix, with
// their kind (adjacency, vxlan, drop).
func bgpRoutes(node *lab.Node) (map[netip.Prefix]string, error) {
	c, err := api.Dial(node.Socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := c.Routes(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[netip.Prefix]string{}
	for _, r := range rs {
		if r.GetOrigin() == "bgp" {
			out[netip.MustParsePrefix(r.GetPrefix())] = r.GetKind()
		}
	}
	return out, nil
}

// wantBGPRoutes waits until every node routes every other node's blocks
// by BGP with kind, and its own blocks to a blackhole.
func wantBGPRoutes(t *testing.T, l *lab.Lab, kind string, d time.Duration) {
	t.Helper()
	for _, n := range l.T.Nodes {
		eventually(t, d, n.Name+" learns the other nodes' blocks", func() error {
			got, err := bgpRoutes(n)
			if err != nil {
				return err
			}
			for _, m := range l.T.Nodes {
				want := kind
				if m == n {
					want = "drop" // the unused part of its own blocks
				}
				for _, p := range []netip.Prefix{m.PodsV4, m.PodsV6} {
					if got[p] != want {
						return fmt.Errorf("%s: %q, want %q (bgp routes %v)", p, got[p], want, got)
					}
				}
			}
			return nil
		})
	}
}

// peersUp checks that node's BGP sessions are all Established, n of them.
func peersUp(node *lab.Node, n int) error {
	c, err := api.Dial(node.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.BGPStatus(ctx)
	if err != nil {
		return err
	}
	up := 0
	for _, p := range st.Peers {
		if p.Session == "Established" {
			up++
		}
	}
	if up != n || len(st.Peers) != n {
		return fmt.Errorf("%d of %d peers established, want %d: %+v", up, len(st.Peers), n, st.Peers)
	}
	return nil
}

// TestBGPMesh: three nodes in a full mesh (IPv4 and IPv6 sessions) on
// one segment whose router knows no pod block learn each other's blocks
// from BGP, and their pods reach each other natively over IPv4 and IPv6.
// Then node3's xvsd stops (its sessions end with a NOTIFICATION): the
// other nodes take its blocks out of their FIBs; it starts again: the
// sessions come back, the blocks are re-learned, and the window pod1
// could not reach pod3 is measured.
func TestBGPMesh(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 3, PodsPerNode: 1, BGP: true})
	wantBGPRoutes(t, l, "adjacency", 60*time.Second)
	for _, n := range l.T.Nodes {
		if err := peersUp(n, 4); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
	}
	if xvsctlBin != "" {
		out, err := execOut(xvsctlBin, "-s", l.T.Nodes[0].Socket, "node", "status")
		t.Logf("xvsctl node status on node1 (%v):\n%s", err, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"bgp", "routes", "-family", "v4"}, l.T.Nodes[1].PodsV4.String()},
			{[]string{"bgp", "routes", "-family", "v6", "-peer", l.T.Nodes[2].UplinkV6.Addr().String()}, l.T.Nodes[2].PodsV6.String()},
			{[]string{"bgp", "routes", "-peer", l.T.Nodes[1].UplinkV4.Addr().String(), "-advertised"}, l.T.Nodes[0].PodsV4.String()},
			{[]string{"-o", "json", "node", "status"}, `"session": "Established"`},
		} {
			out, err := execOut(xvsctlBin, append([]string{"-s", l.T.Nodes[0].Socket}, c.args...)...)
			if err != nil || !strings.Contains(out, c.want) {
				t.Errorf("xvsctl %v: %v, want %s in:\n%s", c.args, err, c.want, out)
			}
		}
	}
	code, body, err := l.HTTPGet("node1", "http://127.0.0.1:9091/metrics", 5*time.Second)
	if err != nil || code != 200 {
		t.Fatalf("metrics: %d %v", code, err)
	}
	for _, want := range []string{`xvs_bgp_sessions{state="Established"} 4`, `xvs_bgp_peer_routes{kind="accepted",peer="198.18.0.2"} 1`,
		`xvs_bgp_peer_advertised_routes{peer="fd00:18::3"} 1`, `xvs_bgp_updates_total{direction="received",peer="198.18.0.3"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	crossPods(t, l)
	p1, p3 := l.T.Pods[0], l.T.Pods[2]
	ping(t, l, p1.Name, p3.V4)
	ping(t, l, p3.Name, p1.V6)
	assertForwardingOff(t, l)

	// Peer flap: node3's speaker closes its sessions with a Cease.
	n1, n3 := l.T.Nodes[0], l.T.Nodes[2]
	stopped := time.Now()
	if err := l.StopXVSD(n3.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 drops node3's blocks", func() error {
		got, err := bgpRoutes(n1)
		if err != nil {
			return err
		}
		for _, p := range []netip.Prefix{n3.PodsV4, n3.PodsV6} {
			if k, ok := got[p]; ok {
				return fmt.Errorf("%s still routed (%s)", p, k)
			}
		}
		return nil
	})
	t.Logf("node3 stopped: its blocks left node1's FIB in %v", time.Since(stopped).Round(time.Millisecond))

	// Restart: ping pod3 from pod1 until it answers.
	restart := time.Now()
	if err := l.StartXVSD(n3.Name); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	deadline := ready.Add(60 * time.Second)
	for {
		if r, err := l.PingWith(p1.Name, p3.V4, lab.PingOptions{Count: 1, Wait: 200 * time.Millisecond}); err == nil && r.Received == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod1 cannot reach pod3 60s after node3's xvsd restarted")
		}
	}
	back := time.Now()
	t.Logf("node3's xvsd restart: ready after %v, pod1 reaches pod3 %v after ready (%v after start, %v after stop)",
		ready.Sub(restart).Round(time.Millisecond), back.Sub(ready).Round(time.Millisecond),
		back.Sub(restart).Round(time.Millisecond), back.Sub(stopped).Round(time.Millisecond))
	wantBGPRoutes(t, l, "adjacency", 30*time.Second)
	ping(t, l, p1.Name, p3.V6)
}

// TestBGPVXLAN: two nodes on a routed underlay that knows no pod block,
// one IPv4 session between them carrying IPv4 and IPv6 routes (IPv6 over
// IPv4, the node's IPv6 next hop), each route into the IPv4 tunnel to the
// peer's VTEP by bgp.vxlan: IPv6 pods over an IPv4 underlay.
func TestBGPVXLAN(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, BGP: true, Encap: lab.EncapVXLAN})
	wantBGPRoutes(t, l, "vxlan", 60*time.Second)
	for _, n := range l.T.Nodes {
		if err := peersUp(n, 1); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
	}
	crossPods(t, l)
	for _, n := range []string{"node1", "node2"} {
		if e, d := counter(t, l, n, "vxlan-encap"), counter(t, l, n, "vxlan-decap"); e == 0 || d == 0 {
			t.Errorf("%s: vxlan-encap %d, vxlan-decap %d; want both", n, e, d)
		}
	}
	assertForwardingOff(t, l)
}

// birdOutside is the outside's router: BIRD 2, eBGP in AS 65000 with
// every node over IPv4 and over IPv6, announcing a network of its own
// (on a veth in the outside) and putting what it learns in the outside's kernel.
func birdOutside(t *testing.T, l *lab.Lab, oneSession bool) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Fatal("bird not installed: `make deps` installs bird2")
	}
	for _, cmd := range [][]string{
		// A veth pair stands for the network (no dummy module here).
		{"ip", "link", "add", "net200", "type", "veth", "peer", "name", "net200p"},
		{"ip", "addr", "add", "198.18.200.1/24", "dev", "net200"},
		{"ip", "addr", "add", "fd00:18:200::1/64", "dev", "net200", "nodad"},
		{"ip", "link", "set", "net200p", "up"},
		{"ip", "link", "set", "net200", "up"},
	} {
		if _, err := l.Exec("outside", cmd...); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	b.WriteString(`router id 198.18.0.254;
protocol device {}
protocol direct { ipv4; ipv6; interface "net200"; }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }
protocol kernel { ipv6 { import none; export where source = RTS_BGP; }; }
`)
	for _, n := range l.T.Nodes {
		if oneSession {
			fmt.Fprintf(&b, "protocol bgp %s_mp { local 198.18.0.254 as 65000; neighbor %s as 64512; ipv4 { import all; export all; next hop self; }; ipv6 { import all; export all; next hop address fd00:18::fe; }; }\n", n.Name, n.UplinkV4.Addr())
			continue
		}
		fmt.Fprintf(&b, "protocol bgp %s_v4 { local 198.18.0.254 as 65000; neighbor %s as 64512; ipv4 { import all; export all; next hop self; }; }\n", n.Name, n.UplinkV4.Addr())
		fmt.Fprintf(&b, "protocol bgp %s_v6 { local fd00:18::fe as 65000; neighbor %s as 64512; ipv6 { import all; export all; next hop self; }; }\n", n.Name, n.UplinkV6.Addr())
	}
	startBIRD(t, l, b.String(), "show", "protocols", "all")
}

// startBIRD runs BIRD 2 in the outside namespace with config conf and
// returns its control socket; the lab stops it at the end of the test, and
// a failed test logs birdc's answer to show (e.g. "show", "route", "all").
func startBIRD(t *testing.T, l *lab.Lab, conf string, show ...string) (sock string) {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "bird.conf")
	sock = filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := l.Start("bird", "outside", "bird", "-f", "-c", cf, "-s", sock, "-P", sock+".pid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && len(show) > 0 {
			out, _ := exec.Command("birdc", append([]string{"-s", sock}, show...)...).CombinedOutput()
			t.Logf("bird:\n%s", out)
		}
		l.StopProcess(p)
	})
	return sock
}

// TestBGPWithBIRD: two xvsd nodes peer with BIRD 2 in the outside (eBGP)
// besides their mesh, over separate IPv4 and IPv6 sessions and over one
// IPv4 session carrying both (MP-BGP, explicit IPv6 next hops both
// ways). BIRD's network reaches the nodes with BIRD as next hop (on the
// IPv6 session a global + link-local pair), the nodes' blocks reach BIRD
// and its kernel, and the pods reach BIRD's network over IPv4 and IPv6
// through those routes.
func TestBGPWithBIRD(t *testing.T) {
	for _, one := range []bool{false, true} {
		t.Run(fmt.Sprintf("one-session=%v", one), func(t *testing.T) { testBGPWithBIRD(t, one) })
	}
}

func testBGPWithBIRD(t *testing.T, oneSession bool) {
	l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, BGP: true, BGPOutsideAS: 65000, BGPOutsideOneSession: oneSession})
	birdOutside(t, l, oneSession)
	peers := 4
	if oneSession {
		peers = 3
	}
	v4, v6 := netip.MustParsePrefix("198.18.200.0/24"), netip.MustParsePrefix("fd00:18:200::/64")
	for _, n := range l.T.Nodes {
		eventually(t, 60*time.Second, n.Name+" learns BIRD's network", func() error {
			got, err := bgpRoutes(n)
			if err != nil {
				return err
			}
			if got[v4] != "adjacency" || got[v6] != "adjacency" {
				return fmt.Errorf("bgp routes %v", got)
			}
			return peersUp(n, peers)
		})
	}
	for _, n := range l.T.Nodes {
		for _, p := range []netip.Prefix{n.PodsV4, n.PodsV6} {
			eventually(t, 30*time.Second, "the outside's kernel routes "+p.String(), func() error {
				fam := "-4"
				if p.Addr().Is6() {
					fam = "-6"
				}
				out, err := l.Exec("outside", "ip", fam, "route", "show", p.String())
				if err != nil || !strings.Contains(out, "proto bird") {
					return fmt.Errorf("%q %v", out, err)
				}
				return nil
			})
		}
	}
	wantBGPRoutes(t, l, "adjacency", 30*time.Second)
	for _, pod := range l.T.Pods {
		ping(t, l, pod.Name, netip.MustParseAddr("198.18.200.1"))
		ping(t, l, pod.Name, netip.MustParseAddr("fd00:18:200::1"))
	}
	crossPods(t, l)
}
