package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
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
