package perf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/xvs-project/xvs/lab"
)

// startXVSD builds a one-node, two-pod lab (the same Calico conventions
// as newPodPair) and starts xvsd on the node.
func startXVSD(ctx context.Context, x *xvsdFwd) (*PodPair, error) {
	if err := lab.Check(); err != nil {
		return nil, skipf("%v", err)
	}
	var b [3]byte
	rand.Read(b[:])
	l, err := lab.New(ctx, lab.Options{
		Prefix: "xp" + hex.EncodeToString(b[:]), Nodes: 1, PodsPerNode: 2, NoOutside: true,
		StaticNeighbors: true, XVSD: x.path, PodMode: x.podMode, XDPFastPath: x.fastPath,
		XVSDArgs: func(config string) []string { return append(lab.DefaultXVSDArgs(config), x.flags...) },
	})
	if err != nil {
		return nil, skipf("xvsd lab: %v", err)
	}
	t := l.T
	if len(t.Nodes) != 1 || len(t.Pods) != 2 {
		l.Close()
		return nil, fmt.Errorf("xvsd lab: want 1 node and 2 pods, got %d and %d", len(t.Nodes), len(t.Pods))
	}
	c, s := t.Pods[0], t.Pods[1]
	x.stop = l.Close
	return &PodPair{
		Node: t.Nodes[0].NS, ClientNS: c.NS, ServerNS: s.NS, PodIf: lab.PodIf,
		ClientHost: c.HostIf, ServerHost: s.HostIf, ClientMAC: c.MAC, ServerMAC: s.MAC,
		GatewayMAC: lab.GatewayMAC,
		ClientV4:   c.V4, ServerV4: s.V4, ClientV6: c.V6, ServerV6: s.V6,
	}, nil
}
