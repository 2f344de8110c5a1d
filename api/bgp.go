package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/bgp"
)

// BGPSpeaker is what the BGP service needs of the speaker; *bgp.Speaker
// is one.
type BGPSpeaker interface {
	Status(ctx context.Context) (bgp.Status, error)
	Routes(ctx context.Context, q bgp.RouteQuery) ([]bgp.RouteEntry, error)
}

// bgpServer implements xvspb.BGPServer; sp is nil without BGP.
type bgpServer struct {
	xvspb.UnimplementedBGPServer
	sp BGPSpeaker
}

// RegisterBGP adds the BGP service, over sp (nil: xvsd runs without BGP,
// and the service says so). Call it before Serve.
func (s *Server) RegisterBGP(sp *bgp.Speaker) {
	b := &bgpServer{}
	if sp != nil {
		b.sp = sp
	}
	xvspb.RegisterBGPServer(s.grpc, b)
}

func (b *bgpServer) NodeStatus(ctx context.Context, _ *xvspb.NodeStatusRequest) (*xvspb.NodeStatusResponse, error) {
	if b.sp == nil {
		return &xvspb.NodeStatusResponse{}, nil
	}
	st, err := b.sp.Status(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "bgp status: %v", err)
	}
	js, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return &xvspb.NodeStatusResponse{Enabled: true, StatusJson: js}, nil
}

func (b *bgpServer) BGPRoutes(ctx context.Context, req *xvspb.BGPRoutesRequest) (*xvspb.BGPRoutesResponse, error) {
	if b.sp == nil {
		return &xvspb.BGPRoutesResponse{}, nil
	}
	var q bgp.RouteQuery
	switch req.GetFamily() {
	case "":
	case "ipv4", "v4":
		q.Family = bgp.IPv4
	case "ipv6", "v6":
		q.Family = bgp.IPv6
	default:
		return nil, status.Errorf(codes.InvalidArgument, "family %q: want ipv4 or ipv6", req.GetFamily())
	}
	if p := req.GetPeer(); p != "" {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "peer %q: not an address", p)
		}
		q.Peer = a
	}
	q.Advertised = req.GetAdvertised()
	if q.Advertised && !q.Peer.IsValid() {
		return nil, status.Error(codes.InvalidArgument, "advertised: needs a peer")
	}
	rs, err := b.sp.Routes(ctx, q)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "bgp routes: %v", err)
	}
	if rs == nil {
		rs = []bgp.RouteEntry{}
	}
	js, err := json.Marshal(rs)
	if err != nil {
		return nil, err
	}
	return &xvspb.BGPRoutesResponse{Enabled: true, RoutesJson: js}, nil
}

// ErrNoBGP: xvsd runs without a bgp: section.
var ErrNoBGP = errors.New("xvsd runs without BGP (no bgp: section in its config)")

// BGPStatus asks for the speaker's status.
func (c *Client) BGPStatus(ctx context.Context) (bgp.Status, error) {
	resp, err := xvspb.NewBGPClient(c.conn).NodeStatus(ctx, &xvspb.NodeStatusRequest{})
	if err != nil {
		return bgp.Status{}, c.wrap(err)
	}
	if !resp.GetEnabled() {
		return bgp.Status{}, ErrNoBGP
	}
	var st bgp.Status
	if err := json.Unmarshal(resp.GetStatusJson(), &st); err != nil {
		return bgp.Status{}, fmt.Errorf("bgp status: %w", err)
	}
	return st, nil
}

// BGPRoutes lists the speaker's routes (see bgp.RouteQuery; family "",
// "ipv4" or "ipv6", peer "" for the node's best routes).
func (c *Client) BGPRoutes(ctx context.Context, family, peer string, advertised bool) ([]bgp.RouteEntry, error) {
	resp, err := xvspb.NewBGPClient(c.conn).BGPRoutes(ctx, &xvspb.BGPRoutesRequest{Family: family, Peer: peer, Advertised: advertised})
	if err != nil {
		return nil, c.wrap(err)
	}
	if !resp.GetEnabled() {
		return nil, ErrNoBGP
	}
	var rs []bgp.RouteEntry
	if err := json.Unmarshal(resp.GetRoutesJson(), &rs); err != nil {
		return nil, fmt.Errorf("bgp routes: %w", err)
	}
	return rs, nil
}
