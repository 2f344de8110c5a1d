package podnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// needRoot skips a test that creates namespaces when it cannot.
func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("%s (the peer these tests read back with) is not installed: %v", tool, err)
		}
	}
}

// prefix is a fresh "pn" + 4 hex digits, so runs never share a name.
func prefix() string {
	var b [2]byte
	rand.Read(b[:])
	return "pn" + hex.EncodeToString(b[:])
}

// newNS makes the named namespace pfx-role with NewNamed and deletes it
// when the test ends, failed or not.
func newNS(tb testing.TB, pfx, role string) string {
	tb.Helper()
	name := pfx + "-" + role
	if err := NewNamed(name); err != nil {
		tb.Fatalf("NewNamed(%s): %v", name, err)
	}
	tb.Cleanup(func() {
		if err := DeleteNamed(name); err != nil {
			tb.Errorf("DeleteNamed(%s): %v", name, err)
		}
	})
	return name
}

// sh runs a command (bounded) and returns its output.
func sh(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := shErr(args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func shErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ipJSON runs `ip -j -n ns args...` and decodes its list.
func ipJSON(tb testing.TB, ns string, args ...string) []map[string]any {
	tb.Helper()
	out := sh(tb, append([]string{"ip", "-j", "-n", ns}, args...)...)
	var v []map[string]any
	if strings.TrimSpace(out) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		tb.Fatalf("ip -j -n %s %v: %v: %s", ns, args, err, out)
	}
	return v
}

// ethtoolK reads `ethtool -k dev` in ns as name -> "on"/"off".
func ethtoolK(tb testing.TB, ns, dev string) map[string]string {
	tb.Helper()
	out := sh(tb, "ip", "netns", "exec", ns, "ethtool", "-k", dev)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if ok {
			m[k] = strings.Fields(v)[0]
		}
	}
	return m
}

// state is what a namespace holds, as ip reads it: every link and every
// address, one string each, sorted.
func state(tb testing.TB, ns string) []string {
	tb.Helper()
	var out []string
	for _, l := range ipJSON(tb, ns, "link", "show") {
		out = append(out, fmt.Sprintf("link %v", l["ifname"]))
	}
	for _, l := range ipJSON(tb, ns, "addr", "show") {
		infos, _ := l["addr_info"].([]any)
		for _, ai := range infos {
			a := ai.(map[string]any)
			out = append(out, fmt.Sprintf("addr %v %v/%v", l["ifname"], a["local"], a["prefixlen"]))
		}
	}
	slices.Sort(out)
	return out
}

// diffLines prints a (-want +got) diff of two sorted lists, "" if equal.
func diffLines(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "-%s\n", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "+%s\n", g)
		}
	}
	return b.String()
}

var (
	pod1V4 = netip.MustParsePrefix("198.18.77.1/32")
	pod1V6 = netip.MustParsePrefix("fd00:77::1/128")
	pod2V4 = netip.MustParsePrefix("198.18.77.2/32")
	pod2V6 = netip.MustParsePrefix("fd00:77::2/128")
)

// kernelPod is a Calico pod whose host end the node's kernel routes: a
// host route and a permanent neighbour per pod address.
func kernelPod(nodeNS, hostIf, podNS string, mac []byte, addrs ...netip.Prefix) Pod {
	p := Calico(nodeNS, hostIf, podNS, "eth0", addrs, 1450)
	p.Pod.MAC = mac
	for _, a := range addrs {
		p.Host.Routes = append(p.Host.Routes, Route{Dst: a})
		p.Host.Neighbors = append(p.Host.Neighbors, Neighbor{Addr: a.Addr(), MAC: mac})
	}
	return p
}
