package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

var (
	birdV4  = netip.MustParsePrefix("198.19.10.0/24")
	birdV6  = netip.MustParsePrefix("fd00:fe0a::/48")
	nodeV4  = netip.MustParsePrefix("198.19.20.0/26")
	nodeV6  = netip.MustParsePrefix("fd00:fe14::/122")
	node3V4 = netip.MustParsePrefix("198.19.30.0/26")
	node3V6 = netip.MustParsePrefix("fd00:fe1e::/122")
)

// birdStatic returns BIRD's device and static protocols for the given
// blackhole routes.
func birdStatic(id netip.Addr, ps ...netip.Prefix) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nlog stderr all;\nprotocol device { }\n", id)
	var v4, v6 []string
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, fmt.Sprintf("route %s blackhole;", p))
		} else {
			v6 = append(v6, fmt.Sprintf("route %s blackhole;", p))
		}
	}
	if len(v4) > 0 {
		fmt.Fprintf(&b, "protocol static s4 { ipv4; %s }\n", strings.Join(v4, " "))
	}
	if len(v6) > 0 {
		fmt.Fprintf(&b, "protocol static s6 { ipv6; %s }\n", strings.Join(v6, " "))
	}
	return b.String()
}

func wantRoute(t *testing.T, c *child, p netip.Prefix, nh netip.Addr) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("route %s via %s at the speaker", p, nh), func() (bool, string) {
		r, ok := c.routes()[p]
		return ok && len(r.NextHops) == 1 && r.NextHops[0] == nh, fmt.Sprintf("%+v", r)
	})
}

func noRoute(t *testing.T, c *child, p netip.Prefix, d time.Duration) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("route %s gone at the speaker", p), func() (bool, string) {
		r, ok := c.routes()[p]
		return !ok, fmt.Sprintf("%+v", r)
	})
}

func birdHas(t *testing.T, b *bird, p netip.Prefix, nextHop netip.Addr) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("BIRD route %s with next hop %s", p, nextHop), func() (bool, string) {
		out, ok := b.route(p)
		return ok && strings.Contains(out, "BGP.next_hop: "+nextHop.String()) && !strings.Contains(out, "unreachable"), out
	})
}

// TestBIRDOneSession: one IPv4 session carrying both families (MP-BGP).
// BIRD's IPv6 routes come with its global and link-local addresses as
// next hops, and the global one is used; xvs's IPv6 routes carry the
// node's IPv6 address, not an IPv4-mapped one.
func TestBIRDOneSession(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, b6 := l.node(1)
	sns, s4, s6 := l.node(2)
	b := startBIRD(t, bns, birdStatic(b4, birdV4, birdV6)+fmt.Sprintf(`
protocol bgp xvs {
  local %s as 65001;
  neighbor %s as 65002;
  ipv4 { import all; export all; };
  ipv6 { import all; export all; };
}
`, b4, s4))
	sp := startSpeaker(t, sns, childSpec{
		Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
			Communities: []string{"65000:100", "no-export"},
			Peers:       []Peer{{Address: b4, ASNumber: 65001, Families: []Family{IPv4, IPv6}, ConnectRetry: time.Second}}},
		Prefixes: []netip.Prefix{nodeV4, nodeV6},
	})
	sp.waitEstablished(t, b4)
	wantRoute(t, sp, birdV4, b4)
	wantRoute(t, sp, birdV6, b6)
	birdHas(t, b, nodeV4, s4)
	birdHas(t, b, nodeV6, s6)
	out, _ := b.route(nodeV6)
	if strings.Contains(out, "::ffff:") {
		t.Errorf("BIRD sees an IPv4-mapped next hop:\n%s", out)
	}
	if !strings.Contains(out, "BGP.community: (65000,100) (65535,65281)") {
		t.Errorf("BIRD does not see the configured communities:\n%s", out)
	}
	waitFor(t, 10*time.Second, "status counts", func() (bool, string) {
		st := sp.status()
		return len(st.Peers) == 1 && st.Peers[0].Type == TypeGlobal && st.Peers[0].State == "up" && st.Peers[0].Received == 2 && st.Peers[0].Advertised == 2, fmt.Sprintf("%+v", st.Peers)
	})
	m := sp.call(childReq{Op: "metrics"}).Text
	for _, want := range []string{
		`xvs_bgp_peer_up{peer="198.18.0.1",type="global",} 1`,
		`xvs_bgp_peer_routes{kind="received",peer="198.18.0.1",} 2`,
		`xvs_bgp_peer_routes{kind="accepted",peer="198.18.0.1",} 2`,
		`xvs_bgp_sessions{state="Established",} 1`,
		`xvs_bgp_learned_prefixes{} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
}

// TestBIRDSeparateSessions: an IPv4 session for IPv4 and an IPv6 session
// for IPv6, as Calico's BIRD has them; GTSM (TTL security) on the first,
// a TCP MD5 password on the second.
func TestBIRDSeparateSessions(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, b6 := l.node(1)
	sns, s4, s6 := l.node(2)
	b := startBIRD(t, bns, birdStatic(b4, birdV4, birdV6)+fmt.Sprintf(`
protocol bgp xvs4 {
  local %s as 65001;
  neighbor %s as 65002;
  ttl security on;
  ipv4 { import all; export all; };
}
protocol bgp xvs6 {
  local %s as 65001;
  neighbor %s as 65002;
  password "s3cret";
  ipv6 { import all; export all; };
}
`, b4, s4, b6, s6))
	sp := startSpeaker(t, sns, childSpec{
		Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
			Peers: []Peer{
				{Address: b4, ASNumber: 65001, ConnectRetry: time.Second, TTLSecurity: 1},
				{Address: b6, ASNumber: 65001, ConnectRetry: time.Second, Scope: ScopeNode, Password: "s3cret"},
			}},
		Prefixes: []netip.Prefix{nodeV4, nodeV6},
	})
	sp.waitEstablished(t, b4, b6)
	wantRoute(t, sp, birdV4, b4)
	wantRoute(t, sp, birdV6, b6)
	birdHas(t, b, nodeV4, s4)
	birdHas(t, b, nodeV6, s6)
	r := sp.call(childReq{Op: "status"})
	for _, want := range []string{"IPv4 BGP status", "IPv6 BGP status", "| " + b4.String(), "| global ", "| node specific ", "| up ", "Established"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("status text lacks %q:\n%s", want, r.Text)
		}
	}
	t.Logf("status:\n%s", r.Text)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestBIRDExtendedNextHop: IPv4 over an IPv6 session (RFC 8950). The
// speaker is on an IPv6-only node, so its IPv4 routes carry its IPv6
// address as next hop, and BIRD's IPv4 routes arrive with BIRD's.
func TestBIRDExtendedNextHop(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, b6 := l.node(1)
	sns, _, s6 := l.node(2)
	b := startBIRD(t, bns, birdStatic(b4, birdV4, birdV6)+fmt.Sprintf(`
protocol bgp xvs {
  local %s as 65001;
  neighbor %s as 65002;
  ipv4 { extended next hop on; import all; export all; };
  ipv6 { import all; export all; };
}
`, b6, s6))
	sp := startSpeaker(t, sns, childSpec{
		Config: Config{NodeASNumber: 65002, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
			Peers: []Peer{{Address: b6, ASNumber: 65001, Families: []Family{IPv4, IPv6}, ConnectRetry: time.Second}}},
		Prefixes: []netip.Prefix{nodeV4, nodeV6},
	})
	sp.waitEstablished(t, b6)
	wantRoute(t, sp, birdV4, b6)
	wantRoute(t, sp, birdV6, b6)
	birdHas(t, b, nodeV4, s6)
	birdHas(t, b, nodeV6, s6)
}
