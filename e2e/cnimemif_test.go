package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/xvs-project/xvs/cniserver"
	"github.com/xvs-project/xvs/lab"
)

var (
	memiftapOnce sync.Once
	memiftapBin  string
	memiftapErr  error
)

// memiftap builds the gomemif↔TAP relay (e2e/internal/memiftap) once.
func memiftap(t *testing.T) string {
	t.Helper()
	memiftapOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			memiftapErr = err
			return
		}
		memiftapBin = filepath.Join(binDir, "memiftap")
		if out, err := goBuild(root, memiftapBin, "./e2e/internal/memiftap"); err != nil {
			memiftapErr = fmt.Errorf("memiftap does not build: %v\n%s", err, firstLines(out, 5))
		}
	})
	if memiftapErr != nil {
		t.Fatal(memiftapErr)
	}
	return memiftapBin
}

// nsProc is a process run in a named namespace that is not one of the
// lab's (a CNI pod's), killed at cleanup.
type nsProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startIn(t *testing.T, ns, name string, args ...string) *nsProc {
	t.Helper()
	log := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", name, ns, err)
	}
	p := &nsProc{cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(t) })
	return p
}

// kill ends the process group by its PID and waits for it.
func (p *nsProc) kill(t *testing.T) {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("pid %d survived SIGKILL", p.cmd.Process.Pid)
	}
}

func (p *nsProc) exited(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *nsProc) output() string { b, _ := os.ReadFile(p.log); return firstLines(string(b), 20) }

// testpmdIn is startTestpmd for a CNI pod's namespace.
func testpmdIn(t *testing.T, ns, sock, mac, fwd string) *nsProc {
	t.Helper()
	bin, pmd := memifPMD(t)
	prefix := fmt.Sprintf("xvsmc%d", rand.Uint32())
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/var/run/dpdk", prefix)) })
	return startIn(t, ns, "testpmd", bin, "--no-huge", "-m", "512", "--no-pci", "-d", pmd,
		"--vdev=net_memif0,role=client,id=0,socket="+strings.TrimPrefix(sock, "@")+",socket-abstract=yes,mac="+mac,
		"--file-prefix="+prefix, "--", "--no-mlockall", "--total-num-mbufs=4096",
		"--forward-mode="+fwd, "--auto-start", "--stats-period=5")
}

// podMemif is a memif interface of a CNI result.
type podMemif struct {
	socket string
	addrs  []netip.Addr // IPv4 first
}

// splitResult is a result's pod interface's addresses and its memif
// interfaces with theirs.
func splitResult(t *testing.T, r *current.Result, netns string) (eth0 []netip.Addr, memifs []podMemif) {
	t.Helper()
	byIf := map[int]int{}
	for i, ifc := range r.Interfaces {
		if ifc.SocketPath != "" {
			if ifc.Sandbox != netns {
				t.Errorf("memif interface %+v: sandbox %q, want %q", ifc, ifc.Sandbox, netns)
			}
			byIf[i] = len(memifs)
			memifs = append(memifs, podMemif{socket: ifc.SocketPath})
		}
	}
	for _, ip := range r.IPs {
		a, _ := netip.AddrFromSlice(ip.Address.IP)
		a = a.Unmap()
		if ip.Interface == nil {
			t.Fatalf("IP %v has no interface", ip.Address)
		}
		if m, ok := byIf[*ip.Interface]; ok {
			memifs[m].addrs = append(memifs[m].addrs, a)
		} else if r.Interfaces[*ip.Interface].Name == "eth0" {
			eth0 = append(eth0, a)
		}
	}
	for _, m := range memifs {
		slices.SortFunc(m.addrs, func(a, b netip.Addr) int { return a.BitLen() - b.BitLen() })
	}
	return eth0, memifs
}

type endpointMemifs struct {
	Endpoints []struct {
		Pod    string `json:"pod"`
		Memifs []struct {
			Port       string   `json:"port"`
			SocketPath string   `json:"socket_path"`
			Addresses  []string `json:"addresses"`
			Up         bool     `json:"up"`
		} `json:"memifs"`
	} `json:"endpoints"`
}

// memifPorts is pod's memif ports from `xvsctl show endpoints`: port
// name and addresses, in socket order.
func (e *cniEnv) memifPorts(pod string) (ports []string, addrs [][]string) {
	e.t.Helper()
	var eps endpointMemifs
	e.xvsctlJSON(&eps, "show", "endpoints")
	for _, ep := range eps.Endpoints {
		if ep.Pod != pod {
			continue
		}
		for i, m := range ep.Memifs {
			if m.SocketPath != fmt.Sprintf("@xvs-memif%d", i) {
				e.t.Errorf("endpoint memif %d: socket %q", i, m.SocketPath)
			}
			ports = append(ports, m.Port)
			addrs = append(addrs, m.Addresses)
		}
	}
	return ports, addrs
}

func noPing(t *testing.T, ns string, addr netip.Addr) {
	t.Helper()
	if out, err := execOut("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr.String()); err == nil {
		t.Errorf("ping %s from %s answered with the memif peer gone:\n%s", addr, ns, out)
	}
}

// TestCNIMemif: pod A has a veth eth0 only; pod B asks for two memif
// ports by the xvs.dev/memif annotation and keeps its veth eth0. The CNI
// result reports each memif with its socketPath (abstract, in B's netns)
// and its own addresses; `xvsctl show endpoints` lists them. On memif 0
// DPDK's testpmd (icmpecho) answers A's IPv4 ping; on memif 1 a gomemif
// client relays to a TAP device in B's netns, so B's kernel answers and
// sends ping over IPv4 and IPv6 both ways. testpmd killed: its port goes
// down and A's ping goes unanswered; a new testpmd reconnects. xvsd killed
// -9 and restarted: it re-creates the memif ports from the CNI records,
// with the same addresses and sockets, the applications reconnect and
// traffic comes back. DEL removes the ports and releases everything.
func TestCNIMemif(t *testing.T) {
	memifPMD(t)
	relay := memiftap(t)
	e := newCNIEnv(t, lab.Options{})
	assertForwardingOff(t, e.l)
	l := e.conflist("1.1.0")
	nsA, nsB := e.netns(), e.netns()
	const macPMD, macTap = "02:fe:00:00:0b:00", "02:fe:00:00:0b:01"
	rtA := e.rt("memA", nsA, nil)
	// gomemif v0.1.0 asks one queue pair fewer than offered: two for one.
	rtB := e.rt("memB", nsB, map[string]string{cniserver.MemifAnnotation: `[{"mac": "` + macPMD + `"}, {"queues": 2, "ringSize": 1024, "mode": "ethernet", "mac": "` + macTap + `"}]`})
	aA := podAddrs(t, e.mustAdd(l, rtA))
	resB := e.mustAdd(l, rtB)
	eth0B, memifs := splitResult(t, resB, rtB.NetNS)
	if len(memifs) != 2 || memifs[0].socket != "@xvs-memif0" || memifs[1].socket != "@xvs-memif1" {
		t.Fatalf("result memifs %+v: want @xvs-memif0 and @xvs-memif1", memifs)
	}
	seen := map[netip.Addr]bool{}
	for _, a := range append(slices.Clone(eth0B), slices.Concat(memifs[0].addrs, memifs[1].addrs)...) {
		if seen[a] {
			t.Errorf("address %s reported twice", a)
		}
		seen[a] = true
	}
	if len(eth0B) != 2 || len(memifs[0].addrs) != 2 || len(memifs[1].addrs) != 2 || !memifs[1].addrs[0].Is4() || !memifs[1].addrs[1].Is6() {
		t.Fatalf("pod B: eth0 %v, memifs %+v: want one IPv4 and one IPv6 each", eth0B, memifs)
	}
	ports, before := e.memifPorts("memB")
	if len(ports) != 2 {
		t.Fatalf("show endpoints: memif ports %v", ports)
	}
	if out, err := xvsctl(t, e.l, "node", "show", "endpoints"); err != nil || !strings.Contains(out, ports[1]) || !strings.Contains(out, "@xvs-memif1") {
		t.Errorf("show endpoints lacks the memif rows (%v):\n%s", err, out)
	}
	if err := e.check(l, rtB); err != nil {
		t.Errorf("CHECK with no memif peer yet: %v", err)
	}
	// A repeated ADD returns the same memifs.
	if _, again := splitResult(t, e.mustAdd(l, rtB), rtB.NetNS); !slices.EqualFunc(again, memifs, func(a, b podMemif) bool { return a.socket == b.socket && slices.Equal(a.addrs, b.addrs) }) {
		t.Errorf("repeated ADD: memifs %+v, want %+v", again, memifs)
	}

	startRelay := func() *nsProc {
		m := memifs[1]
		return startIn(t, nsB, "memiftap", relay, "-socket", m.socket, "-tap", "mt0", "-mac", macTap,
			"-addr", fmt.Sprintf("%s/32,%s/128", m.addrs[0], m.addrs[1]), "-route", fmt.Sprintf("%s/32,%s/128", aA[0], aA[1]))
	}
	traffic := func(t *testing.T) {
		pingNS(t, nsA, memifs[0].addrs[0]) // testpmd icmpecho
		for _, a := range memifs[1].addrs {
			pingNS(t, nsA, a) // B's kernel behind the relay
		}
		for _, a := range aA {
			if out, err := execOut("ip", "-n", nsB, "route", "get", a.String()); err != nil || !strings.Contains(out, "dev mt0") {
				t.Fatalf("pod B's route to %s is not the memif side (%v): %s", a, err, out)
			}
			pingNS(t, nsB, a)
		}
	}

	pmd := testpmdIn(t, nsB, memifs[0].socket, macPMD, "icmpecho")
	tap := startRelay()
	waitMemif(t, e.l, ports[0], true)
	waitMemif(t, e.l, ports[1], true)
	t.Run("traffic", traffic)
	if t.Failed() {
		t.Logf("memiftap: %s\ntestpmd: %s\nxvsd: %s", tap.output(), pmd.output(), e.l.LogTail("node", 20))
		t.FailNow()
	}

	// The peer dies: the port goes down, nothing answers; a new one
	// reconnects.
	pmd.kill(t)
	waitMemif(t, e.l, ports[0], false)
	noPing(t, nsA, memifs[0].addrs[0])
	pmd = testpmdIn(t, nsB, memifs[0].socket, macPMD, "icmpecho")
	waitMemif(t, e.l, ports[0], true)
	pingNS(t, nsA, memifs[0].addrs[0])

	// xvsd restarts: the relay sees the connection end and exits (an
	// application would reconnect; this one is restarted); testpmd is
	// restarted too: DPDK 23's net_memif client does not reconnect by
	// itself (tried: its port stays down). The ports come back from the
	// CNI records.
	if err := e.l.KillXVSD("node"); err != nil && !errors.Is(err, lab.ErrKilled) {
		t.Logf("kill: %v", err)
	}
	if !tap.exited(10 * time.Second) {
		t.Errorf("memiftap did not see the connection end")
	}
	pmd.kill(t)
	if err := e.l.StartXVSD("node"); err != nil {
		t.Fatal(err)
	}
	portsAfter, after := e.memifPorts("memB")
	if !slices.Equal(portsAfter, ports) || !slices.EqualFunc(after, before, slices.Equal) {
		t.Fatalf("after restart: memif ports %v %v, want %v %v", portsAfter, after, ports, before)
	}
	pmd = testpmdIn(t, nsB, memifs[0].socket, macPMD, "icmpecho")
	tap = startRelay()
	waitMemif(t, e.l, ports[0], true)
	waitMemif(t, e.l, ports[1], true)
	t.Run("traffic after restart", traffic)
	if err := e.check(l, rtB); err != nil {
		t.Errorf("CHECK after restart: %v", err)
	}

	for _, rt := range []*libcni.RuntimeConf{rtB, rtB, rtA} {
		if err := e.del(l, rt); err != nil {
			t.Fatalf("DEL %s: %v", rt.ContainerID, err)
		}
	}
	e.wantEmpty("after DEL")
	if !tap.exited(10 * time.Second) {
		t.Errorf("memiftap still connected after DEL")
	}
}

// TestCNIMemifBadInput: a bad xvs.dev/memif annotation or memif key is a
// CNI error naming it and its value; an ADD whose third memif finds the
// pool exhausted rolls back every memif it made; the network config's
// memif: true gives every pod one memif.
func TestCNIMemifBadInput(t *testing.T) {
	e := newCNIEnv(t, lab.Options{})
	l := e.conflist("1.1.0")
	for _, tc := range []struct {
		name   string
		l      *libcni.NetworkConfigList
		ann    map[string]string
		code   uint
		naming []string
	}{
		{"annotation word", l, map[string]string{cniserver.MemifAnnotation: "yes"}, cniserver.CodeBadAnnotation, []string{cniserver.MemifAnnotation, "yes"}},
		{"annotation field", l, map[string]string{cniserver.MemifAnnotation: `[{"queues": 99}]`}, cniserver.CodeBadAnnotation, []string{cniserver.MemifAnnotation, "queues 99"}},
		{"annotation unknown", l, map[string]string{cniserver.MemifAnnotation: `[{"rings": 2}]`}, cniserver.CodeBadAnnotation, []string{cniserver.MemifAnnotation, "rings"}},
		{"config field", e.conflist("1.1.0", e.xvsPlugin(`"memif": [{"ringSize": 3}]`)), nil, types.ErrInvalidNetworkConfig, []string{"network config: memif", "ringSize 3"}},
		{"pool exhausted", l, map[string]string{cniserver.MemifAnnotation: `[{}, {}, {}, {}]`, "cni.projectcalico.org/ipv4pools": `["tiny4"]`}, cniserver.CodePoolExhausted, []string{"memif 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.netns()
			rt := e.rt("bad"+strings.ReplaceAll(tc.name, " ", ""), ns, tc.ann)
			_, err := e.add(tc.l, rt)
			var ce *types.Error
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Fatalf("ADD: %v, want code %d", err, tc.code)
			}
			for _, s := range tc.naming {
				if !strings.Contains(ce.Error(), s) {
					t.Errorf("ADD error %q does not name %q", ce.Error(), s)
				}
			}
			e.wantEmpty("after the refused ADD")
			if err := e.del(tc.l, rt); err != nil {
				t.Errorf("DEL after the refused ADD: %v", err)
			}
		})
	}
	t.Run("config key", func(t *testing.T) {
		lc := e.conflist("1.1.0", e.xvsPlugin(`"memif": true`))
		ns := e.netns()
		rt := e.rt("cfgmemif", ns, nil)
		r := e.mustAdd(lc, rt)
		if _, ms := splitResult(t, r, rt.NetNS); len(ms) != 1 || ms[0].socket != "@xvs-memif0" || len(ms[0].addrs) != 2 {
			t.Errorf("memif: true: result memifs %+v", ms)
		}
		// The annotation wins over the config.
		rt2 := e.rt("cfgmemif2", e.netns(), map[string]string{cniserver.MemifAnnotation: "false"})
		if _, ms := splitResult(t, e.mustAdd(lc, rt2), rt2.NetNS); len(ms) != 0 {
			t.Errorf("annotation false over memif: true: memifs %+v", ms)
		}
		for _, rt := range []*libcni.RuntimeConf{rt, rt2} {
			if err := e.del(lc, rt); err != nil {
				t.Fatalf("DEL: %v", err)
			}
		}
		e.wantEmpty("after DEL")
	})
}
