package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/kube/kubetest"
)

func writeKubeconfig(t *testing.T, rc *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData, TLSServerName: rc.ServerName}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: rc.BearerToken}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func kubeDaemonConfig(t *testing.T, kubeconfig string) *config.Config {
	t.Helper()
	f := &config.File{
		APISocket: filepath.Join(t.TempDir(), "xvsd.sock"), MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0",
		StateFile:  filepath.Join(t.TempDir(), "state.json"),
		Ports:      []config.Port{{Name: "veth1", Kind: "pod", Addresses: []string{"10.244.0.5/32"}}},
		Kubernetes: &config.Kubernetes{Kubeconfig: kubeconfig, Node: "n1"},
	}
	c, err := f.Resolve(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitMetric polls /metrics until it has the line.
func waitMetric(t *testing.T, d *Daemon, line string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		_, body = get(t, "http://"+d.MetricsAddr()+"/metrics")
		if strings.Contains(body, line+"\n") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/metrics never had %q; kube lines:\n%s", line, grepLines(body, "xvs_kube"))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestKubeUnreachable: with the API server unreachable at start, xvsd
// starts, is ready (it forwards), and says it is neither connected nor
// synced.
func TestKubeUnreachable(t *testing.T) {
	_, newSw := newFake(t)
	kc := writeKubeconfig(t, &rest.Config{Host: "https://127.0.0.1:1", BearerToken: "x"})
	d, err := New(kubeDaemonConfig(t, kc), newSw, slog.New(slog.DiscardHandler), "v-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if code, _ := get(t, "http://"+d.HealthAddr()+"/readyz"); code != 200 {
		t.Errorf("readyz = %d with the API server unreachable, want 200: forwarding goes on", code)
	}
	waitMetric(t, d, "xvs_kube_connected 0")
	waitMetric(t, d, "xvs_kube_synced 0")
	if st := d.Kube().Status(); st.Connected || st.Synced || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestKubeSynced: against a real kube-apiserver the agent connects and
// syncs, and /metrics says so.
func TestKubeSynced(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	s := kubetest.Start(t)
	_, newSw := newFake(t)
	d, err := New(kubeDaemonConfig(t, writeKubeconfig(t, s.Config)), newSw, slog.New(slog.DiscardHandler), "v-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitMetric(t, d, "xvs_kube_connected 1")
	waitMetric(t, d, "xvs_kube_synced 1")
	waitMetric(t, d, "xvs_kube_resyncs_total 1")
	c, err := api.Dial(d.cfg.APISocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	js, err := c.KubeStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Node              string
		Connected, Synced bool
	}
	if err := json.Unmarshal(js, &st); err != nil || st.Node != "n1" || !st.Connected || !st.Synced {
		t.Errorf("KubeStatus = %s (%v)", js, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
