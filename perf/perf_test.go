package perf

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/perf/internal/xpnet"
)

// TestSmokeKernel runs the harness end to end on the kernel forwarder with
// tiny bounded loads and checks its outputs, not its speed.
func TestSmokeKernel(t *testing.T) {
	if err := xpnet.Check(); err != nil {
		t.Skip(err)
	}
	loads := []Load{
		Pktgen(4, 64, 1, 200*time.Millisecond),
		Pktgen(6, 1500, 1, 200*time.Millisecond),
		Pktgen(4, 512, 100, 200*time.Millisecond),
		PktgenRate(4, 64, 5000, 200*time.Millisecond),
	}
	if _, err := exec.LookPath("iperf3"); err == nil {
		loads = append(loads, Iperf3(6, 1, time.Second))
	}
	s := Scenario{Name: "smoke", Forwarders: []Forwarder{Kernel(), XDPRedirect(), XVSD("/nonexistent/xvsd")}, Loads: loads, Rounds: 2, Probe: true}
	rep, err := s.Run(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := rep.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(files)
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(loads) || len(back.Forwarders) != 3 || back.Forwarders[2].Ran {
		t.Fatalf("report %s", raw)
	}
	for _, lr := range back.Results {
		for _, x := range lr.By {
			if len(x.Samples) != 2 || x.Median <= 0 {
				t.Errorf("%s via %s: %+v", lr.Name, x.Forwarder, x)
			}
		}
		if lr.By[0].Ratio != 1 {
			t.Errorf("%s: baseline ratio %v", lr.Name, lr.By[0].Ratio)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	if rows := strings.Count(string(md), "\n| udp "); rows != 3 {
		t.Errorf("markdown has %d udp rows:\n%s", rows, md)
	}
	if !strings.Contains(string(md), "xvsd: skipped") {
		t.Errorf("markdown does not say xvsd was skipped:\n%s", md)
	}
	for _, f := range []string{"throughput-1flow.svg", "throughput-100flows.svg", "latency.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.HasPrefix(string(b), "<svg") || !strings.Contains(string(b), "polyline") && f != "latency.svg" {
			t.Errorf("%s: %v %.100s", f, err, b)
		}
	}
	t.Logf("\n%s", md)
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestSmokeCrossNode runs the cross-node scenario's baseline (the kernel
// routing on two lab nodes) with a tiny load: the topology comes up, the
// probe passes, the figure is there.
func TestSmokeCrossNode(t *testing.T) {
	smokeCrossNode(t, CrossNode(Quick, []Forwarder{KernelCrossNode()}, false))
}

// TestSmokeCrossNodeVXLAN: the VXLAN scenario's baseline, the kernel's
// vxlan devices, carries the loads.
func TestSmokeCrossNodeVXLAN(t *testing.T) {
	smokeCrossNode(t, CrossNodeVXLAN(Quick, []Forwarder{KernelCrossNodeVXLAN()}, false))
}

// smokeCrossNode runs s, one round of short UDP loads, and wants a figure
// from its one forwarder for each.
func smokeCrossNode(t *testing.T, s Scenario) {
	if err := xpnet.Check(); err != nil {
		t.Skip(err)
	}
	s.Rounds = 1
	s.Loads = []Load{Pktgen(4, 64, 1, 200*time.Millisecond), Pktgen(6, 64, 1, 200*time.Millisecond)}
	rep, err := s.Run(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, lr := range rep.Results {
		if len(lr.By) != 1 || lr.By[0].Median <= 0 {
			t.Errorf("%s: %+v", lr.Name, lr.By)
		}
	}
}
