package perf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Write saves the report in dir as results.json, results.md and SVG plots
// next to them, and returns the paths written.
func (r *Report) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	put := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		files = append(files, p)
		return nil
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := put("results.json", append(js, '\n')); err != nil {
		return files, err
	}
	for name, svg := range r.Plots() {
		if err := put(name, []byte(svg)); err != nil {
			return files, err
		}
	}
	if err := put("results.md", []byte(r.Markdown())); err != nil {
		return files, err
	}
	return files, nil
}

func (r *Report) ran() []string {
	var n []string
	for _, f := range r.Forwarders {
		if f.Ran {
			n = append(n, f.Name)
		}
	}
	return n
}

// Markdown renders the medians, ratios and latency percentiles as tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	fw := r.ran()
	fmt.Fprintf(&b, "Scenario %s, %d rounds alternating %s; medians. Machine: %d CPUs, %s, Linux %s, %s.\n",
		r.Scenario, r.Rounds, strings.Join(fw, " / "), r.Machine.CPUs, r.Machine.CPU, r.Machine.Kernel, r.Machine.Go)
	if r.Machine.Shared != "" {
		fmt.Fprintf(&b, "Shared machine: %s.\n", r.Machine.Shared)
	}
	b.WriteString("UDP Mpps = unique frames received ÷ sending time; offered = the sender's rate; loss = (sent − received) ÷ sent, per forwarder.\n\n")
	if r.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	}
	b.WriteString("| load | unit |")
	for _, f := range fw {
		fmt.Fprintf(&b, " %s |", f)
	}
	for _, f := range fw[1:] {
		fmt.Fprintf(&b, " %s ÷ %s |", f, fw[0])
	}
	b.WriteString(" offered, Mpps | loss |\n|---|---|")
	b.WriteString(strings.Repeat("---:|", 2*len(fw)-1+2))
	b.WriteString("\n")
	for _, lr := range r.Results {
		fmt.Fprintf(&b, "| %s | %s |", lr.Name, lr.Load.Unit)
		for _, x := range lr.By {
			if len(x.Samples) == 0 {
				b.WriteString(" n/a |")
				continue
			}
			fmt.Fprintf(&b, " %.3g |", x.Median)
		}
		for _, x := range lr.By[1:] {
			if x.Ratio == 0 {
				b.WriteString(" n/a |")
				continue
			}
			fmt.Fprintf(&b, " %.2f |", x.Ratio)
		}
		var loss, tx []string
		for _, x := range lr.By {
			if lr.Load.Kind == "pktgen" && len(x.Samples) > 0 {
				loss = append(loss, fmt.Sprintf("%.2g%%", 100*x.MedianLoss))
				tx = append(tx, fmt.Sprintf("%.3g", x.MedianTx))
			}
		}
		fmt.Fprintf(&b, " %s | %s |\n", strings.Join(tx, " / "), strings.Join(loss, " / "))
	}
	var lat []LoadResult
	for _, lr := range r.Results {
		if lr.Load.Kind == "pktgen" && lr.Load.Rate > 0 {
			lat = append(lat, lr)
		}
	}
	if len(lat) > 0 {
		b.WriteString("\nLatency at a fixed rate, one way client pod → server pod, µs (median of rounds):\n\n| load | forwarder | p50 | p99 | p99.9 |\n|---|---|---:|---:|---:|\n")
		for _, lr := range lat {
			for _, x := range lr.By {
				fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f |\n", lr.Name, x.Forwarder, x.P50, x.P99, x.P999)
			}
		}
	}
	var skipped []string
	for _, f := range r.Forwarders {
		if !f.Ran {
			skipped = append(skipped, fmt.Sprintf("- %s: skipped: %s", f.Name, f.Skipped))
		}
	}
	var errs []string
	for _, lr := range r.Results {
		for _, x := range lr.By {
			if len(x.Errors) > 0 {
				errs = append(errs, fmt.Sprintf("- %s via %s: %d failed rounds (%s)", lr.Name, x.Forwarder, len(x.Errors), x.Errors[0]))
			}
		}
	}
	if len(skipped)+len(errs) > 0 {
		b.WriteString("\n" + strings.Join(append(skipped, errs...), "\n") + "\n")
	}
	return b.String()
}

// Plots returns the SVG plots by file name: forwarded packet rate against
// frame size per flow count, and latency percentiles.
func (r *Report) Plots() map[string]string {
	out := map[string]string{}
	type key struct {
		fwd    string
		family int
	}
	byFlows := map[int]map[key]*Series{}
	var order []key
	for _, lr := range r.Results {
		if lr.Load.Kind != "pktgen" || lr.Load.Rate > 0 {
			continue
		}
		m := byFlows[lr.Load.Flows]
		if m == nil {
			m = map[key]*Series{}
			byFlows[lr.Load.Flows] = m
		}
		for _, x := range lr.By {
			if len(x.Samples) == 0 {
				continue
			}
			k := key{x.Forwarder, lr.Load.Family}
			s := m[k]
			if s == nil {
				s = &Series{Name: fmt.Sprintf("%s ipv%d", x.Forwarder, lr.Load.Family)}
				m[k] = s
				order = append(order, k)
			}
			s.X = append(s.X, float64(lr.Load.Size))
			s.Y = append(s.Y, x.Median)
		}
	}
	for flows, m := range byFlows {
		var ss []Series
		seen := map[key]bool{}
		for _, k := range order {
			if s, ok := m[k]; ok && !seen[k] {
				seen[k] = true
				sortXY(s)
				ss = append(ss, *s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		name := fmt.Sprintf("throughput-%dflow%s.svg", flows, plural(flows))
		out[name] = LinePlot(fmt.Sprintf("%s, UDP, %d flow%s: Mpps vs frame size", r.Scenario, flows, plural(flows)),
			"frame bytes (without FCS)", "Mpps (median)", ss)
	}
	var groups []string
	var lat []Series
	fw := r.ran()
	for _, f := range fw {
		lat = append(lat, Series{Name: f})
	}
	for _, lr := range r.Results {
		if lr.Load.Kind != "pktgen" || lr.Load.Rate <= 0 {
			continue
		}
		short := fmt.Sprintf("v%d %dB", lr.Load.Family, lr.Load.Size)
		groups = append(groups, short+" p50", short+" p99", short+" p99.9")
		for i := range lat {
			var p [3]float64
			for _, x := range lr.By {
				if x.Forwarder == lat[i].Name {
					p = [3]float64{x.P50, x.P99, x.P999}
				}
			}
			lat[i].Y = append(lat[i].Y, p[:]...)
		}
	}
	if len(groups) > 0 {
		out["latency.svg"] = BarPlot(r.Scenario+": one-way latency at a fixed rate (median of rounds)", "µs (log scale)", groups, lat)
	}
	return out
}

func sortXY(s *Series) {
	idx := make([]int, len(s.X))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return s.X[idx[a]] < s.X[idx[b]] })
	x, y := make([]float64, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		x[i], y[i] = s.X[j], s.Y[j]
	}
	s.X, s.Y = x, y
}
