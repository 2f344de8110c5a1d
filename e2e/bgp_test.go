package e2e

import (
	"context"
	"fmt"
	"net/netip"
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
