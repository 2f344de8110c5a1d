package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// fakeLinks is a LinkCheck over a fixed set of names.
func fakeLinks(names ...string) LinkCheck {
	return func(n string) error {
		for _, x := range names {
			if x == n {
				return nil
			}
		}
		return ErrNoSuchInterface
	}
}

var testOpts = Options{LinkCheck: fakeLinks("eth0", "xvs-host", "veth1", "veth2", "veth3")}

const goodYAML = `
workers: 2
batch_size: 128
poll: busy
idle_spin: 50us
frames: 8192
frame_size: 2048
gateway_v4: 169.254.1.1
gateway_mac: ee:ee:ee:ee:ee:ee
icmp_rate: 10
api_socket: /tmp/xvsd.sock
metrics_addr: "[::1]:9091"
health_addr: localhost:9099
log_level: debug
log_format: json
ports:
  - name: eth0
    kind: uplink
    mode: xdp-native
    queue: 1
    addresses: [192.0.2.10/24, 2001:db8::10/64]
  - name: veth1
    kind: pod
    addresses: [10.244.1.5/32, "fd00::5/128"]
    peer_mac: 02:42:0a:f4:01:05
    mtu: 1450
routes:
  - prefix: 0.0.0.0/0
    via: 192.0.2.1
  - prefix: 10.244.2.0/24
    via: 192.0.2.11
    port: eth0
  - prefix: fd00:2::/64
    via: fe80::1
    port: eth0
  - prefix: 198.51.100.0/24
    blackhole: true
  - prefix: ::/0
    via: 2001:db8::1
`

func TestResolveGood(t *testing.T) {
	f, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(testOpts)
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Switch
	if sc.Workers != 2 || sc.BatchSize != 128 || sc.Poll != dataplane.PollBusy || sc.IdleSpin != 50*time.Microsecond || sc.Frames != 8192 || sc.FrameSize != 2048 || sc.ICMPRate != 10 {
		t.Errorf("scalars: %+v", sc)
	}
	if c.APISocket != "/tmp/xvsd.sock" || c.MetricsAddr != "[::1]:9091" || c.HealthAddr != "localhost:9099" || c.LogFormat != "json" || c.LogLevel.String() != "DEBUG" {
		t.Errorf("daemon: %+v", c)
	}
	if len(sc.Ports) != 2 || len(sc.Routes) != 5 {
		t.Fatalf("ports %d routes %d", len(sc.Ports), len(sc.Routes))
	}
	p := sc.Ports[1]
	if p.Name != "veth1" || p.Kind != spec.PortPod || p.MTU != 1450 || p.PeerMAC != [6]byte{2, 0x42, 0x0a, 0xf4, 1, 5} ||
		p.Addrs[1] != netip.MustParsePrefix("fd00::5/128") {
		t.Errorf("pod port: %+v", p)
	}
	if u := sc.Ports[0]; u.Kind != spec.PortUplink || u.Mode != spec.ModeXDPDrv || u.Queue != 1 {
		t.Errorf("uplink: %+v", u)
	}
	if r := sc.Routes[3]; !r.Blackhole || r.Prefix != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("blackhole: %+v", r)
	}
	if r := sc.Routes[1]; r.Port != "eth0" || r.Via != netip.MustParseAddr("192.0.2.11") {
		t.Errorf("route: %+v", r)
	}
}

func TestDefaults(t *testing.T) {
	f, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Switch
	if sc.Workers != 1 || sc.BatchSize != vswitch.DefaultBatchSize || sc.Poll != dataplane.PollAdaptive ||
		sc.Frames != vswitch.DefaultFrames || sc.FrameSize != vswitch.DefaultFrameSize ||
		sc.GatewayV4 != vswitch.DefaultGatewayV4 || sc.GatewayV6 != vswitch.DefaultGatewayV6 ||
		sc.GatewayMAC != vswitch.DefaultGatewayMAC || sc.ICMPRate != vswitch.DefaultICMPRate {
		t.Errorf("switch defaults: %+v", sc)
	}
	if c.APISocket != DefaultAPISocket || c.MetricsAddr != DefaultMetricsAddr || c.HealthAddr != DefaultHealthAddr ||
		c.LogFormat != "text" || c.LogLevel.String() != "INFO" {
		t.Errorf("daemon defaults: %+v", c)
	}
}

func TestOverrides(t *testing.T) {
	f, err := Parse([]byte("workers: 3\npoll: busy\napi_socket: /a.sock\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, sock, poll := 1, "/b.sock", "adaptive"
	Overrides{Workers: &w, APISocket: &sock, Poll: &poll}.Apply(f)
	c, err := f.Resolve(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Switch.Workers != 1 || c.APISocket != "/b.sock" || c.Switch.Poll != dataplane.PollAdaptive {
		t.Errorf("overrides not applied: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top key", "wrokers: 2\n", "field wrokers not found"},
		{"unknown port key", "ports:\n  - name: eth0\n    kind: pod\n    adresses: [10.0.0.1/32]\n", "field adresses not found"},
		{"wrong type", "workers: many\n", "cannot unmarshal"},
		{"two documents", "workers: 1\n---\nworkers: 2\n", "more than one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	const uplink = "ports:\n  - name: eth0\n    kind: uplink\n    addresses: [192.0.2.10/24, 2001:db8::10/64]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"workers", "workers: -1\n", `workers: -1: must be between 1 and 256`},
		{"batch too big", "batch_size: 300\n", `batch_size: 300: must be between 1 and 256`},
		{"poll", "poll: spin\n", `poll: "spin": must be busy or adaptive`},
		{"idle_spin", "idle_spin: forever\n", `idle_spin: "forever": must be a duration from 0s to 100ms`},
		{"idle_spin negative", "idle_spin: -1us\n", `idle_spin: "-1us": must be a duration`},
		{"frames pow2", "frames: 1000\n", `frames: 1000: must be a power of two, at least 64`},
		{"frames vs batch", "frames: 128\nbatch_size: 64\n", `frames: 128: must be at least 4 × batch_size (64)`},
		{"frame size", "frame_size: 1500\n", `frame_size: 1500: must be 2048 or 4096`},
		{"gateway v4 family", "gateway_v4: fe80::1\n", `gateway_v4: "fe80::1": not an IPv4 address`},
		{"gateway v6 bad", "gateway_v6: fe80::zz\n", `gateway_v6: "fe80::zz": invalid address`},
		{"gateway mac", "gateway_mac: ee:ee\n", `gateway_mac: "ee:ee": invalid MAC address`},
		{"gateway mac multicast", "gateway_mac: 01:00:5e:00:00:01\n", `gateway_mac: "01:00:5e:00:00:01": must be a unicast address`},
		{"icmp rate", "icmp_rate: -5\n", `icmp_rate: -5: must not be negative`},
		{"socket relative", "api_socket: xvsd.sock\n", `api_socket: "xvsd.sock": must be an absolute path`},
		{"metrics public", "metrics_addr: 0.0.0.0:9091\n", `metrics_addr: "0.0.0.0:9091": must be a loopback address`},
		{"health no port", "health_addr: 127.0.0.1\n", `health_addr: "127.0.0.1": must be host:port`},
		{"health bad port", "health_addr: 127.0.0.1:99999\n", `health_addr: "127.0.0.1:99999": invalid port`},
		{"log level", "log_level: loud\n", `log_level: "loud": must be debug, info, warn or error`},
		{"log format", "log_format: xml\n", `log_format: "xml": must be text or json`},

		{"no such interface", "ports:\n  - name: veth9\n    kind: pod\n", `ports[0].name: "veth9": no such interface`},
		{"name missing", "ports:\n  - kind: pod\n", `ports[0].name: required`},
		{"name too long", "ports:\n  - name: abcdefghijklmnopq\n    kind: pod\n", `ports[0].name: "abcdefghijklmnopq": not a valid interface name`},
		{"kind missing", "ports:\n  - name: veth1\n", `ports[0].kind: required (pod, uplink or host)`},
		{"kind bad", "ports:\n  - name: veth1\n    kind: vm\n", `ports[0].kind: "vm": must be pod, uplink or host`},
		{"mode bad", "ports:\n  - name: veth1\n    kind: pod\n    mode: dpdk\n", `ports[0].mode: "dpdk": must be auto`},
		{"mode fake", "ports:\n  - name: veth1\n    kind: pod\n    mode: fake\n", `ports[0].mode: "fake": must be auto`},
		{"queue on pod", "ports:\n  - name: veth1\n    kind: pod\n    queue: 2\n", `ports[0].queue: 2: only an uplink has queues`},
		{"queues on pod", "ports:\n  - name: veth1\n    kind: pod\n    queues: 2\n", `ports[0].queues: 2: only an uplink has queues`},
		{"queues too many", "ports:\n  - name: eth1\n    kind: uplink\n    queues: 65\n", `ports[0].queues: 65: must be 1..64`},
		{"queues on af-packet", "ports:\n  - name: eth1\n    kind: uplink\n    mode: af-packet\n    queues: 2\n", `ports[0].queues: 2: several queues need AF_XDP, not mode af-packet`},
		{"invalid prefix", uplink + "  - name: veth1\n    kind: pod\n    addresses: [10.0.0.300/32]\n", `ports[1].addresses[0]: "10.0.0.300/32": invalid prefix`},
		{"prefix without length", "ports:\n  - name: veth1\n    kind: pod\n    addresses: [10.0.0.3]\n", `ports[0].addresses[0]: "10.0.0.3": invalid prefix`},
		{"pod not host route", "ports:\n  - name: veth1\n    kind: pod\n    addresses: [10.0.0.0/24]\n", `ports[0].addresses[0]: "10.0.0.0/24": a pod address must be a /32 or /128`},
		{"peer mac bad", "ports:\n  - name: veth1\n    kind: pod\n    peer_mac: zz:00:00:00:00:00\n", `ports[0].peer_mac: "zz:00:00:00:00:00": invalid MAC address`},
		{"peer mac on uplink", "ports:\n  - name: eth0\n    kind: uplink\n    peer_mac: 02:00:00:00:00:01\n", `ports[0].peer_mac: "02:00:00:00:00:01": only pod ports have a peer MAC`},
		{"mtu", "ports:\n  - name: veth1\n    kind: pod\n    mtu: 100\n", `ports[0].mtu: 100: must be between 576 and 9000`},
		{"memif missing", "ports:\n  - name: mem0\n    kind: pod\n    mode: memif\n", `ports[0].memif: required with mode memif`},
		{"memif on af-packet", "ports:\n  - name: veth1\n    kind: pod\n    mode: af-packet\n    memif: {socket: \"@m\"}\n", `ports[0].mode: "af-packet": a memif: section needs mode memif`},
		{"memif uplink", "ports:\n  - name: mem0\n    kind: uplink\n    mode: memif\n    memif: {socket: \"@m\"}\n", `ports[0].kind: "uplink": a memif port is a pod port`},
		{"memif socket relative", "ports:\n  - name: mem0\n    kind: pod\n    mode: memif\n    memif: {socket: m.sock}\n", `ports[0].memif.socket: "m.sock": must be an absolute path or @name`},
		{"memif ring", "ports:\n  - name: mem0\n    kind: pod\n    mode: memif\n    memif: {socket: \"@m\", ring_size: 1000}\n", `ports[0].memif.ring_size: 1000: must be a power of two`},
		{"memif queues", "ports:\n  - name: mem0\n    kind: pod\n    mode: memif\n    memif: {socket: \"@m\", queues: 99}\n", `ports[0].memif.queues: 99: must be 1..64`},
		{"memif netns", "ports:\n  - name: mem0\n    kind: pod\n    mode: memif\n    memif: {socket: \"@m\", netns: ns1}\n", `ports[0].memif.netns: "ns1": must be an absolute path`},
		{"duplicate name", "ports:\n  - name: veth1\n    kind: pod\n  - name: veth1\n    kind: pod\n", `ports[1].name: "veth1": duplicate port name (also ports[0])`},
		{"pods overlap", "ports:\n  - name: veth1\n    kind: pod\n    addresses: [10.0.0.1/32]\n  - name: veth2\n    kind: pod\n    addresses: [fd00::1/128, 10.0.0.1/32]\n",
			`ports[1].addresses[1]: "10.0.0.1/32": overlaps ports[0].addresses[0] "10.0.0.1/32" (veth1)`},
		{"uplink and pod same address", uplink + "  - name: veth1\n    kind: pod\n    addresses: [192.0.2.10/32]\n",
			`ports[1].addresses[0]: "192.0.2.10/32": overlaps ports[0].addresses[0] "192.0.2.10/24" (eth0)`},

		{"route prefix missing", "routes:\n  - via: 192.0.2.1\n", `routes[0].prefix: required`},
		{"route prefix bad", "routes:\n  - prefix: 10.1.0.0/33\n    blackhole: true\n", `routes[0].prefix: "10.1.0.0/33": invalid prefix`},
		{"route host bits", "routes:\n  - prefix: 10.1.2.3/16\n    blackhole: true\n", `routes[0].prefix: "10.1.2.3/16": host bits set (did you mean 10.1.0.0/16?)`},
		{"route via not connected", uplink + "routes:\n  - prefix: 10.1.0.0/16\n    via: 198.18.0.1\n", `routes[0].via: "198.18.0.1": not on any connected subnet`},
		{"route via not on port", uplink + "  - name: xvs-host\n    kind: host\n    addresses: [169.254.2.1/30]\nroutes:\n  - prefix: 10.1.0.0/16\n    via: 192.0.2.1\n    port: xvs-host\n",
			`routes[0].via: "192.0.2.1": not on a connected subnet of port "xvs-host"`},
		{"route via bad", uplink + "routes:\n  - prefix: 10.1.0.0/16\n    via: 192.0.2\n", `routes[0].via: "192.0.2": invalid address`},
		{"route via family", uplink + "routes:\n  - prefix: 10.1.0.0/16\n    via: 2001:db8::1\n", `routes[0].via: "2001:db8::1": address family differs from prefix 10.1.0.0/16`},
		{"route link-local needs port", uplink + "routes:\n  - prefix: ::/0\n    via: fe80::1\n", `routes[0].via: "fe80::1": a link-local next hop needs port:`},
		{"route port unknown", uplink + "routes:\n  - prefix: 10.1.0.0/16\n    via: 192.0.2.1\n    port: eth1\n", `routes[0].port: "eth1": no such port`},
		{"route nothing", "routes:\n  - prefix: 10.1.0.0/16\n", `routes[0]: needs via, port or blackhole`},
		{"blackhole with via", uplink + "routes:\n  - prefix: 10.1.0.0/16\n    via: 192.0.2.1\n    blackhole: true\n", `routes[0].via: "192.0.2.1": a blackhole route has no next hop`},
		{"duplicate route", "routes:\n  - prefix: 10.1.0.0/16\n    blackhole: true\n  - prefix: 10.1.0.0/16\n    blackhole: true\n", `routes[1].prefix: "10.1.0.0/16": duplicate route (also routes[0])`},

		{"vxlan vni", "vxlan: {vni: 16777216}\n", `vxlan.vni: 16777216: must be 1..16777215`},
		{"vxlan port", "vxlan: {port: 70000}\n", `vxlan.port: 70000: must be 1..65535`},
		{"vxlan mac", "vxlan: {mac: 02:00}\n", `vxlan.mac: "02:00": invalid MAC address`},
		{"vxlan mac multicast", "vxlan: {mac: 01:00:5e:00:00:01}\n", `vxlan.mac: "01:00:5e:00:00:01": must be a unicast address`},
		{"vxlan vtep family", "vxlan: {vtep_v4: 2001:db8::1}\n", `vxlan.vtep_v4: "2001:db8::1": not a unicast IPv4 address`},
		{"vxlan vtep6 link-local", "vxlan: {vtep_v6: fe80::1}\n", `vxlan.vtep_v6: "fe80::1": not a global unicast IPv6 address`},
		{"vxlan route without section", "routes:\n  - {prefix: 10.2.0.0/24, vxlan: {remote: 192.0.2.11, mac: 02:58:03:00:00:02}}\n",
			`routes[0].vxlan.remote: "192.0.2.11": a vxlan route needs the vxlan: section`},
		{"vxlan remote missing", "vxlan: {}\nroutes:\n  - {prefix: 10.2.0.0/24, vxlan: {mac: 02:58:03:00:00:02}}\n", `routes[0].vxlan.remote: required`},
		{"vxlan remote bad", "vxlan: {}\nroutes:\n  - {prefix: 10.2.0.0/24, vxlan: {remote: 192.0.2, mac: 02:58:03:00:00:02}}\n", `routes[0].vxlan.remote: "192.0.2": invalid address`},
		{"vxlan remote inside", "vxlan: {}\nroutes:\n  - {prefix: 10.2.0.0/24, vxlan: {remote: 10.2.0.9, mac: 02:58:03:00:00:02}}\n",
			`routes[0].vxlan.remote: "10.2.0.9": inside 10.2.0.0/24: the tunnel would route into itself`},
		{"vxlan remote multicast", "vxlan: {}\nroutes:\n  - {prefix: 10.2.0.0/24, vxlan: {remote: 239.1.1.1, mac: 02:58:03:00:00:02}}\n", `routes[0].vxlan.remote: "239.1.1.1": not a unicast address`},
		{"vxlan mac missing", "vxlan: {}\nroutes:\n  - {prefix: 10.2.0.0/24, vxlan: {remote: 192.0.2.11}}\n", `routes[0].vxlan.mac: required`},
		{"vxlan with via", uplink + "vxlan: {}\nroutes:\n  - {prefix: 10.2.0.0/24, via: 192.0.2.1, vxlan: {remote: 192.0.2.11, mac: 02:58:03:00:00:02}}\n",
			`routes[0].via: "192.0.2.1": a vxlan route has no via`},
		{"vxlan with blackhole", "vxlan: {}\nroutes:\n  - {prefix: 10.2.0.0/24, blackhole: true, vxlan: {remote: 192.0.2.11, mac: 02:58:03:00:00:02}}\n",
			`routes[0].blackhole: "true": a route is either vxlan or blackhole`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = f.Resolve(testOpts)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error is not a *FieldError: %T", err)
			}
		})
	}
}

func TestResolveReportsAll(t *testing.T) {
	f, err := Parse([]byte("workers: -1\npoll: spin\nports:\n  - name: veth9\n    kind: pod\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Resolve(testOpts)
	if err == nil {
		t.Fatal("no error")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("got %d errors, want 3:\n%v", n, err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "xvsd.yaml")
	if err := os.WriteFile(path, []byte("workers: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil || f.Workers != 2 {
		t.Fatalf("Load = %+v, %v", f, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(path, []byte("bogus: 1\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("bad file error should name the file: %v", err)
	}
}

// The example in doc.go must stay valid.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(line, "// # File format"):
			in = true
		case in && strings.HasPrefix(line, "// Command-line flags"):
			in = false
		case in && strings.HasPrefix(line, "//\t"):
			b.WriteString(strings.TrimPrefix(line, "//\t") + "\n")
		case in && line == "//":
			b.WriteString("\n")
		}
	}
	f, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("doc example: %v\n%s", err, b.String())
	}
	c, err := f.Resolve(Options{})
	if err != nil {
		t.Fatalf("doc example: %v", err)
	}
	want := spec.MemifConfig{Socket: "@xvs-memif", Netns: "/proc/1234/ns/net", Queues: 1, RingSize: 1024}
	if m := c.Switch.Ports[3]; m.Mode != spec.ModeMemif || m.Memif == nil || *m.Memif != want {
		t.Errorf("memif port (-want +got):\n-%+v\n+%+v", want, m.Memif)
	}
	if len(f.Ports) != 4 || len(f.Routes) != 6 || f.VXLAN == nil {
		t.Errorf("doc example parsed %d ports %d routes", len(f.Ports), len(f.Routes))
	}
}

func TestNetlinkLinkCheck(t *testing.T) {
	if err := NetlinkLinkCheck("lo"); err != nil {
		t.Skipf("netlink unavailable: %v", err)
	}
	if err := NetlinkLinkCheck("xvs-nonexist0"); !errors.Is(err, ErrNoSuchInterface) {
		t.Errorf("missing link: %v", err)
	}
}

func TestWorkerCPUs(t *testing.T) {
	f, err := Parse([]byte("workers: 1\nworker_cpus: [0]\nxdp_fast_path: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Switch.XDPFastPath {
		t.Error("xdp_fast_path: true did not set XDPFastPath")
	}
	if len(c.Switch.WorkerCPUs) != 1 || c.Switch.WorkerCPUs[0] != 0 {
		t.Errorf("worker_cpus: %v", c.Switch.WorkerCPUs)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"worker_cpus: [4096]\n", "worker_cpus[0]: 4096: this machine has CPUs 0.."},
		{"worker_cpus: [-1]\n", "worker_cpus[0]: -1"},
		{"workers: 1\nworker_cpus: [0, 0]\n", "worker_cpus: 2: more CPUs than workers (1)"},
	} {
		f, err := Parse([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Resolve(testOpts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
