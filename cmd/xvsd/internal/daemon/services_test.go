package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/kube/kubetest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// natSwitch is the fake switch with a NAT stage: it keeps what it is
// given and refuses two services of one name, as the switch refuses a
// clash.
type natSwitch struct {
	*fakeSwitch
	mu      sync.Mutex
	svcs    []spec.Service
	nat     spec.NATConfig
	natSets int
}

func (n *natSwitch) SetServices(s []spec.Service) error {
	names := map[string]bool{}
	for _, v := range s {
		if names[v.Name] {
			return errors.New("service " + v.Name + " twice")
		}
		names[v.Name] = true
	}
	n.mu.Lock()
	n.svcs = slices.Clone(s)
	n.mu.Unlock()
	return nil
}

func (n *natSwitch) Services() []spec.Service {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.svcs)
}

func (n *natSwitch) SetNATConfig(c spec.NATConfig) error {
	n.mu.Lock()
	n.nat, n.natSets = c, n.natSets+1
	n.mu.Unlock()
	return nil
}

func (n *natSwitch) NATConfig() spec.NATConfig   { n.mu.Lock(); defer n.mu.Unlock(); return n.nat }
func (n *natSwitch) Conntrack() *conntrack.Table { return nil }

func (n *natSwitch) names() []string {
	var out []string
	for _, s := range n.Services() {
		out = append(out, s.Name)
	}
	return out
}

func TestDaemonServices(t *testing.T) {
	fs, _ := newFake(t)
	ns := &natSwitch{fakeSwitch: fs}
	newSw := func(cfg vswitch.Config, log *slog.Logger) (Switch, error) { return ns, nil }
	f := &config.File{
		APISocket: t.TempDir() + "/xvsd.sock", MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0", StateFile: t.TempDir() + "/state.json",
		Ports: []config.Port{{Name: "eth0", Kind: "uplink", Addresses: []string{"198.18.0.1/24"}}},
		Services: []config.Service{{Name: "file-web", ClusterIPs: []string{"198.19.128.10"},
			Ports: []config.ServicePort{{Port: 80, Endpoints: []config.ServiceEndpoint{{Addr: "198.18.1.5", Port: 8080}}}}}},
		NAT: &config.NAT{Internal: []string{"198.19.128.0/20"}},
	}
	cfg, err := f.Resolve(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, newSw, slog.New(slog.DiscardHandler), "v-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	if got := ns.names(); !slices.Equal(got, []string{"file-web"}) {
		t.Errorf("at start the switch has %v, want the file's service", got)
	}
	if ns.natSets != 0 {
		t.Errorf("no natOutgoing pool, yet SetNATConfig was called (%+v)", ns.nat)
	}

	c, err := api.Dial(cfg.APISocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	apiSvc := config.Service{Name: "api-dns", ClusterIPs: []string{"fd00:96::53"}, Ports: []config.ServicePort{{Protocol: "UDP", Port: 53}}}
	if err := c.SetServices(actx, []config.Service{apiSvc}); err != nil {
		t.Fatal(err)
	}
	if err := (kubeSvcSink{d.svc}).SetServices([]spec.Service{{Name: "default/kubernetes"}}); err != nil {
		t.Fatal(err)
	}
	if got := ns.names(); !slices.Equal(got, []string{"file-web", "api-dns", "default/kubernetes"}) {
		t.Errorf("switch has %v, want file, API and Kubernetes services", got)
	}
	// A clash with another source is refused and changes nothing.
	clash := apiSvc
	clash.Name = "file-web"
	if err := c.SetServices(actx, []config.Service{clash}); err == nil {
		t.Error("a clash with the file's service was accepted")
	}
	all, _, err := c.ListServices(actx)
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, s := range all {
		srcs = append(srcs, s.Name+"@"+s.Source)
	}
	if !slices.Equal(srcs, []string{"file-web@file", "api-dns@api", "default/kubernetes@kubernetes"}) {
		t.Errorf("ListServices: %v", srcs)
	}

	// An IPPool with natOutgoing from the API turns SNAT on; the pools,
	// the nat: section's prefixes and the uplink's subnet are internal.
	pool := ipam.Pool{Name: "p4", CIDR: netip.MustParsePrefix("198.18.64.0/18"), NATOutgoing: true}
	if err := (kubePools{d}).SetPools(ctx, []ipam.Pool{pool}); err != nil {
		t.Fatal(err)
	}
	n := ns.NATConfig()
	want := spec.NATConfig{Outgoing: []netip.Prefix{pool.CIDR},
		Internal: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24"), pool.CIDR, netip.MustParsePrefix("198.19.128.0/20")}}
	if !slices.Equal(n.Outgoing, want.Outgoing) || !slices.Equal(n.Internal, want.Internal) {
		t.Errorf("NAT %+v, want %+v", n, want)
	}
	// The same pools again: no new SetNATConfig; the pool gone: SNAT off.
	sets := ns.natSets
	(kubePools{d}).SetPools(ctx, []ipam.Pool{pool})
	if ns.natSets != sets {
		t.Error("unchanged pools set the NAT config again")
	}
	(kubePools{d}).SetPools(ctx, nil)
	if n := ns.NATConfig(); len(n.Outgoing) != 0 {
		t.Errorf("pool removed, NAT still %+v", n)
	}
}

// TestKubeServices: with a kubernetes: section and a switch with a NAT
// stage, the cluster's Services reach the switch: the API server's own
// default/kubernetes, with its endpoint, next to the file's service.
func TestKubeServices(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	s := kubetest.Start(t)
	fs, _ := newFake(t)
	ns := &natSwitch{fakeSwitch: fs}
	newSw := func(cfg vswitch.Config, log *slog.Logger) (Switch, error) { return ns, nil }
	cfg := kubeDaemonConfig(t, writeKubeconfig(t, s.Config))
	cfg.Services = []spec.Service{{Name: "file-web"}}
	d, err := New(cfg, newSw, slog.New(slog.DiscardHandler), "v-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		svcs := ns.Services()
		if len(svcs) == 2 && svcs[0].Name == "file-web" && svcs[1].Name == "default/kubernetes" &&
			len(svcs[1].Ports) == 1 && len(svcs[1].Ports[0].Endpoints) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("switch has %+v, want file-web and default/kubernetes with its endpoint", svcs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitMetric(t, d, "xvs_kube_services 1")
	waitMetric(t, d, "xvs_kube_service_ports_skipped_total 0")
}
