package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// assertForwardingOff checks that the node's kernel cannot have forwarded
// what the test saw cross the node.
func assertForwardingOff(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, n := range l.T.Nodes {
		for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
			if v, err := lab.ReadSysctl(n.NS, k); err != nil || v != "0" {
				t.Fatalf("%s in %s = %q (%v): kernel forwarding must stay off", k, n.NS, v, err)
			}
		}
	}
}

func ping(t *testing.T, l *lab.Lab, from string, to netip.Addr) {
	t.Helper()
	// The first packets may wait for xvsd to learn or resolve a neighbour.
	eventually(t, 10*time.Second, fmt.Sprintf("ping %s from %s", to, from), func() error {
		_, err := l.Ping(from, to, 1)
		return err
	})
	r, err := l.Ping(from, to, 5)
	if err != nil || r.Received != r.Sent {
		t.Fatalf("ping %s from %s: %d/%d: %v\n%s", to, from, r.Received, r.Sent, err, r.Output)
	}
}

func TestPodToPodPing(t *testing.T) {
	l := newLab(t, lab.Options{})
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	assertForwardingOff(t, l)
	before := counter(t, l, "node", "forwarded-ipv4")
	t.Run("v4", func(t *testing.T) { ping(t, l, p1.Name, p2.V4) })
	t.Run("v6", func(t *testing.T) { ping(t, l, p1.Name, p2.V6) })
	t.Run("v4-reverse", func(t *testing.T) { ping(t, l, p2.Name, p1.V4) })
	t.Run("v6-reverse", func(t *testing.T) { ping(t, l, p2.Name, p1.V6) })
	if after := counter(t, l, "node", "forwarded-ipv4"); after < before+10 {
		t.Errorf("forwarded-ipv4 went %d -> %d; want at least 10 more (5 echo requests and replies per direction)", before, after)
	}
	assertForwardingOff(t, l)
}

func TestPodToPodTCP(t *testing.T) {
	l := newLab(t, lab.Options{})
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	iperfBoth(t, l, p1, p2, nil)
	assertForwardingOff(t, l)
}

// iperfBoth runs iperf3 from p1 to p2 over IPv4 and IPv6, after pings that
// resolve the neighbours, and fails on an error or nothing received. each,
// if given, runs around every transfer: it is called before and returns
// the check to call after.
func iperfBoth(t *testing.T, l *lab.Lab, p1, p2 *lab.Pod, each func(t *testing.T) func()) {
	t.Helper()
	ping(t, l, p1.Name, p2.V4)
	ping(t, l, p1.Name, p2.V6)
	for _, v6 := range []bool{false, true} {
		name := map[bool]string{false: "v4", true: "v6"}[v6]
		t.Run(name, func(t *testing.T) {
			after := func() {}
			if each != nil {
				after = each(t)
			}
			r, err := l.Iperf3(p2.Name, p1.Name, 2*time.Second, v6)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("iperf3 %s: %.2f Gb/s, %d bytes received, %d retransmits", name, r.BitsPerSecond/1e9, r.ReceivedBytes, r.Retransmits)
			if r.ReceivedBytes == 0 {
				t.Fatal("no bytes received")
			}
			after()
		})
	}
}

// TestTTLExpired: the first hop of a pod is xvsd, so TTL 1 expires there
// and the pod gets time-exceeded from its gateway.
func TestTTLExpired(t *testing.T) {
	l := newLab(t, lab.Options{})
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	ping(t, l, p1.Name, p2.V4)
	ping(t, l, p1.Name, p2.V6)
	before := counter(t, l, "node", "ttl-expired")
	expired := 0 // ICMP errors the pod saw; each is one expired packet
	for _, tc := range []struct {
		name string
		to   netip.Addr
		want string // what iputils ping prints for the gateway's ICMP error
	}{
		{"v4", p2.V4, "From " + lab.GatewayV4.String() + " icmp_seq=1 Time to live exceeded"},
		{"v6", p2.V6, "From " + lab.GatewayV6.String() + "%eth0 icmp_seq=1 Time exceeded: Hop limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := l.PingWith(p1.Name, tc.to, lab.PingOptions{Count: 2, TTL: 1})
			if err == nil {
				t.Fatalf("echo with TTL 1 got a reply: the node did not decrement TTL\n%s", r.Output)
			}
			if !strings.Contains(r.Output, tc.want) {
				t.Fatalf("no %q in ping output:\n%s", tc.want, r.Output)
			}
			expired += strings.Count(r.Output, "exceeded")
		})
	}
	if after := counter(t, l, "node", "ttl-expired"); after < before+uint64(expired) {
		t.Errorf("ttl-expired went %d -> %d; want at least %d more (the time-exceeded errors the pod got)", before, after, expired)
	}
}

// TestNoRoute: without an outside there is no default route, so a packet
// to an unrouted address gets destination-unreachable and is counted.
func TestNoRoute(t *testing.T) {
	l := newLab(t, lab.Options{NoOutside: true})
	p1 := l.T.Pods[0]
	ping(t, l, p1.Name, l.T.Pods[1].V4)
	before := counter(t, l, "node", "no-route")
	unreachable := 0 // ICMP errors the pod saw; each is one unrouted packet
	for _, to := range []netip.Addr{netip.MustParseAddr("198.18.254.1"), netip.MustParseAddr("fd00:fe::1")} {
		t.Run(to.String(), func(t *testing.T) {
			r, err := l.PingWith(p1.Name, to, lab.PingOptions{Count: 2})
			if err == nil {
				t.Fatalf("unrouted %s answered:\n%s", to, r.Output)
			}
			n := strings.Count(strings.ToLower(r.Output), "unreachable")
			if n == 0 {
				t.Fatalf("no destination-unreachable for %s:\n%s", to, r.Output)
			}
			unreachable += n
		})
	}
	if after := counter(t, l, "node", "no-route"); after < before+uint64(unreachable) {
		t.Errorf("no-route went %d -> %d; want at least %d more (the unreachables the pod got)", before, after, unreachable)
	}
}

// echoServer serves line echo on ln until it is closed.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo: got %q, want %q", got, msg)
	}
	return nil
}

// TestOutside: the outside reaches the pods through xvsd, and a TCP
// connection from the outside to the node's own kernel (XDP_PASS traffic)
// survives xvsd stopping and starting again.
func TestOutside(t *testing.T) {
	l := newLab(t, lab.Options{})
	n := l.T.Nodes[0]
	for _, p := range l.T.Pods {
		t.Run("ping-"+p.Name+"-v4", func(t *testing.T) { ping(t, l, "outside", p.V4) })
		t.Run("ping-"+p.Name+"-v6", func(t *testing.T) { ping(t, l, "outside", p.V6) })
	}
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp-to-pod-v6=%v", v6), func(t *testing.T) {
			r, err := l.Iperf3(l.T.Pods[0].Name, "outside", time.Second, v6)
			if err != nil {
				t.Fatal(err)
			}
			if r.ReceivedBytes == 0 {
				t.Fatal("no bytes received")
			}
			t.Logf("outside -> pod: %.2f Gb/s, %d retransmits", r.BitsPerSecond/1e9, r.Retransmits)
		})
	}
	assertForwardingOff(t, l)

	for _, addr := range []netip.Addr{n.UplinkV4.Addr(), n.UplinkV6.Addr()} {
		t.Run("kernel-tcp-"+addr.String(), func(t *testing.T) {
			hostport := net.JoinHostPort(addr.String(), "7777")
			ln, err := l.Listen("node", "tcp", hostport)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go echoServer(ln)
			c, err := l.Dial("outside", "tcp", hostport, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			if err := roundTrip(c, r, "before"); err != nil {
				t.Fatal(err)
			}
			if err := l.StopXVSD("node"); err != nil {
				t.Fatalf("stop xvsd: %v", err)
			}
			if err := roundTrip(c, r, "stopped"); err != nil {
				t.Fatalf("with xvsd stopped: %v", err)
			}
			if err := l.StartXVSD("node"); err != nil {
				t.Fatalf("restart xvsd: %v", err)
			}
			if err := roundTrip(c, r, "restarted"); err != nil {
				t.Fatalf("after xvsd restart: %v", err)
			}
		})
	}
	ping(t, l, "outside", l.T.Pods[0].V4)
}

// TestStopLeavesNoXDP: SIGTERM detaches every XDP program xvsd attached;
// after SIGKILL (nothing detached) a new xvsd takes over and forwards.
func TestStopLeavesNoXDP(t *testing.T) {
	l := newLab(t, lab.Options{})
	n, p1, p2 := l.T.Nodes[0], l.T.Pods[0], l.T.Pods[1]
	ping(t, l, p1.Name, p2.V4)
	// Native XDP attaches to veth on this kernel; without a program here
	// the checks below would prove nothing.
	if xdp := xdpAttached(t, l, n.NS); len(xdp) == 0 {
		t.Fatalf("no XDP program in %s while xvsd runs (fell back to AF_PACKET?)", n.NS)
	}
	if err := l.StopXVSD("node"); err != nil {
		if errors.Is(err, lab.ErrKilled) {
			t.Fatalf("xvsd ignored SIGTERM: %v", err)
		}
		t.Fatal(err)
	}
	if xdp := xdpAttached(t, l, n.NS); len(xdp) != 0 {
		t.Fatalf("XDP still attached after SIGTERM:\n%s", strings.Join(xdp, "\n"))
	}
	if r, err := l.PingWith(p1.Name, p2.V4, lab.PingOptions{Count: 1}); err == nil {
		t.Fatalf("pods talk with xvsd stopped and forwarding off:\n%s", r.Output)
	}

	if err := l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	ping(t, l, p1.Name, p2.V4)
	if err := l.KillXVSD("node"); err != nil {
		t.Fatal(err)
	}
	if err := l.StartXVSD("node"); err != nil {
		t.Fatalf("restart after SIGKILL: %v", err)
	}
	ping(t, l, p1.Name, p2.V4)
	ping(t, l, p1.Name, p2.V6)
	if err := l.StopXVSD("node"); err != nil {
		t.Fatal(err)
	}
	if xdp := xdpAttached(t, l, n.NS); len(xdp) != 0 {
		t.Fatalf("XDP still attached after SIGKILL, restart and SIGTERM:\n%s", strings.Join(xdp, "\n"))
	}
}

// TestPodVethDeleted: a pod's veth vanishing under a running xvsd marks its
// port down; the other pods keep forwarding.
func TestPodVethDeleted(t *testing.T) {
	l := newLab(t, lab.Options{PodsPerNode: 3})
	p1, p2, p3 := l.T.Pods[0], l.T.Pods[1], l.T.Pods[2]
	ping(t, l, p1.Name, p3.V4)
	ping(t, l, p1.Name, p2.V4)
	if up, found := portUp(t, l, "node", p3.HostIf); !found || !up {
		t.Fatalf("port %s: up=%v found=%v before the veth went", p3.HostIf, up, found)
	}
	if _, err := l.Exec(p3.Name, "ip", "link", "del", lab.PodIf); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "port "+p3.HostIf+" down", func() error {
		if up, found := portUp(t, l, "node", p3.HostIf); found && up {
			return errors.New("still up")
		}
		return nil
	})
	if p := l.XVSD("node"); p == nil || !p.Alive() {
		t.Fatal("xvsd died when a pod's veth went away")
	}
	ping(t, l, p1.Name, p2.V4)
	ping(t, l, p2.Name, p1.V6)
	if r, err := l.PingWith(p1.Name, p3.V4, lab.PingOptions{Count: 1}); err == nil {
		t.Errorf("deleted pod answered:\n%s", r.Output)
	}
}

// TestLabCLI drives xvsctl lab up/status/down in separate processes, as
// make demo does.
func TestLabCLI(t *testing.T) {
	requireLab(t)
	if xvsctlBin == "" {
		t.Skip(xvsctlReason)
	}
	prefix := fmt.Sprintf("%s%02d", runPrefix, labSeq.Add(1))
	root := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := execOut(xvsctlBin, append([]string{"lab"}, args...)...)
		if err != nil {
			t.Fatalf("xvsctl lab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out, err := execOut(xvsctlBin, "lab", "status", "-state-root", root); err != nil {
		t.Skipf("xvsctl has no working lab command yet: %v\n%s", err, out)
	}
	t.Cleanup(func() { lab.SweepRoot(root, prefix) })
	run("up", "-prefix", prefix, "-state-root", root, "-xvsd", xvsdBin, "-ready-timeout", "30s")
	env := run("status", "-prefix", prefix, "-state-root", root, "-o", "env")
	if !strings.Contains(env, "LAB_POD2_V4=198.19.0.2") || !strings.Contains(env, "LAB_NODE_XVSD_PID=") {
		t.Errorf("status -o env:\n%s", env)
	}
	pid := 0
	for _, line := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(line, "LAB_NODE_XVSD_PID="); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	run("down", "-prefix", prefix, "-state-root", root)
	if left, _ := lab.ListNamespaces(prefix); len(left) != 0 {
		t.Errorf("namespaces left after down: %v", left)
	}
	if pid != 0 {
		if p := (&lab.Process{Name: "xvsd", PID: pid}); p.Alive() {
			t.Errorf("xvsd pid %d still runs after down", pid)
		}
	}
}

// TestHostPort: the node's own kernel reaches its pods through the host port
// (as kubelet probes do), and the pods reach the node's address, over IPv4
// and IPv6, with forwarding still off in the node.
func TestHostPort(t *testing.T) {
	l := newLab(t, lab.Options{HostPort: true})
	n := l.T.Nodes[0]
	for _, p := range l.T.Pods {
		t.Run("node-to-"+p.Name+"-v4", func(t *testing.T) { ping(t, l, "node", p.V4) })
		t.Run("node-to-"+p.Name+"-v6", func(t *testing.T) { ping(t, l, "node", p.V6) })
	}
	for _, a := range []netip.Addr{n.UplinkV4.Addr(), n.UplinkV6.Addr()} {
		t.Run("pod-to-node-"+a.String(), func(t *testing.T) { ping(t, l, l.T.Pods[0].Name, a) })
	}
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp-node-to-pod-v6=%v", v6), func(t *testing.T) {
			r, err := l.Iperf3(l.T.Pods[0].Name, "node", time.Second, v6)
			if err != nil {
				t.Fatal(err)
			}
			if r.ReceivedBytes == 0 {
				t.Fatal("no bytes received")
			}
			t.Logf("node -> pod: %.2f Gb/s, %d retransmits", r.BitsPerSecond/1e9, r.Retransmits)
		})
	}
	assertForwardingOff(t, l)
}

// portPackets reads a port's rx and tx packet counters.
func portPackets(t *testing.T, l *lab.Lab, node, port string) (rx, tx uint64) {
	t.Helper()
	out, err := xvsctl(t, l, node, "-o", "json", "show", "ports")
	if err != nil {
		t.Fatalf("xvsctl show ports: %v: %s", err, out)
	}
	var v struct {
		Ports []struct {
			Name  string
			Stats struct {
				RxPackets string `json:"rx_packets"`
				TxPackets string `json:"tx_packets"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("xvsctl show ports: %v: %s", err, out)
	}
	for _, p := range v.Ports {
		if p.Name == port {
			fmt.Sscan(p.Stats.RxPackets, &rx)
			fmt.Sscan(p.Stats.TxPackets, &tx)
			return rx, tx
		}
	}
	t.Fatalf("no port %s in %s", port, out)
	return 0, 0
}

// TestUplinkQueues: a two-queue uplink on a two-worker xvsd. Each queue has
// its own AF_XDP socket under one steering program; flows from the outside
// arrive on both, and each worker answers through the queue it serves.
func TestUplinkQueues(t *testing.T) {
	l := newLab(t, lab.Options{Workers: 2, UplinkQueues: 2})
	for _, p := range l.T.Pods {
		ping(t, l, "outside", p.V4)
		ping(t, l, "outside", p.V6)
	}
	// Many TCP flows, so the outside's queue selection uses both queues.
	pod := l.T.Pods[1]
	hostport := net.JoinHostPort(pod.V4.String(), "7777")
	ln, err := l.Listen(pod.Name, "tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoServer(ln)
	for i := 0; i < 32; i++ {
		c, err := l.Dial("outside", "tcp", hostport, 5*time.Second)
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		if err := roundTrip(c, bufio.NewReader(c), fmt.Sprintf("flow %d", i)); err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		c.Close()
	}
	rx0, tx0 := portPackets(t, l, "node", "uplink0")
	rx1, tx1 := portPackets(t, l, "node", "uplink0/q1")
	t.Logf("uplink0: rx %d tx %d; uplink0/q1: rx %d tx %d", rx0, tx0, rx1, tx1)
	if tx0 == 0 || tx1 == 0 {
		t.Errorf("each worker should answer through its own queue: tx %d and %d", tx0, tx1)
	}
	if rx0 == 0 || rx1 == 0 {
		t.Errorf("32 flows all arrived on one queue: rx %d and %d", rx0, rx1)
	}
	assertForwardingOff(t, l)
}

// TestRestartKeepsAPIPods: a pod added through the API (as the CNI plugin
// will add pods) is recorded in xvsd's state file; after a restart whose
// config does not list it, xvsd re-adopts it with its addresses and forwards
// to it again.
func TestRestartKeepsAPIPods(t *testing.T) {
	l := newLab(t, lab.Options{})
	n := l.T.Nodes[0]
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	ping(t, l, p1.Name, p2.V4)

	// Move pod2 from the config to the API.
	if out, err := xvsctl(t, l, "node", "port", "del", p2.HostIf); err != nil {
		t.Fatalf("port del: %v: %s", err, out)
	}
	if out, err := xvsctl(t, l, "node", "port", "add", p2.HostIf, "kind=pod",
		"addr="+p2.V4.String()+"/32,"+p2.V6.String()+"/128", "peer-mac="+p2.MAC.String()); err != nil {
		t.Fatalf("port add: %v: %s", err, out)
	}
	ping(t, l, p1.Name, p2.V4)

	// Restart with a config that lists pod1 only.
	if err := l.StopXVSD("node"); err != nil {
		t.Fatal(err)
	}
	n.Pods = []string{p1.Name}
	if err := l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	if up, found := portUp(t, l, "node", p2.HostIf); !found || !up {
		t.Fatalf("pod2's port after restart: found %v up %v", found, up)
	}
	ping(t, l, p1.Name, p2.V4)
	ping(t, l, p1.Name, p2.V6)
	ping(t, l, p2.Name, p1.V6)
}

// TestPodToPodTCPOffload runs iperf3 between pods whose ports are AF_PACKET
// with offloads: the pods keep TSO and TX checksum offload, and TCP crosses
// xvsd in GSO super-frames, whole from one pod to the other.
func TestPodToPodTCPOffload(t *testing.T) {
	l := newLab(t, lab.Options{PodMode: "af-packet"})
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	iperfBoth(t, l, p1, p2, func(t *testing.T) func() {
		before := counter(t, l, "node", "gso-whole")
		return func() {
			if after := counter(t, l, "node", "gso-whole"); after <= before {
				t.Errorf("gso-whole went %d -> %d: no super-frame crossed whole", before, after)
			}
		}
	})
	if n := counter(t, l, "node", "bad-offload"); n != 0 {
		t.Errorf("bad-offload = %d", n)
	}
	assertForwardingOff(t, l)
}

// TestXDPFastPath: with xdp_fast_path the pods' XDP programs forward
// pod-to-pod traffic themselves (counted as xdp-forwarded-*), TTL 1 still
// reaches the switch's pipeline for its time-exceeded, TCP gets through,
// and after a restart of xvsd the fast path is rebuilt.
func TestXDPFastPath(t *testing.T) {
	testFastPath(t, lab.Options{XDPFastPath: true}, "xdp-forwarded")
}

// TestTCFastPath: the same with AF_PACKET pod ports, whose tc ingress
// programs forward (tc-forwarded-*), TCP in whole GSO super-frames; the
// switch's sockets see none of those frames.
func TestTCFastPath(t *testing.T) {
	testFastPath(t, lab.Options{XDPFastPath: true, PodMode: "af-packet"}, "tc-forwarded")
}

func testFastPath(t *testing.T, opts lab.Options, counted string) {
	l := newLab(t, opts)
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	check := func(when string) {
		b4, b6 := counter(t, l, "node", counted+"-ipv4"), counter(t, l, "node", counted+"-ipv6")
		ping(t, l, p1.Name, p2.V4)
		ping(t, l, p1.Name, p2.V6)
		if a4, a6 := counter(t, l, "node", counted+"-ipv4"), counter(t, l, "node", counted+"-ipv6"); a4 < b4+10 || a6 < b6+10 {
			t.Errorf("%s: %s went %d -> %d (IPv4), %d -> %d (IPv6); want 10 more each (5 requests and 5 replies)", when, counted, b4, a4, b6, a6)
		}
	}
	check("first start")
	r, err := l.PingWith(p1.Name, p2.V4, lab.PingOptions{Count: 1, TTL: 1})
	if err == nil || !strings.Contains(r.Output, "Time to live exceeded") {
		t.Errorf("TTL 1 through the fast path: %v\n%s", err, r.Output)
	}
	rx := counter(t, l, "node", "rx-packets")
	for _, v6 := range []bool{false, true} {
		ir, err := l.Iperf3(p2.Name, p1.Name, time.Second, v6)
		if err != nil || ir.ReceivedBytes == 0 {
			t.Fatalf("iperf3 (IPv6 %v) through the fast path: %v (%d bytes)", v6, err, ir.ReceivedBytes)
		}
		t.Logf("iperf3 (IPv6 %v) through the fast path: %.2f Gb/s", v6, ir.BitsPerSecond/1e9)
	}
	// A few frames for the switch itself (neighbour traffic) may come
	// while iperf3 runs; the stream's hundreds of thousands may not.
	if n := counter(t, l, "node", "rx-packets") - rx; n > 100 {
		t.Errorf("the switch's workers received %d frames during iperf3; the fast path should have taken them", n)
	}
	if err := l.StopXVSD("node"); err != nil {
		t.Fatal(err)
	}
	if err := l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	check("after a restart")
	assertForwardingOff(t, l)
}

// TestCrossNode: pods on two nodes, xvsd on each, the outside namespace
// routing between the uplinks (native routing). Each xvsd sends the other
// node's pods out of its uplink by its default route and takes its own
// pods' traffic in through the uplink's steering program; ping both ways
// and TCP from pods on AF_XDP and on af-packet ports (whose super-frames
// leave through the uplink whole).
func TestCrossNode(t *testing.T) {
	for _, mode := range []string{"", "af-packet"} {
		t.Run("mode="+mode, func(t *testing.T) {
			l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, PodMode: mode})
			crossPods(t, l)
			udpAcross(t, l, false)
			udpAcross(t, l, true)
			for _, n := range []string{"node1", "node2"} {
				if c := counter(t, l, n, "forwarded-ipv4"); c == 0 {
					t.Errorf("%s forwarded no IPv4", n)
				}
			}
			if mode == "af-packet" {
				// The uplink sends the pods' super-frames whole (its
				// AF_PACKET sender), for the interface to cut.
				if w, s := counter(t, l, "node1", "gso-whole"), counter(t, l, "node1", "gso-segmented"); w == 0 || s != 0 {
					t.Errorf("node1: gso-whole %d, gso-segmented %d; want super-frames out of the uplink whole", w, s)
				}
			}
			assertForwardingOff(t, l)
		})
	}
}

// TestCrossNodeFastPath: with the XDP fast path, the receiving node's
// uplink program forwards the frames for its pod itself: ping and iperf3
// across two nodes work, UDP arrives whole, and node2's workers see
// almost none of the stream (its ACKs the other way go through them).
func TestCrossNodeFastPath(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, XDPFastPath: true})
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	crossPods(t, l)
	udpAcross(t, l, false)
	udpAcross(t, l, true)
	before := counter(t, l, "node2", "rx-packets")
	ir, err := l.Iperf3(p2.Name, p1.Name, time.Second, false)
	if err != nil || ir.ReceivedBytes == 0 {
		t.Fatalf("iperf3 across nodes: %v (%d bytes)", err, ir.ReceivedBytes)
	}
	rx := counter(t, l, "node2", "rx-packets") - before
	segs := uint64(ir.ReceivedBytes / 1400)
	if x := counter(t, l, "node2", "xdp-forwarded-ipv4"); x < segs/2 || rx > segs/2 {
		t.Errorf("node2: xdp-forwarded-ipv4 %d, worker rx %d, for ~%d segments: want most in XDP", x, rx, segs)
	}
	t.Logf("iperf3 across nodes, fast path: %.2f Gb/s", ir.BitsPerSecond/1e9)
	assertForwardingOff(t, l)
}

// TestCrossNodeTCFastPath: af-packet pods with the fast path, over
// af-packet uplinks (steered by tc) and over AF_XDP ones. The sending
// pod's tc program sends to the other node's pod out of the uplink itself
// once the switch has put that destination in the fast path, super-frames
// whole; a receiving af-packet uplink's tc program forwards to its pod
// (an AF_XDP uplink hands the segments to its worker). Ping, iperf3 and
// UDP work both ways, the workers see little of the stream, the node's
// own traffic on the uplink still reaches its kernel, and it all holds
// across a restart of xvsd.
func TestCrossNodeTCFastPath(t *testing.T) {
	for _, up := range []string{"af-packet", ""} {
		t.Run("uplinks="+up, func(t *testing.T) {
			l := newLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, PodMode: "af-packet", UplinkMode: up, XDPFastPath: true})
			p1, p2 := l.T.Pods[0], l.T.Pods[1]
			crossPods(t, l)
			udpAcross(t, l, false)
			udpAcross(t, l, true)
			// The stream goes pod1 (node1) to pod2 (node2); node2's
			// workers see it unless its uplink is steered by tc.
			workers := []string{"node1", "node2"}
			if up == "" {
				workers = workers[:1]
			}
			check := func(when string) {
				t.Helper()
				rxAll := func() (n uint64) {
					for _, w := range workers {
						n += counter(t, l, w, "rx-packets")
					}
					return n
				}
				before := rxAll()
				ir, err := l.Iperf3(p2.Name, p1.Name, time.Second, false)
				if err != nil || ir.ReceivedBytes == 0 {
					t.Fatalf("%s: iperf3 across nodes: %v (%d bytes)", when, err, ir.ReceivedBytes)
				}
				rx := rxAll() - before
				segs := uint64(ir.ReceivedBytes / 1448)
				if rx > segs/20 {
					t.Errorf("%s: the workers of %v received %d frames for ~%d segments; want the stream in tc", when, workers, rx, segs)
				}
				for _, n := range []string{"node1", "node2"} {
					if c := counter(t, l, n, "fast-path-remotes"); c == 0 {
						t.Errorf("%s: %s put no remote destination in the fast path", when, n)
					}
				}
				t.Logf("%s: iperf3 across nodes, tc fast path: %.2f Gb/s, %d frames through %v's workers", when, ir.BitsPerSecond/1e9, rx, workers)
			}
			check("first start")
			// The outside still reaches the nodes' kernels through the uplinks.
			for _, n := range l.T.Nodes {
				ping(t, l, l.T.Outside, n.UplinkV4.Addr())
				ping(t, l, l.T.Outside, n.UplinkV6.Addr())
			}
			for _, n := range []string{"node1", "node2"} {
				if err := l.StopXVSD(n); err != nil {
					t.Fatal(err)
				}
				if err := l.StartXVSD(n); err != nil {
					t.Fatal(err)
				}
			}
			crossPods(t, l)
			check("after a restart")
			assertForwardingOff(t, l)
		})
	}
}
