package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// XVSDConfig renders node n's xvsd configuration. It is the only place
// that knows the config file's format; package config parses it, and this
// package's tests check the output against config.Parse and Resolve.
func XVSDConfig(t *Topology, n *Node, workers int) []byte {
	var b bytes.Buffer
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	fmt.Fprintf(&b, "# xvsd config for lab %s, node %s (written by package lab)\n", t.Prefix, n.Name)
	fmt.Fprintf(&b, "api_socket: %s\n", q(n.Socket))
	if n.State != "" {
		fmt.Fprintf(&b, "state_file: %s\n", q(n.State))
	}
	fmt.Fprintf(&b, "metrics_addr: %s\n", q(n.Metrics))
	fmt.Fprintf(&b, "health_addr: %s\n", q(n.Health))
	fmt.Fprintf(&b, "workers: %d\n", workers)
	if n.FastPath {
		b.WriteString("xdp_fast_path: true\n")
	}
	b.WriteString("ports:\n")
	if n.Uplink != "" {
		fmt.Fprintf(&b, "  - name: %s\n    kind: uplink\n    addresses: [%s, %s]\n",
			q(n.Uplink), q(n.UplinkV4.String()), q(n.UplinkV6.String()))
		if n.Queues > 1 {
			fmt.Fprintf(&b, "    queues: %d\n", n.Queues)
		}
		if n.UplinkMode != "" {
			fmt.Fprintf(&b, "    mode: %s\n", q(n.UplinkMode))
		}
	}
	if n.HostIf != "" {
		fmt.Fprintf(&b, "  - name: %s\n    kind: host\n    addresses: [%s, %s]\n",
			q(n.HostIf), q(n.UplinkV4.Addr().String()+"/32"), q(n.UplinkV6.Addr().String()+"/128"))
	}
	for _, name := range n.Pods {
		p := t.PodByName(name)
		fmt.Fprintf(&b, "  - name: %s\n    kind: pod\n    addresses: [%s, %s]\n    peer_mac: %s\n",
			q(p.HostIf), q(p.V4.String()+"/32"), q(p.V6.String()+"/128"), q(p.MAC.String()))
		if n.PodMode != "" {
			fmt.Fprintf(&b, "    mode: %s\n", q(n.PodMode))
		}
	}
	if n.Uplink != "" {
		b.WriteString("routes:\n")
		fmt.Fprintf(&b, "  - {prefix: %s, via: %s}\n", q("0.0.0.0/0"), q(n.GatewayV4.String()))
		fmt.Fprintf(&b, "  - {prefix: %s, via: %s}\n", q("::/0"), q(n.GatewayV6.String()))
		if t.Encap == EncapVXLAN && !t.BGP {
			// Each other node's blocks into the tunnel to its VTEP, each
			// family over its own underlay.
			for _, m := range t.Nodes {
				if m == n {
					continue
				}
				remote := m.UplinkV4.Addr()
				if m.VTEP4.IsValid() {
					remote = m.VTEP4
				}
				fmt.Fprintf(&b, "  - {prefix: %s, vxlan: {remote: %s, mac: %s}}\n", q(m.PodsV4.String()), q(remote.String()), q(m.VTEPMAC.String()))
				fmt.Fprintf(&b, "  - {prefix: %s, vxlan: {remote: %s, mac: %s}}\n", q(m.PodsV6.String()), q(m.UplinkV6.Addr().String()), q(m.VTEPMAC.String()))
			}
		}
	}
	if t.Encap == EncapVXLAN && len(n.VTEPMAC) == 6 {
		vtep := ""
		if n.VTEP4.IsValid() {
			vtep = ", vtep_v4: " + q(n.VTEP4.String())
		}
		fmt.Fprintf(&b, "vxlan: {vni: %d, port: %d, mac: %s%s}\n", VXLANVNI, VXLANPort, q(n.VTEPMAC.String()), vtep)
	}
	if t.BGP && n.Uplink != "" {
		xvsdBGP(&b, t, n)
	}
	return b.Bytes()
}

// xvsdBGP writes node n's bgp: section (see Options.BGP): its blocks
// advertised, the other nodes as peers.
func xvsdBGP(b *bytes.Buffer, t *Topology, n *Node) {
	q := func(a any) string { return fmt.Sprintf("%q", fmt.Sprint(a)) }
	b.WriteString("bgp:\n")
	fmt.Fprintf(b, "  nodeIPv4: %s\n  nodeIPv6: %s\n", q(n.UplinkV4.Addr()), q(n.UplinkV6.Addr()))
	fmt.Fprintf(b, "  advertise: [%s, %s]\n", q(n.PodsV4), q(n.PodsV6))
	if t.Encap != EncapVXLAN {
		b.WriteString("  meshMembers:\n")
		for _, m := range t.Nodes {
			fmt.Fprintf(b, "    - %s\n    - %s\n", q(m.UplinkV4.Addr()), q(m.UplinkV6.Addr()))
		}
		if t.BGPOutsideAS != 0 {
			b.WriteString("  peers:\n")
			if t.BGPOutsideOneSession {
				fmt.Fprintf(b, "    - {peerIP: %s, asNumber: %d, families: [ipv4, ipv6]}\n", q(n.GatewayV4), t.BGPOutsideAS)
			} else {
				for _, a := range []netip.Addr{n.GatewayV4, n.GatewayV6} {
					fmt.Fprintf(b, "    - {peerIP: %s, asNumber: %d}\n", q(a), t.BGPOutsideAS)
				}
			}
		}
		return
	}
	// IPv6 over the IPv4 sessions, into the IPv4 tunnels.
	b.WriteString("  nodeToNodeMeshEnabled: false\n  peers:\n")
	for _, m := range t.Nodes {
		if m != n {
			fmt.Fprintf(b, "    - {peerIP: %s, asNumber: 64512, families: [ipv4, ipv6]}\n", q(m.UplinkV4.Addr()))
		}
	}
	b.WriteString("  vxlan:\n")
	for _, m := range t.Nodes {
		if m == n {
			continue
		}
		remote := m.UplinkV4.Addr()
		if m.VTEP4.IsValid() {
			remote = m.VTEP4
		}
		fmt.Fprintf(b, "    - {addresses: [%s, %s], remote: %s, mac: %s}\n", q(m.UplinkV4.Addr()), q(m.UplinkV6.Addr()), q(remote), q(m.VTEPMAC))
	}
}

// StartXVSD writes node's config and starts xvsd in its namespace, then
// waits for readiness. A node runs at most one xvsd: stop it first.
func (l *Lab) StartXVSD(node string) error {
	n := l.T.NodeByName(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	if l.opts.XVSD == "" {
		return fmt.Errorf("start xvsd on %s: no xvsd binary given", n.Name)
	}
	if p := l.xvsd(n.Name); p != nil && p.Alive() {
		return fmt.Errorf("xvsd already runs on %s (pid %d)", n.Name, p.PID)
	}
	if err := os.MkdirAll(filepath.Dir(n.Socket), 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(n.Config, XVSDConfig(l.T, n, l.opts.Workers), 0o644); err != nil {
		return err
	}
	args := append([]string{l.opts.XVSD}, l.opts.XVSDArgs(n.Config)...)
	p, err := startProcess("xvsd", n.NS, n.Log, l.opts.Detach, args...)
	if err != nil {
		return err
	}
	l.addProcess(p)
	l.logf("xvsd on %s: pid %d, config %s, log %s", n.NS, p.PID, n.Config, n.Log)
	return l.WaitReady(n.Name)
}

// StopXVSD stops node's xvsd with SIGTERM (then SIGKILL after the stop
// timeout); it returns ErrKilled, wrapped, if SIGKILL was needed.
func (l *Lab) StopXVSD(node string) error {
	p := l.xvsd(node)
	if p == nil {
		return nil
	}
	err := p.Stop(l.opts.StopTimeout)
	l.removeProcess(p)
	return err
}

// KillXVSD ends node's xvsd with SIGKILL, leaving whatever it had attached.
func (l *Lab) KillXVSD(node string) error {
	p := l.xvsd(node)
	if p == nil {
		return nil
	}
	err := p.Kill(l.opts.StopTimeout)
	l.removeProcess(p)
	return err
}

// XVSD returns the running xvsd process of node, or nil.
func (l *Lab) XVSD(node string) *Process { return l.xvsd(node) }

func (l *Lab) xvsd(node string) *Process {
	n := l.T.NodeByName(node)
	if n == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.Name == "xvsd" && p.NS == n.NS {
			return p
		}
	}
	return nil
}

// WaitReady waits until node's xvsd answers 200 on its health address's
// /readyz and its API socket exists, failing early if it exits.
func (l *Lab) WaitReady(node string) error {
	n := l.T.NodeByName(node)
	p := l.xvsd(node)
	if n == nil || p == nil {
		return fmt.Errorf("no xvsd on %q", node)
	}
	deadline := time.Now().Add(l.opts.ReadyTimeout)
	var last error
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return fmt.Errorf("xvsd on %s exited (%v) before ready; log:\n%s", n.NS, p.ExitErr(), l.LogTail(n.Name, 40))
		}
		code, _, err := l.HTTPGet(n.NS, "http://"+n.Health+"/readyz", time.Second)
		if err == nil && code == http.StatusOK {
			if _, serr := os.Stat(n.Socket); serr == nil {
				return nil
			}
			err = fmt.Errorf("ready, but no API socket at %s yet", n.Socket)
		}
		last = err
		if err == nil {
			last = fmt.Errorf("readyz: status %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("xvsd on %s not ready after %v: %v; log:\n%s", n.NS, l.opts.ReadyTimeout, last, l.LogTail(n.Name, 40))
}

// LogTail returns the last lines of node's xvsd log.
func (l *Lab) LogTail(node string, lines int) string {
	n := l.T.NodeByName(node)
	if n == nil {
		return ""
	}
	b, err := os.ReadFile(n.Log)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// Dial opens a connection from inside namespace ns (a short name or a
// namespace of the lab).
func (l *Lab) Dial(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	full, err := l.T.NS(ns)
	if err != nil {
		return nil, err
	}
	var c net.Conn
	err = InNS(full, func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// Listen opens a listener inside namespace ns; the node's kernel, not
// xvsd, answers on it.
func (l *Lab) Listen(ns, network, addr string) (net.Listener, error) {
	full, err := l.T.NS(ns)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	err = InNS(full, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// HTTPGet fetches url from inside namespace ns and returns the status code
// and up to 1 MiB of body.
func (l *Lab) HTTPGet(ns, url string, timeout time.Duration) (int, []byte, error) {
	full, err := l.T.NS(ns)
	if err != nil {
		return 0, nil, err
	}
	return HTTPGet(full, url, timeout)
}

// HTTPGet fetches url from inside namespace ns (full name).
func HTTPGet(ns, url string, timeout time.Duration) (int, []byte, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := InNS(ns, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}
