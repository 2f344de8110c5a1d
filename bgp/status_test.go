package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFormatStatus(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 50, 0, 0, time.UTC)
	st := Status{Running: true, Peers: []PeerStatus{
		{Address: netip.MustParseAddr("172.17.8.102"), Type: TypeMesh, State: "up", Since: now.Add(-20 * time.Minute), Info: "Established"},
		{Address: netip.MustParseAddr("172.17.8.103"), Type: TypeGlobal, State: "start", Since: now.Add(-48 * time.Hour), Info: "Active dial tcp: i/o timeout"},
	}}
	var b strings.Builder
	if err := FormatStatus(&b, st, now); err != nil {
		t.Fatal(err)
	}
	want := `xvsd is running.

IPv4 BGP status
+--------------+-------------------+-------+------------+------------------------------+
| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |             INFO             |
+--------------+-------------------+-------+------------+------------------------------+
| 172.17.8.102 | node-to-node mesh | up    | 21:30:00   | Established                  |
| 172.17.8.103 | global            | start | 2026-12-05 | Active dial tcp: i/o timeout |
+--------------+-------------------+-------+------------+------------------------------+

IPv6 BGP status
No IPv6 peers found.

`
	if got := b.String(); got != want {
		t.Errorf("(-want +got):\n-%s\n+%s", want, got)
	}
}

func TestFormatRoutes(t *testing.T) {
	var b strings.Builder
	FormatRoutes(&b, nil)
	if b.String() != "No routes found.\n" {
		t.Errorf("empty listing: %q", b.String())
	}
	b.Reset()
	FormatRoutes(&b, []RouteEntry{{Family: IPv6, Prefix: netip.MustParsePrefix("fd00:fe::/48"), NextHop: netip.MustParseAddr("fd00:18::1"),
		Peer: netip.MustParseAddr("198.18.0.1"), Best: true, ASPath: "65001", Direction: "received"}})
	for _, want := range []string{"| FAMILY |", "| ipv6   | fd00:fe::/48 | fd00:18::1 | 198.18.0.1 | received  | *    | 65001   |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("listing lacks %q:\n%s", want, b.String())
		}
	}
}

// TestUnknownPeersBounded: refused connections from many addresses keep
// at most maxUnknown rows, the most recently seen; a repeat counts.
func TestUnknownPeersBounded(t *testing.T) {
	s, err := New(Config{NodeIPv4: netip.MustParseAddr("198.18.0.1")}, Options{Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	for i := range maxUnknown + 10 {
		s.noteUnknown(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), t0.Add(time.Duration(i)*time.Second))
	}
	s.noteUnknown(netip.MustParseAddr("::ffff:198.18.1.25"), t0.Add(time.Hour)) // mapped: the same address
	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Unknown) != maxUnknown {
		t.Fatalf("%d unknown rows, want %d", len(st.Unknown), maxUnknown)
	}
	if u := st.Unknown[0]; u.Address != netip.MustParseAddr("198.18.1.10") {
		t.Errorf("oldest kept %s, want 198.18.1.10 (the ten seen longest ago make room)", u.Address)
	}
	last := st.Unknown[len(st.Unknown)-1]
	if last.Address != netip.MustParseAddr("198.18.1.25") || last.Attempts != 2 {
		t.Errorf("last row %s with %d attempts, want 198.18.1.25 with 2", last.Address, last.Attempts)
	}
	// Every attempt and address is counted, beyond the rows kept.
	if st.UnknownConnections != maxUnknown+11 || st.UnknownAddresses != maxUnknown+10 {
		t.Errorf("counted %d connections from %d addresses, want %d from %d", st.UnknownConnections, st.UnknownAddresses, maxUnknown+11, maxUnknown+10)
	}
	var b strings.Builder
	if err := FormatStatus(&b, st, t0); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Refused %d connections from %d addresses that are no configured peer (the %d most recent listed).", maxUnknown+11, maxUnknown+10, maxUnknown); !strings.Contains(b.String(), want) {
		t.Errorf("node status lacks %q:\n%s", want, b.String())
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				got[mf.GetName()] = c.GetValue()
			} else if g := m.GetGauge(); g != nil && len(m.GetLabel()) == 0 {
				got[mf.GetName()] = g.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"xvs_bgp_unknown_peer_connections_total": maxUnknown + 11,
		"xvs_bgp_unknown_peer_addresses_total":   maxUnknown + 10,
		"xvs_bgp_unknown_peers":                  maxUnknown,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

type nopSink struct{}

func (nopSink) ApplyRoutes([]Route, []netip.Prefix) error { return nil }
