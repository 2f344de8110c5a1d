package lab

import (
	"bytes"
	"strings"
	"testing"
)

func TestMainUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := mainIO(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Errorf("no args: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := mainIO([]string{"lab", "frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: code %d", code)
	}
	if code := mainIO([]string{"sweep", "-prefix", "x"}, &out, &errb); code != 1 {
		t.Errorf("sweep with a bad prefix: code %d, want 1", code)
	}
}

// TestMainUpStatusDown runs the CLI's up, status and down in this process,
// without xvsd.
func TestMainUpStatusDown(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
	root := t.TempDir()
	prefix := NewPrefix()
	t.Cleanup(func() { SweepRoot(root, prefix) })
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := mainIO(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}
	out := run("up", "-prefix", prefix, "-state-root", root, "-no-xvsd", "-pods", "1")
	if !strings.Contains(out, prefix+"-pod1") {
		t.Errorf("up printed:\n%s", out)
	}
	env := run("status", "-state-root", root, "-o", "env")
	for _, want := range []string{"LAB_PREFIX=" + prefix, "LAB_POD1_NS=" + prefix + "-pod1", "LAB_POD1_V4=198.19.0.1",
		"LAB_POD1_V6=fd00:19::1", "LAB_NODE_NS=" + prefix + "-node", "LAB_OUTSIDE_NS=" + prefix + "-out"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("status -o env lacks %s:\n%s", want, env)
		}
	}
	if js := run("status", "-prefix", prefix, "-state-root", root, "-o", "json"); !strings.Contains(js, `"Prefix": "`+prefix+`"`) {
		t.Errorf("status -o json:\n%s", js)
	}
	run("down", "-state-root", root)
	if left, _ := ListNamespaces(prefix); len(left) != 0 {
		t.Errorf("namespaces left after down: %v", left)
	}
	if out := run("status", "-state-root", root); !strings.Contains(out, "no labs") {
		t.Errorf("status after down:\n%s", out)
	}
}

// TestStatusVXLAN: status and status -o env say a lab is a VXLAN lab and
// give each node's VTEP MAC; a natively routed lab's output has neither.
func TestStatusVXLAN(t *testing.T) {
	for _, encap := range []string{EncapVXLAN, ""} {
		top, err := Plan(Options{Prefix: "xltest", Nodes: 2, PodsPerNode: 1, Encap: encap})
		if err != nil {
			t.Fatal(err)
		}
		st := &State{Prefix: top.Prefix, Dir: "/nonexistent", Topology: top}
		var text, env bytes.Buffer
		printStatus(&text, st)
		printEnv(&env, st)
		got := text.String() + env.String()
		for _, want := range []string{"encap vxlan: VNI 4096", "  vtep     02:58:03:00:01:01\n",
			"LAB_ENCAP=vxlan\n", "LAB_NODE1_VTEP_MAC=02:58:03:00:00:01\n", "LAB_NODE2_VTEP_MAC=02:58:03:00:01:01\n"} {
			if has := strings.Contains(got, want); has != (encap == EncapVXLAN) {
				t.Errorf("encap %q: output has %q: %v\n%s", encap, want, has, got)
			}
		}
	}
}
