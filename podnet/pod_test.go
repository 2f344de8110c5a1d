package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	mac1 = net.HardwareAddr{0x02, 0x77, 0, 0, 0, 1}
	mac2 = net.HardwareAddr{0x02, 0x77, 0, 0, 0, 2}
)

// TestSetupReadBack sets a pod up and reads every piece back with ip and
// ethtool, the tools a user would check it with.
func TestSetupReadBack(t *testing.T) {
	needRoot(t)
	pfx := prefix()
	node, pod := newNS(t, pfx, "node"), newNS(t, pfx, "pod")
	p := kernelPod(NamedPath(node), pfx+"h1", NamedPath(pod), mac1, pod1V4, pod1V6)
	p.Queues = 2
	p.Pod.Offloads = Offloads{TxChecksum: Off, GRO: On}
	res, err := Setup(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.PodMAC, mac1) || !slices.Equal(res.HostMAC, GatewayMAC) || res.PodIndex == 0 || res.HostIndex == 0 {
		t.Errorf("result %+v", res)
	}

	link := ipJSON(t, pod, "-d", "link", "show", "dev", "eth0")[0]
	gotLink := fmt.Sprintf("%v mtu=%v mac=%v txq=%v rxq=%v up=%v kind=%v",
		link["ifname"], link["mtu"], link["address"], link["num_tx_queues"], link["num_rx_queues"],
		slices.Contains(link["flags"].([]any), any("UP")), link["linkinfo"].(map[string]any)["info_kind"])
	if want := "eth0 mtu=1450 mac=02:77:00:00:00:01 txq=2 rxq=2 up=true kind=veth"; gotLink != want {
		t.Errorf("pod link:\n got %s\nwant %s", gotLink, want)
	}
	hl := ipJSON(t, node, "link", "show", "dev", pfx+"h1")[0]
	if hl["address"] != "ee:ee:ee:ee:ee:ee" || hl["mtu"] != float64(1450) {
		t.Errorf("host link %v", hl)
	}

	var addrs []string
	for _, ai := range ipJSON(t, pod, "addr", "show", "dev", "eth0")[0]["addr_info"].([]any) {
		a := ai.(map[string]any)
		if a["scope"] == "global" {
			addrs = append(addrs, fmt.Sprintf("%v/%v", a["local"], a["prefixlen"]))
		}
		if a["tentative"] == true {
			t.Errorf("pod address %v is tentative: DAD is on", a["local"])
		}
	}
	slices.Sort(addrs)
	if d := diffLines([]string{"198.18.77.1/32", "fd00:77::1/128"}, addrs); d != "" {
		t.Errorf("pod addresses (-want +got):\n%s", d)
	}

	routes := func(ns string, args ...string) []string {
		var out []string
		for _, r := range ipJSON(t, ns, args...) {
			s := fmt.Sprintf("%v", r["dst"])
			if g, ok := r["gateway"]; ok {
				s += fmt.Sprintf(" via %v", g)
			}
			if f, _ := r["flags"].([]any); slices.Contains(f, any("onlink")) {
				s += " onlink"
			}
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	if d := diffLines([]string{"default via 169.254.1.1 onlink"}, routes(pod, "route", "show", "dev", "eth0")); d != "" {
		t.Errorf("pod IPv4 routes (-want +got):\n%s", d)
	}
	if got := routes(pod, "-6", "route", "show", "dev", "eth0"); !slices.Contains(got, "default via fe80::ecee:eeff:feee:eeee") {
		t.Errorf("pod IPv6 routes %q lack the default via the gateway", got)
	}
	if d := diffLines([]string{"198.18.77.1"}, routes(node, "route", "show", "dev", pfx+"h1")); d != "" {
		t.Errorf("host IPv4 routes (-want +got):\n%s", d)
	}

	neighs := func(ns, dev string) []string {
		var out []string
		for _, n := range ipJSON(t, ns, "neigh", "show", "dev", dev) {
			out = append(out, fmt.Sprintf("%v %v %v", n["dst"], n["lladdr"], n["state"]))
		}
		slices.Sort(out)
		return out
	}
	if d := diffLines([]string{
		"169.254.1.1 ee:ee:ee:ee:ee:ee [PERMANENT]", "fe80::ecee:eeff:feee:eeee ee:ee:ee:ee:ee:ee [PERMANENT]",
	}, neighs(pod, "eth0")); d != "" {
		t.Errorf("pod neighbours (-want +got):\n%s", d)
	}
	if d := diffLines([]string{
		"198.18.77.1 02:77:00:00:00:01 [PERMANENT]", "fd00:77::1 02:77:00:00:00:01 [PERMANENT]",
	}, neighs(node, pfx+"h1")); d != "" {
		t.Errorf("host neighbours (-want +got):\n%s", d)
	}

	k := ethtoolK(t, pod, "eth0")
	for f, want := range map[string]string{
		"tx-checksumming": "off", "tx-checksum-ip-generic": "off", "tx-checksum-sctp": "off",
		"generic-receive-offload": "on",
	} {
		if k[f] != want {
			t.Errorf("pod ethtool -k %s: %s, want %s", f, k[f], want)
		}
	}
	if hk := ethtoolK(t, node, pfx+"h1"); hk["tx-checksumming"] != "on" || hk["generic-receive-offload"] != "off" {
		t.Errorf("host end's offloads changed: tx %s gro %s", hk["tx-checksumming"], hk["generic-receive-offload"])
	}
	if v := strings.TrimSpace(sh(t, "ip", "netns", "exec", pod, "sysctl", "-n", "net.ipv6.conf.eth0.accept_dad")); v != "0" {
		t.Errorf("pod accept_dad %s, want 0", v)
	}

	if err := Check(p); err != nil {
		t.Errorf("Check after Setup: %v", err)
	}
	if err := Teardown(p); err != nil {
		t.Fatal(err)
	}
	if d := diffLines([]string{"addr lo 127.0.0.1/8", "addr lo ::1/128", "link lo"}, state(t, pod)); d != "" {
		t.Errorf("pod namespace after Teardown (-want +got):\n%s", d)
	}
	if d := diffLines([]string{"addr lo 127.0.0.1/8", "addr lo ::1/128", "link lo"}, state(t, node)); d != "" {
		t.Errorf("node namespace after Teardown (-want +got):\n%s", d)
	}
}

// TestPingThroughKernelNode plumbs two pods into a node whose kernel
// routes between them and pings across over both families.
func TestPingThroughKernelNode(t *testing.T) {
	needRoot(t)
	pfx := prefix()
	node := newNS(t, pfx, "node")
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if err := SetSysctl(NamedPath(node), k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	pods := []struct {
		mac    net.HardwareAddr
		v4, v6 netip.Prefix
	}{{mac1, pod1V4, pod1V6}, {mac2, pod2V4, pod2V6}}
	var names []string
	for i, pd := range pods {
		ns := newNS(t, pfx, fmt.Sprintf("pod%d", i+1))
		names = append(names, ns)
		p := kernelPod(NamedPath(node), fmt.Sprintf("%sh%d", pfx, i+1), NamedPath(ns), pd.mac, pd.v4, pd.v6)
		if _, err := Setup(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := Teardown(p); err != nil {
				t.Error(err)
			}
		})
	}
	for _, dst := range []netip.Prefix{pod2V4, pod2V6} {
		if out, err := shErr("ip", "netns", "exec", names[0], "ping", "-c", "2", "-i", "0.2", "-W", "2", dst.Addr().String()); err != nil {
			t.Errorf("ping %s: %v\n%s", dst.Addr(), err, out)
		}
	}
}

// TestSetupFailureLeavesNothing fails Setup at each of its steps with a
// real kernel refusal (or a real conflict) and checks that both
// namespaces hold exactly what they held before, sysctls included.
func TestSetupFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	pfx := prefix()
	node, pod := newNS(t, pfx, "node"), newNS(t, pfx, "pod")
	sh(t, "ip", "-n", pod, "link", "add", "d0", "type", "veth", "peer", "name", "d0p")
	sh(t, "ip", "-n", pod, "addr", "add", "198.18.77.9/32", "dev", "d0")
	sh(t, "ip", "-n", node, "link", "add", "d1", "type", "veth", "peer", "name", "d1p")
	sh(t, "ip", "-n", node, "link", "set", "d1", "up")
	sh(t, "ip", "-n", node, "route", "add", "198.18.77.8/32", "dev", "d1")
	sh(t, "ip", "-n", node, "link", "add", pfx+"taken", "type", "veth", "peer", "name", pfx+"takenp")

	base := func() Pod {
		p := kernelPod(NamedPath(node), pfx+"h", NamedPath(pod), mac1, pod1V4, pod1V6)
		p.Pod.Offloads = Offloads{TxChecksum: Off, GRO: On}
		// A sysctl that every case changes before it fails, to see it put back.
		p.Pod.Sysctls = append([]Sysctl{{"net.ipv4.ip_forward", "1"}}, p.Pod.Sysctls...)
		return p
	}
	cases := []struct {
		name string
		mod  func(p *Pod)
		want string // in the error
	}{
		{"pod netns missing", func(p *Pod) { p.Pod.NS = NamedPath(pfx + "-nosuch") }, "pod.ns"},
		{"host netns missing", func(p *Pod) { p.Host.NS = "/proc/999999999/ns/net" }, "host.ns"},
		{"pod netns not a namespace", func(p *Pod) { p.Pod.NS = "/etc/hostname" }, "not a network namespace"},
		{"pod name taken", func(p *Pod) { p.Pod.Name = "d0" }, `pod.name "d0": taken`},
		{"host name taken", func(p *Pod) { p.Host.Name = pfx + "taken" }, `host.name "` + pfx + `taken": taken`},
		{"sysctl unknown", func(p *Pod) {
			p.Pod.Sysctls = append(p.Pod.Sysctls, Sysctl{"net.ipv4.no_such_knob", "1"})
		}, "pod.sysctls[3]"},
		{"offload fixed", func(p *Pod) { p.Pod.Offloads.Features = map[string]bool{"rx-vlan-filter": true} }, "rx-vlan-filter is fixed off"},
		{"offload unknown", func(p *Pod) { p.Host.Offloads.Features = map[string]bool{"no-such-offload": true} }, `no feature "no-such-offload"`},
		{"address on another link", func(p *Pod) {
			p.Pod.Addrs = append(p.Pod.Addrs, netip.MustParsePrefix("198.18.77.9/32"))
		}, "pod.addrs[2] 198.18.77.9/32: already on d0"},
		{"host route taken", func(p *Pod) {
			p.Host.Routes = append(p.Host.Routes, Route{Dst: netip.MustParsePrefix("198.18.77.8/32")})
		}, "host.routes[2] 198.18.77.8/32"},
		{"pod gateway unreachable", func(p *Pod) {
			p.Pod.Routes = append(p.Pod.Routes, Route{Dst: netip.MustParsePrefix("198.18.99.0/24"), Via: netip.MustParseAddr("198.18.98.1")})
		}, "pod.routes[2] 198.18.99.0/24 via 198.18.98.1"},
		{"neighbour on IPv6-disabled link", func(p *Pod) {
			p.Pod.Addrs = []netip.Prefix{pod1V4}
			p.Pod.Routes = p.Pod.Routes[:1]
			p.Pod.Sysctls = append(p.Pod.Sysctls, Sysctl{"net.ipv6.conf.eth0.disable_ipv6", "1"})
		}, "pod.neighbors[1] fe80::ecee:eeff:feee:eeee"},
	}
	fwd := func() string {
		v, err := GetSysctl(NamedPath(pod), "net.ipv4.ip_forward")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			beforeNode, beforePod, beforeFwd := state(t, node), state(t, pod), fwd()
			p := base()
			tc.mod(&p)
			_, err := Setup(p)
			if err == nil {
				Teardown(p)
				t.Fatal("Setup succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "undo:") {
				t.Errorf("undo failed: %v", err)
			}
			if d := diffLines(beforeNode, state(t, node)); d != "" {
				t.Errorf("node namespace changed (-want +got):\n%s", d)
			}
			if d := diffLines(beforePod, state(t, pod)); d != "" {
				t.Errorf("pod namespace changed (-want +got):\n%s", d)
			}
			if got := fwd(); got != beforeFwd {
				t.Errorf("pod ip_forward %s after the failure, was %s", got, beforeFwd)
			}
		})
	}
}

// TestTeardownIdempotent tears down after the pod's namespace vanished,
// after the veth was deleted by hand, and twice; and refuses to delete a
// link that is not a veth.
func TestTeardownIdempotent(t *testing.T) {
	needRoot(t)
	pfx := prefix()
	node := newNS(t, pfx, "node")
	cases := []struct {
		name  string
		after func(t *testing.T, p Pod, podName string)
	}{
		{"netns deleted", func(t *testing.T, p Pod, podName string) {
			if err := DeleteNamed(podName); err != nil {
				t.Fatal(err)
			}
		}},
		{"veth deleted", func(t *testing.T, p Pod, podName string) {
			sh(t, "ip", "-n", node, "link", "del", p.Host.Name)
		}},
		{"nothing removed", func(*testing.T, Pod, string) {}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			podName := newNS(t, pfx, fmt.Sprintf("pod%d", i))
			p := kernelPod(NamedPath(node), fmt.Sprintf("%sh%d", pfx, i), NamedPath(podName), mac1, pod1V4, pod1V6)
			if _, err := Setup(p); err != nil {
				t.Fatal(err)
			}
			tc.after(t, p, podName)
			for n := range 2 {
				if err := Teardown(p); err != nil {
					t.Fatalf("Teardown %d: %v", n+1, err)
				}
			}
			for _, l := range ipJSON(t, node, "link", "show") {
				if l["ifname"] == p.Host.Name {
					t.Errorf("host end %s still there", p.Host.Name)
				}
			}
		})
	}
	t.Run("not a veth", func(t *testing.T) {
		// No dummy module here; a bridge is a link that is not a veth.
		sh(t, "ip", "-n", node, "link", "add", pfx+"dm", "type", "bridge")
		p := Pod{Host: End{NS: NamedPath(node), Name: pfx + "dm"}, Pod: End{NS: NamedPath(pfx + "-gone"), Name: "eth0"}}
		err := Teardown(p)
		if err == nil || !strings.Contains(err.Error(), "not a veth") {
			t.Errorf("Teardown of a bridge: %v", err)
		}
		if _, err := shErr("ip", "-n", node, "link", "show", pfx+"dm"); err != nil {
			t.Errorf("the bridge was deleted: %v", err)
		}
	})
}

// TestCheckNamesDifferences changes one thing behind Setup's back per case
// with ip or ethtool and expects Check to name it.
func TestCheckNamesDifferences(t *testing.T) {
	needRoot(t)
	pfx := prefix()
	node, pod := newNS(t, pfx, "node"), newNS(t, pfx, "pod")
	cases := []struct {
		name   string
		change []string // a command, run with "pod" and "host" replaced
		want   []string
	}{
		{"address removed", []string{"ip", "-n", "pod", "addr", "del", "198.18.77.1/32", "dev", "eth0"},
			// With its last IPv4 address the kernel flushes the link's
			// IPv4 routes and neighbours, so those are gone too.
			[]string{"pod: address 198.18.77.1/32 missing on eth0",
				"pod: route 0.0.0.0/0 via 169.254.1.1 onlink dev eth0 missing",
				"pod: neighbour 169.254.1.1 missing on eth0"}},
		{"route removed", []string{"ip", "-n", "pod", "-6", "route", "del", "default", "dev", "eth0"},
			[]string{"pod: route ::/0 via fe80::ecee:eeff:feee:eeee dev eth0 missing"}},
		{"neighbour removed", []string{"ip", "-n", "host", "neigh", "del", "198.18.77.1", "dev", "hostif"},
			[]string{"host: neighbour 198.18.77.1 missing on hostif"}},
		{"link down", []string{"ip", "-n", "host", "link", "set", "hostif", "down"},
			// Down, the link loses its routes and neighbours.
			[]string{"host: hostif is down",
				"host: route 198.18.77.1/32 dev hostif missing", "host: route fd00:77::1/128 dev hostif missing",
				"host: neighbour 198.18.77.1 missing on hostif", "host: neighbour fd00:77::1 missing on hostif"}},
		{"mtu", []string{"ip", "-n", "pod", "link", "set", "eth0", "mtu", "1400"},
			[]string{"pod: eth0 has mtu 1400, want 1450"}},
		{"offload", []string{"ip", "netns", "exec", "pod", "ethtool", "-K", "eth0", "tx", "on"},
			[]string{"pod: eth0: offload tx-checksum-ip-generic is on, want off", "pod: eth0: offload tx-checksum-sctp is on, want off"}},
		{"sysctl", []string{"ip", "netns", "exec", "pod", "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=1"},
			[]string{"pod: sysctl net.ipv6.conf.eth0.accept_dad is 1, want 0"}},
		{"pod end gone", []string{"ip", "-n", "pod", "link", "del", "eth0"},
			[]string{"pod: no link eth0 in " + NamedPath(pod), "host: no link hostif in " + NamedPath(node)}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hostIf := fmt.Sprintf("%sc%d", pfx, i)
			p := kernelPod(NamedPath(node), hostIf, NamedPath(pod), mac1, pod1V4, pod1V6)
			p.Pod.Offloads = Offloads{TxChecksum: Off}
			if _, err := Setup(p); err != nil {
				t.Fatal(err)
			}
			defer Teardown(p)
			if err := Check(p); err != nil {
				t.Fatalf("Check before the change: %v", err)
			}
			cmd := slices.Clone(tc.change)
			for j, a := range cmd {
				switch a {
				case "pod":
					cmd[j] = pod
				case "host":
					cmd[j] = node
				case "hostif":
					cmd[j] = hostIf
				}
			}
			sh(t, cmd...)
			err := Check(p)
			var ce *CheckError
			if !errors.As(err, &ce) || !errors.Is(err, ErrMismatch) {
				t.Fatalf("Check after %v: %v, want a *CheckError", cmd, err)
			}
			want := slices.Clone(tc.want)
			for j := range want {
				want[j] = strings.ReplaceAll(want[j], "hostif", hostIf)
			}
			if d := diffLines(want, ce.Diffs); d != "" {
				t.Errorf("Check's differences (-want +got):\n%s", d)
			}
		})
	}
}

func TestValidateNamesField(t *testing.T) {
	good := func() Pod { return Calico("", "h0", "/run/netns/x", "eth0", []netip.Prefix{pod1V4, pod1V6}, 1450) }
	cases := []struct {
		name string
		mod  func(p *Pod)
		want string
	}{
		{"mtu", func(p *Pod) { p.MTU = 20 }, "mtu 20"},
		{"queues", func(p *Pod) { p.Queues = -1 }, "queues -1"},
		{"long name", func(p *Pod) { p.Pod.Name = "a-very-long-interface" }, `pod.name "a-very-long-interface"`},
		{"empty host name", func(p *Pod) { p.Host.Name = "" }, `host.name ""`},
		{"multicast mac", func(p *Pod) { p.Pod.MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} }, "pod.mac \"01:00:5e:00:00:01\""},
		{"bad prefix", func(p *Pod) { p.Pod.Addrs = append(p.Pod.Addrs, netip.Prefix{}) }, "pod.addrs[2]"},
		{"duplicate address", func(p *Pod) { p.Pod.Addrs = append(p.Pod.Addrs, pod1V4) }, "pod.addrs[2] 198.18.77.1/32: listed twice"},
		{"gateway family", func(p *Pod) { p.Pod.Routes[0].Via = GatewayV6 }, "pod.routes[0].via fe80::ecee:eeff:feee:eeee"},
		{"neighbour mac", func(p *Pod) { p.Pod.Neighbors[0].MAC = nil }, "pod.neighbors[0].mac"},
		{"sysctl key", func(p *Pod) { p.Host.Sysctls = []Sysctl{{"../etc/passwd", "x"}} }, `host.sysctls[0]: sysctl key "../etc/passwd"`},
		{"toggle", func(p *Pod) { p.Pod.Offloads.GRO = 7 }, "pod.offloads.gro: bad toggle 7"},
		{"same names", func(p *Pod) { p.Pod.NS = ""; p.Pod.Name = "h0" }, `pod.name "h0": same as host.name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := good()
			tc.mod(&p)
			_, err := Setup(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Setup: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestNewNamedIsIPNetns checks that ip sees and uses a namespace made
// here, that a second one of the same name fails, and that deleting it
// removes it for ip too.
func TestNewNamedIsIPNetns(t *testing.T) {
	needRoot(t)
	name := prefix() + "-ns"
	if err := NewNamed(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DeleteNamed(name) })
	if !strings.Contains(sh(t, "ip", "netns", "list"), name) {
		t.Errorf("ip netns list lacks %s", name)
	}
	if lo := ipJSON(t, name, "link", "show", "lo")[0]; !slices.Contains(lo["flags"].([]any), any("UP")) {
		t.Errorf("lo not up: %v", lo)
	}
	if err := NewNamed(name); !errors.Is(err, os.ErrExist) {
		t.Errorf("second NewNamed: %v, want ErrExist", err)
	}
	if err := DeleteNamed(name); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sh(t, "ip", "netns", "list"), name) {
		t.Errorf("ip netns list still has %s", name)
	}
	if err := DeleteNamed(name); err != nil {
		t.Errorf("second DeleteNamed: %v", err)
	}
}

// TestDoLeavesThreadAlone checks that the caller's thread never leaves its
// namespace, however many Do calls run.
func TestDoLeavesThreadAlone(t *testing.T) {
	needRoot(t)
	ns := NamedPath(newNS(t, prefix(), "do"))
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		var inside string
		if err := Do(ns, func() error {
			var err error
			inside, err = os.Readlink("/proc/thread-self/ns/net")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if inside == self {
			t.Fatalf("Do ran in the caller's namespace %s", self)
		}
		if now, _ := os.Readlink("/proc/thread-self/ns/net"); now != self {
			t.Fatalf("caller's thread is in %s, want %s", now, self)
		}
	}
}

// TestConcurrentPodsNoLeaks plumbs pods from several goroutines at once
// into one node, checks and tears them down, fails some on purpose, and
// wants the process to hold no more file descriptors or goroutines after
// than before.
func TestConcurrentPodsNoLeaks(t *testing.T) {
	needRoot(t)
	pfx := prefix()
	node := newNS(t, pfx, "node")
	const n = 6
	pods := make([]string, n)
	for i := range pods {
		pods[i] = newNS(t, pfx, fmt.Sprintf("pod%d", i))
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	// Warm up whatever the runtime and the netlink library open once.
	if err := Check(Pod{Host: End{NS: NamedPath(node), Name: "x"}, Pod: End{NS: NamedPath(pods[0]), Name: "eth0"}}); err == nil {
		t.Fatal("Check of nothing passed")
	}
	fds0, gr0 := fds(), runtime.NumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, n*4)
	for round := range 3 {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mac := net.HardwareAddr{0x02, 0x77, 1, 0, byte(round), byte(i)}
				v4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 78, byte(i + 1)}), 32)
				v6 := netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x78, 15: byte(i + 1)}), 128)
				p := kernelPod(NamedPath(node), fmt.Sprintf("%sc%d", pfx, i), NamedPath(pods[i]), mac, v4, v6)
				p.Pod.Offloads = Offloads{TxChecksum: Off, GRO: On}
				if _, err := Setup(p); err != nil {
					errs <- err
					return
				}
				if err := Check(p); err != nil {
					errs <- err
				}
				// The same names again must fail and leave the first alone.
				if _, err := Setup(p); err == nil {
					errs <- fmt.Errorf("second Setup of %s succeeded", p.Host.Name)
				}
				if err := Check(p); err != nil {
					errs <- fmt.Errorf("after a failed second Setup: %w", err)
				}
				if err := Teardown(p); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := diffLines([]string{"addr lo 127.0.0.1/8", "addr lo ::1/128", "link lo"}, state(t, node)); d != "" {
		t.Errorf("node namespace after all teardowns (-want +got):\n%s", d)
	}
	if got := fds(); got != fds0 {
		t.Errorf("%d file descriptors open after, %d before", got, fds0)
	}
	// Goroutines that ended may take a moment to be counted out.
	for range 50 {
		if runtime.NumGoroutine() <= gr0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > gr0 {
		t.Errorf("%d goroutines after, %d before", got, gr0)
	}
}

// TestPodJSON round-trips a Pod through JSON, as a plugin's config or
// state file would hold it, and reads toggles by name.
func TestPodJSON(t *testing.T) {
	p := Calico("", "h0", "/run/netns/x", "eth0", []netip.Prefix{pod1V4, pod1V6}, 1450)
	p.Pod.Offloads = Offloads{TxChecksum: Off, GRO: On, Features: map[string]bool{"tx-udp-segmentation": false}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Offloads":{"TxChecksum":"off","GRO":"on","TSO":"keep"`) {
		t.Errorf("toggles not spelt by name: %s", b)
	}
	var back Pod
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b2) != string(b) {
		t.Errorf("round trip:\n got %s\nwant %s", b2, b)
	}
	var o Offloads
	if err := json.Unmarshal([]byte(`{"GRO":"sideways"}`), &o); err == nil || !strings.Contains(err.Error(), `toggle "sideways"`) {
		t.Errorf("bad toggle: %v", err)
	}
}
