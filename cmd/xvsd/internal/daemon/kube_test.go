package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/fib"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
	"github.com/xvs-project/xvs/kube/kubetest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
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

// routingFake is the fake switch with the route entry point the CNI
// server needs.
type routingFake struct {
	*fakeSwitch
	mu     sync.Mutex
	routes map[netip.Prefix]bool // origin ipam
}

func (f *routingFake) ApplyRoutes(_ fib.Origin, adds []spec.Route, dels []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range adds {
		f.routes[r.Prefix] = true
	}
	for _, p := range dels {
		delete(f.routes, p)
	}
	return nil
}

func kubeIPAMDaemon(t *testing.T, kubeconfig string) (*Daemon, *routingFake) {
	t.Helper()
	fs, _ := newFake(t)
	rf := &routingFake{fakeSwitch: fs, routes: map[netip.Prefix]bool{}}
	cfg := kubeDaemonConfig(t, kubeconfig)
	cfg.IPAM = &config.IPAMConfig{Store: filepath.Join(t.TempDir(), "ipam.db"), Node: "n1"}
	d, err := New(cfg, func(vswitch.Config, *slog.Logger) (Switch, error) { return rf, nil }, slog.New(slog.DiscardHandler), "v-test")
	if err != nil {
		t.Fatal(err)
	}
	return d, rf
}

func cniStatus(t *testing.T, d *Daemon) *xvspb.CNIError {
	t.Helper()
	c, err := api.Dial(d.cfg.APISocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.CNI().CNIStatus(context.Background(), &xvspb.CNIStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetError()
}

// TestKubeIPAMUnreachable: with a kubernetes: section and the API server
// unreachable, the CNI server is not ready (STATUS 50, ADD try again
// later) and no local store is opened, while the switch forwards.
func TestKubeIPAMUnreachable(t *testing.T) {
	kc := writeKubeconfig(t, &rest.Config{Host: "https://127.0.0.1:1", BearerToken: "x"})
	d, _ := kubeIPAMDaemon(t, kc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if code, _ := get(t, "http://"+d.HealthAddr()+"/readyz"); code != 200 {
		t.Errorf("readyz = %d, want 200", code)
	}
	if e := cniStatus(t, d); e.GetCode() != 50 || !strings.Contains(e.GetDetails(), "not synced") {
		t.Errorf("STATUS = %v, want code 50 saying the store has not synced", e)
	}
	c, err := api.Dial(d.cfg.APISocket)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.CNI().CNIAdd(ctx, &xvspb.CNIRequest{ContainerId: "c1", Ifname: "eth0", Netns: "/proc/self/ns/net"})
	c.Close()
	if err != nil || r.GetError().GetCode() != 11 {
		t.Errorf("ADD = %v, %v; want code 11 (try again later)", r, err)
	}
	if _, err := os.Stat(d.cfg.IPAM.Store); !os.IsNotExist(err) {
		t.Errorf("a local IPAM store was opened: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestKubeIPAMSynced: against a real kube-apiserver the CNI server gets
// ready once the store synced; its pools are the IPPool objects, and
// it is not ready while there is none.
func TestKubeIPAMSynced(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	s := kubetest.Start(t)
	d, _ := kubeIPAMDaemon(t, writeKubeconfig(t, s.Config))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.CNIReady():
	case <-time.After(60 * time.Second):
		t.Fatal("the CNI server never got ready")
	}
	if e := cniStatus(t, d); e.GetCode() != 50 || !strings.Contains(e.GetMsg()+e.GetDetails(), "no enabled IP pool") {
		t.Errorf("STATUS without IPPools = %v, want 50: no enabled IP pool", e)
	}
	xc, err := client.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xc.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p4"}, Spec: xvsv1.IPPoolSpec{CIDR: "198.18.64.0/24"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e := cniStatus(t, d); e != nil; e = cniStatus(t, d) {
		if time.Now().After(deadline) {
			t.Fatalf("STATUS with an IPPool: %v", e)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c, err := api.Dial(d.cfg.APISocket)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.CNI().ListPools(ctx, &xvspb.ListPoolsRequest{})
	c.Close()
	if err != nil || len(pr.GetPools()) != 1 || pr.GetPools()[0].GetName() != "p4" {
		t.Errorf("ListPools = %v, %v; want the IPPool p4", pr, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
