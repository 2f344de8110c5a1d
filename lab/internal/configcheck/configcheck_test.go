package configcheck

import (
	"testing"

	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/lab"
)

// TestLabConfigResolves fails when package config changes the file format
// under package lab.
func TestLabConfigResolves(t *testing.T) {
	top, err := lab.Plan(lab.Options{Prefix: "xltest", Nodes: 2, PodsPerNode: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range top.Nodes {
		c := resolve(t, top, n, 2)
		if got, want := len(c.Switch.Ports), 1+len(n.Pods); got != want {
			t.Errorf("%s: %d ports, want %d", n.Name, got, want)
		}
		if len(c.Switch.Routes) != 2 || c.Switch.Workers != 2 {
			t.Errorf("%s: %d routes, %d workers; want 2, 2", n.Name, len(c.Switch.Routes), c.Switch.Workers)
		}
		if c.APISocket != n.Socket || c.HealthAddr != n.Health || c.MetricsAddr != n.Metrics {
			t.Errorf("%s: endpoints %s %s %s", n.Name, c.APISocket, c.HealthAddr, c.MetricsAddr)
		}
	}
}

// TestLabVXLANConfigResolves: the same with VXLAN (the vxlan: section
// and a pair of vxlan routes per other node).
func TestLabVXLANConfigResolves(t *testing.T) {
	top, err := lab.Plan(lab.Options{Prefix: "xltest", Nodes: 3, PodsPerNode: 1, Encap: lab.EncapVXLAN})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range top.Nodes {
		c := resolve(t, top, n, 1)
		vx := 0
		for _, r := range c.Switch.Routes {
			if r.VXLAN != nil {
				vx++
			}
		}
		if c.Switch.VXLAN == nil || c.Switch.VXLAN.VNI != lab.VXLANVNI || vx != 4 {
			t.Errorf("%s: vxlan %+v, %d vxlan routes; want VNI %d, 4", n.Name, c.Switch.VXLAN, vx, lab.VXLANVNI)
		}
	}
}

// resolve writes node n's config as the lab does and resolves it as xvsd
// does.
func resolve(t *testing.T, top *lab.Topology, n *lab.Node, workers int) *config.Config {
	t.Helper()
	text := lab.XVSDConfig(top, n, workers)
	f, err := config.Parse(text)
	if err != nil {
		t.Fatalf("%s: %v\n%s", n.Name, err, text)
	}
	c, err := f.Resolve(config.Options{})
	if err != nil {
		t.Fatalf("%s: %v\n%s", n.Name, err, text)
	}
	return c
}

// TestDeployExampleResolves keeps deploy/xvsd.yaml valid.
func TestDeployExampleResolves(t *testing.T) {
	f, err := config.Load("../../../deploy/xvsd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Resolve(config.Options{}); err != nil {
		t.Fatal(err)
	}
}
