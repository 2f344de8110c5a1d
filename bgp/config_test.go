package bgp

import (
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	n4 := netip.MustParseAddr("198.18.0.2")
	n6 := netip.MustParseAddr("fd00:18::2")
	base := func() Config { return Config{NodeIPv4: n4, NodeIPv6: n6} }
	peer := func(f func(*Peer)) Config {
		c := base()
		p := Peer{Address: netip.MustParseAddr("198.18.0.1"), ASNumber: 65001}
		f(&p)
		c.Peers = []Peer{p}
		return c
	}
	tests := []struct {
		name  string
		cfg   Config
		field string // "" means valid
		value string
	}{
		{"defaults", base(), "", ""},
		{"v6 only", Config{NodeIPv6: n6}, "", ""},
		{"no address", Config{}, "nodeIPv4", ""},
		{"bad AS", Config{NodeIPv4: n4, ASNumber: 23456}, "asNumber", "23456"},
		{"bad node AS", Config{NodeIPv4: n4, NodeASNumber: 65535}, "nodeASNumber", "65535"},
		{"mapped v6", Config{NodeIPv4: n4, NodeIPv6: netip.MustParseAddr("::ffff:198.18.0.2")}, "nodeIPv6", "::ffff:198.18.0.2"},
		{"link-local v6", Config{NodeIPv6: netip.MustParseAddr("fe80::1")}, "nodeIPv6", "fe80::1"},
		{"v6 router id", Config{NodeIPv4: n4, RouterID: n6}, "routerID", "fd00:18::2"},
		{"port", Config{NodeIPv4: n4, ListenPort: 70000}, "listenPort", "70000"},
		{"cluster id", Config{NodeIPv4: n4, RouteReflectorClusterID: "nope"}, "routeReflectorClusterID", "nope"},
		{"restart time", Config{NodeIPv4: n4, GracefulRestart: GracefulRestart{RestartTime: 5000 * time.Second}}, "gracefulRestart.restartTime", "1h23m20s"},
		{"community", Config{NodeIPv4: n4, Communities: []string{"65000:1", "70000:1"}}, "communities[1]", "70000:1"},
		{"well-known community", Config{NodeIPv4: n4, Communities: []string{"no-export"}}, "", ""},
		{"service cidr", Config{NodeIPv4: n4, ServiceClusterIPs: []netip.Prefix{netip.MustParsePrefix("10.96.0.1/12")}}, "serviceClusterIPs[0]", "10.96.0.1/12"},
		{"dup mesh", Config{NodeIPv4: n4, MeshMembers: []netip.Addr{n4, netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("198.18.0.3")}}, "meshMembers[2]", "198.18.0.3"},
		{"peer ok", peer(func(p *Peer) {}), "", ""},
		{"peer AS 0", peer(func(p *Peer) { p.ASNumber = 0 }), "peers[0].asNumber", "0"},
		{"peer is self", peer(func(p *Peer) { p.Address = n4 }), "peers[0].peerIP", "198.18.0.2"},
		{"dup peer", func() Config {
			c := peer(func(p *Peer) {})
			c.Peers = append(c.Peers, c.Peers[0])
			return c
		}(), "peers[1].peerIP", "198.18.0.1"},
		{"peer dup of mesh", func() Config {
			c := peer(func(p *Peer) {})
			c.MeshMembers = []netip.Addr{c.Peers[0].Address}
			return c
		}(), "peers[0].peerIP", "198.18.0.1"},
		{"rr client without cluster id", peer(func(p *Peer) { p.ASNumber = DefaultASNumber; p.RouteReflectorClient = true }), "peers[0].routeReflectorClient", "true"},
		{"rr client eBGP", func() Config {
			c := peer(func(p *Peer) { p.RouteReflectorClient = true })
			c.RouteReflectorClusterID = "244.0.0.1"
			return c
		}(), "peers[0].routeReflectorClient", "true"},
		{"ttl security iBGP", peer(func(p *Peer) { p.ASNumber = DefaultASNumber; p.TTLSecurity = 1 }), "peers[0].ttlSecurity", "1"},
		{"ttl security eBGP", peer(func(p *Peer) { p.TTLSecurity = 1 }), "", ""},
		{"multihop and ttl", peer(func(p *Peer) { p.TTLSecurity = 1; p.Multihop = 3 }), "peers[0].multihop", "3"},
		{"hold time", peer(func(p *Peer) { p.HoldTime = 2 * time.Second }), "peers[0].holdTime", "2s"},
		{"keepalive", peer(func(p *Peer) { p.HoldTime = 9 * time.Second; p.KeepaliveTime = 9 * time.Second }), "peers[0].keepaliveTime", "9s"},
		{"family", peer(func(p *Peer) { p.Families = []Family{"ipx"} }), "peers[0].families[0]", "ipx"},
		{"v6 over v4 without nodeIPv6", func() Config {
			c := peer(func(p *Peer) { p.Families = []Family{IPv4, IPv6} })
			c.NodeIPv6 = netip.Addr{}
			return c
		}(), "peers[0].families", "ipv6"},
		{"v6 peer without nodeIPv6", Config{NodeIPv4: n4, Peers: []Peer{{Address: netip.MustParseAddr("fd00:18::1"), ASNumber: 65001}}}, "peers[0].peerIP", "fd00:18::1"},
		{"scope", peer(func(p *Peer) { p.Scope = "cluster" }), "peers[0].scope", "cluster"},
		{"bfd multihop", peer(func(p *Peer) { p.BFD = &BFD{}; p.Multihop = 2 }), "peers[0].bfd", "multihop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("valid config: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("want a *ConfigError wrapping ErrInvalidConfig, got %v", err)
			}
			if ce.Field != tt.field || ce.Value != tt.value {
				t.Errorf("field, value (-want +got):\n- %s %q\n+ %s %q (%v)", tt.field, tt.value, ce.Field, ce.Value, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{NodeIPv6: netip.MustParseAddr("fd00:18::c612:5")}
	if c.LocalAS() != 64512 || !c.MeshEnabled() || c.listenPort() != 179 {
		t.Errorf("defaults: as %d mesh %v port %d", c.LocalAS(), c.MeshEnabled(), c.listenPort())
	}
	c.NodeASNumber = 65010
	c.ASNumber = 65000
	if c.LocalAS() != 65010 {
		t.Errorf("node AS override: %d", c.LocalAS())
	}
	p := Peer{Address: netip.MustParseAddr("fd00:18::1")}
	if f := p.families(); len(f) != 1 || f[0] != IPv6 {
		t.Errorf("an IPv6 peer's default families: %v", f)
	}
}

func TestRouterIDDerived(t *testing.T) {
	tests := []struct{ v6, want string }{
		{"fd00:18::c612:5", "198.18.0.5"},
		{"fd00:18::1:2:3:4", "0.3.0.4"},
	}
	for _, tt := range tests {
		c := Config{NodeIPv6: netip.MustParseAddr(tt.v6)}
		if got := c.routerID().String(); got != tt.want {
			t.Errorf("router ID from %s: got %s, want %s", tt.v6, got, tt.want)
		}
	}
	// All-zero low bytes cannot be a router ID.
	c := Config{NodeIPv6: netip.MustParseAddr("fd00:18::")}
	if id := c.routerID(); id.IsUnspecified() {
		t.Errorf("router ID from fd00:18:: is 0.0.0.0")
	}
}

// TestConfigYAML: the config reads from the YAML xvsd will embed it in,
// and writes back the same (netip fields included).
func TestConfigYAML(t *testing.T) {
	in := `
asNumber: 64512
nodeIPv4: 198.18.0.2
nodeIPv6: fd00:18::2
nodeToNodeMeshEnabled: false
meshMembers: [198.18.0.3]
routeReflectorClusterID: 244.0.0.1
gracefulRestart: {enabled: true, restartTime: 60s}
communities: ["65000:100", no-export]
serviceClusterIPs: [10.96.0.0/12]
peers:
  - peerIP: 198.18.0.1
    asNumber: 65001
    password: s3cret
    holdTime: 30s
    ttlSecurity: 1
    families: [ipv4, ipv6]
    bfd: {minTx: 100ms}
`
	var c Config
	if err := yaml.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MeshEnabled() || c.Peers[0].Password != "s3cret" || c.Peers[0].HoldTime != 30*time.Second || c.GracefulRestart.RestartTime != time.Minute ||
		c.Peers[0].BFD.MinTx != 100*time.Millisecond || c.NodeIPv6 != netip.MustParseAddr("fd00:18::2") {
		t.Errorf("decoded: %+v", c)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.NodeIPv4 != c.NodeIPv4 || back.Peers[0].Address != c.Peers[0].Address {
		t.Errorf("round trip lost addresses:\n%s", out)
	}
}

func TestReconfigureImmutable(t *testing.T) {
	n4 := netip.MustParseAddr("198.18.0.2")
	sp, err := New(Config{NodeIPv4: n4}, Options{Sink: &batchSink{}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"AS", Config{NodeIPv4: n4, ASNumber: 65000}, "asNumber"},
		{"node address", Config{NodeIPv4: netip.MustParseAddr("198.18.0.3")}, "nodeIPv4"},
		{"port", Config{NodeIPv4: n4, ListenPort: 1790}, "listenPort"},
		{"reflector", Config{NodeIPv4: n4, RouteReflectorClusterID: "244.0.0.1"}, "routeReflectorClusterID"},
		{"invalid", Config{NodeIPv4: n4, Peers: []Peer{{Address: netip.MustParseAddr("198.18.0.1")}}}, "peers[0].asNumber"},
		{"peers may change", Config{NodeIPv4: n4, Peers: []Peer{{Address: netip.MustParseAddr("198.18.0.1"), ASNumber: 65001}}}, ""},
	}
	for _, tt := range tests {
		err := sp.Reconfigure(t.Context(), tt.cfg)
		var ce *ConfigError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.field != "" && (!errors.As(err, &ce) || ce.Field != tt.field):
			t.Errorf("%s: want an error naming %s, got %v", tt.name, tt.field, err)
		}
	}
	if err := sp.SetPrefixes([]netip.Prefix{netip.MustParsePrefix("fd00:fe::/122")}); err == nil || !strings.Contains(err.Error(), "nodeIPv6") {
		t.Errorf("an IPv6 prefix on a node without nodeIPv6: %v", err)
	}
	if err := sp.SetPrefixes([]netip.Prefix{netip.MustParsePrefix("198.19.0.1/26")}); err == nil {
		t.Errorf("a prefix with host bits accepted")
	}
}

// TestStartClose: a speaker that listens nowhere and has a peer that
// never answers starts and closes without leaving goroutines behind.
func TestStartClose(t *testing.T) {
	before := runtime.NumGoroutine()
	sp, err := New(Config{NodeIPv4: netip.MustParseAddr("127.0.0.1"), ListenPort: -1, NodeToNodeMeshEnabled: ptr(false),
		Peers: []Peer{{Address: netip.MustParseAddr("127.0.0.2"), ASNumber: 65001, Port: 1, ConnectRetry: time.Second}}},
		Options{Sink: &batchSink{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.SetPrefixes([]netip.Prefix{netip.MustParsePrefix("198.19.0.0/26")}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := sp.Status(t.Context())
	if err != nil || len(st.Peers) != 1 || st.Peers[0].State != "start" {
		t.Errorf("status: %+v %v", st, err)
	}
	es, err := sp.Routes(t.Context(), RouteQuery{Family: IPv4})
	if err != nil || len(es) != 1 || es[0].Direction != "local" || es[0].NextHop != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("routes: %+v %v", es, err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Routes(t.Context(), RouteQuery{}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("routes after close: %v", err)
	}
	var after int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
	}
	buf := make([]byte, 1<<16)
	t.Errorf("goroutines: %d before, %d after close\n%s", before, after, buf[:runtime.Stack(buf, true)])
}
