package cniserver

import (
	"context"
	"net/netip"

	"google.golang.org/grpc"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/ipam"
)

// GRPC serves the xvspb.CNI service over a Server.
type GRPC struct {
	xvspb.UnimplementedCNIServer
	s *Server
}

var _ xvspb.CNIServer = (*GRPC)(nil)

// Register adds the CNI service to g.
func (s *Server) Register(g *grpc.Server) { xvspb.RegisterCNIServer(g, &GRPC{s: s}) }

func pbErr(err error) *xvspb.CNIError {
	if err == nil {
		return nil
	}
	e := asError(CodeIOFailure, "xvsd", err)
	return &xvspb.CNIError{Code: e.Code, Msg: e.Msg, Details: e.Details}
}

func handle(id, ifname string) ipam.Handle { return ipam.Handle{ContainerID: id, IfName: ifname} }

// CNIAdd implements xvspb.CNIServer.
func (g *GRPC) CNIAdd(ctx context.Context, r *xvspb.CNIRequest) (*xvspb.CNIAddReply, error) {
	res, err := g.s.Add(ctx, AddRequest{
		Handle: handle(r.GetContainerId(), r.GetIfname()), NetNS: r.GetNetns(),
		Pod: r.GetPodName(), Namespace: r.GetPodNamespace(),
		PodAnnotations: r.GetPodAnnotations(), NSAnnotations: r.GetNamespaceAnnotations(),
		Mode: r.GetMode(), IPv4Pools: r.GetIpv4Pools(), IPv6Pools: r.GetIpv6Pools(),
		IPv4: r.GetIpv4(), IPv6: r.GetIpv6(), MTU: int(r.GetMtu()), Memif: r.GetMemif(),
	})
	if err != nil {
		return &xvspb.CNIAddReply{Error: pbErr(err)}, nil
	}
	rep := &xvspb.CNIAddReply{HostIfname: res.HostIf, HostMac: res.HostMAC, PodMac: res.PodMAC, Mtu: int32(res.MTU), Mode: res.Mode, ModeReason: res.ModeReason}
	rep.Ips = pbIPs(res.Addrs)
	for _, m := range res.Memifs {
		rep.Memifs = append(rep.Memifs, &xvspb.CNIMemif{Port: m.Port, SocketPath: m.Socket, Ips: pbIPs(m.Addrs)})
	}
	for _, rt := range res.Routes {
		rep.Routes = append(rep.Routes, &xvspb.CNIRoute{Dst: rt.Dst.String(), Gw: rt.Via.String()})
	}
	return rep, nil
}

// pbIPs are a pod interface's addresses with the gateway the switch
// answers for (169.254.1.1, fe80::ecee:eeff:feee:eeee).
func pbIPs(addrs []netip.Prefix) []*xvspb.CNIIP {
	var out []*xvspb.CNIIP
	for _, a := range addrs {
		gw := "169.254.1.1"
		if a.Addr().Is6() {
			gw = "fe80::ecee:eeff:feee:eeee"
		}
		out = append(out, &xvspb.CNIIP{Address: a.String(), Gateway: gw})
	}
	return out
}

// CNIDel implements xvspb.CNIServer.
func (g *GRPC) CNIDel(ctx context.Context, r *xvspb.CNIRequest) (*xvspb.CNIReply, error) {
	return &xvspb.CNIReply{Error: pbErr(g.s.Del(ctx, handle(r.GetContainerId(), r.GetIfname()), r.GetNetns()))}, nil
}

// CNICheck implements xvspb.CNIServer.
func (g *GRPC) CNICheck(ctx context.Context, r *xvspb.CNIRequest) (*xvspb.CNIReply, error) {
	return &xvspb.CNIReply{Error: pbErr(g.s.Check(ctx, handle(r.GetContainerId(), r.GetIfname()), r.GetNetns()))}, nil
}

// CNIGC implements xvspb.CNIServer.
func (g *GRPC) CNIGC(ctx context.Context, r *xvspb.CNIGCRequest) (*xvspb.CNIReply, error) {
	var valid []ipam.Handle
	for _, a := range r.GetValid() {
		valid = append(valid, handle(a.GetContainerId(), a.GetIfname()))
	}
	return &xvspb.CNIReply{Error: pbErr(g.s.GC(ctx, valid))}, nil
}

// CNIStatus implements xvspb.CNIServer.
func (g *GRPC) CNIStatus(ctx context.Context, _ *xvspb.CNIStatusRequest) (*xvspb.CNIReply, error) {
	return &xvspb.CNIReply{Error: pbErr(g.s.Status(ctx))}, nil
}

// ListPools implements xvspb.CNIServer.
func (g *GRPC) ListPools(ctx context.Context, _ *xvspb.ListPoolsRequest) (*xvspb.ListPoolsResponse, error) {
	pools, _, err := g.s.Usage(ctx)
	if err != nil {
		return nil, err
	}
	out := &xvspb.ListPoolsResponse{}
	for _, p := range pools {
		out.Pools = append(out.Pools, &xvspb.IPPool{
			Name: p.Name, Cidr: p.CIDR.String(), BlockSize: int32(p.EffectiveBlockSize()),
			Encapsulation: string(p.EffectiveEncapsulation()), NatOutgoing: p.NATOutgoing,
			NodeSelector: p.NodeSelector, Disabled: p.Disabled,
			Blocks: uint64(p.Blocks), Allocated: uint64(p.Allocated), Capacity: p.Size.String(),
		})
	}
	return out, nil
}

// ListBlocks implements xvspb.CNIServer.
func (g *GRPC) ListBlocks(ctx context.Context, _ *xvspb.ListBlocksRequest) (*xvspb.ListBlocksResponse, error) {
	_, blocks, err := g.s.Usage(ctx)
	if err != nil {
		return nil, err
	}
	out := &xvspb.ListBlocksResponse{}
	for _, b := range blocks {
		out.Blocks = append(out.Blocks, &xvspb.IPBlock{Cidr: b.CIDR.String(), Pool: b.Pool, Affinity: b.Affinity, Used: uint32(b.Allocated), Capacity: uint32(b.Capacity)})
	}
	return out, nil
}

// ListEndpoints implements xvspb.CNIServer.
func (g *GRPC) ListEndpoints(ctx context.Context, _ *xvspb.ListEndpointsRequest) (*xvspb.ListEndpointsResponse, error) {
	eps, err := g.s.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	out := &xvspb.ListEndpointsResponse{}
	for _, e := range eps {
		pe := &xvspb.Endpoint{Pod: e.Pod, Namespace: e.Namespace, Node: e.Node, Interface: e.HostIf,
			ContainerId: e.Handle.ContainerID, Ifname: e.Handle.IfName, Netns: e.NetNS, Mode: e.Mode, ModeReason: e.ModeReason, Up: e.Up}
		for _, a := range e.Addrs {
			pe.Addresses = append(pe.Addresses, a.String())
		}
		for _, m := range e.Memifs {
			pm := &xvspb.EndpointMemif{Port: m.Port, SocketPath: m.Socket, Up: m.Up}
			for _, a := range m.Addrs {
				pm.Addresses = append(pm.Addresses, a.String())
			}
			pe.Memifs = append(pe.Memifs, pm)
		}
		out.Endpoints = append(out.Endpoints, pe)
	}
	return out, nil
}

// Service is the xvspb.CNI service over s, for a caller that registers
// it itself (xvsd puts it behind a gate until its IPAM store syncs).
func (s *Server) Service() xvspb.CNIServer { return &GRPC{s: s} }
