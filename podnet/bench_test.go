package podnet

import (
	"testing"
	"time"
)

// phases times the two halves of each iteration, reported beside ns/op:
// a veth's deletion waits for the kernel's RCU grace periods whoever asks
// for it, so teardown is mostly the kernel's time.
type phases struct{ setup, teardown time.Duration }

func (ph *phases) report(b *testing.B, n int) {
	b.ReportMetric(float64(ph.setup.Nanoseconds())/float64(n), "setup-ns/op")
	b.ReportMetric(float64(ph.teardown.Nanoseconds())/float64(n), "teardown-ns/op")
}

// BenchmarkPodSetupTeardown times one Calico pod (veth, MACs, MTU,
// sysctls, tx checksum off, two addresses, two routes and two neighbours
// in the pod, two host routes and two host neighbours) set up and torn
// down, with podnet and with the ip, sysctl and ethtool commands that
// the lab and perf ran before, in the same run. Run it with a few
// iterations: go test -run '^$' -bench PodSetupTeardown -benchtime 20x ./podnet
func BenchmarkPodSetupTeardown(b *testing.B) {
	needRoot(b)
	pfx := prefix()
	node, pod := newNS(b, pfx, "node"), newNS(b, pfx, "pod")
	host := pfx + "h"
	p := kernelPod(NamedPath(node), host, NamedPath(pod), mac1, pod1V4, pod1V6)
	p.Pod.Offloads = Offloads{TxChecksum: Off}

	b.Run("podnet", func(b *testing.B) {
		b.ReportAllocs()
		var ph phases
		n := 0
		for b.Loop() {
			t0 := time.Now()
			if _, err := Setup(p); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := Teardown(p); err != nil {
				b.Fatal(err)
			}
			ph.setup, ph.teardown, n = ph.setup+t1.Sub(t0), ph.teardown+time.Since(t1), n+1
		}
		ph.report(b, n)
	})

	gw4, gw6, gwmac, mac := GatewayV4.String(), GatewayV6.String(), GatewayMAC.String(), mac1.String()
	v4, v6 := pod1V4.Addr().String(), pod1V6.Addr().String()
	cmds := [][]string{
		{"ip", "-n", node, "link", "add", host, "address", gwmac, "mtu", "1450", "type", "veth",
			"peer", "name", "eth0", "address", mac, "mtu", "1450", "netns", pod},
		{"ip", "netns", "exec", pod, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.eth0.accept_dad=0"},
		{"ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv6.conf." + host + ".accept_dad=0"},
		{"ip", "netns", "exec", pod, "ethtool", "-K", "eth0", "tx", "off"},
		{"ip", "-n", pod, "addr", "add", pod1V4.String(), "dev", "eth0"},
		{"ip", "-n", pod, "addr", "add", pod1V6.String(), "dev", "eth0", "nodad"},
		{"ip", "-n", pod, "link", "set", "eth0", "up"},
		{"ip", "-n", node, "link", "set", host, "up"},
		{"ip", "-n", node, "route", "add", pod1V4.String(), "dev", host},
		{"ip", "-n", node, "-6", "route", "add", pod1V6.String(), "dev", host},
		{"ip", "-n", pod, "route", "add", "default", "via", gw4, "dev", "eth0", "onlink"},
		{"ip", "-n", pod, "-6", "route", "add", "default", "via", gw6, "dev", "eth0"},
		{"ip", "-n", node, "neigh", "replace", v4, "lladdr", mac, "dev", host, "nud", "permanent"},
		{"ip", "-n", node, "-6", "neigh", "replace", v6, "lladdr", mac, "dev", host, "nud", "permanent"},
		{"ip", "-n", pod, "neigh", "replace", gw4, "lladdr", gwmac, "dev", "eth0", "nud", "permanent"},
		{"ip", "-n", pod, "-6", "neigh", "replace", gw6, "lladdr", gwmac, "dev", "eth0", "nud", "permanent"},
	}
	b.Run("iproute2", func(b *testing.B) {
		var ph phases
		n := 0
		for b.Loop() {
			t0 := time.Now()
			for _, c := range cmds {
				sh(b, c...)
			}
			t1 := time.Now()
			sh(b, "ip", "-n", node, "link", "del", host)
			ph.setup, ph.teardown, n = ph.setup+t1.Sub(t0), ph.teardown+time.Since(t1), n+1
		}
		ph.report(b, n)
		b.StopTimer()
		// The same plumbing as podnet's: Check passes on it.
		for _, c := range cmds {
			sh(b, c...)
		}
		if err := Check(p); err != nil {
			b.Errorf("the commands' plumbing differs from podnet's: %v", err)
		}
		sh(b, "ip", "-n", node, "link", "del", host)
	})
}
