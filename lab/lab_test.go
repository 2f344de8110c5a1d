package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	top, err := Plan(Options{Prefix: "xltest", PodsPerNode: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"xltest-node", "xltest-pod1", "xltest-pod2", "xltest-pod3", "xltest-out"}
	if strings.Join(top.Namespaces, " ") != strings.Join(want, " ") {
		t.Errorf("namespaces (-want +got):\n-%v\n+%v", want, top.Namespaces)
	}
	v4 := netip.MustParsePrefix("198.18.0.0/15")
	v6 := netip.MustParsePrefix("fd00::/8")
	for _, l := range top.Links {
		for _, e := range []End{l.A, l.B} {
			if len(e.Name) > 15 {
				t.Errorf("%s: name too long", e.Name)
			}
			for _, a := range e.Addrs {
				if !v4.Contains(a.Addr()) && !v6.Contains(a.Addr()) {
					t.Errorf("%s on %s/%s outside 198.18.0.0/15 and fd00::/8", a, e.NS, e.Name)
				}
			}
		}
	}
	seen := map[netip.Addr]bool{}
	for _, p := range top.Pods {
		for _, a := range []netip.Addr{p.V4, p.V6} {
			if seen[a] {
				t.Errorf("%s assigned twice", a)
			}
			seen[a] = true
		}
		n := top.NodeByName(p.Node)
		if !n.PodsV4.Contains(p.V4) || !n.PodsV6.Contains(p.V6) {
			t.Errorf("%s: %s %s outside node block %s %s", p.Name, p.V4, p.V6, n.PodsV4, n.PodsV6)
		}
	}
	var fwdOff int
	for _, s := range top.Sysctls {
		if s.NS == "xltest-node" && (s.Key == "net.ipv4.ip_forward" || s.Key == "net.ipv6.conf.all.forwarding") && s.Value == "0" {
			fwdOff++
		}
	}
	if fwdOff != 2 {
		t.Errorf("node forwarding not turned off for both families: %+v", top.Sysctls)
	}
}

func TestPlanMultiNode(t *testing.T) {
	top, err := Plan(Options{Prefix: "xltest", Nodes: 3, PodsPerNode: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Nodes) != 3 || len(top.Pods) != 6 {
		t.Fatalf("got %d nodes, %d pods", len(top.Nodes), len(top.Pods))
	}
	if top.Nodes[2].NS != "xltest-node3" || top.Pods[5].Node != "node3" {
		t.Errorf("naming: %s, pod6 on %s", top.Nodes[2].NS, top.Pods[5].Node)
	}
	for i, n := range top.Nodes {
		for j, m := range top.Nodes {
			if i != j && (n.PodsV4.Overlaps(m.PodsV4) || n.PodsV6.Overlaps(m.PodsV6) || n.UplinkV4.Overlaps(m.UplinkV4)) {
				t.Errorf("%s and %s overlap", n.Name, m.Name)
			}
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for _, tc := range []struct {
		p  string
		ok bool
	}{
		{"xl3fa2", true}, {NewPrefix(), true}, {"", false}, {"x", false}, {"xl-a", false},
		{"XL12", false}, {"1abc", false}, {"xl/../etc", false}, {"abcdefghijk", false},
	} {
		if err := ValidPrefix(tc.p); (err == nil) != tc.ok {
			t.Errorf("ValidPrefix(%q) = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

func TestXVSDConfig(t *testing.T) {
	top, err := Plan(Options{Prefix: "xltest"})
	if err != nil {
		t.Fatal(err)
	}
	got := string(XVSDConfig(top, top.Nodes[0], 1))
	for _, want := range []string{
		`api_socket: "/run/xvs/xltest-node.sock"`,
		`kind: uplink`, `"198.18.0.1/24"`, `"fd00:18::1/64"`,
		`name: "xlpod1h"`, `"198.19.0.1/32"`, `"fd00:19::1/128"`, `peer_mac: "02:58:00:00:00:01"`,
		`{prefix: "0.0.0.0/0", via: "198.18.0.2"}`, `{prefix: "::/0", via: "fd00:18::2"}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %s:\n%s", want, got)
		}
	}
}

// TestBuild builds a topology without xvsd and checks it in the kernel,
// then checks Close leaves nothing.
func TestBuild(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	o := Options{PodsPerNode: 2, Logf: t.Logf}
	l, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	prefix := l.Prefix()
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		left, err := ListNamespaces(prefix)
		if err != nil || len(left) != 0 {
			t.Errorf("namespaces left after Close: %v %v", left, err)
		}
		if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
			t.Errorf("state dir %s left: %v", l.Dir, err)
		}
	})
	top := l.T

	for _, n := range top.Nodes {
		for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
			if v, err := ReadSysctl(n.NS, k); err != nil || v != "0" {
				t.Errorf("%s in %s = %q, %v; want 0", k, n.NS, v, err)
			}
		}
		out, err := l.Exec(n.Name, "ip", "-br", "link")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range n.Pods {
			p := top.PodByName(name)
			if !strings.Contains(out, p.HostIf+"@") || !strings.Contains(out, "ee:ee:ee:ee:ee:ee") {
				t.Errorf("host end %s missing or wrong MAC in %s:\n%s", p.HostIf, n.NS, out)
			}
		}
		out, err = l.Exec(n.Name, "ip", "-br", "addr", "show", "dev", n.Uplink)
		if err != nil || !strings.Contains(out, n.UplinkV4.String()) || !strings.Contains(out, n.UplinkV6.String()) {
			t.Errorf("uplink addresses in %s: %s %v", n.NS, out, err)
		}
	}
	for _, p := range top.Pods {
		out, err := l.Exec(p.Name, "ip", "-br", "addr", "show", "dev", "eth0")
		if err != nil || !strings.Contains(out, p.V4.String()+"/32") || !strings.Contains(out, p.V6.String()+"/128") {
			t.Errorf("pod %s eth0: %s %v", p.Name, out, err)
		}
		if strings.Contains(out, "tentative") {
			t.Errorf("pod %s: DAD still on: %s", p.Name, out)
		}
		out, err = l.Exec(p.Name, "ethtool", "-k", "eth0")
		if err != nil || !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("pod %s: tx checksum offload not off: %v\n%s", p.Name, err, out)
		}
		out, err = l.Exec(p.Name, "ip", "route")
		if err != nil || !strings.Contains(out, "default via 169.254.1.1 dev eth0 onlink") {
			t.Errorf("pod %s v4 routes: %s %v", p.Name, out, err)
		}
		out, err = l.Exec(p.Name, "ip", "-6", "route")
		if err != nil || !strings.Contains(out, "default via fe80::ecee:eeff:feee:eeee dev eth0") {
			t.Errorf("pod %s v6 routes: %s %v", p.Name, out, err)
		}
		// The host end's link-local is the pod's IPv6 gateway; without
		// xvsd the node's kernel answers for it.
		if r, err := l.PingWith(p.Name, GatewayV6, PingOptions{Count: 1, Wait: 3 * time.Second}); err != nil {
			t.Errorf("pod %s -> node link-local: %v\n%s", p.Name, err, r.Output)
		}
	}
	// The outside reaches the node's kernel over the uplink.
	n := top.Nodes[0]
	if r, err := l.Ping("outside", n.UplinkV4.Addr(), 1); err != nil {
		t.Errorf("outside -> node v4: %v\n%s", err, r.Output)
	}
	if r, err := l.Ping("outside", n.UplinkV6.Addr(), 1); err != nil {
		t.Errorf("outside -> node v6: %v\n%s", err, r.Output)
	}
	// Kernel forwarding is off in the node: outside cannot reach a pod
	// without xvsd.
	if r, err := l.PingWith("outside", top.Pods[0].V4, PingOptions{Count: 1, Wait: time.Second}); err == nil {
		t.Errorf("outside reached pod %s with no xvsd and forwarding off:\n%s", top.Pods[0].V4, r.Output)
	}

	// Another process can read the lab's state.
	st, err := LoadState(o.StateRoot, prefix)
	if err != nil || st.Topology.Prefix != prefix {
		t.Errorf("LoadState: %v", err)
	}
}

// TestDownFromState tears a lab down from its state file, as xvsctl lab
// down does in another process, with a recorded process running in it.
func TestDownFromState(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	root := t.TempDir()
	l, err := New(context.Background(), Options{PodsPerNode: 1, NoOutside: true, StateRoot: root, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	prefix := l.Prefix()
	t.Cleanup(func() { l.Close() })
	p, err := l.Start("sleep", "pod1", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := Down(root, prefix, 2*time.Second, t.Logf); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(5 * time.Second) {
		t.Errorf("process %d still runs after Down", p.PID)
	}
	if left, _ := ListNamespaces(prefix); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

func TestSweep(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	prefix := NewPrefix()
	ctx := context.Background()
	for _, n := range []string{prefix + "-a", prefix + "-b"} {
		if err := addNS(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { delNS(ctx, prefix+"-a"); delNS(ctx, prefix+"-b") })
	names, err := SweepRoot(t.TempDir(), prefix)
	if err != nil || len(names) != 2 {
		t.Fatalf("Sweep = %v, %v", names, err)
	}
	if left, _ := ListNamespaces(prefix); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	if _, err := Sweep("x"); err == nil {
		t.Error("Sweep accepted a one-letter prefix")
	}
}

// TestSweepOrphans: a lab whose owner died is swept; a live owner's is not.
func TestSweepOrphans(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	root := t.TempDir()
	l, err := New(context.Background(), Options{PodsPerNode: 1, NoOutside: true, StateRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	mine := func(p string) bool { return p == l.Prefix() }
	if swept, err := SweepOrphans(root, mine); err != nil || len(swept) != 0 {
		t.Fatalf("swept a live lab: %v %v", swept, err)
	}
	// Make the state's owner a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(root, l.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	st.Owner = dead.Process.Pid
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(root, l.Prefix(), stateFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if swept, err := SweepOrphans(root, mine); err != nil || len(swept) != 1 {
		t.Fatalf("SweepOrphans = %v, %v; want the orphan", swept, err)
	}
	if left, _ := ListNamespaces(l.Prefix()); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

// TestKernelRouting drives the traffic helpers (Ping, Iperf3, Dial,
// Listen) through the node's kernel instead of xvsd, and checks that
// NoKernelRouting really stops forwarding.
func TestKernelRouting(t *testing.T) {
	l := newTestLab(t, Options{Logf: t.Logf}, "ping", "iperf3", "ss")
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	if err := l.KernelRouting("node"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from string
		to   netip.Addr
	}{{"pod1", p2.V4}, {"pod1", p2.V6}, {"pod2", p1.V4}, {"outside", p1.V4}, {"outside", p2.V6}} {
		if r, err := l.Ping(tc.from, tc.to, 2); err != nil || r.Received != 2 {
			t.Errorf("ping %s from %s: %+v %v", tc.to, tc.from, r, err)
		}
	}
	for _, v6 := range []bool{false, true} {
		r, err := l.Iperf3("pod2", "pod1", time.Second, v6)
		if err != nil || r.ReceivedBytes == 0 {
			t.Fatalf("iperf3 v6=%v: %+v %v", v6, r, err)
		}
		t.Logf("kernel path, v6=%v: %.2f Gb/s", v6, r.BitsPerSecond/1e9)
	}
	if ps := l.Processes(); len(ps) != 0 {
		t.Errorf("iperf3 servers still recorded: %d", len(ps))
	}
	// TTL 1 expires in the node's kernel.
	if r, _ := l.PingWith("pod1", p2.V4, PingOptions{Count: 1, TTL: 1}); !strings.Contains(r.Output, "Time to live exceeded") {
		t.Errorf("ping -t 1 through the kernel:\n%s", r.Output)
	}
	if err := l.NoKernelRouting("node"); err != nil {
		t.Fatal(err)
	}
	if r, err := l.PingWith("pod1", p2.V4, PingOptions{Count: 1}); err == nil {
		t.Errorf("pods still talk after NoKernelRouting:\n%s", r.Output)
	}
	if v, _ := ReadSysctl(l.T.Nodes[0].NS, "net.ipv4.ip_forward"); v != "0" {
		t.Errorf("ip_forward = %s after NoKernelRouting", v)
	}
}

// TestMultiNode builds two nodes behind one outside and routes pod to pod
// across them through the kernels.
func TestMultiNode(t *testing.T) {
	l := newTestLab(t, Options{Nodes: 2, PodsPerNode: 1}, "ping")
	for _, n := range l.T.Nodes {
		if err := l.KernelRouting(n.Name); err != nil {
			t.Fatal(err)
		}
	}
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	if p1.Node == p2.Node {
		t.Fatalf("pods on one node: %s", p1.Node)
	}
	for _, to := range []netip.Addr{p2.V4, p2.V6} {
		if r, err := l.Ping(p1.Name, to, 2); err != nil {
			t.Errorf("pod1 on %s -> %s on %s: %v\n%s", p1.Node, to, p2.Node, err, r.Output)
		}
	}
	for _, n := range l.T.Nodes {
		if err := l.NoKernelRouting(n.Name); err != nil {
			t.Error(err)
		}
	}
}

func TestPlanVXLAN(t *testing.T) {
	top, err := Plan(Options{Prefix: "xltest", Nodes: 2, PodsPerNode: 1, Encap: EncapVXLAN})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range top.Routes {
		if r.NS == top.Outside && (netip.MustParsePrefix("198.19.0.0/16").Overlaps(r.Dst) || netip.MustParsePrefix("fd00:19::/32").Overlaps(r.Dst)) {
			t.Errorf("the outside routes pod block %s: with VXLAN only the tunnels may carry it", r.Dst)
		}
	}
	for _, l := range top.Links {
		if want := map[bool]int{true: DefaultMTU - 70, false: 0}[l.Kind == "pod"]; l.MTU != want {
			t.Errorf("%s link %s: MTU %d, want %d", l.Kind, l.A.Name, l.MTU, want)
		}
	}
	if a, b := top.Nodes[0].VTEPMAC, top.Nodes[1].VTEPMAC; len(a) != 6 || len(b) != 6 || a.String() == b.String() || a[0]&1 != 0 {
		t.Errorf("VTEP MACs %s %s", a, b)
	}
	got := string(XVSDConfig(top, top.Nodes[0], 1))
	for _, want := range []string{
		`vxlan: {vni: 4096, port: 4789, mac: "02:58:03:00:00:01"}`,
		`{prefix: "198.19.1.0/24", vxlan: {remote: "198.18.1.1", mac: "02:58:03:00:01:01"}}`,
		`{prefix: "fd00:19:1::/64", vxlan: {remote: "fd00:18:1::1", mac: "02:58:03:00:01:01"}}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %s:\n%s", want, got)
		}
	}
	if _, err := Plan(Options{Encap: "ipip"}); err == nil {
		t.Error("encap ipip accepted")
	}
	// Each node's kernel routes the other's underlay through the outside.
	var under int
	for _, r := range top.Routes {
		if r.NS == top.Nodes[0].NS && r.Dst == top.Nodes[1].UplinkV4.Masked() && r.Via == top.Nodes[0].GatewayV4 {
			under++
		}
	}
	if under != 1 {
		t.Errorf("node1 has %d routes to node2's underlay, want 1", under)
	}
}

// TestPlanModes: the port modes reach xvsd's config, and a mode that does
// not exist is refused, naming the port kind and the value.
func TestPlanModes(t *testing.T) {
	top, err := Plan(Options{Prefix: "xltest", PodMode: "af-packet", UplinkMode: "af-packet"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(XVSDConfig(top, top.Nodes[0], 1)); strings.Count(got, `mode: "af-packet"`) != 3 {
		t.Errorf("want the uplink and both pods in af-packet mode:\n%s", got)
	}
	for _, o := range []Options{{PodMode: "dpdk"}, {UplinkMode: "dpdk"}} {
		_, err := Plan(o)
		if err == nil || !strings.Contains(err.Error(), `"dpdk"`) {
			t.Errorf("%+v: %v; want refused, naming the value", o, err)
		}
	}
	if _, err := Plan(Options{UplinkMode: "auto"}); err != nil {
		t.Errorf("uplink mode auto: %v", err)
	}
}

// TestKernelVXLAN builds two nodes whose pod blocks only the tunnels
// carry, sets up the kernel's vxlan devices as Calico does on both, and
// checks pods reach each other through them, and not without them.
func TestKernelVXLAN(t *testing.T) {
	l := newTestLab(t, Options{Nodes: 2, PodsPerNode: 1, Encap: EncapVXLAN, Logf: t.Logf}, "ping", "iperf3", "bridge")
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	if out, err := l.Exec(p1.Name, "ip", "link", "show", "dev", PodIf); err != nil || !strings.Contains(out, "mtu 1430") {
		t.Errorf("pod MTU: %v\n%s", err, out)
	}
	for _, n := range l.T.Nodes {
		if err := l.KernelRouting(n.Name); err != nil {
			t.Fatal(err)
		}
	}
	// A second call makes the devices anew rather than failing on them.
	if err := l.KernelRouting("node1"); err != nil {
		t.Fatalf("KernelRouting again: %v", err)
	}
	txBefore := vxlanTx(t, l, "node1")
	for _, to := range []netip.Addr{p2.V4, p2.V6} {
		if r, err := l.Ping(p1.Name, to, 2); err != nil {
			t.Errorf("%s -> %s through the tunnel: %v\n%s", p1.Name, to, err, r.Output)
		}
	}
	if ir, err := l.Iperf3(p2.Name, p1.Name, 500*time.Millisecond, false); err != nil || ir.ReceivedBytes == 0 {
		t.Errorf("iperf3 through the tunnel: %v", err)
	}
	txAfter := vxlanTx(t, l, "node1")
	for dev, n := range txAfter {
		if n <= txBefore[dev] {
			t.Errorf("%s on node1 sent nothing (%d -> %d)", dev, txBefore[dev], n)
		}
	}
	for _, n := range l.T.Nodes {
		if err := l.NoKernelRouting(n.Name); err != nil {
			t.Error(err)
		}
	}
	// The outside does not route pod blocks: without the tunnels nothing
	// gets through (forwarding back on, to be sure it is the routes).
	for _, n := range l.T.Nodes {
		if err := l.KernelRouting(n.Name); err != nil {
			t.Fatal(err)
		}
		for _, dev := range []string{vxlanDev4, vxlanDev6} {
			if _, err := l.Exec(n.Name, "ip", "link", "set", dev, "down"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, to := range []netip.Addr{p2.V4, p2.V6} {
		if r, err := l.PingWith(p1.Name, to, PingOptions{Count: 1, Wait: time.Second}); err == nil {
			t.Errorf("%s reaches %s with the tunnels down:\n%s", p1.Name, to, r.Output)
		}
	}
}

// vxlanTx returns the TX packet counts of node's vxlan devices.
func vxlanTx(t *testing.T, l *Lab, node string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, dev := range []string{vxlanDev4, vxlanDev6} {
		out, err := l.Exec(node, "ip", "-s", "-j", "link", "show", "dev", dev)
		if err != nil {
			t.Fatal(err)
		}
		var v []struct {
			Stats64 struct {
				TX struct {
					Packets uint64 `json:"packets"`
				} `json:"tx"`
			} `json:"stats64"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
			t.Fatalf("ip -s -j link show %s: %v\n%s", dev, err, out)
		}
		m[dev] = v[0].Stats64.TX.Packets
	}
	return m
}

// TestLoadStateCompat: a state file written before Encap, Node.VTEPMAC and
// Link.MTU existed still loads, as a natively routed lab with the
// topology's MTU on every link; a VXLAN lab's state keeps them.
func TestLoadStateCompat(t *testing.T) {
	root := t.TempDir()
	write := func(prefix, js string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, prefix), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, prefix, stateFile), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("xlold", `{"Prefix": "xlold", "Topology": {"Prefix": "xlold", "MTU": 1500,
		"Nodes": [{"Name": "node", "NS": "xlold-node", "PodsV4": "198.19.0.0/24"}],
		"Links": [{"Kind": "pod", "A": {"NS": "xlold-node", "Name": "xlpod1h"}, "B": {"NS": "xlold-pod1", "Name": "eth0"}}]}}`)
	st, err := LoadState(root, "xlold")
	if err != nil {
		t.Fatal(err)
	}
	if top := st.Topology; top.Encap != "" || top.Nodes[0].VTEPMAC != nil || top.Links[0].MTU != 0 {
		t.Errorf("old state: encap %q, VTEP MAC %v, link MTU %d; want none", top.Encap, top.Nodes[0].VTEPMAC, top.Links[0].MTU)
	}

	top, err := Plan(Options{Prefix: "xlnew", Nodes: 2, PodsPerNode: 1, Encap: EncapVXLAN})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(State{Prefix: top.Prefix, Topology: top})
	if err != nil {
		t.Fatal(err)
	}
	write("xlnew", string(b))
	st, err = LoadState(root, "xlnew")
	if err != nil {
		t.Fatal(err)
	}
	back := st.Topology
	if back.Encap != EncapVXLAN || back.Nodes[1].VTEPMAC.String() != "02:58:03:00:01:01" || back.Links[0].MTU != DefaultMTU-vxlanOverhead {
		t.Errorf("VXLAN state: encap %q, node2 VTEP MAC %s, pod link MTU %d", back.Encap, back.Nodes[1].VTEPMAC, back.Links[0].MTU)
	}
}

// newTestLab builds the lab o describes, or skips the test where no lab
// can run or a tool it names is missing; the lab goes with the test.
func newTestLab(t *testing.T, o Options, tools ...string) *Lab {
	t.Helper()
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	l, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// TestBuildOffloads checks the offloads the lab sets for the fast path
// (GRO on in the pods, and on the uplinks with UplinkGRO) besides TX
// checksum off, read back with ethtool.
func TestBuildOffloads(t *testing.T) {
	l := newTestLab(t, Options{XDPFastPath: true, UplinkGRO: true, Logf: t.Logf}, "ethtool")
	want := map[string]string{"tx-checksumming": "off", "generic-receive-offload": "on"}
	check := func(ns, dev string, want map[string]string) {
		out, err := l.Exec(ns, "ethtool", "-k", dev)
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range want {
			if !strings.Contains(out, f+": "+v) {
				t.Errorf("%s in %s: %s not %s:\n%s", dev, ns, f, v, out)
			}
		}
	}
	for _, p := range l.T.Pods {
		check(p.Name, PodIf, want)
	}
	n := l.T.Nodes[0]
	check(n.Name, n.Uplink, map[string]string{"generic-receive-offload": "on"})
}
