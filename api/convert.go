package api

import (
	"net"
	"net/netip"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/spec"
)

// MACString formats a MAC; the zero MAC (unknown) is "".
func MACString(m [6]byte) string {
	if m == ([6]byte{}) {
		return ""
	}
	return net.HardwareAddr(m[:]).String()
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// PortToPB converts a port status for the wire.
func PortToPB(ps spec.PortStatus) *xvspb.Port {
	p := portToPB(ps)
	p.Memif = memifToPB(ps.Memif)
	return p
}

func portToPB(ps spec.PortStatus) *xvspb.Port {
	return &xvspb.Port{
		Id: uint32(ps.ID), Name: ps.Name, Kind: ps.Kind.String(), Mode: ps.Mode.String(),
		Up: ps.Up, Reason: ps.Reason, Mac: MACString(ps.MAC), PeerMac: MACString(ps.PeerMAC),
		Addresses: prefixStrings(ps.Addrs), Mtu: uint32(ps.MTU), Worker: uint32(ps.Worker),
		Stats: &xvspb.PortStats{
			RxPackets: ps.Stats.RxPackets, RxBytes: ps.Stats.RxBytes,
			TxPackets: ps.Stats.TxPackets, TxBytes: ps.Stats.TxBytes,
			TxDrops:         ps.Stats.TxDrops,
			KernelRxDropped: ps.Stats.KernelRxDropped, KernelRxRingFull: ps.Stats.KernelRxRingFull,
			KernelFillEmpty: ps.Stats.KernelFillEmpty, KernelTxInvalid: ps.Stats.KernelTxInvalid,
		},
	}
}

// RouteToPB converts a route for the wire.
func RouteToPB(r spec.RouteInfo) *xvspb.Route {
	return &xvspb.Route{
		Table: r.Table, Prefix: r.Prefix.String(), Origin: r.Origin, Kind: r.Kind,
		Port: r.Port, Via: addrString(r.Via), NextHop: r.NextHop,
	}
}

// NeighborToPB converts a neighbour for the wire.
func NeighborToPB(n spec.Neighbor) *xvspb.Neighbor {
	return &xvspb.Neighbor{Port: n.Port, Address: addrString(n.Addr), Mac: MACString(n.MAC), State: n.State, Static: n.Static}
}

// portFromPB is the wire port config in the config file's terms, so both
// are validated by the same code.
func portFromPB(pc *xvspb.PortConfig) config.Port {
	if pc == nil {
		return config.Port{}
	}
	return config.Port{
		Name: pc.GetName(), Kind: pc.GetKind(), Mode: pc.GetMode(), Queue: int(pc.GetQueue()),
		Addresses: pc.GetAddresses(), PeerMAC: pc.GetPeerMac(), MTU: int(pc.GetMtu()),
		Memif: memifFromPB(pc.GetMemif()),
	}
}

func routeFromPB(r *xvspb.AddRouteRequest) config.Route {
	cr := config.Route{Prefix: r.GetPrefix(), Via: r.GetVia(), Port: r.GetPort(), Blackhole: r.GetBlackhole()}
	if r.GetVxlanRemote() != "" || r.GetVxlanMac() != "" {
		cr.VXLAN = &config.RouteVXLAN{Remote: r.GetVxlanRemote(), MAC: r.GetVxlanMac()}
	}
	return cr
}

// connected turns the live ports into what route validation needs: each
// port's name, kind and subnets.
func connected(ports []spec.PortStatus) []spec.PortConfig {
	out := make([]spec.PortConfig, len(ports))
	for i, p := range ports {
		out[i] = spec.PortConfig{Name: p.Name, Kind: p.Kind, Addrs: p.Addrs}
	}
	return out
}
