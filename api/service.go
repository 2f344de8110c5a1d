package api

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/spec"
)

// Service sources, as ListServices reports them.
const (
	SourceFile = "file"
	SourceAPI  = "api"
	SourceKube = "kubernetes"
)

// SourcedService is a service and where it came from.
type SourcedService struct {
	spec.Service
	Source string
}

// ServiceBackend is what the services API needs of xvsd: the daemon
// merges the file's, the API's and the Kubernetes agent's services into
// the switch's one set.
type ServiceBackend interface {
	// SetAPIServices replaces the services set through the API; an error
	// (validation, a clash with another source's) changes nothing.
	SetAPIServices([]spec.Service) error
	// AllServices returns every service of every source.
	AllServices() []SourcedService
	NATConfig() spec.NATConfig
	// Conntrack may return nil (no table allocated yet).
	Conntrack() *conntrack.Table
}

// DefaultConntrackLimit is ShowConntrack's limit when the request has none.
const DefaultConntrackLimit = 1000

// serviceServer implements xvspb.ServicesServer.
type serviceServer struct {
	xvspb.UnimplementedServicesServer
	s  *Server
	be ServiceBackend
}

// RegisterServices adds the services service over be (nil: every call
// answers Unavailable). Call it before Serve.
func (s *Server) RegisterServices(be ServiceBackend) {
	xvspb.RegisterServicesServer(s.grpc, &serviceServer{s: s, be: be})
}

var errNoServices = status.Error(codes.Unavailable, "this xvsd's dataplane has no NAT stage")

func (ss *serviceServer) SetServices(ctx context.Context, req *xvspb.SetServicesRequest) (*xvspb.SetServicesResponse, error) {
	if ss.be == nil {
		return nil, errNoServices
	}
	in := make([]config.Service, len(req.GetServices()))
	for i, p := range req.GetServices() {
		in[i] = ServiceFromPB(p)
	}
	svcs, errs := config.ResolveServices("services", in)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if err := ss.be.SetAPIServices(svcs); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ss.s.log.Info("services set", "count", len(svcs))
	return &xvspb.SetServicesResponse{}, nil
}

func (ss *serviceServer) ListServices(context.Context, *xvspb.ListServicesRequest) (*xvspb.ListServicesResponse, error) {
	if ss.be == nil {
		return nil, errNoServices
	}
	out := &xvspb.ListServicesResponse{}
	for _, s := range ss.be.AllServices() {
		p := ServiceToPB(s.Service)
		p.Source = s.Source
		out.Services = append(out.Services, p)
	}
	n := ss.be.NATConfig()
	out.Nat = &xvspb.NATConfig{Outgoing: prefixStrings(n.Outgoing), Internal: prefixStrings(n.Internal),
		PortMin: uint32(n.PortMin), PortMax: uint32(n.PortMax)}
	return out, nil
}

func (ss *serviceServer) ShowConntrack(_ context.Context, req *xvspb.ShowConntrackRequest) (*xvspb.ShowConntrackResponse, error) {
	if ss.be == nil {
		return nil, errNoServices
	}
	f, err := conntrack.ParseFilter(req.GetFilter())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "filter: "+err.Error())
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = DefaultConntrackLimit
	}
	t := ss.be.Conntrack()
	if t == nil {
		return &xvspb.ShowConntrackResponse{}, nil
	}
	out := &xvspb.ShowConntrackResponse{Enabled: true}
	t.Walk(t.Now(), func(e *conntrack.Entry) bool {
		if !f.Match(e) {
			return true
		}
		if len(out.Flows) == limit {
			out.Truncated = true
			return false
		}
		out.Flows = append(out.Flows, flowToPB(e))
		return true
	})
	st := t.Stats()
	out.Stats = &xvspb.ConntrackStats{
		Entries: st.Entries, Size: int64(st.Size), Created: st.Created, Existed: st.Existed, Expired: st.Expired,
		Evicted: st.Evicted, Deleted: st.Deleted, DropFull: st.DropFull, DropEmbryonic: st.DropEmbryonic,
		DropConflict: st.DropConflict, DropNoPort: st.DropNoPort, Stale: st.Stale,
	}
	return out, nil
}

func flowToPB(e *conntrack.Entry) *xvspb.ConntrackFlow {
	key := func(k conntrack.Key) *xvspb.ConntrackKey {
		return &xvspb.ConntrackKey{Proto: conntrack.ProtoName(k.Proto), Src: k.SrcAddr().String(), Dst: k.DstAddr().String(),
			Sport: uint32(k.SPort), Dport: uint32(k.DPort)}
	}
	return &xvspb.ConntrackFlow{Orig: key(e.Orig), Reply: key(e.Reply), State: e.State.String(), Embryonic: e.Embryonic,
		Expires: e.Expires, Packets: e.Packets[:], Bytes: e.Bytes[:], Mark: e.Mark, Age: e.Age}
}

// ServiceToPB converts a service for the wire.
func ServiceToPB(s spec.Service) *xvspb.Service {
	p := &xvspb.Service{Name: s.Name, Affinity: s.Affinity, InternalLocal: s.InternalLocal, ExternalLocal: s.ExternalLocal}
	if s.Affinity {
		p.AffinityTimeoutSeconds = uint32(s.AffinityTimeout / time.Second)
	}
	for _, a := range s.ClusterIPs {
		p.ClusterIps = append(p.ClusterIps, a.String())
	}
	for _, sp := range s.Ports {
		pp := &xvspb.ServicePort{Name: sp.Name, Protocol: sp.Protocol.String(), Port: uint32(sp.Port), NodePort: uint32(sp.NodePort)}
		for _, e := range sp.Endpoints {
			pp.Endpoints = append(pp.Endpoints, &xvspb.ServiceEndpoint{Addr: e.Addr.String(), Port: uint32(e.Port), Local: e.Local,
				Ready: e.Ready, Serving: e.Serving, Terminating: e.Terminating})
		}
		p.Ports = append(p.Ports, pp)
	}
	return p
}

// ServiceFromPB converts a wire service to the config file's form, which
// config.ResolveServices validates. Numbers beyond a field's range keep
// their value so the error quotes it.
func ServiceFromPB(p *xvspb.Service) config.Service {
	s := config.Service{Name: p.GetName(), ClusterIPs: p.GetClusterIps()}
	if p.GetAffinity() {
		s.SessionAffinity = "ClientIP"
		s.TimeoutSeconds = int(p.GetAffinityTimeoutSeconds())
	}
	if p.GetInternalLocal() {
		s.InternalTrafficPolicy = "Local"
	}
	if p.GetExternalLocal() {
		s.ExternalTrafficPolicy = "Local"
	}
	for _, pp := range p.GetPorts() {
		sp := config.ServicePort{Name: pp.GetName(), Protocol: pp.GetProtocol(), Port: int(pp.GetPort()), NodePort: int(pp.GetNodePort())}
		for _, e := range pp.GetEndpoints() {
			ready, serving := e.GetReady(), e.GetServing()
			sp.Endpoints = append(sp.Endpoints, config.ServiceEndpoint{Addr: e.GetAddr(), Port: int(e.GetPort()), Local: e.GetLocal(),
				Ready: &ready, Serving: &serving, Terminating: e.GetTerminating()})
		}
		s.Ports = append(s.Ports, sp)
	}
	return s
}

// ConfigServiceToPB converts a config file's service (xvsctl service set
// reads one) for the wire, unvalidated: the server validates. An
// endpoint's ready defaults to true and serving to ready, as in the file.
func ConfigServiceToPB(s config.Service) *xvspb.Service {
	p := &xvspb.Service{Name: s.Name, ClusterIps: s.ClusterIPs, Affinity: s.SessionAffinity == "ClientIP",
		AffinityTimeoutSeconds: uint32(max(s.TimeoutSeconds, 0)),
		InternalLocal:          s.InternalTrafficPolicy == "Local", ExternalLocal: s.ExternalTrafficPolicy == "Local"}
	for _, sp := range s.Ports {
		pp := &xvspb.ServicePort{Name: sp.Name, Protocol: sp.Protocol, Port: uint32(max(sp.Port, 0)), NodePort: uint32(max(sp.NodePort, 0))}
		if pp.Protocol == "" {
			pp.Protocol = "TCP"
		}
		for _, e := range sp.Endpoints {
			ready := e.Ready == nil || *e.Ready
			serving := ready
			if e.Serving != nil {
				serving = *e.Serving
			}
			pp.Endpoints = append(pp.Endpoints, &xvspb.ServiceEndpoint{Addr: e.Addr, Port: uint32(max(e.Port, 0)), Local: e.Local,
				Ready: ready, Serving: serving, Terminating: e.Terminating})
		}
		p.Ports = append(p.Ports, pp)
	}
	return p
}

// FlowKey is one direction of a tracked flow.
type FlowKey struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	SPort uint16     `json:"sport"`
	DPort uint16     `json:"dport"`
}

// ConntrackFlow is one tracked flow as ShowConntrack returns it.
type ConntrackFlow struct {
	Proto     string    `json:"proto"`
	Orig      FlowKey   `json:"orig"`
	Reply     FlowKey   `json:"reply"`
	State     string    `json:"state"`
	Embryonic bool      `json:"embryonic,omitempty"`
	Expires   uint32    `json:"expires"`
	Packets   [2]uint64 `json:"packets"`
	Bytes     [2]uint64 `json:"bytes"`
	Mark      uint32    `json:"mark"`
	Age       uint32    `json:"age"`
}

// Conntrack is ShowConntrack's answer.
type Conntrack struct {
	Flows     []ConntrackFlow `json:"flows"`
	Truncated bool            `json:"truncated,omitempty"`
	Stats     conntrack.Stats `json:"stats"`
}

// ErrNoConntrack: the switch has no connection-tracking table yet (no
// services and no NAT were set).
var ErrNoConntrack = errors.New("no connection tracking yet (no services or NAT set)")

// SetServices replaces the services set through the API.
func (c *Client) SetServices(ctx context.Context, svcs []config.Service) error {
	req := &xvspb.SetServicesRequest{}
	for _, s := range svcs {
		req.Services = append(req.Services, ConfigServiceToPB(s))
	}
	_, err := xvspb.NewServicesClient(c.conn).SetServices(ctx, req)
	return c.wrap(err)
}

// ListServices returns every service, with its source, and the NAT policy.
func (c *Client) ListServices(ctx context.Context) ([]SourcedService, spec.NATConfig, error) {
	resp, err := xvspb.NewServicesClient(c.conn).ListServices(ctx, &xvspb.ListServicesRequest{})
	if err != nil {
		return nil, spec.NATConfig{}, c.wrap(err)
	}
	var out []SourcedService
	for _, p := range resp.GetServices() {
		s, err := serviceFromWire(p)
		if err != nil {
			return nil, spec.NATConfig{}, err
		}
		out = append(out, SourcedService{Service: s, Source: p.GetSource()})
	}
	var n spec.NATConfig
	if pn := resp.GetNat(); pn != nil {
		n.PortMin, n.PortMax = uint16(pn.GetPortMin()), uint16(pn.GetPortMax())
		for _, s := range pn.GetOutgoing() {
			if p, err := netip.ParsePrefix(s); err == nil {
				n.Outgoing = append(n.Outgoing, p)
			}
		}
		for _, s := range pn.GetInternal() {
			if p, err := netip.ParsePrefix(s); err == nil {
				n.Internal = append(n.Internal, p)
			}
		}
	}
	return out, n, nil
}

// serviceFromWire reads a service the server sent (already valid).
func serviceFromWire(p *xvspb.Service) (spec.Service, error) {
	s := spec.Service{Name: p.GetName(), Affinity: p.GetAffinity(), InternalLocal: p.GetInternalLocal(), ExternalLocal: p.GetExternalLocal(),
		AffinityTimeout: time.Duration(p.GetAffinityTimeoutSeconds()) * time.Second}
	for _, a := range p.GetClusterIps() {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return s, fmt.Errorf("service %s: clusterIP %q from xvsd: %w", s.Name, a, err)
		}
		s.ClusterIPs = append(s.ClusterIPs, ip)
	}
	for _, pp := range p.GetPorts() {
		proto, err := spec.ParseProtocol(pp.GetProtocol())
		if err != nil {
			return s, fmt.Errorf("service %s: %w", s.Name, err)
		}
		sp := spec.ServicePort{Name: pp.GetName(), Protocol: proto, Port: uint16(pp.GetPort()), NodePort: uint16(pp.GetNodePort())}
		for _, e := range pp.GetEndpoints() {
			a, err := netip.ParseAddr(e.GetAddr())
			if err != nil {
				return s, fmt.Errorf("service %s: endpoint %q from xvsd: %w", s.Name, e.GetAddr(), err)
			}
			sp.Endpoints = append(sp.Endpoints, spec.Endpoint{Addr: a, Port: uint16(e.GetPort()), Local: e.GetLocal(),
				Ready: e.GetReady(), Serving: e.GetServing(), Terminating: e.GetTerminating()})
		}
		s.Ports = append(s.Ports, sp)
	}
	return s, nil
}

// ShowConntrack lists up to limit flows matching filter
// (conntrack.ParseFilter's words; limit 0: DefaultConntrackLimit).
func (c *Client) ShowConntrack(ctx context.Context, filter []string, limit int) (*Conntrack, error) {
	resp, err := xvspb.NewServicesClient(c.conn).ShowConntrack(ctx, &xvspb.ShowConntrackRequest{Filter: filter, Limit: uint32(max(limit, 0))})
	if err != nil {
		return nil, c.wrap(err)
	}
	if !resp.GetEnabled() {
		return nil, ErrNoConntrack
	}
	out := &Conntrack{Truncated: resp.GetTruncated(), Flows: []ConntrackFlow{}}
	key := func(k *xvspb.ConntrackKey) FlowKey {
		src, _ := netip.ParseAddr(k.GetSrc())
		dst, _ := netip.ParseAddr(k.GetDst())
		return FlowKey{Src: src, Dst: dst, SPort: uint16(k.GetSport()), DPort: uint16(k.GetDport())}
	}
	for _, f := range resp.GetFlows() {
		fl := ConntrackFlow{Proto: f.GetOrig().GetProto(), Orig: key(f.GetOrig()), Reply: key(f.GetReply()), State: f.GetState(),
			Embryonic: f.GetEmbryonic(), Expires: f.GetExpires(), Mark: f.GetMark(), Age: f.GetAge()}
		copy(fl.Packets[:], f.GetPackets())
		copy(fl.Bytes[:], f.GetBytes())
		out.Flows = append(out.Flows, fl)
	}
	if st := resp.GetStats(); st != nil {
		out.Stats = conntrack.Stats{Entries: st.GetEntries(), Size: int(st.GetSize()), Created: st.GetCreated(), Existed: st.GetExisted(),
			Expired: st.GetExpired(), Evicted: st.GetEvicted(), Deleted: st.GetDeleted(), DropFull: st.GetDropFull(),
			DropEmbryonic: st.GetDropEmbryonic(), DropConflict: st.GetDropConflict(), DropNoPort: st.GetDropNoPort(), Stale: st.GetStale()}
	}
	return out, nil
}
