package perf

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/xvs-project/xvs/perf/internal/xpnet"
	"github.com/xvs-project/xvs/perf/pktgen"
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

// newPodPair builds client, node and server namespaces Calico-style: each
// pod has a /32 and a /128 on eth0, routes everything through the gateways,
// and holds a static neighbour entry for them, so it needs no answer from
// the node. The node side is left bare for the forwarder to set up.
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
	if p.ClientMAC, _, err = n.Veth(p.ClientNS, p.PodIf, p.Node, p.ClientHost); err != nil {
		return
	}
	if p.ServerMAC, _, err = n.Veth(p.ServerNS, p.PodIf, p.Node, p.ServerHost); err != nil {
		return
	}
	for _, pod := range []struct {
		ns     string
		v4, v6 netip.Addr
	}{{p.ClientNS, p.ClientV4, p.ClientV6}, {p.ServerNS, p.ServerV4, p.ServerV6}} {
		for _, args := range [][]string{
			{"addr", "add", pod.v4.String() + "/32", "dev", "eth0"},
			{"-6", "addr", "add", pod.v6.String() + "/128", "dev", "eth0", "nodad"},
			{"route", "add", gatewayV4.String(), "dev", "eth0", "scope", "link"},
			{"route", "add", "default", "via", gatewayV4.String(), "dev", "eth0"},
			{"-6", "route", "add", "default", "via", gatewayV6.String(), "dev", "eth0"},
			{"neigh", "replace", gatewayV4.String(), "lladdr", gatewayMAC.String(), "dev", "eth0", "nud", "permanent"},
			{"-6", "neigh", "replace", gatewayV6.String(), "lladdr", gatewayMAC.String(), "dev", "eth0", "nud", "permanent"},
		} {
			if err = xpnet.IP(pod.ns, args...); err != nil {
				return nil, fmt.Errorf("pod %s: %w", pod.ns, err)
			}
		}
	}
	return p, nil
}

func newPodAddrs() (c4, s4, c6, s6 netip.Addr) {
	return netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"),
		netip.MustParseAddr("fd00:18::1"), netip.MustParseAddr("fd00:18::2")
}
