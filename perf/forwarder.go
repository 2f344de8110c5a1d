package perf

import (
	"context"
	"errors"
	"fmt"

	"github.com/xvs-project/xvs/perf/internal/xpnet"
)

// ErrSkip wraps the reason a forwarder cannot run here; the scenario
// reports it and goes on without that forwarder.
var ErrSkip = errors.New("skipped")

func skipf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSkip, fmt.Sprintf(format, args...))
}

// Forwarder is one dataplane between two pods on a node.
type Forwarder interface {
	Name() string
	// Start builds the forwarder's own pod pair and makes its node
	// forward between the pods.
	Start(ctx context.Context) (*PodPair, error)
	// Stop ends what Start started and deletes the pod pair.
	Stop() error
}

// Kernel is Linux routing in the node namespace, Calico's default
// dataplane: forwarding on, a host route and a permanent neighbour per pod,
// the host ends of the veths answering to the gateway MAC.
func Kernel() Forwarder { return &kernelFwd{} }

type kernelFwd struct{ pp *PodPair }

func (k *kernelFwd) Name() string { return "kernel" }

// kernelPodPair builds a pod pair routed by the node's kernel: the kernel
// forwarder itself, and the base the XDP forwarder attaches its program to.
func kernelPodPair() (*PodPair, error) {
	pp, err := newPodPair()
	if err != nil {
		if errors.Is(err, xpnet.ErrNotRoot) {
			return nil, skipf("%v", err)
		}
		return nil, err
	}
	if err := kernelRoute(pp); err != nil {
		pp.Close()
		return nil, err
	}
	return pp, nil
}

func (k *kernelFwd) Start(ctx context.Context) (*PodPair, error) {
	pp, err := kernelPodPair()
	if err != nil {
		return nil, err
	}
	k.pp = pp
	return pp, nil
}

func kernelRoute(pp *PodPair) error {
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv6.conf.all.forwarding", "1"},
		{"net.ipv4.conf.all.rp_filter", "0"},
	} {
		if err := xpnet.Sysctl(pp.Node, kv[0], kv[1]); err != nil {
			return err
		}
	}
	for _, h := range []struct {
		dev    string
		mac    string
		v4, v6 string
	}{
		{pp.ClientHost, pp.ClientMAC.String(), pp.ClientV4.String(), pp.ClientV6.String()},
		{pp.ServerHost, pp.ServerMAC.String(), pp.ServerV4.String(), pp.ServerV6.String()},
	} {
		for _, args := range [][]string{
			{"route", "add", h.v4 + "/32", "dev", h.dev},
			{"-6", "route", "add", h.v6 + "/128", "dev", h.dev},
			{"neigh", "replace", h.v4, "lladdr", h.mac, "dev", h.dev, "nud", "permanent"},
			{"-6", "neigh", "replace", h.v6, "lladdr", h.mac, "dev", h.dev, "nud", "permanent"},
		} {
			if err := xpnet.IP(pp.Node, args...); err != nil {
				return fmt.Errorf("kernel forwarder: %w", err)
			}
		}
	}
	return nil
}

func (k *kernelFwd) Stop() error {
	err := k.pp.Close()
	k.pp = nil
	return err
}
