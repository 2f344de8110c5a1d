package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestKubeStatusFormat(t *testing.T) {
	if _, err := Parse([]string{"kube", "status"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]string{"kube"}); err == nil || !strings.Contains(err.Error(), `only "kube status"`) {
		t.Errorf("kube alone: %v", err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	formatKube(&b, kubeStatus{Node: "n1", Connected: true, Synced: true, LastResync: now.Add(-90 * time.Second), Resyncs: 2, WatchErrors: 3,
		Objects: map[string]int{"nodes": 3, "ippools": 2}, ASNumber: 64512, MeshPeers: 2, VXLANRoutes: 4, Refused: []string{"ippool x: spec.cidr bad"}}, now)
	want := `Kubernetes node agent, node n1
  connected:    yes
  synced:       yes
  last resync:  2026-01-02T03:02:35Z (1m30s ago)
  resyncs:      2
  watch errors: 3
  BGP:          AS 64512, 2 mesh peers, 0 explicit peers
  VXLAN routes: 4
  objects seen: ippools=2 nodes=3
  refused:      ippool x: spec.cidr bad
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
