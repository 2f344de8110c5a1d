package ctl

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/apitest"
	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/dataplane"
)

func diff(t *testing.T, name, want, got string) {
	t.Helper()
	if want != got {
		t.Errorf("%s (-want +got):\n-%s\n+%s", name, strings.ReplaceAll(want, "\n", "\n-"), strings.ReplaceAll(got, "\n", "\n+"))
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args string
		want *Command
		err  string
	}{
		{"show ports", &Command{Op: OpShowPorts}, ""},
		{"show routes", &Command{Op: OpShowRoutes}, ""},
		{"show routes 10.0.0.0/8", &Command{Op: OpShowRoutes, Match: "10.0.0.0/8"}, ""},
		{"sh route 10.1.2.3", &Command{Op: OpShowRoutes, Match: "10.1.2.3"}, ""},
		{"show neighbours", &Command{Op: OpShowNeighbors}, ""},
		{"show counters", &Command{Op: OpShowCounters}, ""},
		{"show fib summary", &Command{Op: OpShowFIBSummary}, ""},
		{"status", &Command{Op: OpStatus}, ""},
		{"help", &Command{Op: OpHelp}, ""},
		{"lab up -n 3", &Command{Op: OpLab, Args: []string{"up", "-n", "3"}}, ""},
		{"route add 0.0.0.0/0 via 192.0.2.1", &Command{Op: OpRouteAdd, Route: &xvspb.AddRouteRequest{Prefix: "0.0.0.0/0", Via: "192.0.2.1"}}, ""},
		{"route add ::/0 via fe80::1 dev eth0", &Command{Op: OpRouteAdd, Route: &xvspb.AddRouteRequest{Prefix: "::/0", Via: "fe80::1", Port: "eth0"}}, ""},
		{"route add 10.9.0.0/16 dev eth0", &Command{Op: OpRouteAdd, Route: &xvspb.AddRouteRequest{Prefix: "10.9.0.0/16", Port: "eth0"}}, ""},
		{"route add 198.51.100.0/24 blackhole", &Command{Op: OpRouteAdd, Route: &xvspb.AddRouteRequest{Prefix: "198.51.100.0/24", Blackhole: true}}, ""},
		{"route add 10.244.3.0/24 vxlan 192.0.2.12 mac 02:58:03:00:00:02", &Command{Op: OpRouteAdd, Route: &xvspb.AddRouteRequest{Prefix: "10.244.3.0/24", VxlanRemote: "192.0.2.12", VxlanMac: "02:58:03:00:00:02"}}, ""},
		{"route del 10.9.0.0/16", &Command{Op: OpRouteDel, Route: &xvspb.AddRouteRequest{Prefix: "10.9.0.0/16"}}, ""},
		{"port add veth1 kind=pod addr=10.0.0.5/32,fd00::5/128 peer-mac=02:00:00:00:00:05 mode=xdp-native mtu=1450",
			&Command{Op: OpPortAdd, Port: &xvspb.PortConfig{Name: "veth1", Kind: "pod", Addresses: []string{"10.0.0.5/32", "fd00::5/128"}, PeerMac: "02:00:00:00:00:05", Mode: "xdp-native", Mtu: 1450}}, ""},
		{"port add eth0 kind=uplink queue=2 addr=192.0.2.10/24 addr=2001:db8::10/64",
			&Command{Op: OpPortAdd, Port: &xvspb.PortConfig{Name: "eth0", Kind: "uplink", Queue: 2, Addresses: []string{"192.0.2.10/24", "2001:db8::10/64"}}}, ""},
		{"port add veth2", &Command{Op: OpPortAdd, Port: &xvspb.PortConfig{Name: "veth2", Kind: "pod"}}, ""},
		{"port del veth1", &Command{Op: OpPortDel, Port: &xvspb.PortConfig{Name: "veth1"}}, ""},

		{"", nil, "no command"},
		{"frobnicate", nil, `unknown command "frobnicate"`},
		{"show", nil, "show: what?"},
		{"show bananas", nil, `show: unknown object "bananas"`},
		{"show ports extra", nil, `show ports: unexpected argument "extra"`},
		{"show routes 10.0.0.1 extra", nil, `show routes: unexpected argument "extra"`},
		{"show fib", nil, `only "show fib summary"`},
		{"status now", nil, `status: unexpected argument "now"`},
		{"route", nil, "route: add or del?"},
		{"route flip 10.0.0.0/8", nil, `route: unknown action "flip"`},
		{"route add", nil, "route add: missing PREFIX"},
		{"route add 10.0.0.0/8", nil, "route add: 10.0.0.0/8 needs via ADDR, dev PORT or blackhole"},
		{"route add 10.0.0.0/8 via", nil, "route add: via needs a value"},
		{"route add 10.0.0.0/8 via 1.1.1.1 via 2.2.2.2", nil, "via given twice"},
		{"route add 10.0.0.0/8 via 1.1.1.1 blackhole", nil, "a blackhole route takes no via or dev"},
		{"route add 10.0.0.0/8 vxlan 192.0.2.12", nil, "a vxlan route needs vxlan ADDR and mac MAC"},
		{"route add 10.0.0.0/8 vxlan 192.0.2.12 mac 02:58:03:00:00:02 via 192.0.2.1", nil, "a vxlan route takes no via, dev or blackhole"},
		{"route add 10.0.0.0/8 through 1.1.1.1", nil, `unexpected "through"`},
		{"route del", nil, "route del: missing PREFIX"},
		{"port add", nil, "port add: missing NAME"},
		{"port add kind=pod", nil, "port add: missing NAME"},
		{"port add veth1 kind", nil, `port add: "kind": want KEY=VALUE`},
		{"port add veth1 color=red", nil, `port add: unknown key "color"`},
		{"port add veth1 mtu=big", nil, `port add: mtu="big": not a number`},
		{"port del", nil, "port del: missing NAME"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := Parse(strings.Fields(tc.args))
			if tc.err != "" {
				if _, ok := err.(*usageError); !ok || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want usage error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Op, tc.want.Op) || got.Match != tc.want.Match || !reflect.DeepEqual(got.Args, tc.want.Args) ||
				got.Route.String() != tc.want.Route.String() || got.Port.String() != tc.want.Port.String() {
				t.Errorf("got %+v (route %v port %v), want %+v (route %v port %v)", got, got.Route, got.Port, tc.want, tc.want.Route, tc.want.Port)
			}
		})
	}
}

func TestParseArgsGlobals(t *testing.T) {
	t.Setenv("XVS_SOCKET", "")
	for _, tc := range []struct {
		args         string
		sock, output string
		err          string
	}{
		{"show ports", "/run/xvs/xvsd.sock", "table", ""},
		{"-s /tmp/a.sock -o json show ports", "/tmp/a.sock", "json", ""},
		{"show ports -o json", "/run/xvs/xvsd.sock", "json", ""},
		{"show routes 10.0.0.1 -o=json -s=/x.sock", "/x.sock", "json", ""},
		{"-o yaml show ports", "", "", `-o "yaml": want table or json`},
		{"show ports -o", "", "", "flag needs an argument: -o"},
		{"-z show ports", "", "", "flag provided but not defined: -z"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			g, cmd, err := ParseArgs(strings.Fields(tc.args))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Socket != tc.sock || g.Output != tc.output || cmd == nil {
				t.Errorf("globals %+v, cmd %+v", g, cmd)
			}
		})
	}
	// lab keeps its flags.
	_, cmd, err := ParseArgs([]string{"lab", "up", "-o", "x"})
	if err != nil || !reflect.DeepEqual(cmd.Args, []string{"up", "-o", "x"}) {
		t.Errorf("lab args = %v, %v", cmd, err)
	}
	t.Setenv("XVS_SOCKET", "/env.sock")
	if g, _, _ := ParseArgs([]string{"status"}); g.Socket != "/env.sock" {
		t.Errorf("XVS_SOCKET ignored: %s", g.Socket)
	}
}

const goldenPorts = `ID  NAME       KIND    MODE         STATE  MTU   RX PKTS  RX BYTES  TX PKTS  TX BYTES  TX DROPS  PEER MAC           ADDRESSES
1   eth0       uplink  xdp-native   up     1500  1234567  98765432  1200000  96000000  3         -                  192.0.2.10/24,2001:db8::10/64
2   xvs1a2b3c  pod     af-packet    up     1450  0        0         0        0         0         02:42:0a:f4:01:05  10.244.1.5/32
3   xvs-host   host    xdp-generic  down   1500  0        0         0        0         0         -                  -

xvs1a2b3c: up: xdp attach: operation not supported, fell back to af-packet
xvs-host: down: link gone
`

const goldenRoutes = `PREFIX           ORIGIN     KIND       VIA        PORT       NEXT HOP
0.0.0.0/0        static     adjacency  192.0.2.1  eth0       port 1 via 192.0.2.1 dst 020000000009
10.244.1.5/32    pod        port       -          xvs1a2b3c  port 2 dst 02420af40105
198.51.100.0/24  static     drop       -          -          -
2001:db8::/64    connected  adjacency  -          eth0       port 1 attached (unresolved)
`

const goldenNeighbors = `PORT       ADDRESS     MAC                STATE
eth0       192.0.2.1   02:00:00:00:00:09  reachable
eth0       fe80::1     -                  incomplete
xvs1a2b3c  10.244.1.5  02:42:0a:f4:01:05  static
`

const goldenCounters = `DROP REASON  COUNT
ttl-expired  12
no-route     3456

EVENT           COUNT
rx-packets      1000000
forwarded-ipv4  999000
`

const goldenFIB = `IPv4 routes:  3
IPv6 routes:  1

ORIGIN     ROUTES
connected  1
pod        1
static     2

KIND       ROUTES
adjacency  2
drop       1
port       1
`

const goldenStatus = `xvsd is running (version v0.1.0, pid 4242, up 1h2m3s).

Dataplane:  ready
Ports:      3 (2 up)
Routes:     3 IPv4, 1 IPv6
Neighbors:  3
`

func TestFormatGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*bytes.Buffer) error
		want string
	}{
		{"ports", func(b *bytes.Buffer) error { return FormatPorts(b, samplePorts()) }, goldenPorts},
		{"no ports", func(b *bytes.Buffer) error { return FormatPorts(b, nil) }, "no ports\n"},
		{"routes", func(b *bytes.Buffer) error { return FormatRoutes(b, sampleRoutes()) }, goldenRoutes},
		{"routes with tables", func(b *bytes.Buffer) error {
			return FormatRoutes(b, []*xvspb.Route{{Prefix: "0.0.0.0/0", Origin: "static", Kind: "drop"}, {Table: 7, Prefix: "10.0.0.0/8", Origin: "bgp", Kind: "vxlan", NextHop: "vxlan vni 7 remote 192.0.2.2 port 1"}})
		}, "TABLE  PREFIX      ORIGIN  KIND   VIA  PORT  NEXT HOP\n0      0.0.0.0/0   static  drop   -    -     -\n7      10.0.0.0/8  bgp     vxlan  -    -     vxlan vni 7 remote 192.0.2.2 port 1\n"},
		{"no routes", func(b *bytes.Buffer) error { return FormatRoutes(b, nil) }, "no routes\n"},
		{"neighbors", func(b *bytes.Buffer) error { return FormatNeighbors(b, sampleNeighbors()) }, goldenNeighbors},
		{"no neighbors", func(b *bytes.Buffer) error { return FormatNeighbors(b, nil) }, "no neighbors\n"},
		{"counters", func(b *bytes.Buffer) error { return FormatCounters(b, sampleCounters()) }, goldenCounters},
		{"zero counters", func(b *bytes.Buffer) error {
			return FormatCounters(b, &xvspb.GetCountersResponse{Drops: []*xvspb.Counter{{Name: "no-route"}}})
		}, "no drops\n\nno events\n"},
		{"fib summary", func(b *bytes.Buffer) error { return FormatFIBSummary(b, sampleStatus().Fib) }, goldenFIB},
		{"status", func(b *bytes.Buffer) error { return FormatStatus(b, sampleStatus(), time.Unix(1700003723, 0)) }, goldenStatus},
		{"status not ready", func(b *bytes.Buffer) error {
			return FormatStatus(b, &xvspb.StatusResponse{Version: "dev", Pid: 1, StartTimeUnix: 1700000000}, time.Unix(1700000005, 0))
		}, "xvsd is running (version dev, pid 1, up 5s).\n\nDataplane:  NOT READY\nPorts:      0 (0 up)\nRoutes:     0 IPv4, 0 IPv6\nNeighbors:  0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.f(&b); err != nil {
				t.Fatal(err)
			}
			diff(t, tc.name, tc.want, b.String())
		})
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, &xvspb.ListPortsResponse{Ports: samplePorts()[:1]}); err != nil {
		t.Fatal(err)
	}
	const want = `{
  "ports": [
    {
      "id": 1,
      "name": "eth0",
      "kind": "uplink",
      "mode": "xdp-native",
      "up": true,
      "reason": "",
      "mac": "02:00:00:00:00:01",
      "peer_mac": "",
      "addresses": [
        "192.0.2.10/24",
        "2001:db8::10/64"
      ],
      "mtu": 1500,
      "worker": 0,
      "stats": {
        "rx_packets": "1234567",
        "rx_bytes": "98765432",
        "tx_packets": "1200000",
        "tx_bytes": "96000000",
        "tx_drops": "3",
        "kernel_rx_dropped": "0",
        "kernel_rx_ring_full": "0",
        "kernel_fill_empty": "0",
        "kernel_tx_invalid": "0"
      },
      "memif": null
    }
  ]
}
`
	diff(t, "json", want, b.String())
}

// runMain is Main with captured output.
func runMain(t *testing.T, opt Options, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb, opt)
	return code, out.String(), errb.String()
}

func TestMainAgainstServer(t *testing.T) {
	f := apitest.NewFake()
	sock, _ := apitest.Serve(t, f, api.ServerOptions{Version: "v9"})
	s := []string{"-s", sock}
	call := func(args ...string) (int, string, string) { return runMain(t, Options{}, append(s, args...)...) }

	if code, out, errs := call("port", "add", "eth0", "kind=uplink", "addr=192.0.2.10/24"); code != 0 || !strings.Contains(out, "eth0") {
		t.Fatalf("port add: %d %q %q", code, out, errs)
	}
	if code, _, errs := call("port", "add", "veth1", "addr=10.244.0.5/32", "peer-mac=02:00:00:00:00:05"); code != 0 {
		t.Fatalf("port add pod: %d %q", code, errs)
	}
	if code, _, errs := call("port", "add", "veth2", "addr=10.0.0.300/32"); code != ExitRuntime ||
		errs != "xvsctl: port.addresses[0]: \"10.0.0.300/32\": invalid prefix\n" {
		t.Errorf("bad port add: %d %q", code, errs)
	}
	if code, _, errs := call("route", "add", "0.0.0.0/0", "via", "192.0.2.1"); code != 0 {
		t.Fatalf("route add: %d %q", code, errs)
	}
	if code, _, errs := call("route", "add", "10.9.0.0/16", "via", "198.18.0.1"); code != ExitRuntime ||
		errs != "xvsctl: route.via: \"198.18.0.1\": not on any connected subnet\n" {
		t.Errorf("bad route add: %d %q", code, errs)
	}
	code, out, _ := call("show", "routes", "8.8.8.8")
	if code != 0 || !strings.HasPrefix(out, "PREFIX") || !strings.Contains(out, "0.0.0.0/0  static  adjacency  192.0.2.1") {
		t.Errorf("show routes 8.8.8.8: %d\n%s", code, out)
	}
	code, out, _ = call("show", "routes", "-o", "json")
	var rs struct{ Routes []map[string]any }
	if err := json.Unmarshal([]byte(out), &rs); code != 0 || err != nil || len(rs.Routes) != 3 {
		t.Errorf("show routes json: %d %v %s", code, err, out)
	}
	var cs dataplane.Counters
	cs.Drops[dataplane.DropTTL] = 5
	f.SetCounters(cs)
	if code, out, _ := call("show", "counters"); code != 0 || out != "DROP REASON  COUNT\nttl-expired  5\n\nno events\n" {
		t.Errorf("show counters: %d %q", code, out)
	}
	if code, out, _ := call("status"); code != 0 || !strings.HasPrefix(out, "xvsd is running (version v9,") || !strings.Contains(out, "Ports:      2 (2 up)") {
		t.Errorf("status: %d\n%s", code, out)
	}
	if code, out, _ := call("show", "fib", "summary"); code != 0 || !strings.HasPrefix(out, "IPv4 routes:  3\n") {
		t.Errorf("fib summary: %d\n%s", code, out)
	}
	if code, out, _ := call("show", "ports"); code != 0 || strings.Count(out, "\n") != 3 {
		t.Errorf("show ports: %d\n%s", code, out)
	}
	if code, out, _ := call("show", "neighbors"); code != 0 || out != "no neighbors\n" {
		t.Errorf("show neighbors: %d %q", code, out)
	}
	if code, _, errs := call("route", "del", "10.77.0.0/16"); code != ExitRuntime || !strings.Contains(errs, "route not found") {
		t.Errorf("route del missing: %d %q", code, errs)
	}
	if code, _, _ := call("route", "del", "0.0.0.0/0"); code != 0 {
		t.Errorf("route del: %d", code)
	}
	if code, _, errs := call("port", "del", "veth7"); code != ExitRuntime || errs != "xvsctl: name: \"veth7\": no such port\n" {
		t.Errorf("port del missing: %d %q", code, errs)
	}
	if code, _, _ := call("port", "del", "veth1"); code != 0 {
		t.Errorf("port del: %d", code)
	}
}

func TestMainErrors(t *testing.T) {
	nobody := filepath.Join(t.TempDir(), "xvsd.sock")
	code, out, errs := runMain(t, Options{}, "-s", nobody, "show", "ports")
	if code != ExitRuntime || out != "" || errs != "xvsctl: cannot reach xvsd at "+nobody+": is it running?\n" {
		t.Errorf("unreachable: %d %q %q", code, out, errs)
	}
	code, _, errs = runMain(t, Options{}, "show", "bananas")
	if code != ExitUsage || !strings.HasPrefix(errs, "xvsctl: show: unknown object \"bananas\"\n\nusage: xvsctl") {
		t.Errorf("usage: %d %q", code, errs)
	}
	if code, out, _ := runMain(t, Options{}, "help"); code != 0 || out != Usage {
		t.Errorf("help: %d", code)
	}
	if code, out, _ := runMain(t, Options{}, "-h"); code != 0 || out != Usage {
		t.Errorf("-h: %d", code)
	}
	if code, _, errs := runMain(t, Options{}, "lab", "up"); code != ExitRuntime || errs != "lab: not built yet\n" {
		t.Errorf("lab stub: %d %q", code, errs)
	}
	var got []string
	lab := func(a []string) int { got = a; return 3 }
	if code, _, _ := runMain(t, Options{Lab: lab}, "lab", "up", "-n", "2"); code != 3 || !reflect.DeepEqual(got, []string{"up", "-n", "2"}) {
		t.Errorf("lab hook: %d %v", code, got)
	}
}
