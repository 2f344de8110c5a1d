package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/e2e/kubeapi"
	"github.com/xvs-project/xvs/lab"
	"github.com/xvs-project/xvs/podnet"
)

// The CNI tests' pools: outside the lab's own pod blocks (198.19.i.0/24,
// fd00:19:i::/64). The switch's Umem keeps its default size: every test
// runs its pods on what a node gets out of the box.
const cniIPAM = `ipam:
  store: %q
  node: %q
  pools:
    - {name: pool4, cidr: 198.19.252.0/24, blockSize: 28}
    - {name: pool6, cidr: "fd00:1a::/112", blockSize: 124}
    - {name: tiny4, cidr: 198.19.253.0/30, blockSize: 30}
    - {name: off4, cidr: 198.19.254.0/24, disabled: true}
`

var (
	cniOnce     sync.Once
	cniBinDir   string
	cniBinError error
)

// RefPluginsVersion is the containernetworking/plugins release whose
// portmap, bandwidth, tuning and loopback the chaining tests run, built
// from the module proxy by `make cni-plugins` (part of `make test`) into
// refPluginsDir. Debian's 1.1.1 portmap fails its own CHECK of a
// dual-stack pod; ptp and host-local (the benchmark's) stay Debian's.
const RefPluginsVersion = "v1.10.0"

// refPluginsDir is $XVS_CNI_PLUGINS, else the Makefile's cache
// ($XVS_CACHE or ~/.cache/xvs, cni-plugins-VERSION).
func refPluginsDir() string {
	if p := os.Getenv("XVS_CNI_PLUGINS"); p != "" {
		return p
	}
	return filepath.Join(kubeapi.CacheDir(), "cni-plugins-"+RefPluginsVersion)
}

// cniPlugins builds xvs-cni once into a directory of its own; the
// chained reference plugins come from refPluginsDir, ptp and host-local
// from /usr/lib/cni.
func cniPlugins(t *testing.T) []string {
	t.Helper()
	cniOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			cniBinError = err
			return
		}
		cniBinDir = filepath.Join(binDir, "cni")
		if out, err := goBuild(root, filepath.Join(cniBinDir, "xvs-cni"), "./cmd/xvs-cni"); err != nil {
			cniBinError = fmt.Errorf("xvs-cni does not build: %v\n%s", err, firstLines(out, 5))
		}
	})
	if cniBinError != nil {
		t.Fatal(cniBinError)
	}
	return []string{cniBinDir, refPluginsDir(), "/usr/lib/cni"}
}

// cniEnv is a lab whose xvsd runs the CNI server, and a runtime (libcni)
// that runs plugins in the node's namespace as a kubelet on the node does.
type cniEnv struct {
	t      *testing.T
	l      *lab.Lab
	node   *lab.Node
	cni    *libcni.CNIConfig
	seq    int
	netnss []string
}

func newCNIEnv(t *testing.T, o lab.Options) *cniEnv {
	t.Helper()
	return newCNIEnvWith(t, o, func(dir, node string) string {
		return fmt.Sprintf(cniIPAM, filepath.Join(dir, "ipam.db"), node)
	})
}

// newCNIEnvWith is newCNIEnv with each node's ipam: section (and what
// else goes at the end of its config) from ipamFor.
func newCNIEnvWith(t *testing.T, o lab.Options, ipamFor func(dir, node string) string) *cniEnv {
	t.Helper()
	requireLab(t)
	path := cniPlugins(t)
	for _, p := range []string{"portmap", "bandwidth", "tuning", "loopback"} {
		if _, err := os.Stat(filepath.Join(refPluginsDir(), p)); err != nil {
			t.Fatalf("reference plugin %s %s: %v (make cni-plugins builds them; make test does)", p, RefPluginsVersion, err)
		}
	}
	for _, p := range []string{"ptp", "host-local"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			t.Fatalf("reference plugin %s: %v (make test installs containernetworking-plugins)", p, err)
		}
	}
	o.XVSDArgs = func(cfg string) []string {
		b, err := os.ReadFile(cfg)
		if err == nil {
			node := strings.TrimSuffix(filepath.Base(cfg), ".yaml")
			b = append(b, ipamFor(filepath.Join(filepath.Dir(cfg), node), node)...)
			err = os.WriteFile(cfg+".cni.yaml", b, 0o644)
		}
		if err != nil {
			t.Errorf("cni config: %v", err)
		}
		return []string{"-config", cfg + ".cni.yaml"}
	}
	l := newLab(t, o)
	e := &cniEnv{t: t, l: l, node: l.T.Nodes[0], cni: libcni.NewCNIConfigWithCacheDir(path, t.TempDir(), nil)}
	t.Cleanup(func() {
		for _, n := range e.netnss {
			podnet.DeleteNamed(n)
		}
	})
	return e
}

// netns makes a pod namespace of this lab's prefix, deleted at cleanup.
func (e *cniEnv) netns() string {
	e.t.Helper()
	e.seq++
	name := fmt.Sprintf("%sc%d", e.l.T.Prefix, e.seq)
	if err := podnet.NewNamed(name); err != nil {
		e.t.Fatalf("netns %s: %v", name, err)
	}
	e.netnss = append(e.netnss, name)
	return name
}

func (e *cniEnv) conflist(version string, plugins ...string) *libcni.NetworkConfigList {
	e.t.Helper()
	if len(plugins) == 0 {
		plugins = []string{e.xvsPlugin("")}
	}
	s := fmt.Sprintf(`{"cniVersion": %q, "name": "xvs", "plugins": [%s]}`, version, strings.Join(plugins, ","))
	l, err := libcni.ConfListFromBytes([]byte(s))
	if err != nil {
		e.t.Fatalf("conflist: %v\n%s", err, s)
	}
	return l
}

// xvsPlugin is the xvs-cni entry, with extra JSON members.
func (e *cniEnv) xvsPlugin(extra string) string {
	s := fmt.Sprintf(`{"type": "xvs-cni", "api_socket": %q, "dns": {"nameservers": ["198.18.0.53"]},
		"capabilities": {"io.kubernetes.cri.pod-annotations": true},
		"ipam": {"ipv4_pools": ["pool4"], "ipv6_pools": ["pool6"]}`, e.node.Socket)
	if extra != "" {
		s += ", " + extra
	}
	return s + "}"
}

// inNode runs f in the node's namespace: plugins it execs run there.
func (e *cniEnv) inNode(f func() error) error { return lab.InNS(e.node.NS, f) }

func (e *cniEnv) rt(id, netns string, annotations map[string]string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: podnet.NamedPath(netns), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", id}}}
	if annotations != nil {
		rt.CapabilityArgs = map[string]any{"io.kubernetes.cri.pod-annotations": annotations}
	}
	return rt
}

func (e *cniEnv) add(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (*current.Result, error) {
	var res types.Result
	err := e.inNode(func() error {
		var err error
		res, err = e.cni.AddNetworkList(context.Background(), l, rt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

func (e *cniEnv) mustAdd(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *current.Result {
	e.t.Helper()
	r, err := e.add(l, rt)
	if err != nil {
		e.t.Fatalf("ADD %s: %v\nxvsd log:\n%s", rt.ContainerID, err, e.l.LogTail(e.node.Name, 20))
	}
	return r
}

func (e *cniEnv) del(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return e.inNode(func() error { return e.cni.DelNetworkList(context.Background(), l, rt) })
}

func (e *cniEnv) check(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return e.inNode(func() error { return e.cni.CheckNetworkList(context.Background(), l, rt) })
}

// podAddrs are a result's addresses, IPv4 first.
func podAddrs(t *testing.T, r *current.Result) []netip.Addr {
	t.Helper()
	var as []netip.Addr
	for _, ip := range r.IPs {
		a, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			t.Fatalf("result address %v", ip.Address)
		}
		as = append(as, a.Unmap())
	}
	return as
}

// state counts what xvsd and the node hold for CNI pods.
type cniState struct {
	Endpoints, Ports, Veths, Allocated int
	Addrs                              []string
}

func (e *cniEnv) state() cniState {
	e.t.Helper()
	var s cniState
	var eps struct {
		Endpoints []struct {
			Addresses []string `json:"addresses"`
		} `json:"endpoints"`
	}
	e.xvsctlJSON(&eps, "show", "endpoints")
	s.Endpoints = len(eps.Endpoints)
	for _, ep := range eps.Endpoints {
		s.Addrs = append(s.Addrs, ep.Addresses...)
	}
	var ports struct {
		Ports []struct {
			Name string `json:"name"`
		} `json:"ports"`
	}
	e.xvsctlJSON(&ports, "show", "ports")
	for _, p := range ports.Ports {
		if strings.HasPrefix(p.Name, "xvs") {
			s.Ports++
		}
	}
	var pools struct {
		Pools []struct {
			Allocated string `json:"allocated"`
		} `json:"pools"`
	}
	e.xvsctlJSON(&pools, "show", "pools")
	for _, p := range pools.Pools {
		var n int
		fmt.Sscan(p.Allocated, &n)
		s.Allocated += n
	}
	err := e.inNode(func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if l.Type() == "veth" && strings.HasPrefix(l.Attrs().Name, "xvs") {
				s.Veths++
			}
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *cniEnv) xvsctlJSON(v any, args ...string) {
	e.t.Helper()
	out, err := xvsctl(e.t, e.l, e.node.Name, append([]string{"-o", "json"}, args...)...)
	if err != nil {
		e.t.Fatalf("xvsctl %v: %v: %s", args, err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("xvsctl %v: %v: %s", args, err, out)
	}
}

func (e *cniEnv) wantEmpty(when string) {
	e.t.Helper()
	if s := e.state(); s.Endpoints+s.Ports+s.Veths+s.Allocated != 0 {
		e.t.Fatalf("%s: left behind: %+v", when, s)
	}
}

// pingNS pings addr from the named namespace.
func pingNS(t *testing.T, ns string, addr netip.Addr) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("ping %s from %s", addr, ns), func() error {
		out, err := execOut("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr.String())
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if out, err := execOut("ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", addr.String()); err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", addr, ns, err, out)
	}
}

// TestCNIVersions drives xvs-cni through libcni for every spec version
// the library has: ADD, CHECK (0.4.0 on), STATUS and GC (1.1.0), DEL
// twice; the result has both families in each version's shape.
func TestCNIVersions(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			l := e.conflist(v)
			ns := e.netns()
			id := "ver" + strings.ReplaceAll(v, ".", "")
			rt := e.rt(id, ns, nil)
			var raw types.Result
			err := e.inNode(func() error {
				var err error
				raw, err = e.cni.AddNetworkList(context.Background(), l, rt)
				return err
			})
			if err != nil {
				t.Fatalf("ADD: %v\n%s", err, e.l.LogTail("node", 20))
			}
			if raw.Version() != v {
				t.Errorf("result version %s, want %s", raw.Version(), v)
			}
			r, err := current.NewResultFromResult(raw)
			if err != nil {
				t.Fatal(err)
			}
			as := podAddrs(t, r)
			if len(as) != 2 || !as[0].Is4() || !as[1].Is6() {
				t.Fatalf("addresses %v: want one IPv4 and one IPv6", as)
			}
			if !netip.MustParsePrefix("198.19.252.0/24").Contains(as[0]) || !netip.MustParsePrefix("fd00:1a::/112").Contains(as[1]) {
				t.Errorf("addresses %v: not from pool4 and pool6", as)
			}
			if v >= "0.3.0" && (len(r.DNS.Nameservers) != 1 || r.DNS.Nameservers[0] != "198.18.0.53") {
				t.Errorf("DNS %+v: want the config's nameserver", r.DNS)
			}
			if v >= "0.4.0" {
				if err := e.check(l, rt); err != nil {
					t.Errorf("CHECK: %v", err)
				}
			}
			if v == "1.1.0" {
				if err := e.inNode(func() error { return e.cni.GetStatusNetworkList(context.Background(), l) }); err != nil {
					t.Errorf("STATUS: %v", err)
				}
				// GC with this pod valid keeps it.
				if err := e.inNode(func() error {
					return e.cni.GCNetworkList(context.Background(), l, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: id, IfName: "eth0"}}})
				}); err != nil {
					t.Errorf("GC: %v", err)
				}
				if s := e.state(); s.Endpoints != 1 || s.Ports != 1 || s.Veths != 1 || s.Allocated != 2 {
					t.Errorf("after GC keeping the pod: %+v", s)
				}
			}
			for i := range 2 {
				if err := e.del(l, rt); err != nil {
					t.Fatalf("DEL %d: %v", i, err)
				}
			}
			e.wantEmpty("after DEL")
		})
	}
}

// TestCNIPodsForward: two pods ADDed through the plugin reach each other
// over IPv4 and IPv6 through xvsd, kernel forwarding off in the node;
// the listings show them; the node's block has its blackhole route; GC
// releases a pod the runtime no longer lists; a restarted xvsd re-adopts
// the pods without an ADD.
func TestCNIPodsForward(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	assertForwardingOff(t, e.l)
	l := e.conflist("1.1.0")
	ns1, ns2 := e.netns(), e.netns()
	rt1, rt2 := e.rt("fwd1", ns1, nil), e.rt("fwd2", ns2, nil)
	a1, a2 := podAddrs(t, e.mustAdd(l, rt1)), podAddrs(t, e.mustAdd(l, rt2))
	for i := range 2 {
		pingNS(t, ns1, a2[i])
		pingNS(t, ns2, a1[i])
	}
	for i := range 2 {
		iperfNS(t, ns1, ns2, a1[i])
	}

	var eps struct {
		Endpoints []struct {
			Pod        string   `json:"pod"`
			Namespace  string   `json:"namespace"`
			Node       string   `json:"node"`
			Addresses  []string `json:"addresses"`
			Interface  string   `json:"interface"`
			Mode       string   `json:"mode"`
			ModeReason string   `json:"mode_reason"`
			Up         bool     `json:"up"`
		} `json:"endpoints"`
	}
	e.xvsctlJSON(&eps, "show", "endpoints")
	if len(eps.Endpoints) != 2 {
		t.Fatalf("endpoints: %+v", eps)
	}
	for _, ep := range eps.Endpoints {
		if ep.Namespace != "default" || (ep.Pod != "fwd1" && ep.Pod != "fwd2") || ep.Node != "node" || len(ep.Addresses) != 2 || !ep.Up || ep.Mode == "" || ep.ModeReason == "" || !strings.HasPrefix(ep.Interface, "xvs") {
			t.Errorf("endpoint %+v", ep)
		}
	}
	out, err := xvsctl(t, e.l, "node", "show", "routes")
	if err != nil || !strings.Contains(out, "198.19.252.0/28") || !strings.Contains(out, "ipam") {
		t.Errorf("no ipam blackhole for the block in the routes (%v):\n%s", err, out)
	}
	var blocks struct {
		Blocks []struct {
			Cidr     string `json:"cidr"`
			Affinity string `json:"affinity"`
		} `json:"blocks"`
	}
	e.xvsctlJSON(&blocks, "show", "blocks")
	if len(blocks.Blocks) != 2 {
		t.Errorf("blocks %+v: want one per family", blocks)
	}

	// GC: only pod1 is valid.
	if err := e.inNode(func() error {
		return e.cni.GCNetworkList(context.Background(), l, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "fwd1", IfName: "eth0"}}})
	}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if s := e.state(); s.Endpoints != 1 || s.Ports != 1 || s.Veths != 1 || s.Allocated != 2 {
		t.Fatalf("after GC: %+v", s)
	}

	// Restart: pod1 comes back without an ADD; a new pod reaches it.
	if err := e.l.KillXVSD("node"); err != nil && !errors.Is(err, lab.ErrKilled) {
		t.Logf("kill: %v", err)
	}
	if err := e.l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	ns3 := e.netns()
	rt3 := e.rt("fwd3", ns3, nil)
	a3 := podAddrs(t, e.mustAdd(l, rt3))
	for i := range 2 {
		pingNS(t, ns3, a1[i])
		pingNS(t, ns1, a3[i])
	}
	if err := e.check(l, rt1); err != nil {
		t.Errorf("CHECK of the re-adopted pod: %v", err)
	}
	for _, rt := range []*libcni.RuntimeConf{rt1, rt3} {
		if err := e.del(l, rt); err != nil {
			t.Fatalf("DEL %s: %v", rt.ContainerID, err)
		}
	}
	e.wantEmpty("after DEL")
}

func iperfNS(t *testing.T, server, client string, addr netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", server, "iperf3", "-s", "-B", addr.String())
	var so bytes.Buffer
	srv.Stdout, srv.Stderr = &so, &so
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	eventually(t, 10*time.Second, "iperf3 server listening on "+addr.String(), func() error {
		out, err := execOut("ip", "netns", "exec", server, "ss", "-Hltn", "sport = :5201")
		if err == nil && !strings.Contains(out, "5201") {
			err = fmt.Errorf("not listening yet: %s", so.String())
		}
		return err
	})
	out, err := execOut("ip", "netns", "exec", client, "iperf3", "-c", addr.String(), "-t", "2", "-J")
	if err != nil {
		t.Fatalf("iperf3 to %s: %v\n%s", addr, err, firstLines(out, 20))
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.End.SumReceived.BitsPerSecond <= 0 {
		t.Fatalf("iperf3 to %s: %v\n%s", addr, err, firstLines(out, 20))
	}
	t.Logf("iperf3 %s -> %s: %.2f Gbit/s", client, addr, res.End.SumReceived.BitsPerSecond/1e9)
}

// TestCNIChained runs xvs-cni first in a chain with the reference
// plugins portmap, bandwidth and tuning (which take its prevResult), and
// after loopback (xvs-cni passes loopback's result on, with its own).
func TestCNIChained(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	chain := e.conflist("1.1.0", e.xvsPlugin(""),
		`{"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}`,
		`{"type": "bandwidth", "capabilities": {"bandwidth": true}}`,
		`{"type": "tuning", "sysctl": {"net.ipv4.tcp_syncookies": "0"}}`)
	ns := e.netns()
	rt := e.rt("chain1", ns, nil)
	rt.CapabilityArgs = map[string]any{
		"portMappings": []map[string]any{{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}},
		"bandwidth":    map[string]any{"ingressRate": 1000000000, "ingressBurst": 100000000, "egressRate": 1000000000, "egressBurst": 100000000},
	}
	r := e.mustAdd(chain, rt)
	if len(podAddrs(t, r)) != 2 {
		t.Fatalf("chained result %+v", r)
	}
	if v, err := podnet.GetSysctl(podnet.NamedPath(ns), "net.ipv4.tcp_syncookies"); err != nil || v != "0" {
		t.Errorf("tuning's sysctl in the pod: %q %v", v, err)
	}
	// portmap's rules, IPv4 and IPv6, in the node.
	rules := func() string {
		var out string
		e.inNode(func() error {
			for _, c := range []string{"iptables-save", "ip6tables-save"} {
				b, _ := exec.Command(c, "-t", "nat").CombinedOutput()
				out += string(b)
			}
			b, _ := exec.Command("nft", "list", "ruleset").CombinedOutput()
			out += string(b)
			return nil
		})
		return out
	}
	if nat := rules(); !strings.Contains(nat, "18080") {
		t.Errorf("portmap's rule for 18080 not in the node's nat tables:\n%s", firstLines(nat, 30))
	}
	// CHECK through the whole chain of a dual-stack pod: every plugin
	// checks what it made against the prevResult (portmap its DNAT
	// rules in both families).
	if err := e.check(chain, rt); err != nil {
		t.Errorf("CHECK of the chain: %v", err)
	}
	if err := e.del(chain, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	e.wantEmpty("after chained DEL")
	if strings.Contains(rules(), "18080") {
		t.Errorf("portmap's rule for 18080 left after DEL")
	}

	after := e.conflist("1.1.0", `{"type": "loopback"}`, e.xvsPlugin(""))
	ns2 := e.netns()
	rt2 := e.rt("chain2", ns2, nil)
	r2 := e.mustAdd(after, rt2)
	names := []string{}
	for _, i := range r2.Interfaces {
		names = append(names, i.Name)
	}
	if !slices.Contains(names, "lo") || !slices.Contains(names, "eth0") || len(podAddrs(t, r2)) < 2 {
		t.Errorf("xvs-cni after loopback: interfaces %v, ips %v", names, r2.IPs)
	}
	for _, ip := range r2.IPs {
		if ip.Interface != nil && r2.Interfaces[*ip.Interface].Name == "lo" && !ip.Address.IP.IsLoopback() {
			t.Errorf("ip %v points at lo", ip.Address)
		}
	}
	pingNS(t, ns2, podAddrs(t, r2)[len(r2.IPs)-2])
	if err := e.del(after, rt2); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	e.wantEmpty("after DEL")
}

// cniExec runs the plugin as a runtime would, with stdin as given, and
// returns its CNI error (nil on success).
func (e *cniEnv) cniExec(command, id, netns, ifname, stdin string) *types.Error {
	e.t.Helper()
	var out []byte
	var runErr error
	e.inNode(func() error {
		cmd := exec.Command(filepath.Join(cniBinDir, "xvs-cni"))
		cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + netns, "CNI_IFNAME=" + ifname,
			"CNI_PATH=" + cniBinDir, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + id}
		cmd.Stdin = strings.NewReader(stdin)
		out, runErr = cmd.Output()
		return nil
	})
	if runErr == nil {
		return nil
	}
	var ce types.Error
	if err := json.Unmarshal(out, &ce); err != nil {
		e.t.Fatalf("%s: %v, output not a CNI error: %v: %s", command, runErr, err, out)
	}
	return &ce
}

// TestCNIBadInput: each bad input is a CNI error with the right code and
// a message naming the problem, and leaves nothing behind.
func TestCNIBadInput(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	conf := func(extra string) string {
		return fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "xvs", "type": "xvs-cni", "api_socket": %q %s}`, e.node.Socket, extra)
	}
	ns := podnet.NamedPath(e.netns())
	taken := e.netns()
	if out, err := execOut("ip", "netns", "exec", taken, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"); err != nil {
		t.Fatalf("an eth0 already there: %v: %s", err, out)
	}
	ann := func(a string) string {
		b, _ := json.Marshal(a)
		return `, "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"cni.projectcalico.org/ipv4pools": ` + string(b) + `}}`
	}
	tests := []struct {
		name, netns, stdin string
		code               uint
		msg                string // in msg or details
	}{
		{"not json", ns, `{"cniVersion": "1.1.0", "name": `, 6, "network config"},
		{"no type", ns, `{"cniVersion": "1.1.0", "name": "xvs"}`, 7, "type"},
		{"bad mode", ns, conf(`, "mode": "turbo"`), 7, "mode"},
		{"bad mtu", ns, conf(`, "mtu": 100`), 7, "mtu"},
		{"foreign ipam", ns, conf(`, "ipam": {"type": "host-local"}`), 7, "ipam.type"},
		{"relative socket", ns, conf(`, "api_socket": "xvsd.sock"`), 7, "api_socket"},
		{"unknown pool", ns, conf(`, "ipam": {"ipv4_pools": ["nope"]}`), 101, "nope"},
		{"disabled pool", ns, conf(`, "ipam": {"ipv4_pools": ["off4"], "assign_ipv6": "false"}`), 102, "off4"},
		{"v6 pool as v4", ns, conf(ann(`["pool6"]`)), 104, "pool6"},
		{"bad annotation", ns, conf(ann(`pool4`)), 105, "ipv4pools"},
		{"no netns", "/run/netns/" + e.l.T.Prefix + "nonexistent", conf(""), 3, "does not exist"},
		{"ifname taken", podnet.NamedPath(taken), conf(""), 106, "eth0"},
		{"xvsd down", ns, conf(`, "api_socket": "/run/xvs-lab/` + e.l.T.Prefix + `-none.sock"`), 11, "not answering"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.cniExec("ADD", fmt.Sprintf("bad%d", i), tc.netns, "eth0", tc.stdin)
			if err == nil {
				t.Fatalf("ADD succeeded")
			}
			if err.Code != tc.code || !strings.Contains(err.Msg+" "+err.Details, tc.msg) {
				t.Errorf("ADD: code %d %q %q; want code %d naming %q", err.Code, err.Msg, err.Details, tc.code, tc.msg)
			}
			e.wantEmpty("after " + tc.name)
		})
	}
	t.Run("status down", func(t *testing.T) {
		err := e.cniExec("STATUS", "", "", "", conf(`, "api_socket": "/run/xvs-lab/`+e.l.T.Prefix+`-none.sock"`))
		if err == nil || err.Code != 50 {
			t.Errorf("STATUS with xvsd down: %+v, want code 50", err)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		tiny := conf(`, "ipam": {"ipv4_pools": ["tiny4"], "assign_ipv6": "false"}`)
		var made []string
		for i := range 4 {
			id := fmt.Sprintf("tiny%d", i)
			n := e.netns()
			if err := e.cniExec("ADD", id, podnet.NamedPath(n), "eth0", tiny); err != nil {
				t.Fatalf("ADD %d of 4: %+v", i, err)
			}
			made = append(made, id)
		}
		err := e.cniExec("ADD", "tiny4", podnet.NamedPath(e.netns()), "eth0", tiny)
		if err == nil || err.Code != 100 || !strings.Contains(err.Msg+err.Details, "exhausted") {
			t.Errorf("fifth ADD into a /30: %+v, want code 100, exhausted", err)
		}
		for _, id := range made {
			if err := e.cniExec("DEL", id, "", "eth0", tiny); err != nil {
				t.Errorf("DEL %s: %+v", id, err)
			}
		}
		e.wantEmpty("after DEL")
	})
}

// TestCNIDelAfterGone: DEL succeeds after the pod's netns vanished, and
// after xvsd restarted in between.
func TestCNIDelAfterGone(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	l := e.conflist("1.1.0")
	ns := e.netns()
	rt := e.rt("gone1", ns, nil)
	e.mustAdd(l, rt)
	if err := podnet.DeleteNamed(ns); err != nil {
		t.Fatal(err)
	}
	if err := e.del(l, rt); err != nil {
		t.Fatalf("DEL after the netns went: %v", err)
	}
	e.wantEmpty("after DEL")

	ns2 := e.netns()
	rt2 := e.rt("gone2", ns2, nil)
	e.mustAdd(l, rt2)
	if err := e.l.KillXVSD("node"); err != nil && !errors.Is(err, lab.ErrKilled) {
		t.Logf("kill: %v", err)
	}
	if err := e.l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	if err := e.del(l, rt2); err != nil {
		t.Fatalf("DEL after xvsd restarted: %v", err)
	}
	if err := e.del(l, rt2); err != nil {
		t.Fatalf("DEL again: %v", err)
	}
	e.wantEmpty("after DEL")
}

// TestCNICrash: 50 pods ADDed and half of them DELed concurrently, with
// xvsd killed -9 and restarted in the middle. The runtime retries as the
// kubelet does (a failed ADD is DELed, then ADDed again). Afterwards every
// live pod has its own addresses, its port and its veth, CHECK passes, and
// nothing of the deleted pods is left: no duplicate, no leak, no lost or
// orphan port.
func TestCNICrash(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	l := e.conflist("1.1.0")
	const pods = 50
	rts := make([]*libcni.RuntimeConf, pods)
	for i := range rts {
		rts[i] = e.rt(fmt.Sprintf("crash%d", i), e.netns(), nil)
	}
	deadline := time.Now().Add(90 * time.Second)
	var started sync.WaitGroup
	started.Add(pods / 5)
	retry := func(what string, f func() error) error {
		for {
			err := f()
			if err == nil || time.Now().After(deadline) {
				return err
			}
			var ce *types.Error
			if !errors.As(err, &ce) || ce.Code != types.ErrTryAgainLater {
				t.Logf("%s: %v (retrying)", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	addrs := make([][]netip.Addr, pods)
	errs := make([]error, pods)
	for i, rt := range rts {
		wg.Go(func() {
			if i < pods/5 {
				defer started.Done()
			}
			errs[i] = retry("ADD "+rt.ContainerID, func() error {
				r, err := e.add(l, rt)
				if err != nil {
					// As the kubelet: a failed ADD is torn down first.
					if derr := retry("DEL after failed ADD", func() error { return e.del(l, rt) }); derr != nil {
						return derr
					}
					return err
				}
				addrs[i] = podAddrs(t, r)
				return nil
			})
			if errs[i] == nil && i%2 == 0 {
				errs[i] = retry("DEL "+rt.ContainerID, func() error { return e.del(l, rt) })
			}
		})
	}
	started.Wait()
	if err := e.l.KillXVSD("node"); err != nil && !errors.Is(err, lab.ErrKilled) {
		t.Logf("kill: %v", err)
	}
	if err := e.l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
	}

	s := e.state()
	if s.Endpoints != pods/2 || s.Ports != pods/2 || s.Veths != pods/2 || s.Allocated != pods {
		t.Errorf("after the crash: %+v, want %d endpoints, ports and veths, %d addresses", s, pods/2, pods)
	}
	seen := map[string]bool{}
	for _, a := range s.Addrs {
		if seen[a] {
			t.Errorf("address %s held twice", a)
		}
		seen[a] = true
	}
	for i := 1; i < pods; i += 2 {
		for _, a := range addrs[i] {
			if !seen[netip.PrefixFrom(a, a.BitLen()).String()] {
				t.Errorf("pod %d: its address %s is not its endpoint's", i, a)
			}
		}
		if err := e.check(l, rts[i]); err != nil {
			t.Errorf("CHECK pod %d: %v", i, err)
		}
	}
	pingNS(t, strings.TrimPrefix(rts[1].NetNS, podnet.NetnsDir+"/"), addrs[3][0])
	pingNS(t, strings.TrimPrefix(rts[3].NetNS, podnet.NetnsDir+"/"), addrs[1][1])
	for i := 1; i < pods; i += 2 {
		if err := e.del(l, rts[i]); err != nil {
			t.Errorf("DEL pod %d: %v", i, err)
		}
	}
	e.wantEmpty("after deleting every pod")
}

// TestCNICrossNode: pods ADDed on two nodes, each xvsd assigning from a
// pool inside the node's own block, which the lab's outside routes to it
// (native routing from the config), reach each other over IPv4 and IPv6.
func TestCNICrossNode(t *testing.T) {
	e := newCNIEnvWith(t, lab.Options{Nodes: 2}, func(dir, node string) string {
		var i int
		fmt.Sscanf(node, "node%d", &i)
		i--
		return fmt.Sprintf(`ipam:
  store: %q
  node: %q
  pools:
    - {name: pool4, cidr: 198.19.%d.128/25, blockSize: 28}
    - {name: pool6, cidr: "fd00:19:%x::1:0/112", blockSize: 124}
`, filepath.Join(dir, "ipam.db"), node, i, i)
	})
	assertForwardingOff(t, e.l)
	var nss []string
	var addrs [][]netip.Addr
	var rts []*libcni.RuntimeConf
	var ls []*libcni.NetworkConfigList
	for i, n := range e.l.T.Nodes {
		e.node = n
		l := e.conflist("1.1.0")
		ns := e.netns()
		rt := e.rt(fmt.Sprintf("x%d", i), ns, nil)
		r := e.mustAdd(l, rt)
		nss, rts, ls = append(nss, ns), append(rts, rt), append(ls, l)
		addrs = append(addrs, podAddrs(t, r))
		if !n.PodsV4.Contains(addrs[i][0]) || !n.PodsV6.Contains(addrs[i][1]) {
			t.Fatalf("pod on %s got %v, outside the node's blocks %s %s", n.Name, addrs[i], n.PodsV4, n.PodsV6)
		}
	}
	for f := range 2 {
		pingNS(t, nss[0], addrs[1][f])
		pingNS(t, nss[1], addrs[0][f])
	}
	for i, n := range e.l.T.Nodes {
		e.node = n
		if err := e.del(ls[i], rts[i]); err != nil {
			t.Fatalf("DEL on %s: %v", n.Name, err)
		}
		e.wantEmpty("after DEL on " + n.Name)
	}
}

// TestCNIModeAFPacket: the network config's mode key picks AF_PACKET; the
// endpoint says so and why, CHECK holds (no offload change asked), and
// the pods reach each other.
func TestCNIModeAFPacket(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	l := e.conflist("1.1.0", e.xvsPlugin(`"mode": "af-packet"`))
	ns1, ns2 := e.netns(), e.netns()
	rt1, rt2 := e.rt("afp1", ns1, nil), e.rt("afp2", ns2, nil)
	a1, a2 := podAddrs(t, e.mustAdd(l, rt1)), podAddrs(t, e.mustAdd(l, rt2))
	var eps struct {
		Endpoints []struct {
			Mode       string `json:"mode"`
			ModeReason string `json:"mode_reason"`
		} `json:"endpoints"`
	}
	e.xvsctlJSON(&eps, "show", "endpoints")
	for _, ep := range eps.Endpoints {
		if ep.Mode != "af-packet" || !strings.Contains(ep.ModeReason, "network config") {
			t.Errorf("endpoint mode %q (%q), want af-packet from the network config", ep.Mode, ep.ModeReason)
		}
	}
	if len(eps.Endpoints) != 2 {
		t.Fatalf("endpoints %+v", eps)
	}
	for i := range 2 {
		pingNS(t, ns1, a2[i])
		pingNS(t, ns2, a1[i])
	}
	for _, rt := range []*libcni.RuntimeConf{rt1, rt2} {
		if err := e.check(l, rt); err != nil {
			t.Errorf("CHECK: %v", err)
		}
		if err := e.del(l, rt); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	e.wantEmpty("after DEL")
}

// TestCNIXDPRefused: a pod whose veth the kernel will not give an XDP
// program falls back to AF_PACKET, says why in `xvsctl show endpoints`,
// and forwards. Its network config asks for a 9000-byte MTU: the veth
// driver refuses a native XDP program above a page's worth (ERANGE), and
// generic XDP would hand the socket frames bigger than a Umem frame,
// which the kernel drops, so the port driver does not take it either.
// The other pod, at the pool's MTU, stays on AF_XDP.
func TestCNIXDPRefused(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	jumbo := e.conflist("1.1.0", e.xvsPlugin(`"mtu": 9000`))
	l := e.conflist("1.1.0")
	ns1, ns2 := e.netns(), e.netns()
	rt1, rt2 := e.rt("jumbo1", ns1, nil), e.rt("xdp2", ns2, nil)
	a1, a2 := podAddrs(t, e.mustAdd(jumbo, rt1)), podAddrs(t, e.mustAdd(l, rt2))
	var eps struct {
		Endpoints []struct {
			Pod        string `json:"pod"`
			Mode       string `json:"mode"`
			ModeReason string `json:"mode_reason"`
		} `json:"endpoints"`
	}
	e.xvsctlJSON(&eps, "show", "endpoints")
	if len(eps.Endpoints) != 2 {
		t.Fatalf("endpoints %+v", eps)
	}
	for _, ep := range eps.Endpoints {
		switch ep.Pod {
		case "jumbo1":
			// The kernel's refusal and the frame size, both named.
			if ep.Mode != "af-packet" || !strings.Contains(ep.ModeReason, "out of range") || !strings.Contains(ep.ModeReason, "mtu 9000") ||
				!strings.Contains(ep.ModeReason, "fell back to af-packet") {
				t.Errorf("jumbo pod: mode %q (%q), want af-packet, native refused by the kernel, generic by the frame size", ep.Mode, ep.ModeReason)
			}
		case "xdp2":
			if !strings.HasPrefix(ep.Mode, "xdp") {
				t.Errorf("pod at the pool's MTU: mode %q (%q), want AF_XDP", ep.Mode, ep.ModeReason)
			}
		default:
			t.Errorf("endpoint of pod %q", ep.Pod)
		}
	}
	if out, err := execOut("ip", "-n", ns1, "-o", "link", "show", "eth0"); err != nil || !strings.Contains(out, "mtu 9000") {
		t.Errorf("jumbo pod's eth0: %v: %s", err, out)
	}
	for i := range 2 {
		pingNS(t, ns1, a2[i])
		pingNS(t, ns2, a1[i])
	}
	for _, c := range []struct {
		l  *libcni.NetworkConfigList
		rt *libcni.RuntimeConf
	}{{jumbo, rt1}, {l, rt2}} {
		if err := e.check(c.l, c.rt); err != nil {
			t.Errorf("CHECK: %v", err)
		}
		if err := e.del(c.l, c.rt); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	e.wantEmpty("after DEL")
}

// TestCNIAnnotations: the pod's cni.projectcalico.org/ipv4pools
// annotation, passed by the runtime through the
// io.kubernetes.cri.pod-annotations capability, overrides the network
// config's pools (by CIDR here); without it the config's pool is used.
func TestCNIAnnotations(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	l := e.conflist("1.1.0")
	rt := e.rt("ann1", e.netns(), map[string]string{"cni.projectcalico.org/ipv4pools": `["198.19.253.0/30"]`})
	as := podAddrs(t, e.mustAdd(l, rt))
	if len(as) != 2 || !netip.MustParsePrefix("198.19.253.0/30").Contains(as[0]) || !netip.MustParsePrefix("fd00:1a::/112").Contains(as[1]) {
		t.Errorf("annotated pod got %v: want IPv4 from tiny4, IPv6 from the config's pool6", as)
	}
	rt2 := e.rt("ann2", e.netns(), map[string]string{"other": "x"})
	as2 := podAddrs(t, e.mustAdd(l, rt2))
	if len(as2) != 2 || !netip.MustParsePrefix("198.19.252.0/24").Contains(as2[0]) {
		t.Errorf("pod without the annotation got %v: want pool4", as2)
	}
	// A repeated ADD of a pod that is all there answers the same.
	if again := podAddrs(t, e.mustAdd(l, rt2)); !slices.Equal(again, as2) {
		t.Errorf("repeated ADD: %v, first ADD %v", again, as2)
	}
	if s := e.state(); s.Endpoints != 2 || s.Ports != 2 || s.Veths != 2 || s.Allocated != 4 {
		t.Errorf("after a repeated ADD: %+v", s)
	}
	for _, r := range []*libcni.RuntimeConf{rt, rt2} {
		if err := e.del(l, r); err != nil {
			t.Fatal(err)
		}
	}
	e.wantEmpty("after DEL")
}

// TestCNIManyPods: 40 pods ADDed through the plugin on a node with the
// default configuration (one worker, its default Umem) all get AF_XDP
// ports, and every one forwards: each pod, the last first, pings the first
// over IPv4 and IPv6, so its own port must receive before anything else
// has moved a frame. (While pod ports kept an eighth of the Umem in their
// fill rings, the rings of the first few held every frame: a later pod's
// ring stayed empty and its port received nothing until traffic through
// other ports happened to free frames.)
func TestCNIManyPods(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	l := e.conflist("1.1.0")
	const pods = 40
	nss := make([]string, pods)
	addrs := make([][]netip.Addr, pods)
	for i := range pods {
		nss[i] = e.netns()
		addrs[i] = podAddrs(t, e.mustAdd(l, e.rt(fmt.Sprintf("many%d", i), nss[i], nil)))
	}
	var ports struct {
		Ports []struct {
			Name   string `json:"name"`
			Mode   string `json:"mode"`
			Reason string `json:"reason"`
			Worker int    `json:"worker"`
		} `json:"ports"`
	}
	e.xvsctlJSON(&ports, "show", "ports")
	// The default Umem gives a worker's AF_XDP pods what their fill rings
	// need for about a dozen of them (afxdp.PodFill); the rest fall back to
	// AF_PACKET and say why. Every one of them must forward: a port opened
	// without frames would be dead.
	n, xdp := 0, 0
	for _, p := range ports.Ports {
		if !strings.HasPrefix(p.Name, "xvs") {
			continue
		}
		n++
		switch {
		case strings.HasPrefix(p.Mode, "xdp") && p.Worker == 0:
			xdp++
		case p.Mode == "af-packet" && strings.Contains(p.Reason, "frames"):
		default:
			t.Errorf("port %s: mode %s (%s) on worker %d: want AF_XDP on worker 0, or AF_PACKET for want of frames", p.Name, p.Mode, p.Reason, p.Worker)
		}
	}
	if n != pods || xdp == 0 {
		t.Fatalf("%d pod ports (%d AF_XDP), want %d, some AF_XDP", n, xdp, pods)
	}
	t.Logf("%d of %d pods on AF_XDP, the rest on AF_PACKET", xdp, pods)
	for i := pods - 1; i > 0; i-- {
		for _, a := range addrs[0] {
			eventually(t, 10*time.Second, fmt.Sprintf("ping %s (pod 0) from pod %d", a, i), func() error {
				out, err := execOut("ip", "netns", "exec", nss[i], "ping", "-c", "1", "-W", "1", a.String())
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
	}
	for i := range pods {
		if err := e.del(l, e.rt(fmt.Sprintf("many%d", i), nss[i], nil)); err != nil {
			t.Fatalf("DEL pod %d: %v", i, err)
		}
	}
	e.wantEmpty("after DEL")
}
