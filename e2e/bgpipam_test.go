package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// bgpIPAM is each node's ipam: section for TestBGPIPAMBlocks: pools of
// its own that no config route or advertise names (so only IPAM's blocks
// make them reachable), in blocks of two addresses, so a third pod claims
// a second block.
func bgpIPAM(dir, node string) string {
	var i int
	fmt.Sscanf(node, "node%d", &i)
	return fmt.Sprintf(`frames: 32768
ipam:
  store: %q
  node: %q
  pools:
    - {name: pool4, cidr: 198.19.%d.0/24, blockSize: 31}
    - {name: pool6, cidr: "fd00:1a:%x::/112", blockSize: 127}
`, filepath.Join(dir, "ipam.db"), node, 239+i, i)
}

// TestBGPIPAMBlocks: two xvsd nodes with BGP (mesh) and IPAM. A pod ADDed
// through node1's CNI server gets an address from a block node1 claims;
// node1 advertises that block (not the pod's /32) and node2 learns it,
// and node2's pod reaches node1's over IPv4 and IPv6. A third pod claims
// a second block: it is advertised as it is claimed.
func TestBGPIPAMBlocks(t *testing.T) {
	e := newCNIEnvWith(t, lab.Options{Nodes: 2, PodsPerNode: 1, BGP: true}, bgpIPAM)
	wantBGPRoutes(t, e.l, "adjacency", 60*time.Second)
	n1, n2 := e.l.T.Nodes[0], e.l.T.Nodes[1]
	pod2 := e.l.T.Pods[1] // the lab's pod on node2
	if got, err := bgpRoutes(n2); err != nil {
		t.Fatal(err)
	} else {
		for p := range got {
			if netip.MustParsePrefix("198.19.240.0/24").Overlaps(p) || netip.MustParsePrefix("fd00:1a:1::/112").Overlaps(p) {
				t.Fatalf("node2 routes %s before node1 has a pod", p)
			}
		}
	}

	e.node = n1
	l := e.conflist("1.1.0")
	blocks := map[netip.Prefix]bool{}
	var last []netip.Addr
	var lastNS string
	for i := range 3 {
		ns := e.netns()
		r := e.mustAdd(l, e.rt(fmt.Sprintf("b%d", i), ns, nil))
		as := podAddrs(t, r)
		if len(as) != 2 {
			t.Fatalf("pod b%d: addresses %v, want an IPv4 and an IPv6 one", i, as)
		}
		b4, b6 := netip.PrefixFrom(as[0], 31).Masked(), netip.PrefixFrom(as[1], 127).Masked()
		blocks[b4], blocks[b6] = true, true
		// node2 learns the pod's block (an aggregate, not the /32 or
		// /128), natively via node1.
		eventually(t, 30*time.Second, fmt.Sprintf("node2 learns %s and %s", b4, b6), func() error {
			got, err := bgpRoutes(n2)
			if err != nil {
				return err
			}
			for _, p := range []netip.Prefix{b4, b6} {
				if got[p] != "adjacency" {
					return fmt.Errorf("%s: %q (bgp routes %v)", p, got[p], got)
				}
			}
			for _, a := range as {
				if k, ok := got[netip.PrefixFrom(a, a.BitLen())]; ok {
					return fmt.Errorf("a per-pod route for %s leaked into BGP (%s)", a, k)
				}
			}
			return nil
		})
		last, lastNS = as, ns
		if i == 0 {
			ping(t, e.l, pod2.Name, as[0])
			ping(t, e.l, pod2.Name, as[1])
			pingNS(t, ns, pod2.V4)
			pingNS(t, ns, pod2.V6)
		}
	}
	if len(blocks) != 4 {
		t.Fatalf("three pods in blocks of two took blocks %v, want two of each family", blocks)
	}
	// The pod in the second block.
	ping(t, e.l, pod2.Name, last[0])
	ping(t, e.l, pod2.Name, last[1])
	pingNS(t, lastNS, pod2.V6)
	assertForwardingOff(t, e.l)

	// node1's own blocks: a blackhole there (IPAM's), not learned back.
	got, err := bgpRoutes(n1)
	if err != nil {
		t.Fatal(err)
	}
	for p := range blocks {
		if k, ok := got[p]; ok {
			t.Errorf("node1 has its own block %s as a bgp route (%s)", p, k)
		}
	}
}

// TestBGPRuntimeConfig: xvsd's BGP changed at run time through xvsctl
// (the gRPC API), without a restart: an extra prefix advertised and
// withdrawn; the mesh turned off (node2's blocks leave node1's FIB); an
// explicit peer added (they come back), listed, refused when bad, and
// deleted (they leave again).
func TestBGPRuntimeConfig(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, BGP: true})
	wantBGPRoutes(t, l, "adjacency", 60*time.Second)
	n1, n2 := l.T.Nodes[0], l.T.Nodes[1]
	run := func(args ...string) string {
		t.Helper()
		out, err := xvsctl(t, l, "node1", args...)
		if err != nil {
			t.Fatalf("xvsctl %v: %v\n%s", args, err, out)
		}
		return out
	}
	routed := func(n *lab.Node, p netip.Prefix, want bool) {
		t.Helper()
		eventually(t, 20*time.Second, fmt.Sprintf("%s routes %s: %v", n.Name, p, want), func() error {
			got, err := bgpRoutes(n)
			if err != nil {
				return err
			}
			if _, ok := got[p]; ok != want {
				return fmt.Errorf("bgp routes %v", got)
			}
			return nil
		})
	}
	extra := netip.MustParsePrefix("198.19.250.0/24")
	run("bgp", "advertise", n1.PodsV4.String(), n1.PodsV6.String(), extra.String())
	routed(n2, extra, true)
	run("bgp", "advertise", n1.PodsV4.String(), n1.PodsV6.String())
	routed(n2, extra, false)

	// Off with the members still listed: the flag alone ends the mesh.
	members := []string{n1.UplinkV4.Addr().String(), n1.UplinkV6.Addr().String(), n2.UplinkV4.Addr().String(), n2.UplinkV6.Addr().String()}
	run(append([]string{"bgp", "mesh", "off"}, members...)...)
	routed(n1, n2.PodsV4, false)
	routed(n1, n2.PodsV6, false)
	if err := peersUp(n1, 0); err != nil {
		t.Fatal(err)
	}

	// A mesh member cannot also be an explicit peer: drop the members.
	run("bgp", "mesh", "off")
	// node2 still has node1 in its mesh (iBGP, AS 64512).
	a2 := n2.UplinkV4.Addr().String()
	if out, err := xvsctl(t, l, "node1", "bgp", "peer", "add", a2, "-as", "64512", "-families", "ipv4,ipv5"); err == nil || !strings.Contains(out, "families") || !strings.Contains(out, "ipv5") {
		t.Errorf("a bad family: %v, want an error naming the field and value:\n%s", err, out)
	}
	run("bgp", "peer", "add", a2, "-as", "64512", "-families", "ipv4,ipv6")
	routed(n1, n2.PodsV4, true)
	// (IPv6 stays out: node2's mesh session to node1's IPv4 address
	// offers only IPv4, so the families negotiated are IPv4.)
	if out := run("bgp", "peer", "list"); !strings.Contains(out, a2+" as 64512") {
		t.Errorf("peer list:\n%s", out)
	}
	if out := run("node", "status"); !strings.Contains(out, a2) || !strings.Contains(out, "global") {
		t.Errorf("node status lacks the added peer:\n%s", out)
	}
	run("bgp", "peer", "del", a2)
	routed(n1, n2.PodsV4, false)
	if out, err := xvsctl(t, l, "node1", "bgp", "peer", "del", a2); err == nil || !strings.Contains(out, "no such bgp peer") {
		t.Errorf("deleting a peer twice: %v:\n%s", err, out)
	}
}
