package api_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/apitest"
	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/spec"
)

// TestStateSurvivesRestart adds a pod port and a route through one server,
// then starts a second server on a fresh dataplane from the same state file:
// the port comes back with its addresses, and so does the route. A port
// whose interface is gone by then is dropped from the state.
func TestStateSurvivesRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	ctx := context.Background()
	s1 := api.NewServer(apitest.NewFake(), nil, api.ServerOptions{StateFile: file})
	if err := s1.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("restore with nothing to restore created the state file (err %v)", err)
	}
	for _, p := range []*xvspb.PortConfig{
		{Name: "up0", Kind: "uplink", Addresses: []string{"198.18.0.1/24"}},
		{Name: "pod-a", Kind: "pod", Addresses: []string{"198.18.10.1/32", "fd00:10::1/128"}, PeerMac: "02:00:00:00:00:01"},
		{Name: "pod-gone", Kind: "pod", Addresses: []string{"198.18.10.9/32"}},
	} {
		if _, err := s1.AddPort(ctx, &xvspb.AddPortRequest{Port: p}); err != nil {
			t.Fatalf("add %s: %v", p.Name, err)
		}
	}
	if _, err := s1.AddRoute(ctx, &xvspb.AddRouteRequest{Prefix: "198.19.0.0/16", Via: "198.18.0.254"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.DelPort(ctx, &xvspb.DelPortRequest{Name: "up0"}); err != nil {
		t.Fatal(err)
	}

	// Restart: a new dataplane that has the uplink from its config file and
	// lost pod-gone's interface while xvsd was down.
	dp := apitest.NewFake()
	dp.Missing = map[string]bool{"pod-gone": true}
	if _, err := dp.AddPort(mustPort(t, "up0", "uplink", "198.18.0.1/24")); err != nil {
		t.Fatal(err)
	}
	s2 := api.NewServer(dp, nil, api.ServerOptions{StateFile: file})
	if err := s2.Restore(); err != nil {
		t.Fatal(err)
	}
	got := map[string][]netip.Prefix{}
	for _, p := range dp.Ports() {
		got[p.Name] = p.Addrs
	}
	if len(got["pod-a"]) != 2 || got["pod-a"][0] != netip.MustParsePrefix("198.18.10.1/32") {
		t.Errorf("pod-a after restart: %v, want its two addresses", got["pod-a"])
	}
	if _, ok := got["pod-gone"]; ok {
		t.Errorf("pod-gone was re-added though its interface is gone")
	}
	if _, ok := dp.LookupRoute(netip.MustParseAddr("198.19.1.1")); !ok {
		t.Errorf("static route not restored")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Ports map[string]json.RawMessage }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Ports["pod-gone"]; ok || st.Ports["pod-a"] == nil || len(st.Ports) != 1 {
		t.Errorf("state after restore has ports %s, want pod-a only", b)
	}
}

func mustPort(t *testing.T, name, kind, addr string) spec.PortConfig {
	t.Helper()
	k, _ := spec.ParsePortKind(kind)
	return spec.PortConfig{Name: name, Kind: k, Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}}
}
