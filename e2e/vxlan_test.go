package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
	"github.com/xvs-project/xvs/perf/pktgen"
)

// crossPods checks that the lab's two pods, one per node, reach each other
// over IPv4 and IPv6 with ping both ways and iperf3 both families.
func crossPods(t *testing.T, l *lab.Lab) {
	t.Helper()
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	if p1.Node == p2.Node {
		t.Fatalf("pods %s and %s on one node", p1.Name, p2.Name)
	}
	ping(t, l, p1.Name, p2.V4)
	ping(t, l, p1.Name, p2.V6)
	ping(t, l, p2.Name, p1.V4)
	ping(t, l, p2.Name, p1.V6)
	for _, v6 := range []bool{false, true} {
		ir, err := l.Iperf3(p2.Name, p1.Name, time.Second, v6)
		if err != nil || ir.ReceivedBytes == 0 {
			t.Fatalf("iperf3 (IPv6 %v) across nodes: %v (%d bytes)", v6, err, ir.ReceivedBytes)
		}
		t.Logf("iperf3 (IPv6 %v) across nodes: %.2f Gb/s", v6, ir.BitsPerSecond/1e9)
	}
}

// udpAcross sends a burst of UDP datagrams of one flow, all of one size,
// from the lab's first pod to its second, each carrying a sequence number,
// and wants every one of them, once: xvsd merges such runs into UDP GSO
// super-frames toward its uplink, which the network must get back as the
// datagrams they were made of.
func udpAcross(t *testing.T, l *lab.Lab, v6 bool) {
	t.Helper()
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	src, dst := p1.V4, p2.V4
	if v6 {
		src, dst = p1.V6, p2.V6
	}
	cfg := pktgen.Config{
		Mode: pktgen.ModeTxRx, IO: pktgen.IOAFPacket, RxIO: pktgen.IOAFPacket,
		Netns: p1.NS, Iface: lab.PodIf, RxNetns: p2.NS, RxIface: lab.PodIf,
		DstMAC: net.HardwareAddr(lab.GatewayMAC), Src: src, Dst: dst, SrcPort: 1024, DstPort: 9,
		Sizes: []int{300}, Flows: 1, Rate: 20000, Count: 4000, Duration: 5 * time.Second, Stream: 7,
	}
	r, err := pktgen.Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("pktgen (IPv6 %v): %v", v6, err)
	}
	if r.Rx.Unique != r.Tx.Packets || r.Rx.Dups != 0 {
		t.Errorf("UDP (IPv6 %v): %d of %d datagrams arrived, %d duplicates", v6, r.Rx.Unique, r.Tx.Packets, r.Rx.Dups)
	}
}

// TestVXLANCrossNode: two nodes whose pod blocks are routed to each other
// only through VXLAN (the lab's outside does not route them), xvsd on
// both, with AF_XDP and with af-packet pod ports (TCP super-frames cut,
// then encapsulated), and with af-packet uplinks (steered by tc). The
// last case has GRO at the uplinks and a VXLAN device of the host's own
// on the VXLAN port of each node: the kernel then merges TCP in VXLAN
// before the uplink's socket, which hands the workers TCP super-frames
// with their outer headers (vxlanLargeTCP).
func TestVXLANCrossNode(t *testing.T) {
	for _, c := range []struct {
		pods, uplinks string
		hostVXLAN     bool
	}{{"", "", false}, {"af-packet", "", false}, {"af-packet", "af-packet", false}, {"af-packet", "af-packet", true}} {
		t.Run(fmt.Sprintf("pods=%s,uplinks=%s,hostvxlan=%v", c.pods, c.uplinks, c.hostVXLAN), func(t *testing.T) {
			l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, PodMode: c.pods, UplinkMode: c.uplinks, UplinkGRO: c.hostVXLAN, Encap: "vxlan"})
			if c.hostVXLAN {
				for _, n := range l.T.Nodes {
					for _, cmd := range [][]string{
						{"ip", "link", "add", "xvstest0", "type", "vxlan", "id", "9999", "dstport", "4789", "nolearning"},
						{"ip", "link", "set", "xvstest0", "up"},
					} {
						if _, err := l.Exec(n.Name, cmd...); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			crossPods(t, l)
			if c.hostVXLAN {
				for _, n := range []string{"node1", "node2"} {
					if b := counter(t, l, n, "bad-offload"); b != 0 {
						t.Errorf("%s: bad-offload %d: merged TCP in VXLAN dropped", n, b)
					}
				}
				if w := counter(t, l, "node2", "gso-whole"); w == 0 {
					t.Error("node2 forwarded no super-frame whole: the kernel merged nothing, the case is not tested")
				}
			}
			udpAcross(t, l, false)
			udpAcross(t, l, true)
			if c := counter(t, l, "node1", "udp-gro-merged"); c == 0 {
				t.Errorf("node1 merged no VXLAN datagrams for its uplink")
			}
			for _, n := range []string{"node1", "node2"} {
				if e, d := counter(t, l, n, "vxlan-encap"), counter(t, l, n, "vxlan-decap"); e == 0 || d == 0 {
					t.Errorf("%s: vxlan-encap %d, vxlan-decap %d; want both", n, e, d)
				}
				for _, bad := range []string{"bad-vxlan", "vxlan-vni", "vxlan-mac"} {
					if c := counter(t, l, n, bad); c != 0 {
						t.Errorf("%s: %s %d", n, bad, c)
					}
				}
			}
			assertForwardingOff(t, l)
		})
	}
}

// TestVXLANWithKernelVTEP: xvsd on one node, and on the other the kernel's
// vxlan devices set up as Calico sets them up (vxlan.calico over IPv4,
// vxlan-v6.calico over IPv6, static neighbour and FDB entries): the two
// must understand each other's VXLAN both ways, and after xvsd restarts;
// with xvsd's workers encapsulating, and with its tc fast path and its own
// kernel VXLAN device doing it.
func TestVXLANWithKernelVTEP(t *testing.T) {
	for _, c := range []struct {
		name string
		opts lab.Options
	}{
		{"workers", lab.Options{}},
		// xvsd's own kernel VXLAN device under the tc fast path, against
		// Calico's.
		{"tc-fast-path", lab.Options{PodMode: "af-packet", UplinkMode: "af-packet", XDPFastPath: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			o.Nodes, o.PodsPerNode, o.Encap = 2, 1, "vxlan"
			l := newLab(t, o)
			if err := l.StopXVSD("node2"); err != nil {
				t.Fatal(err)
			}
			if err := l.KernelRouting("node2"); err != nil {
				t.Fatal(err)
			}
			crossPods(t, l)
			if e, d := counter(t, l, "node1", "vxlan-encap"), counter(t, l, "node1", "vxlan-decap"); !o.XDPFastPath && (e == 0 || d == 0) {
				t.Errorf("node1: vxlan-encap %d, vxlan-decap %d; want both", e, d)
			}
			if o.XDPFastPath && counter(t, l, "node1", "fast-path-remotes") == 0 {
				t.Error("node1 put no tunnel destination in the fast path")
			}
			for _, bad := range []string{"bad-vxlan", "vxlan-vni", "vxlan-mac"} {
				if c := counter(t, l, "node1", bad); c != 0 {
					t.Errorf("node1: %s %d", bad, c)
				}
			}
			// A restart keeps the tunnel: the routes come from the config.
			if err := l.StopXVSD("node1"); err != nil {
				t.Fatal(err)
			}
			if err := l.StartXVSD("node1"); err != nil {
				t.Fatal(err)
			}
			p1, p2 := l.T.Pods[0], l.T.Pods[1]
			ping(t, l, p1.Name, p2.V4)
			ping(t, l, p2.Name, p1.V6)
		})
	}
}

// TestVXLANIPv6OverIPv4: IPv6 pods on an IPv4 underlay, the routes added
// at run time through xvsctl: each node's IPv6 route to the other's block
// is replaced by one into the tunnel to the other's IPv4 VTEP. The pods
// still reach each other over IPv6, now inside IPv4 VXLAN, and the routes
// survive an xvsd restart (the API's state file).
func TestVXLANIPv6OverIPv4(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, Encap: "vxlan"})
	n1, n2 := l.T.Nodes[0], l.T.Nodes[1]
	for _, x := range [][2]*lab.Node{{n1, n2}, {n2, n1}} {
		n, m := x[0], x[1]
		if out, err := xvsctl(t, l, n.Name, "route", "del", m.PodsV6.String()); err != nil {
			t.Fatalf("%s: route del: %v\n%s", n.Name, err, out)
		}
		if out, err := xvsctl(t, l, n.Name, "route", "add", m.PodsV6.String(), "vxlan", m.UplinkV4.Addr().String(), "mac", m.VTEPMAC.String()); err != nil {
			t.Fatalf("%s: route add: %v\n%s", n.Name, err, out)
		}
		out, err := xvsctl(t, l, n.Name, "show", "routes", m.PodsV6.Addr().Next().String())
		if err != nil || !strings.Contains(out, "remote "+m.UplinkV4.Addr().String()) {
			t.Fatalf("%s: route to %s: %v\n%s", n.Name, m.PodsV6, err, out)
		}
	}
	// Refused, with the reason: a vxlan route needs both address and MAC.
	if out, err := xvsctl(t, l, "node1", "route", "add", "fd00:19:9::/64", "vxlan", "fd00:19:9::1", "mac", n2.VTEPMAC.String()); err == nil || !strings.Contains(out, "inside") {
		t.Errorf("a remote inside its own prefix was accepted: %v\n%s", err, out)
	}
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	ping(t, l, p1.Name, p2.V6)
	ping(t, l, p2.Name, p1.V6)
	udpAcross(t, l, true)
	if err := l.StopXVSD("node1"); err != nil {
		t.Fatal(err)
	}
	if err := l.StartXVSD("node1"); err != nil {
		t.Fatal(err)
	}
	if out, err := xvsctl(t, l, "node1", "show", "routes", p2.V6.String()); err != nil || !strings.Contains(out, "remote "+n2.UplinkV4.Addr().String()) {
		t.Fatalf("after the restart, the route to %s: %v\n%s", p2.V6, err, out)
	}
	ping(t, l, p1.Name, p2.V6)
}

// TestVXLANFastPath: with the XDP fast path, the receiving node's uplink
// program decapsulates VXLAN over IPv4 for its pod and forwards it in XDP;
// VXLAN over IPv6 still goes through the worker. Both reach the pod.
func TestVXLANFastPath(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, Encap: "vxlan", XDPFastPath: true})
	crossPods(t, l)
	udpAcross(t, l, false)
	udpAcross(t, l, true)
	before := counter(t, l, "node2", "vxlan-decap")
	ir, err := l.Iperf3(l.T.Pods[1].Name, l.T.Pods[0].Name, time.Second, false)
	if err != nil || ir.ReceivedBytes == 0 {
		t.Fatalf("iperf3: %v", err)
	}
	segs := uint64(ir.ReceivedBytes / 1400)
	if x, d := counter(t, l, "node2", "xdp-forwarded-ipv4"), counter(t, l, "node2", "vxlan-decap")-before; x < segs/2 || d > segs/2 {
		t.Errorf("node2: xdp-forwarded-ipv4 %d, worker decap %d, for ~%d segments: want most in XDP", x, d, segs)
	}
	if c := counter(t, l, "node2", "vxlan-decap"); c == 0 {
		t.Errorf("node2: the worker decapsulated nothing (IPv6 VXLAN is its)")
	}
	for _, bad := range []string{"bad-vxlan", "vxlan-vni", "vxlan-mac"} {
		if c := counter(t, l, "node2", bad); c != 0 {
			t.Errorf("node2: %s %d", bad, c)
		}
	}
}

// TestVXLANTCFastPath: VXLAN between af-packet pods with the fast path,
// over af-packet uplinks (with GRO at the uplinks and without) and over
// AF_XDP ones. xvsd creates a
// metadata-mode VXLAN device of its own on each node: the sending pod's tc
// program sends into it (the kernel encapsulates, super-frames whole),
// and the receiving uplink hands the VXLAN to it (the kernel
// decapsulates and merges) for its tc program to forward to the pod.
// Ping, UDP and iperf3 work both ways, the workers see little of the
// stream, and the device goes with xvsd and comes back with it.
func TestVXLANTCFastPath(t *testing.T) {
	for _, c := range []struct {
		up  string
		gro bool
	}{{"af-packet", false}, {"af-packet", true}, {"", false}} {
		// With GRO at the uplinks (a NIC's), the segments of a stream
		// arrive merged by the node's VXLAN socket, as GSO super-frames
		// of TCP in VXLAN, which the uplink's tc program hands to the
		// kernel's device whole.
		t.Run(fmt.Sprintf("uplinks=%s,gro=%v", c.up, c.gro), func(t *testing.T) {
			l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, PodMode: "af-packet", UplinkMode: c.up, UplinkGRO: c.gro, XDPFastPath: true, Encap: "vxlan"})
			p1, p2 := l.T.Pods[0], l.T.Pods[1]
			device := func(n *lab.Node) bool {
				_, err := l.Exec(n.NS, "ip", "link", "show", "xvs.vxlan")
				return err == nil
			}
			check := func(when string) {
				t.Helper()
				for _, n := range l.T.Nodes {
					if !device(n) {
						t.Fatalf("%s: no xvs.vxlan on %s", when, n.Name)
					}
				}
				crossPods(t, l)
				udpAcross(t, l, false)
				udpAcross(t, l, true)
				rx := func() uint64 {
					return counter(t, l, "node1", "rx-packets") + counter(t, l, "node2", "rx-packets")
				}
				before := rx()
				ir, err := l.Iperf3(p2.Name, p1.Name, time.Second, false)
				if err != nil || ir.ReceivedBytes == 0 {
					t.Fatalf("%s: iperf3 through VXLAN: %v (%d bytes)", when, err, ir.ReceivedBytes)
				}
				got := rx() - before
				if segs := uint64(ir.ReceivedBytes / 1400); got > segs/20 {
					t.Errorf("%s: the workers received %d frames for ~%d segments; want the stream in the kernel and tc", when, got, segs)
				}
				for _, n := range []string{"node1", "node2"} {
					if c := counter(t, l, n, "fast-path-remotes"); c == 0 {
						t.Errorf("%s: %s put no tunnel destination in the fast path", when, n)
					}
					for _, bad := range []string{"bad-vxlan", "vxlan-vni", "vxlan-mac"} {
						if c := counter(t, l, n, bad); c != 0 {
							t.Errorf("%s: %s: %s %d", when, n, bad, c)
						}
					}
				}
				t.Logf("%s: iperf3 through VXLAN, tc fast path: %.2f Gb/s, %d frames through the workers", when, ir.BitsPerSecond/1e9, got)
			}
			check("first start")
			for _, n := range l.T.Nodes {
				if err := l.StopXVSD(n.Name); err != nil {
					t.Fatal(err)
				}
				if device(n) {
					t.Errorf("xvs.vxlan left on %s after xvsd stopped", n.Name)
				}
				if err := l.StartXVSD(n.Name); err != nil {
					t.Fatal(err)
				}
			}
			check("after a restart")
			assertForwardingOff(t, l)
		})
	}
}

// TestVXLANTCFastPathSource: with vxlan.vtep_v4 an address of the node's
// other than its uplink's, the kernel's VXLAN device under the tc fast
// path sends from it, as the workers do (before, it sent from the host
// route's source): during a TCP stream through the tc path the network
// sees VXLAN from node1 from that address only.
func TestVXLANTCFastPathSource(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, PodMode: "af-packet", UplinkMode: "af-packet", XDPFastPath: true, Encap: "vxlan"})
	n1 := l.T.NodeByName("node1")
	vtep := netip.MustParseAddr("198.18.0.11")
	for _, n := range l.T.Nodes {
		if err := l.StopXVSD(n.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range [][]string{
		{n1.Name, "ip", "addr", "add", vtep.String() + "/32", "dev", n1.Uplink},
		{"outside", "ip", "route", "add", vtep.String() + "/32", "via", n1.UplinkV4.Addr().String()},
	} {
		if _, err := l.Exec(c[0], c[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	n1.VTEP4 = vtep
	for _, n := range l.T.Nodes {
		if err := l.StartXVSD(n.Name); err != nil {
			t.Fatal(err)
		}
	}
	crossPods(t, l)
	// What node1 sends into the network, by outer source, while a
	// stream from its pod crosses.
	capture := func(src netip.Addr, n *int) func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			out, _ := l.Exec("outside", "timeout", "4", "tcpdump", "-nq", "-i", n1.Name, "-c", "1000",
				"udp dst port 4789 and src host "+src.String())
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, " > ") { // a packet, not tcpdump's own lines
					*n++
				}
			}
		}()
		return func() { <-done }
	}
	var fromVTEP, fromUplink int
	wait1, wait2 := capture(vtep, &fromVTEP), capture(n1.UplinkV4.Addr(), &fromUplink)
	time.Sleep(500 * time.Millisecond) // tcpdump up
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	ir, err := l.Iperf3(p2.Name, p1.Name, 2*time.Second, false)
	wait1()
	wait2()
	if err != nil || ir.ReceivedBytes == 0 {
		t.Fatalf("iperf3 through VXLAN: %v", err)
	}
	if fromVTEP < 100 || fromUplink != 0 {
		t.Errorf("VXLAN from node1: %d packets from its VTEP address %v, %d from its uplink's; want all from the VTEP's", fromVTEP, vtep, fromUplink)
	}
	if c := counter(t, l, "node1", "fast-path-remotes"); c == 0 {
		t.Error("node1 put no tunnel destination in the fast path: the stream went through the workers")
	}
}
