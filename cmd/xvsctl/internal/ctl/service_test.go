package ctl

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/spec"
)

func TestServiceParse(t *testing.T) {
	c, err := Parse([]string{"show", "conntrack", "tcp", "198.18.1.5", "port=80", "limit=5"})
	if err != nil || c.Op != OpShowConntrack || c.Svc.Limit != 5 || strings.Join(c.Svc.Filter, " ") != "tcp 198.18.1.5 port=80" {
		t.Errorf("show conntrack: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "conntrack", "port=x"}, `conntrack filter port "x": want 1-65535`},
		{[]string{"show", "conntrack", "limit=0"}, `limit "0": want a positive number`},
		{[]string{"show", "services", "x"}, `show services: unexpected argument "x"`},
		{[]string{"service", "set"}, `want -f FILE`},
		{[]string{"service", "set", "-f", "/nonexistent/x.yaml"}, `no such file`},
		{[]string{"service", "frob"}, `unknown subcommand "frob"`},
	} {
		if _, err := Parse(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "svc.yaml")
	os.WriteFile(good, []byte("services:\n  - name: web\n    clusterIPs: [198.19.128.10]\n    ports: [{port: 80, endpoints: [{addr: 198.18.1.5, port: 8080}]}]\n"), 0o600)
	c, err = Parse([]string{"service", "set", "-f", good})
	if err != nil || c.Op != OpServiceSet || len(c.Svc.Services) != 1 || c.Svc.Services[0].Ports[0].Endpoints[0].Addr != "198.18.1.5" {
		t.Errorf("service set: %+v, %v", c, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("services:\n  - name: web\n    clusterIP: 198.19.128.10\n"), 0o600)
	if _, err := Parse([]string{"service", "set", "-f", bad}); err == nil || !strings.Contains(err.Error(), "field clusterIP not found") {
		t.Errorf("unknown key: %v", err)
	}
	if c, err := Parse([]string{"service", "clear"}); err != nil || c.Op != OpServiceSet || c.Svc.Services != nil {
		t.Errorf("service clear: %+v, %v", c, err)
	}
}

func TestFormatServices(t *testing.T) {
	a := netip.MustParseAddr
	svcs := []api.SourcedService{{Source: "kubernetes", Service: spec.Service{
		Name: "default/web", ClusterIPs: []netip.Addr{a("198.19.128.10"), a("fd00:96::10")}, Affinity: true, AffinityTimeout: time.Minute,
		ExternalLocal: true,
		Ports: []spec.ServicePort{
			{Name: "http", Protocol: spec.ProtoTCP, Port: 80, NodePort: 30080, Endpoints: []spec.Endpoint{
				{Addr: a("198.18.1.5"), Port: 8080, Local: true, Ready: true, Serving: true},
				{Addr: a("fd00:10::5"), Port: 8080, Serving: true, Terminating: true},
			}},
			{Protocol: spec.ProtoUDP, Port: 53},
		}}}}
	nat := spec.NATConfig{Outgoing: []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18")}, Internal: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}}
	var b bytes.Buffer
	if err := FormatServices(&b, svcs, nat); err != nil {
		t.Fatal(err)
	}
	want := `NAME         SOURCE      CLUSTER-IPS                PORT         NODEPORT  AFFINITY       POLICY                 ENDPOINTS
default/web  kubernetes  198.19.128.10,fd00:96::10  http:80/TCP  30080     ClientIP/1m0s  int=Cluster,ext=Local  198.18.1.5:8080(local) [fd00:10::5]:8080(not-ready,serving,terminating)
default/web  kubernetes  198.19.128.10,fd00:96::10  53/UDP       -         ClientIP/1m0s  int=Cluster,ext=Local  none
natOutgoing: from 198.18.64.0/18, ports 61000-65535, never to 198.18.0.0/15
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	FormatServices(&b, nil, spec.NATConfig{})
	if b.String() != "no services\nnatOutgoing: off\n" {
		t.Errorf("empty: %q", b.String())
	}
}

func TestFormatConntrack(t *testing.T) {
	a := netip.MustParseAddr
	ct := &api.Conntrack{Truncated: true, Flows: []api.ConntrackFlow{
		{Proto: "tcp", State: "ESTABLISHED", Expires: 431999, Mark: 1,
			Orig:    api.FlowKey{Src: a("198.18.1.9"), Dst: a("198.19.128.10"), SPort: 40000, DPort: 80},
			Reply:   api.FlowKey{Src: a("198.18.1.5"), Dst: a("198.18.1.9"), SPort: 8080, DPort: 40000},
			Packets: [2]uint64{10, 8}, Bytes: [2]uint64{900, 12000}},
		{Proto: "icmpv6", State: "UNREPLIED", Embryonic: true, Expires: 30,
			Orig:  api.FlowKey{Src: a("fd00:10::9"), Dst: a("fd00:96::10"), SPort: 7, DPort: 7},
			Reply: api.FlowKey{Src: a("fd00:10::5"), Dst: a("fd00:10::9"), SPort: 7, DPort: 7}},
	}, Stats: conntrack.Stats{Entries: 2, Size: 131072, Created: 5, Expired: 3, DropEmbryonic: 1}}
	var b bytes.Buffer
	if err := FormatConntrack(&b, ct); err != nil {
		t.Fatal(err)
	}
	want := `PROTO   STATE        EXPIRES  ORIGINAL                              REPLY                                PACKETS  BYTES      MARK
tcp     ESTABLISHED  431999s  198.18.1.9:40000 -> 198.19.128.10:80  198.18.1.5:8080 -> 198.18.1.9:40000  10/8     900/12000  1
icmpv6  UNREPLIED*   30s      fd00:10::9 -> fd00:96::10 id=7        fd00:10::5 -> fd00:10::9 id=7        0/0      0/0        0
2 flows shown (more flows match: raise limit=N); table 2/131072, created 5, expired 3, evicted 0, deleted 0; new flows dropped: full 0, embryonic limit 1, conflict 0, no port 0
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
