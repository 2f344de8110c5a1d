package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"gopkg.in/yaml.v3"

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

// BGPConfigurer is the speaker's run-time reconfiguration; *bgp.Speaker
// is one.
type BGPConfigurer interface {
	Peers() []bgp.Peer
	SetPeers(ctx context.Context, peers []bgp.Peer) error
	AddPeer(ctx context.Context, p bgp.Peer) error
	DeletePeer(ctx context.Context, a netip.Addr) error
	SetMesh(ctx context.Context, enabled bool, members []netip.Addr) error
}

// bgpServer implements xvspb.BGPServer; sp is nil without BGP.
type bgpServer struct {
	xvspb.UnimplementedBGPServer
	sp  BGPSpeaker
	cfg BGPConfigurer
	// advertise replaces the node's static prefixes (the daemon's, which
	// blackholes them too); nil refuses SetBGPAdvertised.
	advertise func([]netip.Prefix) error
}

// RegisterBGP adds the BGP service, over sp (nil: xvsd runs without BGP,
// and the service says so); advertise replaces the node's static
// advertised prefixes (nil: not offered). Call it before Serve.
func (s *Server) RegisterBGP(sp *bgp.Speaker, advertise func([]netip.Prefix) error) {
	b := &bgpServer{advertise: advertise}
	if sp != nil {
		b.sp, b.cfg = sp, sp
	}
	xvspb.RegisterBGPServer(s.grpc, b)
}

var errNoBGPConfig = status.Error(codes.FailedPrecondition, "bgp is not configured (no bgp: section in xvsd's config)")

// changeErr maps a reconfiguration error: bad input is InvalidArgument
// (the message names the field and value), an unknown peer NotFound.
func changeErr(err error) error {
	var ce *bgp.ConfigError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bgp.ErrNoSuchPeer):
		return status.Error(codes.NotFound, err.Error())
	case errors.As(err, &ce):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Errorf(codes.Internal, "bgp: %v", err)
}

func (b *bgpServer) ListBGPPeers(context.Context, *xvspb.ListBGPPeersRequest) (*xvspb.ListBGPPeersResponse, error) {
	if b.cfg == nil {
		return &xvspb.ListBGPPeersResponse{}, nil
	}
	ps := b.cfg.Peers()
	for i := range ps {
		ps[i].Password = "" // never read back
	}
	y, err := yaml.Marshal(ps)
	if err != nil {
		return nil, err
	}
	return &xvspb.ListBGPPeersResponse{Enabled: true, PeersYaml: y}, nil
}

func (b *bgpServer) SetBGPPeers(ctx context.Context, req *xvspb.SetBGPPeersRequest) (*xvspb.BGPChangeResponse, error) {
	if b.cfg == nil {
		return nil, errNoBGPConfig
	}
	var ps []bgp.Peer
	if err := yaml.Unmarshal(req.GetPeersYaml(), &ps); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "peers: %v", err)
	}
	return &xvspb.BGPChangeResponse{}, changeErr(b.cfg.SetPeers(ctx, ps))
}

func (b *bgpServer) AddBGPPeer(ctx context.Context, req *xvspb.AddBGPPeerRequest) (*xvspb.BGPChangeResponse, error) {
	if b.cfg == nil {
		return nil, errNoBGPConfig
	}
	var p bgp.Peer
	if err := yaml.Unmarshal(req.GetPeerYaml(), &p); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "peer: %v", err)
	}
	return &xvspb.BGPChangeResponse{}, changeErr(b.cfg.AddPeer(ctx, p))
}

func (b *bgpServer) DeleteBGPPeer(ctx context.Context, req *xvspb.DeleteBGPPeerRequest) (*xvspb.BGPChangeResponse, error) {
	if b.cfg == nil {
		return nil, errNoBGPConfig
	}
	a, err := netip.ParseAddr(req.GetAddress())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "address %q: not an IP address", req.GetAddress())
	}
	return &xvspb.BGPChangeResponse{}, changeErr(b.cfg.DeletePeer(ctx, a))
}

func (b *bgpServer) SetBGPMesh(ctx context.Context, req *xvspb.SetBGPMeshRequest) (*xvspb.BGPChangeResponse, error) {
	if b.cfg == nil {
		return nil, errNoBGPConfig
	}
	var ms []netip.Addr
	for i, m := range req.GetMembers() {
		a, err := netip.ParseAddr(m)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "members[%d] %q: not an IP address", i, m)
		}
		ms = append(ms, a)
	}
	return &xvspb.BGPChangeResponse{}, changeErr(b.cfg.SetMesh(ctx, req.GetEnabled(), ms))
}

func (b *bgpServer) SetBGPAdvertised(_ context.Context, req *xvspb.SetBGPAdvertisedRequest) (*xvspb.BGPChangeResponse, error) {
	if b.advertise == nil {
		return nil, errNoBGPConfig
	}
	var ps []netip.Prefix
	for i, s := range req.GetPrefixes() {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() || p.Bits() == 0 {
			return nil, status.Errorf(codes.InvalidArgument, "prefixes[%d] %q: not a network prefix (host bits set, default route or invalid)", i, s)
		}
		if slices.Contains(ps, p) {
			return nil, status.Errorf(codes.InvalidArgument, "prefixes[%d] %q: listed twice", i, s)
		}
		ps = append(ps, p)
	}
	return &xvspb.BGPChangeResponse{}, changeErr(b.advertise(ps))
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

// BGPPeers lists the explicit peers (passwords left out).
func (c *Client) BGPPeers(ctx context.Context) ([]bgp.Peer, error) {
	resp, err := xvspb.NewBGPClient(c.conn).ListBGPPeers(ctx, &xvspb.ListBGPPeersRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	if !resp.GetEnabled() {
		return nil, ErrNoBGP
	}
	var ps []bgp.Peer
	if err := yaml.Unmarshal(resp.GetPeersYaml(), &ps); err != nil {
		return nil, fmt.Errorf("bgp peers: %w", err)
	}
	return ps, nil
}

// SetBGPPeers replaces the explicit peers (by difference: unchanged
// peers keep their sessions).
func (c *Client) SetBGPPeers(ctx context.Context, ps []bgp.Peer) error {
	y, err := yaml.Marshal(ps)
	if err != nil {
		return err
	}
	_, err = xvspb.NewBGPClient(c.conn).SetBGPPeers(ctx, &xvspb.SetBGPPeersRequest{PeersYaml: y})
	return c.wrap(err)
}

// AddBGPPeer adds p, or replaces the peer at its address.
func (c *Client) AddBGPPeer(ctx context.Context, p bgp.Peer) error {
	y, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	_, err = xvspb.NewBGPClient(c.conn).AddBGPPeer(ctx, &xvspb.AddBGPPeerRequest{PeerYaml: y})
	return c.wrap(err)
}

// DeleteBGPPeer removes the explicit peer at a.
func (c *Client) DeleteBGPPeer(ctx context.Context, a netip.Addr) error {
	_, err := xvspb.NewBGPClient(c.conn).DeleteBGPPeer(ctx, &xvspb.DeleteBGPPeerRequest{Address: a.String()})
	return c.wrap(err)
}

// SetBGPMesh turns the node-to-node mesh on or off and sets its members.
func (c *Client) SetBGPMesh(ctx context.Context, enabled bool, members []netip.Addr) error {
	req := &xvspb.SetBGPMeshRequest{Enabled: enabled}
	for _, m := range members {
		req.Members = append(req.Members, m.String())
	}
	_, err := xvspb.NewBGPClient(c.conn).SetBGPMesh(ctx, req)
	return c.wrap(err)
}

// SetBGPAdvertised replaces the node's static advertised prefixes.
func (c *Client) SetBGPAdvertised(ctx context.Context, ps []netip.Prefix) error {
	req := &xvspb.SetBGPAdvertisedRequest{}
	for _, p := range ps {
		req.Prefixes = append(req.Prefixes, p.String())
	}
	_, err := xvspb.NewBGPClient(c.conn).SetBGPAdvertised(ctx, req)
	return c.wrap(err)
}
