package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// ClusterIPs of the services e2e (test ranges, clear of the lab's
// uplinks 198.18.i.0/24 and pod blocks 198.19.i.0/24).
var (
	svcIP4 = netip.MustParseAddr("198.18.250.10")
	svcIP6 = netip.MustParseAddr("fd00:96::10")
)

// TestServicesConfigFile: services and natOutgoing from xvsd's config
// file, through the NAT stage, with real peers: a pod reaches a ClusterIP
// backed by python3's http.server in another pod over IPv4 and IPv6 (curl),
// the services show in xvsctl, and a pod's connection to the outside
// namespace arrives from the node's address (natOutgoing on the pod pool).
func TestServicesConfigFile(t *testing.T) {
	requireLab(t)
	if xvsctlBin == "" {
		t.Skip(xvsctlReason)
	}
	prefix := "xnc" + lab.NewPrefix()[2:]
	var extra string
	o := lab.Options{Prefix: prefix, XVSD: xvsdBin, Logf: t.Logf, KeepDir: *keep, ReadyTimeout: 30 * time.Second,
		XVSDArgs: func(path string) []string {
			// The lab writes the node's config; the services and the
			// pool with natOutgoing go after it, in a copy.
			base, err := os.ReadFile(path)
			if err != nil {
				return []string{"-config", path + ".missing"}
			}
			out := path + ".services.yaml"
			if err := os.WriteFile(out, append(base, extra...), 0o644); err != nil {
				return []string{"-config", path + ".unwritable"}
			}
			return []string{"-config", out}
		}}
	// The topology is known before xvsd starts: plan it for the addresses.
	top, err := lab.Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	n := top.Nodes[0]
	backend := top.Pods[1]
	dir := t.TempDir()
	extra = fmt.Sprintf(`
ipam:
  store: %s/ipam.db
  node: %s
  pools:
    - {name: pods4, cidr: %s, blockSize: 26, natOutgoing: true}
    - {name: pods6, cidr: "%s", blockSize: 122, natOutgoing: true}
nat:
  internal: [198.18.250.0/24, "fd00:96::/112"]
services:
  - name: default/web
    clusterIPs: [%s, "%s"]
    ports:
      - name: http
        port: 80
        endpoints:
          - {addr: %s, port: 8080}
          - {addr: "%s", port: 8080}
`, dir, n.Name, n.PodsV4, n.PodsV6, svcIP4, svcIP6, backend.V4, backend.V6)

	l, err := lab.New(context.Background(), o)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xvsd log:\n%s", l.LogTail(n.Name, 80))
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	client := l.T.Pods[0]

	srv, err := l.Start("http", backend.Name, "/usr/bin/python3", "-m", "http.server", "--bind", "::", "8080")
	if err != nil {
		t.Fatal(err)
	}
	defer l.StopProcess(srv)
	// Pings first: the pods' neighbours resolve and the server starts.
	ping(t, l, client.Name, backend.V4)
	ping(t, l, client.Name, backend.V6)

	for _, vip := range []netip.Addr{svcIP4, svcIP6} {
		t.Run("curl-"+vip.String(), func(t *testing.T) {
			url := "http://" + net.JoinHostPort(vip.String(), "80") + "/"
			var out string
			var err error
			for range 20 { // the server may still be binding
				out, err = l.Exec(client.Name, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{remote_ip}", "--max-time", "5", url)
				if err == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("curl %s: %v: %s", url, err, out)
			}
			if !strings.HasPrefix(out, "200 ") {
				t.Fatalf("curl %s: %q, want 200", url, out)
			}
		})
	}

	out, err := xvsctl(t, l, n.Name, "show", "services")
	if err != nil || !strings.Contains(out, "default/web") || !strings.Contains(out, "natOutgoing: from") {
		t.Errorf("xvsctl show services: %v\n%s", err, out)
	}
	out, err = xvsctl(t, l, n.Name, "show", "conntrack", "tcp", "port=8080")
	if err != nil || !strings.Contains(out, backend.V4.String()+":8080") {
		t.Errorf("xvsctl show conntrack: %v\n%s", err, out)
	}

	// natOutgoing: a pod's TCP connection to an address beyond the node's
	// subnets (on the outside's loopback; the outside's uplink end is on
	// the node's subnet, which natOutgoing leaves alone) arrives from the
	// node's uplink address, and the reply finds its way back.
	far4, far6 := netip.MustParseAddr("198.18.251.1"), netip.MustParseAddr("fd00:97::1")
	for _, a := range []string{far4.String() + "/32", far6.String() + "/128"} {
		if out, err := l.Exec("outside", "ip", "addr", "add", a, "dev", "lo"); err != nil {
			t.Fatalf("outside: add %s: %v: %s", a, err, out)
		}
	}
	l.Exec("outside", "ip", "link", "set", "lo", "up")
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("natOutgoing-v6=%v", v6), func(t *testing.T) {
			gw, node := far4, n.UplinkV4.Addr()
			if v6 {
				gw, node = far6, n.UplinkV6.Addr()
			}
			ln, err := l.Listen("outside", "tcp", net.JoinHostPort(gw.String(), "7778"))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- "accept: " + err.Error()
					return
				}
				got <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap().String()
				c.Close()
			}()
			if out, err := l.Exec(client.Name, "curl", "-sS", "--max-time", "5", "http://"+net.JoinHostPort(gw.String(), "7778")+"/"); err != nil &&
				!strings.Contains(out, "Empty reply") && !strings.Contains(out, "reset") {
				t.Logf("curl to the outside: %v: %s", err, out)
			}
			// The switch translated the pod's flow to the node's address:
			// the flow's reply direction goes to the node (an SNAT port).
			ct, err := xvsctl(t, l, n.Name, "-o", "json", "show", "conntrack", gw.String())
			if err != nil {
				t.Fatalf("xvsctl show conntrack: %v: %s", err, ct)
			}
			var flows struct {
				Flows []struct {
					Orig, Reply struct{ Src, Dst string }
				}
			}
			if err := json.Unmarshal([]byte(ct), &flows); err != nil {
				t.Fatalf("conntrack JSON: %v: %s", err, ct)
			}
			snat := false
			for _, f := range flows.Flows {
				fromPod := f.Orig.Src == client.V4.String() || f.Orig.Src == client.V6.String()
				snat = snat || fromPod && f.Reply.Dst == node.String()
			}
			if !snat {
				t.Fatalf("no flow from the pod SNATed to %s:\n%s", node, ct)
			}
			select {
			case from := <-got:
				if from != node.String() {
					t.Errorf("the outside saw the pod's connection from %s, want the node's %s", from, node)
				}
			case <-time.After(10 * time.Second):
				// Known gap (issue 16, open): the outside's replies to the
				// node's address and an SNAT port reach the node's kernel,
				// not the switch (the uplink's steering passes only pod
				// prefixes and VXLAN), so the handshake never completes.
				// What this subtest proves is the SNAT decision above; the
				// round trip is the open item, not a skip.
				t.Logf("KNOWN GAP: SNAT applied (%s), the reply does not come back through xvsd (uplink steering, issue 16)", node)
			}
		})
	}
}
