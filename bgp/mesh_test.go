package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func nodePrefixes(i int) (netip.Prefix, netip.Prefix) {
	return netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/26", i)), netip.MustParsePrefix(fmt.Sprintf("fd00:fe:%d::/122", i))
}

// TestMesh: three speakers in the default node-to-node mesh (cluster AS
// 64512), IPv4 routes over IPv4 sessions and IPv6 over IPv6 sessions.
func TestMesh(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	type node struct {
		ns     string
		v4, v6 netip.Addr
		c      *child
	}
	var nodes []*node
	var members []netip.Addr
	for i := 1; i <= 3; i++ {
		ns, v4, v6 := l.node(i)
		nodes = append(nodes, &node{ns: ns, v4: v4, v6: v6})
		members = append(members, v4, v6)
	}
	for i, n := range nodes {
		p4, p6 := nodePrefixes(i + 1)
		// Every node gets the same member list; its own addresses are skipped.
		n.c = startSpeaker(t, n.ns, childSpec{
			Config:   Config{NodeIPv4: n.v4, NodeIPv6: n.v6, MeshMembers: members},
			Prefixes: []netip.Prefix{p4, p6},
		})
	}
	for i, n := range nodes {
		for j, o := range nodes {
			if i == j {
				continue
			}
			n.c.waitEstablished(t, o.v4, o.v6)
			p4, p6 := nodePrefixes(j + 1)
			wantRoute(t, n.c, p4, o.v4)
			wantRoute(t, n.c, p6, o.v6)
		}
	}
	// Nothing learned is passed on: each session advertises the node's own
	// prefix of its family only, and each node holds exactly the others'.
	for i, n := range nodes {
		if got := len(n.c.routes()); got != 4 {
			t.Errorf("node %d has %d routes, want 4: %v", i+1, got, n.c.routes())
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d's advertised counts", i+1), func() (bool, string) {
			st := n.c.status()
			ok := len(st.Peers) == 4
			for _, p := range st.Peers {
				ok = ok && p.Type == TypeMesh && p.State == "up" && p.Advertised == 1 && p.Received == 1
			}
			return ok, fmt.Sprintf("%+v", st.Peers)
		})
	}
	// A member leaves the mesh (run-time reconfiguration): its sessions
	// close and its routes go.
	if r := nodes[0].c.call(childReq{Op: "reconfigure", Config: fmt.Sprintf("nodeIPv4: %s\nnodeIPv6: %s\nmeshMembers: [%s, %s]\n", nodes[0].v4, nodes[0].v6, nodes[1].v4, nodes[1].v6)}); r.Err != "" {
		t.Fatal(r.Err)
	}
	p34, p36 := nodePrefixes(3)
	noRoute(t, nodes[0].c, p34, 10*time.Second)
	noRoute(t, nodes[0].c, p36, 10*time.Second)
	if st := nodes[0].c.status(); len(st.Peers) != 2 {
		t.Errorf("after removing a member: %+v", st.Peers)
	}
	// Withdraw on removal, at every other node.
	nodes[0].c.call(childReq{Op: "prefixes"})
	p4, p6 := nodePrefixes(1)
	noRoute(t, nodes[1].c, p4, 10*time.Second)
	noRoute(t, nodes[1].c, p6, 10*time.Second)
}

// TestBIRDRouteReflector: BIRD reflects between two speakers that have
// the mesh off; both families ride one IPv4 session.
func TestBIRDRouteReflector(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, _ := l.node(1)
	ns2, v42, v62 := l.node(2)
	ns3, v43, v63 := l.node(3)
	startBIRD(t, bns, birdStatic(b4)+fmt.Sprintf(`
protocol direct { ipv4; ipv6; interface "eth0"; }
template bgp rrc {
  local %s as 64512;
  rr client;
  rr cluster id 1.1.1.1;
  ipv4 { import all; export all; };
  ipv6 { import all; export all; };
}
protocol bgp c2 from rrc { neighbor %s as 64512; }
protocol bgp c3 from rrc { neighbor %s as 64512; }
`, b4, v42, v43))
	rr := []Peer{{Address: b4, ASNumber: 64512, RouteReflector: true, Families: []Family{IPv4, IPv6}, ConnectRetry: time.Second}}
	p42, p62 := nodePrefixes(2)
	p43, p63 := nodePrefixes(3)
	c2 := startSpeaker(t, ns2, childSpec{Config: Config{NodeIPv4: v42, NodeIPv6: v62, NodeToNodeMeshEnabled: ptr(false),
		MeshMembers: []netip.Addr{v42, v43}, Peers: rr}, Prefixes: []netip.Prefix{p42, p62}})
	c3 := startSpeaker(t, ns3, childSpec{Config: Config{NodeIPv4: v43, NodeIPv6: v63, NodeToNodeMeshEnabled: ptr(false),
		MeshMembers: []netip.Addr{v42, v43}, Peers: rr}, Prefixes: []netip.Prefix{p43, p63}})
	c2.waitEstablished(t, b4)
	c3.waitEstablished(t, b4)
	wantRoute(t, c2, p43, v43)
	wantRoute(t, c2, p63, v63)
	wantRoute(t, c3, p42, v42)
	wantRoute(t, c3, p62, v62)
	st := c2.status()
	if len(st.Peers) != 1 || st.Peers[0].Type != TypeRouteReflector {
		t.Errorf("with the mesh off the only peer is the reflector: %+v", st.Peers)
	}
}

// TestRouteReflectorServer: a speaker reflects between two BIRD clients.
func TestRouteReflectorServer(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	sns, s4, s6 := l.node(1)
	ns2, v42, _ := l.node(2)
	ns3, v43, _ := l.node(3)
	p42, _ := nodePrefixes(2)
	p43, _ := nodePrefixes(3)
	p41, p61 := nodePrefixes(1)
	client := func(id netip.Addr, p netip.Prefix) string {
		return birdStatic(id, p) + fmt.Sprintf(`
protocol direct { ipv4; interface "eth0"; }
protocol bgp reflector { local %s as 64512; neighbor %s as 64512; ipv4 { import all; export all; }; }
`, id, s4)
	}
	b2 := startBIRD(t, ns2, client(v42, p42))
	b3 := startBIRD(t, ns3, client(v43, p43))
	c := startSpeaker(t, sns, childSpec{Config: Config{NodeIPv4: s4, NodeIPv6: s6, RouteReflectorClusterID: "244.0.0.1",
		Peers: []Peer{
			{Address: v42, ASNumber: 64512, RouteReflectorClient: true, ConnectRetry: time.Second},
			{Address: v43, ASNumber: 64512, RouteReflectorClient: true, ConnectRetry: time.Second},
		}}, Prefixes: []netip.Prefix{p41, p61}})
	c.waitEstablished(t, v42, v43)
	birdHas(t, b3, p42, v42)
	birdHas(t, b2, p43, v43)
	birdHas(t, b2, p41, s4)
	out, _ := b3.route(p42)
	for _, want := range []string{"BGP.originator_id: " + v42.String(), "BGP.cluster_list: 244.0.0.1"} {
		if !contains(out, want) {
			t.Errorf("reflected route lacks %q:\n%s", want, out)
		}
	}
	wantRoute(t, c, p42, v42)
	st := c.status()
	for _, p := range st.Peers {
		if p.Type != TypeRRClient {
			t.Errorf("peer %s type %q, want %q", p.Address, p.Type, TypeRRClient)
		}
	}
}

// TestSetPeers: explicit peers changed at run time through SetPeers (the
// Kubernetes agent's call): a peer added comes up and its routes arrive;
// the same list again leaves the session alone; a second peer added
// beside it does not restart the first; a bad list is refused whole; a
// peer removed takes its routes with it.
func TestSetPeers(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ns1, a1, b1 := l.node(1)
	ns2, a2, b2 := l.node(2)
	ns3, a3, b3 := l.node(3)
	p2, _ := nodePrefixes(2)
	p3, _ := nodePrefixes(3)
	off := ptr(false)
	c1 := startSpeaker(t, ns1, childSpec{GoBGPWarn: true, Config: Config{NodeASNumber: 65001, NodeIPv4: a1, NodeIPv6: b1, NodeToNodeMeshEnabled: off}})
	startSpeaker(t, ns2, childSpec{Config: Config{NodeASNumber: 65002, NodeIPv4: a2, NodeIPv6: b2, NodeToNodeMeshEnabled: off,
		Peers: []Peer{{Address: a1, ASNumber: 65001, ConnectRetry: time.Second}}}, Prefixes: []netip.Prefix{p2}})
	startSpeaker(t, ns3, childSpec{Config: Config{NodeASNumber: 65003, NodeIPv4: a3, NodeIPv6: b3, NodeToNodeMeshEnabled: off,
		Peers: []Peer{{Address: a1, ASNumber: 65001, ConnectRetry: time.Second}}}, Prefixes: []netip.Prefix{p3}})

	peer2 := Peer{Address: a2, ASNumber: 65002, ConnectRetry: time.Second}
	peer3 := Peer{Address: a3, ASNumber: 65003, ConnectRetry: time.Second}
	set := func(ps ...Peer) string { return c1.call(childReq{Op: "setpeers", Peers: ps}).Err }
	// Before: node2 and node3 connect to a node that has no peers; they
	// are refused and shown as unknown peers, with a clear INFO.
	waitFor(t, 20*time.Second, "unknown peer rows", func() (bool, string) {
		st := c1.status()
		ok := len(st.Peers) == 0 && len(st.Unknown) == 2
		for i, u := range st.Unknown {
			ok = ok && u.Address == []netip.Addr{a2, a3}[i] && u.Type == TypeUnknown && u.State == "refused" &&
				strings.Contains(u.Info, "not a configured peer") && u.Attempts > 0
		}
		return ok, fmt.Sprintf("%+v %+v", st.Peers, st.Unknown)
	})
	if txt := c1.call(childReq{Op: "status"}).Text; !strings.Contains(txt, a2.String()) || !strings.Contains(txt, "Refused: not a configured peer") {
		t.Errorf("node status lacks the unknown peer's row:\n%s", txt)
	}
	if err := set(peer2); err != "" {
		t.Fatal(err)
	}
	c1.waitEstablished(t, a2)
	wantRoute(t, c1, p2, a2)
	since := func(a netip.Addr) time.Time {
		ps, ok := c1.peer(a)
		if !ok {
			t.Fatalf("no peer %s in status", a)
		}
		return ps.Since
	}
	up2 := since(a2)
	if err := set(peer2); err != "" {
		t.Fatal(err)
	}
	if err := set(peer2, peer3); err != "" {
		t.Fatal(err)
	}
	c1.waitEstablished(t, a2, a3)
	wantRoute(t, c1, p3, a3)
	if st := c1.status(); len(st.Unknown) != 0 {
		t.Errorf("configured peers still listed as unknown: %+v", st.Unknown)
	}
	if got, _ := c1.peer(a2); got.Since != up2 || got.Flaps != 0 {
		t.Errorf("peer %s restarted by SetPeers that kept it: since %v (was %v), flaps %d", a2, got.Since, up2, got.Flaps)
	}
	// A duplicate: refused, naming the field; nothing changes.
	if err := set(peer2, peer3, peer3); !strings.Contains(err, "peers[2]") {
		t.Errorf("duplicate peer: error %q, want one naming peers[2]", err)
	}
	if st := c1.status(); len(st.Peers) != 2 {
		t.Errorf("after a refused SetPeers: %+v", st.Peers)
	}
	if err := set(peer3); err != "" {
		t.Fatal(err)
	}
	noRoute(t, c1, p2, 10*time.Second)
	wantRoute(t, c1, p3, a3)
	if st := c1.status(); len(st.Peers) != 1 || st.Peers[0].Address != a3 {
		t.Errorf("after removing %s: %+v", a2, st.Peers)
	}
}
