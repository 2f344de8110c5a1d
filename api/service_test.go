package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/apitest"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/spec"
)

// svcBackend stands in for the daemon: it keeps the API's set (checking
// it as the switch does, service by service) next to a file service, and
// has a real conntrack table.
type svcBackend struct {
	api []spec.Service
	ct  *conntrack.Table
}

func (b *svcBackend) SetAPIServices(s []spec.Service) error {
	for _, v := range s {
		if errs := v.Validate(); len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	b.api = s
	return nil
}

func (b *svcBackend) AllServices() []api.SourcedService {
	out := []api.SourcedService{{Source: api.SourceFile, Service: spec.Service{Name: "file-svc",
		ClusterIPs: []netip.Addr{netipAddr("198.19.128.1")}, Ports: []spec.ServicePort{{Protocol: spec.ProtoUDP, Port: 53}}}}}
	for _, s := range b.api {
		out = append(out, api.SourcedService{Source: api.SourceAPI, Service: s})
	}
	return out
}

func (b *svcBackend) NATConfig() spec.NATConfig {
	return spec.NATConfig{Outgoing: []netip.Prefix{netipPrefix("198.18.64.0/18")}, PortMin: 61000, PortMax: 65535}
}

func (b *svcBackend) Conntrack() *conntrack.Table { return b.ct }

func serveServices(t *testing.T, be api.ServiceBackend) *api.Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xvsd.sock")
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(apitest.NewFake(), slog.New(slog.DiscardHandler), api.ServerOptions{})
	srv.RegisterServices(be)
	go srv.Serve(ln)
	c, err := api.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); srv.Stop(time.Second) })
	return c
}

func key4(src, dst string, sp, dp uint16) conntrack.Key {
	k := conntrack.Key{SPort: sp, DPort: dp, Proto: conntrack.ProtoTCP, Family: conntrack.IPv4}
	s, d := netipAddr(src).As4(), netipAddr(dst).As4()
	copy(k.Src[:], s[:])
	copy(k.Dst[:], d[:])
	return k
}

func TestServicesAPI(t *testing.T) {
	ct, err := conntrack.New(conntrack.Config{Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	be := &svcBackend{ct: ct}
	c := serveServices(t, be)
	ctx := context.Background()

	f := false
	in := []config.Service{{
		Name: "web", ClusterIPs: []string{"198.19.128.10", "fd00:96::10"}, SessionAffinity: "ClientIP", TimeoutSeconds: 60,
		ExternalTrafficPolicy: "Local",
		Ports: []config.ServicePort{{Name: "http", Port: 80, NodePort: 30080, Endpoints: []config.ServiceEndpoint{
			{Addr: "198.18.1.5", Port: 8080, Local: true},
			{Addr: "fd00:10::5", Port: 8080, Ready: &f, Terminating: true},
		}}},
	}}
	if err := c.SetServices(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, nat, err := c.ListServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Source != api.SourceFile || got[1].Source != api.SourceAPI {
		t.Fatalf("ListServices: %+v", got)
	}
	w := got[1].Service
	if w.Name != "web" || !w.Affinity || w.AffinityTimeout != time.Minute || !w.ExternalLocal || len(w.ClusterIPs) != 2 ||
		w.Ports[0].NodePort != 30080 || w.Ports[0].Protocol != spec.ProtoTCP || len(w.Ports[0].Endpoints) != 2 ||
		!w.Ports[0].Endpoints[0].Ready || !w.Ports[0].Endpoints[0].Local ||
		w.Ports[0].Endpoints[1].Ready || w.Ports[0].Endpoints[1].Serving || !w.Ports[0].Endpoints[1].Terminating {
		t.Errorf("web came back as %+v", w)
	}
	if len(nat.Outgoing) != 1 || nat.PortMin != 61000 {
		t.Errorf("nat %+v", nat)
	}

	// Bad input names the field and the value, as the file does.
	for _, tc := range []struct {
		svc  config.Service
		want string
	}{
		{config.Service{Name: "a", ClusterIPs: []string{"198.19.128.300"}, Ports: []config.ServicePort{{Port: 80}}}, `services[0].clusterIPs[0]: "198.19.128.300": not an IP address`},
		{config.Service{Name: "a", ClusterIPs: []string{"198.19.128.3"}, Ports: []config.ServicePort{{Port: 80, Protocol: "SCTP"}}}, `services[0].ports[0].protocol: "SCTP": not supported`},
		{config.Service{Name: "a", ClusterIPs: []string{"198.19.128.3"}, Ports: []config.ServicePort{{Port: 80, Endpoints: []config.ServiceEndpoint{{Addr: "fd00::1", Port: 1}}}}}, `services[0].ports[0].endpoints[0].addr: "fd00::1": no ClusterIP of its family`},
	} {
		err := c.SetServices(ctx, []config.Service{tc.svc})
		if api.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetServices(%+v): %v, want InvalidArgument with %q", tc.svc, err, tc.want)
		}
	}
	if got, _, _ := c.ListServices(ctx); len(got) != 2 {
		t.Errorf("a refused set changed the services: %+v", got)
	}

	// Conntrack: filter, limit, stats.
	now := ct.Now()
	var fl conntrack.Flow
	for i := range 3 {
		o := key4("198.18.1.9", "198.19.128.10", uint16(40000+i), 80)
		r := key4("198.18.1.5", "198.18.1.9", 8080, uint16(40000+i))
		if out := ct.Create(&o, &r, conntrack.SynSent, 7, now, &fl); out.String() == "" {
			t.Fatal("create")
		}
	}
	all, err := c.ShowConntrack(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Flows) != 3 || all.Stats.Entries != 3 || all.Stats.Created != 3 || all.Truncated {
		t.Fatalf("conntrack: %+v", all)
	}
	fw := all.Flows[0]
	if fw.Proto != "tcp" || fw.Orig.Dst != netipAddr("198.19.128.10") || fw.Reply.Src != netipAddr("198.18.1.5") || fw.Mark != 7 || fw.State != "SYN_SENT" {
		t.Errorf("flow %+v", fw)
	}
	one, err := c.ShowConntrack(ctx, []string{"tcp", "port=40001"}, 0)
	if err != nil || len(one.Flows) != 1 || one.Flows[0].Orig.SPort != 40001 {
		t.Errorf("filtered: %+v, %v", one, err)
	}
	lim, err := c.ShowConntrack(ctx, nil, 2)
	if err != nil || len(lim.Flows) != 2 || !lim.Truncated {
		t.Errorf("limit 2: %+v, %v", lim, err)
	}
	if _, err := c.ShowConntrack(ctx, []string{"port=http"}, 0); api.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `port "http"`) {
		t.Errorf("bad filter: %v", err)
	}
}

func TestServicesAPIWithout(t *testing.T) {
	c := serveServices(t, nil)
	if _, _, err := c.ListServices(context.Background()); api.Code(err) != codes.Unavailable {
		t.Errorf("no NAT stage: %v", err)
	}
	c2 := serveServices(t, &svcBackend{})
	if _, err := c2.ShowConntrack(context.Background(), nil, 0); !errors.Is(err, api.ErrNoConntrack) {
		t.Errorf("no table: %v", err)
	}
}
