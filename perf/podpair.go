package perf

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/xvs-project/xvs/perf/internal/xpnet"
	"github.com/xvs-project/xvs/perf/pktgen"
	"github.com/xvs-project/xvs/podnet"
)

// Calico's pod gateway: pods route through 169.254.1.1 and a link-local
// IPv6 gateway, both behind this MAC on the host end of their veth.
var (
	gatewayV4  = netip.MustParseAddr("169.254.1.1")
	gatewayV6  = netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")
	gatewayMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
)

// PodPair is two pods on one node: the client sends, the server receives,
// the node in between forwards.
type PodPair struct {
	Node                   string // node namespace
	ClientNS, ServerNS     string
	PodIf                  string // pod end of each veth, in its pod namespace
	ClientHost, ServerHost string // host ends, in Node
	ClientMAC, ServerMAC   net.HardwareAddr
	GatewayMAC             net.HardwareAddr // what a pod sends to
	ClientV4, ServerV4     netip.Addr
	ClientV6, ServerV6     netip.Addr
	// TxIO is how the generator sends in this pair; "" is pktgen.IOAuto.
	TxIO pktgen.IO

	close   func() error
	refresh func() error // when set, called before every run
}

// Close deletes the pair's namespaces.
func (p *PodPair) Close() error {
	if p == nil || p.close == nil {
		return nil
	}
	return p.close()
}

// Addrs returns the client and server addresses of a family (4 or 6).
func (p *PodPair) Addrs(family int) (client, server netip.Addr) {
	if family == 6 {
		return p.ClientV6, p.ServerV6
	}
	return p.ClientV4, p.ServerV4
}

// newPodPair builds client, node and server namespaces Calico-style with
// podnet: each pod has a /32 and a /128 on eth0, routes everything through
// the gateways, and holds a static neighbour entry for them, so it needs
// no answer from the node; the host ends have the gateway MAC. The node
// side is otherwise left bare for the forwarder to set up.
func newPodPair() (p *PodPair, err error) {
	if err := xpnet.Check(); err != nil {
		return nil, err
	}
	n := xpnet.New()
	p = &PodPair{
		PodIf: "eth0", ClientHost: "calic", ServerHost: "calis", GatewayMAC: gatewayMAC,
		close: n.Close,
	}
	p.ClientV4, p.ServerV4, p.ClientV6, p.ServerV6 = newPodAddrs()
	defer func() {
		if err != nil {
			n.Close()
			p = nil
		}
	}()
	if p.Node, err = n.NS("node"); err != nil {
		return
	}
	if p.ClientNS, err = n.NS("c"); err != nil {
		return
	}
	if p.ServerNS, err = n.NS("s"); err != nil {
		return
	}
	for _, pod := range []struct {
		ns, host string
		v4, v6   netip.Addr
		mac      *net.HardwareAddr
	}{{p.ClientNS, p.ClientHost, p.ClientV4, p.ClientV6, &p.ClientMAC}, {p.ServerNS, p.ServerHost, p.ServerV4, p.ServerV6, &p.ServerMAC}} {
		// The namespaces go with n.Close, and the veths with them.
		res, err := podnet.Setup(podnet.Calico(podnet.NamedPath(p.Node), pod.host, podnet.NamedPath(pod.ns), p.PodIf,
			[]netip.Prefix{netip.PrefixFrom(pod.v4, 32), netip.PrefixFrom(pod.v6, 128)}, 0))
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", pod.ns, err)
		}
		*pod.mac = res.PodMAC
	}
	return p, nil
}

func newPodAddrs() (c4, s4, c6, s6 netip.Addr) {
	return netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"),
		netip.MustParseAddr("fd00:18::1"), netip.MustParseAddr("fd00:18::2")
}
