package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// memifPMD finds DPDK's testpmd and its net_memif driver, or fails: make deps installs both.
func memifPMD(t *testing.T) (bin, pmd string) {
	t.Helper()
	bin, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		t.Fatal("dpdk-testpmd not installed (Debian dpdk-dev; make deps installs it)")
	}
	out, err := exec.Command("dpkg", "-L", "librte-net-memif23").Output()
	if err != nil {
		t.Fatalf("librte-net-memif23 not installed (make deps installs it): %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasSuffix(l, "/librte_net_memif.so.23") && strings.Contains(l, "pmds-") {
			pmd = l
		}
	}
	if pmd == "" {
		t.Fatal("net_memif driver not found in librte-net-memif23")
	}
	return bin, pmd
}

// startTestpmd runs testpmd in pod's namespace as a memif client of the
// abstract socket @name there, with the given MAC and forward mode. The
// lab ends it if the test does not.
func startTestpmd(t *testing.T, l *lab.Lab, pod, name, mac, fwd string) *lab.Process {
	t.Helper()
	bin, pmd := memifPMD(t)
	prefix := fmt.Sprintf("xvse2e%d", rand.Uint32())
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/var/run/dpdk", prefix)) })
	p, err := l.Start("testpmd", pod, bin, "--no-huge", "-m", "512", "--no-pci", "-d", pmd,
		"--vdev=net_memif0,role=client,id=0,socket="+name+",socket-abstract=yes,mac="+mac,
		"--file-prefix="+prefix, "--", "--no-mlockall", "--total-num-mbufs=4096",
		"--forward-mode="+fwd, "--auto-start", "--stats-period=5")
	if err != nil {
		t.Fatalf("start testpmd: %v", err)
	}
	return p
}

// memifStatus is the port's memif section from `xvsctl -o json show ports`.
func memifStatus(t *testing.T, l *lab.Lab, node, port string) (up bool, m map[string]any, reason string) {
	t.Helper()
	out, err := xvsctl(t, l, node, "-o", "json", "show", "ports")
	if err != nil {
		t.Fatalf("xvsctl show ports: %v: %s", err, out)
	}
	var v struct {
		Ports []map[string]any `json:"ports"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("show ports json: %v: %s", err, out)
	}
	for _, p := range v.Ports {
		if p["name"] == port {
			m, _ := p["memif"].(map[string]any)
			u, _ := p["up"].(bool)
			r, _ := p["reason"].(string)
			return u, m, r
		}
	}
	t.Fatalf("port %s not listed: %s", port, out)
	return
}

func waitMemif(t *testing.T, l *lab.Lab, port string, want bool) map[string]any {
	t.Helper()
	var m map[string]any
	eventually(t, 40*time.Second, fmt.Sprintf("memif port %s up=%v", port, want), func() error {
		up, mm, reason := memifStatus(t, l, "node", port)
		m = mm
		if up != want || mm == nil || mm["connected"] != want {
			return fmt.Errorf("up %v connected %v (%s)", up, mm["connected"], reason)
		}
		return nil
	})
	return m
}

// udpEcho sends a datagram from pod to addr and waits for the same bytes
// back (testpmd's 5tswap returns it with addresses and ports swapped).
func udpEcho(t *testing.T, l *lab.Lab, pod string, addr netip.AddrPort) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("udp echo %s from %s", addr, pod), func() error {
		c, err := l.Dial(pod, "udp", addr.String(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range 5 {
			msg := []byte(fmt.Sprintf("xvs memif echo %d %s", i, addr))
			if _, err := c.Write(msg); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 1500)
			n, err := c.Read(buf)
			if err != nil {
				return err
			}
			if !bytes.Equal(buf[:n], msg) {
				return fmt.Errorf("echo %q, want %q", buf[:n], msg)
			}
		}
		return nil
	})
}

// TestMemifPod: pod2 keeps its veth eth0 and gets a memif port from xvsd,
// its socket abstract inside pod2's namespace, DPDK's testpmd the
// application on it. pod1 (a veth pod) pings the memif side's IPv4 address
// through xvsd (testpmd icmpecho answers ARP and IPv4 echo; it has no IPv6
// answer), the peer is killed (the port goes down, its routes leave the
// FIB), a new testpmd in 5tswap mode reconnects, and UDP over IPv4 and
// IPv6 comes back through it.
func TestMemifPod(t *testing.T) {
	memifPMD(t)
	l := newLab(t, lab.Options{})
	n := l.T.Nodes[0]
	p1, p2 := l.T.Pods[0], l.T.Pods[1]
	v4 := netip.AddrFrom4([4]byte{n.PodsV4.Addr().As4()[0], n.PodsV4.Addr().As4()[1], n.PodsV4.Addr().As4()[2], 200})
	b6 := n.PodsV6.Addr().As16()
	b6[14], b6[15] = 0x02, 0x00
	v6 := netip.AddrFrom16(b6)
	const mac = "02:fe:00:00:02:00"
	sock := fmt.Sprintf("xvs-memif-%d", rand.Uint32())
	out, err := xvsctl(t, l, "node", "port", "add", "mp0", "kind=pod",
		"addr="+v4.String()+"/32,"+v6.String()+"/128", "peer-mac="+mac,
		"memif-socket=@"+sock, "memif-netns="+filepath.Join(lab.NetnsDir, p2.NS))
	if err != nil {
		t.Fatalf("port add: %v: %s", err, out)
	}
	if up, m, reason := memifStatus(t, l, "node", "mp0"); up || m == nil || !strings.Contains(reason, "waiting for a peer") {
		t.Fatalf("before a peer: up %v memif %v reason %q", up, m, reason)
	}
	pmd := startTestpmd(t, l, p2.Name, sock, mac, "icmpecho")
	m := waitMemif(t, l, "mp0", true)
	if m["role"] != "server" || m["peer_name"] == "" || m["ring_size"] == float64(0) {
		t.Errorf("memif status %v", m)
	}
	ping(t, l, p1.Name, v4)
	if out, _ := xvsctl(t, l, "node", "show", "ports"); !strings.Contains(out, "mp0: memif server on @"+sock) {
		t.Errorf("show ports lacks the memif line:\n%s", out)
	}

	// The peer dies: the port goes down and its routes leave.
	if err := pmd.Kill(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitMemif(t, l, "mp0", false)
	out, err = xvsctl(t, l, "node", "show", "routes", v4.String())
	if err == nil && strings.Contains(out, "mp0") {
		t.Errorf("route to %s still by mp0 with the peer gone:\n%s", v4, out)
	}
	if r, _ := l.Ping(p1.Name, v4, 1); r.Received != 0 {
		t.Errorf("ping answered with the peer gone")
	}

	// A new peer reconnects; 5tswap returns UDP over both families.
	startTestpmd(t, l, p2.Name, sock, mac, "5tswap")
	waitMemif(t, l, "mp0", true)
	t.Run("udp4", func(t *testing.T) { udpEcho(t, l, p1.Name, netip.AddrPortFrom(v4, 9000)) })
	t.Run("udp6", func(t *testing.T) { udpEcho(t, l, p1.Name, netip.AddrPortFrom(v6, 9000)) })
	_, m, _ = memifStatus(t, l, "node", "mp0")
	if m["connects"] != "2" || m["disconnects"] != "1" {
		t.Errorf("connects %v disconnects %v, want 2 and 1", m["connects"], m["disconnects"])
	}
}
