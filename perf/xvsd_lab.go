package perf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/xvs-project/xvs/lab"
)

// startXVSD builds a one-node, two-pod lab (the same Calico conventions
// as newPodPair), or with x.nodes 2 two nodes of one pod each behind the
// lab's outside router (natively routed, or with x.encap through VXLAN
// tunnels), and starts xvsd on the nodes.
func startXVSD(ctx context.Context, x *xvsdFwd) (*PodPair, error) {
	o := lab.Options{
		Nodes: 1, PodsPerNode: 2, NoOutside: true,
		StaticNeighbors: true, XVSD: x.path, PodMode: x.podMode, UplinkMode: x.uplinkMode, XDPFastPath: x.fastPath,
		XVSDArgs: func(config string) []string { return append(lab.DefaultXVSDArgs(config), x.flags...) },
	}
	if x.nodes == 2 {
		o.Nodes, o.PodsPerNode, o.NoOutside, o.Encap = 2, 1, false, x.encap
		o.UplinkGRO = true
	}
	return startLab(ctx, o, nil, &x.stop)
}

// startLab builds the lab o describes, a client pod and a server pod, runs
// setup on it if given, and returns the pods as a pair; *stop tears the
// lab down.
func startLab(ctx context.Context, o lab.Options, setup func(*lab.Lab) error, stop *func() error) (*PodPair, error) {
	if err := lab.Check(); err != nil {
		return nil, skipf("%v", err)
	}
	var b [3]byte
	rand.Read(b[:])
	o.Prefix = "xp" + hex.EncodeToString(b[:])
	l, err := lab.New(ctx, o)
	if err != nil {
		return nil, skipf("lab: %v", err)
	}
	t := l.T
	if len(t.Nodes) != o.Nodes || len(t.Pods) != 2 {
		l.Close()
		return nil, fmt.Errorf("lab: want %d nodes and 2 pods, got %d and %d", o.Nodes, len(t.Nodes), len(t.Pods))
	}
	if setup != nil {
		if err := setup(l); err != nil {
			l.Close()
			return nil, err
		}
	}
	c, s := t.Pods[0], t.Pods[1]
	*stop = l.Close
	return &PodPair{
		Node: t.NodeByName(c.Node).NS, ClientNS: c.NS, ServerNS: s.NS, PodIf: lab.PodIf,
		ClientHost: c.HostIf, ServerHost: s.HostIf, ClientMAC: c.MAC, ServerMAC: s.MAC,
		GatewayMAC: lab.GatewayMAC,
		ClientV4:   c.V4, ServerV4: s.V4, ClientV6: c.V6, ServerV6: s.V6,
	}, nil
}
