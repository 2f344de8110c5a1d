package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// xvsctl runs the built xvsctl against node's API socket.
func xvsctl(t *testing.T, l *lab.Lab, node string, args ...string) (string, error) {
	t.Helper()
	if xvsctlBin == "" {
		t.Skip(xvsctlReason)
	}
	n := l.T.NodeByName(node)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, xvsctlBin, append([]string{"-s", n.Socket}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// counter returns xvsd's counter name ("no-route", "ttl-expired",
// "forwarded-ipv4", ... as vswitch names them). It asks xvsctl for JSON and
// falls back to the Prometheus endpoint in the node's namespace.
func counter(t *testing.T, l *lab.Lab, node, name string) uint64 {
	t.Helper()
	var errs []string
	if xvsctlBin != "" {
		out, err := xvsctl(t, l, node, "-o", "json", "show", "counters")
		if err == nil {
			var v any
			if jerr := json.Unmarshal([]byte(out), &v); jerr == nil {
				if c, ok := findCounter(v, name); ok {
					return c
				}
				errs = append(errs, fmt.Sprintf("xvsctl: no counter %q in %s", name, out))
			} else {
				errs = append(errs, fmt.Sprintf("xvsctl output: %v: %s", jerr, out))
			}
		} else {
			errs = append(errs, fmt.Sprintf("xvsctl: %v: %s", err, out))
		}
	}
	n := l.T.NodeByName(node)
	code, body, err := l.HTTPGet(n.Name, "http://"+n.Metrics+"/metrics", 5*time.Second)
	if err == nil && code == 200 {
		if c, ok := findMetric(body, name); ok {
			return c
		}
		errs = append(errs, fmt.Sprintf("metrics: no counter %q", name))
	} else {
		errs = append(errs, fmt.Sprintf("metrics: %d %v", code, err))
	}
	t.Fatalf("read counter %s: %s", name, strings.Join(errs, "; "))
	return 0
}

// findCounter looks for {"name": name, "value": N} or "name": N anywhere
// in a decoded JSON document.
func findCounter(v any, name string) (uint64, bool) {
	switch v := v.(type) {
	case map[string]any:
		if n, ok := v["name"].(string); ok && n == name {
			if c, ok := number(v["value"]); ok {
				return c, true
			}
		}
		for k, x := range v {
			if k == name {
				if c, ok := number(x); ok {
					return c, true
				}
			}
			if c, ok := findCounter(x, name); ok {
				return c, true
			}
		}
	case []any:
		for _, x := range v {
			if c, ok := findCounter(x, name); ok {
				return c, true
			}
		}
	}
	return 0, false
}

func number(v any) (uint64, bool) {
	switch v := v.(type) {
	case float64:
		return uint64(v), true
	case string: // protojson writes 64-bit integers as strings
		n, err := strconv.ParseUint(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// findMetric sums the samples of Prometheus text that carry name as a
// label value (reason="no-route") or, with dashes as underscores, in the
// metric name.
func findMetric(body []byte, name string) (uint64, bool) {
	under := strings.ReplaceAll(name, "-", "_")
	var sum float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series := line[:i]
		metric, labels, _ := strings.Cut(series, "{")
		if !strings.Contains(labels, `"`+name+`"`) && !strings.HasSuffix(metric, under) && !strings.HasSuffix(metric, under+"_total") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return uint64(sum), found
}

// portUp reports whether xvsd shows port as up, from `xvsctl -o json show
// ports`.
func portUp(t *testing.T, l *lab.Lab, node, port string) (up, found bool) {
	t.Helper()
	out, err := xvsctl(t, l, node, "-o", "json", "show", "ports")
	if err != nil {
		t.Fatalf("xvsctl show ports: %v: %s", err, out)
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("xvsctl show ports: %v: %s", err, out)
	}
	return findPort(v, port)
}

func findPort(v any, name string) (up, found bool) {
	switch v := v.(type) {
	case map[string]any:
		if n, ok := v["name"].(string); ok && n == name {
			u, _ := v["up"].(bool)
			return u, true
		}
		for _, x := range v {
			if u, ok := findPort(x, name); ok {
				return u, true
			}
		}
	case []any:
		for _, x := range v {
			if u, ok := findPort(x, name); ok {
				return u, true
			}
		}
	}
	return false, false
}

// xdpAttached returns the lines of `ip -d link` in ns that show an XDP
// program.
func xdpAttached(t *testing.T, l *lab.Lab, ns string) []string {
	t.Helper()
	out, err := l.Exec(ns, "ip", "-d", "link", "show")
	if err != nil {
		t.Fatalf("ip -d link: %v", err)
	}
	var xdp []string
	var cur string
	for _, line := range strings.Split(out, "\n") {
		if line != "" && line[0] != ' ' {
			cur = strings.Fields(line)[1]
		}
		f := strings.Fields(line)
		for _, w := range f {
			if w == "xdp" || w == "xdpgeneric" || w == "xdpdrv" || w == "xdpoffload" || strings.HasPrefix(w, "prog/xdp") {
				xdp = append(xdp, cur+" "+strings.TrimSpace(line))
				break
			}
		}
	}
	return xdp
}

// eventually retries f until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func execOut(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}
