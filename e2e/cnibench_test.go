package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/xvs-project/xvs/lab"
)

var cniBench = flag.Bool("e2e.cnibench", false, "run TestCNIBenchmark (a minute or two)")

// TestCNIBenchmark measures ADD and DEL latency (p50, p99 over 100 pods,
// one at a time) and pods/s with 10 concurrent ADDs, for xvs-cni and for
// the reference ptp plugin with host-local IPAM, through libcni in the
// same node. Off by default: go test -run TestCNIBenchmark ./e2e/
// -args -e2e.cnibench
func TestCNIBenchmark(t *testing.T) {
	if !*cniBench {
		t.Skip("needs -e2e.cnibench")
	}
	e := newCNIEnv(t, lab.Options{})
	const pods = 100
	ptpDir := t.TempDir()
	plugins := []struct {
		name string
		l    *libcni.NetworkConfigList
		// noDAD turns IPv6 duplicate address detection off in the pod's
		// namespace before ADD, as xvsd does for its pods' ends: ptp
		// otherwise waits for DAD to settle (about 1.8 s a pod here),
		// which is no cost of the plugin's own.
		noDAD bool
	}{
		{name: "xvs-cni", l: e.conflist("1.1.0")},
		{name: "ptp+host-local", noDAD: true, l: e.conflist("1.0.0", fmt.Sprintf(`{"type": "ptp", "ipMasq": false, "mtu": 1500,
			"ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "198.19.248.0/23"}], [{"subnet": "fd00:1b::/112"}]],
			"routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}`, filepath.Join(ptpDir, "ipam")))},
		{name: "ptp4+host-local", l: e.conflist("1.0.0", fmt.Sprintf(`{"type": "ptp", "ipMasq": false, "mtu": 1500,
			"ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "198.19.246.0/23"}]],
			"routes": [{"dst": "0.0.0.0/0"}]}}`, filepath.Join(ptpDir, "ipam4")))},
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(float64(len(s))*p))]
	}
	for pi, p := range plugins {
		rts := make([]*libcni.RuntimeConf, pods)
		for i := range rts {
			ns := e.netns()
			if p.noDAD {
				for _, k := range []string{"all", "default"} {
					if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+k+".accept_dad=0").CombinedOutput(); err != nil {
						t.Fatalf("netns %s: accept_dad: %v: %s", ns, err, out)
					}
				}
			}
			rts[i] = e.rt(fmt.Sprintf("bench%d-%d", pi, i), ns, nil)
		}
		var add, del []time.Duration
		for _, rt := range rts {
			start := time.Now()
			e.mustAdd(p.l, rt)
			add = append(add, time.Since(start))
		}
		for _, rt := range rts {
			start := time.Now()
			if err := e.del(p.l, rt); err != nil {
				t.Fatalf("%s DEL: %v", p.name, err)
			}
			del = append(del, time.Since(start))
		}
		// 10 concurrent ADDs, then DELs, over the same pods.
		work := make(chan *libcni.RuntimeConf)
		var wg sync.WaitGroup
		start := time.Now()
		for range 10 {
			wg.Go(func() {
				for rt := range work {
					e.mustAdd(p.l, rt)
				}
			})
		}
		for _, rt := range rts {
			work <- rt
		}
		close(work)
		wg.Wait()
		conc := time.Since(start)
		for _, rt := range rts {
			if err := e.del(p.l, rt); err != nil {
				t.Fatalf("%s DEL: %v", p.name, err)
			}
		}
		line := fmt.Sprintf("%-15s ADD p50 %6.1f ms p99 %6.1f ms  DEL p50 %6.1f ms p99 %6.1f ms  10 concurrent ADDs: %5.1f pods/s",
			p.name, ms(pct(add, 0.5)), ms(pct(add, 0.99)), ms(pct(del, 0.5)), ms(pct(del, 0.99)), float64(pods)/conc.Seconds())
		t.Log(line)
		fmt.Fprintln(os.Stderr, line)
		if p.name == "xvs-cni" {
			steps := podAddSteps(e.node.Log)
			fmt.Fprintln(os.Stderr, steps)
			t.Log(steps)
		}
	}
	e.wantEmpty("after the benchmark")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// podAddSteps sums up the step times of xvsd's "pod added" log lines
// (text handler: assign=, plumb=, addport=): the p50 and p99 of each.
func podAddSteps(log string) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return fmt.Sprintf("xvsd log: %v", err)
	}
	steps := map[string][]time.Duration{}
	names := []string{"assign", "plumb", "addport"}
	for _, ln := range strings.Split(string(b), "\n") {
		if !strings.Contains(ln, `msg="pod added"`) {
			continue
		}
		for _, f := range strings.Fields(ln) {
			k, v, ok := strings.Cut(f, "=")
			if !ok || !slices.Contains(names, k) {
				continue
			}
			if d, err := time.ParseDuration(v); err == nil {
				steps[k] = append(steps[k], d)
			}
		}
	}
	out := "xvsd pod added steps:"
	for _, k := range names {
		d := steps[k]
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		out += fmt.Sprintf("  %s p50 %.1f ms p99 %.1f ms", k, ms(d[len(d)/2]), ms(d[min(len(d)-1, len(d)*99/100)]))
	}
	return out
}
