package deploy_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/deploy"
	"github.com/xvs-project/xvs/kube/kubetest"
)

// TestRenderConfig runs the DaemonSet's render-xvsd-config script in a
// network namespace shaped like a node (an uplink with an IPv4 and an
// IPv6 address, default routes via a global and a link-local gateway)
// and checks that xvsd's own config parser accepts what it writes.
func TestRenderConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	docs, err := kubetest.DecodeFile(deploy.FS, "k8s/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cm := docs[0].Obj.(*corev1.ConfigMap)
	dir := t.TempDir()
	script := filepath.Join(dir, "render-xvsd-config")
	base := filepath.Join(dir, "xvsd-base.yaml")
	for p, data := range map[string]string{script: cm.Data["render-xvsd-config"], base: cm.Data["xvsd-base.yaml"]} {
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var b [4]byte
	rand.Read(b[:])
	ns := "xk8s-" + hex.EncodeToString(b[:])
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	run("-n", ns, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	run("-n", ns, "link", "set", "up1", "up")
	run("-n", ns, "link", "set", "up0", "up")
	run("-n", ns, "addr", "add", "198.18.7.2/24", "dev", "up0")
	run("-n", ns, "addr", "add", "fd00:18:7::2/64", "dev", "up0", "nodad")
	run("-n", ns, "route", "add", "default", "via", "198.18.7.1", "dev", "up0")
	run("-n", ns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "up0")

	render := func(hostIPs string) (string, error) {
		out := filepath.Join(dir, "xvsd.yaml")
		os.Remove(out)
		cmd := exec.Command("ip", "netns", "exec", ns, "/bin/sh", script, out)
		cmd.Env = append(os.Environ(), "HOST_IPS="+hostIPs, "XVSD_BASE="+base)
		msg, err := cmd.CombinedOutput()
		if err != nil {
			return string(msg), err
		}
		data, err := os.ReadFile(out)
		return string(data), err
	}

	got, err := render("198.18.7.2,fd00:18:7::2")
	if err != nil {
		t.Fatalf("render: %v: %s", err, got)
	}
	f, err := config.Parse([]byte(got))
	if err != nil {
		t.Fatalf("rendered config:\n%s\n%v", got, err)
	}
	// The base's kubernetes: section is in-cluster, as in xvsd's pod.
	t.Setenv("KUBERNETES_SERVICE_HOST", "198.19.128.1")
	if _, err := f.Resolve(config.Options{}); err != nil {
		t.Fatalf("rendered config:\n%s\n%v", got, err)
	}
	wantPorts := []config.Port{{Name: "up0", Kind: "uplink", Mode: "auto", Addresses: []string{"198.18.7.2/24", "fd00:18:7::2/64"}}}
	if diff := cmp.Diff(wantPorts, f.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	wantRoutes := []config.Route{{Prefix: "0.0.0.0/0", Via: "198.18.7.1"}, {Prefix: "::/0", Via: "fe80::1", Port: "up0"}}
	if diff := cmp.Diff(wantRoutes, f.Routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if f.VXLAN == nil || f.HealthAddr != "127.0.0.1:9099" {
		t.Errorf("base settings lost: vxlan %v health_addr %q", f.VXLAN, f.HealthAddr)
	}

	// A node address no interface holds: the init container fails, saying so.
	msg, err := render("198.18.9.9")
	if err == nil || !strings.Contains(msg, "no interface holds 198.18.9.9") {
		t.Errorf("render with an unknown address: err %v, output %q; want a failure naming it", err, msg)
	}
}
