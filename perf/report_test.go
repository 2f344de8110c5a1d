package perf

import (
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/perf/gen"
)

// TestReportOutputs checks the JSON, Markdown and SVG writers on a
// synthetic report, without a kernel.
func TestReportOutputs(t *testing.T) {
	lat := func(p50 int64) *gen.Latency { return &gen.Latency{P50: p50, P99: 10 * p50, P999: 100 * p50} }
	r := &Report{Scenario: "synthetic", Rounds: 2, Machine: Machine{CPUs: 2, Kernel: "6.18"},
		Forwarders: []FwdStatus{{Name: "kernel", Ran: true}, {Name: "xvsd", Ran: true}, {Name: "xdp-redirect", Skipped: "no xdp <here> & there"}}}
	for _, fam := range []int{4, 6} {
		for _, size := range []int{1500, 64, 512} {
			lr := LoadResult{Load: (&pktgenLoad{family: fam, size: size, flows: 1}).Info(), Name: "udp"}
			lr.By = []FwdResult{
				{Forwarder: "kernel", Samples: []Sample{{Value: 0.3}, {Value: 0.5}}},
				{Forwarder: "xvsd", Samples: []Sample{{Value: 0.6}, {Value: 0.8}}},
			}
			summarise(&lr)
			r.Results = append(r.Results, lr)
		}
	}
	ll := LoadResult{Load: (&pktgenLoad{family: 4, size: 64, flows: 1, rate: 1000}).Info(), Name: "latency"}
	ll.By = []FwdResult{
		{Forwarder: "kernel", Samples: []Sample{{Value: 10, Latency: lat(10000)}}},
		{Forwarder: "xvsd", Errors: []string{"boom"}},
	}
	summarise(&ll)
	r.Results = append(r.Results, ll)

	if got := r.Results[0].By[1]; got.Median != 0.7 || math.Abs(got.Ratio-1.75) > 1e-9 {
		t.Errorf("median %v ratio %v", got.Median, got.Ratio)
	}
	dir := t.TempDir()
	files, err := r.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 { // json, md, throughput-1flow.svg, latency.svg
		t.Errorf("files %v", files)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Results) != 7 {
		t.Fatalf("json: %v, %d results", err, len(back.Results))
	}
	md := r.Markdown()
	for _, want := range []string{"| kernel | xvsd | xvsd ÷ kernel |", "| 1.75 |", "n/a", "xdp-redirect: skipped", "1 failed rounds (boom)", "| latency | kernel | 10.0 | 100.0 | 1000.0 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"throughput-1flow.svg", "latency.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(strings.NewReader(string(b)))
		for {
			if _, err := d.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s is not well-formed XML: %v", f, err)
				}
				break
			}
		}
		if f == "throughput-1flow.svg" && strings.Count(string(b), "<polyline") != 4 {
			t.Errorf("%s: want 4 lines (2 forwarders x 2 families)", f)
		}
	}
}
