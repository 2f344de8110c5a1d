package cniserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/podnet"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// Dataplane is what the CNI server needs of the switch; *vswitch.Switch
// implements it.
type Dataplane interface {
	Ready() bool
	AddPort(pc spec.PortConfig) (spec.PortStatus, error)
	DelPort(name string) error
	Ports() []spec.PortStatus
	ApplyRoutes(origin fib.Origin, adds []spec.Route, dels []netip.Prefix) error
}

// Options configure a Server.
type Options struct {
	// Node is this node's name, the allocator's.
	Node string
	// StateDir holds one endpoint record per pod (netns, requested mode),
	// next to the IPAM store. Required.
	StateDir string
	// VXLANOverhead is what a VXLAN pool's pods lose of the uplink's MTU:
	// 50 when the node's VTEP is IPv4, 70 when it is IPv6 only.
	VXLANOverhead int
	// FastPath: xvsd forwards pod to pod in XDP, so pods need GRO on.
	FastPath bool
	Logger   *slog.Logger
	// Annotations, when set, supplies a pod's and its namespace's
	// annotations for an ADD whose runtime passed none (the Kubernetes
	// agent's cache, kube/agent.Agent.PodAnnotations).
	Annotations AnnotationSource
}

// AnnotationSource looks up a pod's annotations and its namespace's.
type AnnotationSource interface {
	PodAnnotations(ctx context.Context, namespace, name string) (pod, ns map[string]string, err error)
}

// Server is xvsd's CNI server. Safe for concurrent use: operations on one
// attachment (container ID, interface) are serialized, different
// attachments run in parallel.
type Server struct {
	alloc *ipam.Allocator
	dp    Dataplane
	opt   Options
	log   *slog.Logger

	locks [64]sync.Mutex // by hash of the attachment

	bmu       sync.Mutex // guards blackholed and subs
	blackhole map[netip.Prefix]bool
	subs      map[chan struct{}]bool
}

// New returns a server over alloc and dp. It does nothing until Start.
func New(alloc *ipam.Allocator, dp Dataplane, opt Options) (*Server, error) {
	if opt.StateDir == "" {
		return nil, errors.New("cni server: state dir is empty")
	}
	if err := os.MkdirAll(opt.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("cni server state dir: %w", err)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.VXLANOverhead == 0 {
		opt.VXLANOverhead = 50
	}
	return &Server{alloc: alloc, dp: dp, opt: opt, log: opt.Logger, blackhole: map[netip.Prefix]bool{}, subs: map[chan struct{}]bool{}}, nil
}

// HostIfName is the host end's name for an attachment: "xvs" and 12 hex
// digits of a hash, as Calico names its "cali…" ends, so it is the same
// after a restart and never longer than IFNAMSIZ.
func HostIfName(h ipam.Handle) string {
	sum := sha256.Sum256([]byte(h.String()))
	return hostPrefix + hex.EncodeToString(sum[:6])
}

const hostPrefix = "xvs"

func isHostIfName(n string) bool {
	if len(n) != len(hostPrefix)+12 || !strings.HasPrefix(n, hostPrefix) {
		return false
	}
	_, err := hex.DecodeString(n[len(hostPrefix):])
	return err == nil
}

func (s *Server) lock(h ipam.Handle) func() {
	f := fnv.New32a()
	f.Write([]byte(h.String()))
	m := &s.locks[f.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// AddRequest is one CNI ADD as the plugin passes it on.
type AddRequest struct {
	Handle         ipam.Handle
	NetNS          string
	Pod, Namespace string
	PodAnnotations map[string]string
	NSAnnotations  map[string]string
	Mode           string // "" or "auto": AF_XDP, falling back to AF_PACKET
	IPv4Pools      []string
	IPv6Pools      []string
	IPv4, IPv6     bool // families; both false: both
	MTU            int  // 0: from the pools' encapsulation and the uplink
	// Memif is the network config's memif key as JSON (true, "true" or a
	// list of ports); the pod's xvs.dev/memif annotation wins over it.
	Memif string
}

// AddResult is what ADD made.
type AddResult struct {
	HostIf           string
	HostMAC, PodMAC  string
	Addrs            []netip.Prefix
	Routes           []podnet.Route
	MTU              int
	Mode, ModeReason string
	Memifs           []MemifResult
}

// parseMode reads the network config's mode.
func parseMode(m string) (spec.Mode, error) {
	if m == "" {
		return spec.ModeAuto, nil
	}
	mode, ok := spec.ParseMode(m)
	if !ok {
		return 0, errorf(CodeInvalidConfig, "mode %q: want auto, xdp-zerocopy, xdp-native, xdp-generic or af-packet", m)
	}
	return mode, nil
}

// offloads are the pod end's features for a port mode: an AF_XDP host end
// cannot carry a partial checksum (tx off), and XDP redirect into a veth
// needs the receiving end's NAPI (GRO on) for the fast path.
func (s *Server) offloads(m spec.Mode) podnet.Offloads {
	if m == spec.ModeAFPacket {
		return podnet.Offloads{}
	}
	o := podnet.Offloads{TxChecksum: podnet.Off}
	if s.opt.FastPath {
		o.GRO = podnet.On
	}
	return o
}

// uplinkMTU is the first uplink port's MTU, 1500 without one.
func (s *Server) uplinkMTU() int {
	for _, p := range s.dp.Ports() {
		if p.Kind == spec.PortUplink && p.MTU > 0 {
			return p.MTU
		}
	}
	return 1500
}

func (s *Server) mtuFor(as []ipam.Assigned) int {
	mtu := s.uplinkMTU()
	m := mtu
	for _, a := range as {
		if a.Pool.EffectiveEncapsulation() != ipam.EncapNone {
			m = min(m, mtu-s.opt.VXLANOverhead)
		}
	}
	return m
}

func (s *Server) pod(r *record) podnet.Pod {
	p := podnet.Calico("", r.HostIf, r.NetNS, r.Handle.IfName, r.Addrs, r.MTU)
	mode, _ := parseMode(r.Mode)
	p.Pod.Offloads = s.offloads(mode)
	return p
}

// Add runs CNI ADD: IPAM, the veth, the port. Every step done is undone
// when a later one fails. A repeated ADD of a pod that is fully there
// returns what it has.
func (s *Server) Add(ctx context.Context, req AddRequest) (_ AddResult, rerr error) {
	h := req.Handle
	if err := h.Validate(); err != nil {
		return AddResult{}, cniErr(CodeInvalidEnv, "bad attachment", err)
	}
	mode, err := parseMode(req.Mode)
	if err != nil {
		return AddResult{}, err
	}
	if req.NetNS == "" {
		return AddResult{}, errorf(CodeInvalidEnv, "CNI_NETNS is empty")
	}
	if _, err := os.Stat(req.NetNS); err != nil {
		return AddResult{}, cniErr(CodeUnknownContainer, fmt.Sprintf("netns %s does not exist", req.NetNS), err)
	}
	if len(req.PodAnnotations) == 0 && s.opt.Annotations != nil && req.Pod != "" {
		pa, na, err := s.opt.Annotations.PodAnnotations(ctx, req.Namespace, req.Pod)
		if err != nil {
			// The pool choice would silently fall back to the network
			// config's: refuse, the runtime retries.
			return AddResult{}, errorf(CodeTryAgainLater, "annotations of pod %s/%s: %v", req.Namespace, req.Pod, err)
		}
		req.PodAnnotations = pa
		if len(req.NSAnnotations) == 0 {
			req.NSAnnotations = na
		}
	}
	v4pools, v6pools, err := ipam.PodPools(req.PodAnnotations, req.NSAnnotations, req.IPv4Pools, req.IPv6Pools)
	if err != nil {
		return AddResult{}, cniErr(ipamCode(err), "pool selection", err)
	}
	memifs, err := memifRequest(req.PodAnnotations, req.Memif)
	if err != nil {
		return AddResult{}, err
	}
	unlock := s.lock(h)
	defer unlock()
	hostIf := HostIfName(h)

	if r, err := s.readRecord(hostIf); err == nil && r.NetNS == req.NetNS {
		if res, ok := s.existing(ctx, r); ok {
			return res, nil
		}
	}

	var undo []func()
	defer func() {
		if rerr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	ar := ipam.AssignRequest{Handle: h, Namespace: req.Namespace, Pod: req.Pod, IPv4: req.IPv4, IPv6: req.IPv6, IPv4Pools: v4pools, IPv6Pools: v6pools}
	if !ar.IPv4 && !ar.IPv6 {
		ar.IPv4, ar.IPv6 = true, true
		// Dual-stack where both families have pools; one family where only
		// it has.
		ar.IPv4, ar.IPv6 = s.families(ctx, v4pools, v6pools)
	}
	t0 := time.Now()
	as, err := s.alloc.Assign(ctx, ar)
	tAssign := time.Since(t0)
	if err != nil {
		return AddResult{}, cniErr(ipamCode(err), "ipam", err)
	}
	undo = append(undo, func() {
		if _, err := s.alloc.Release(context.WithoutCancel(ctx), h); err != nil {
			s.log.Warn("undo: release", "handle", h, "err", err)
		}
	})
	s.syncBlocks(ctx)

	r := &record{Handle: h, NetNS: req.NetNS, Pod: req.Pod, Namespace: req.Namespace, Mode: req.Mode, HostIf: hostIf, MTU: req.MTU}
	if r.MTU == 0 {
		r.MTU = s.mtuFor(as)
	}
	for _, a := range as {
		r.Addrs = append(r.Addrs, netip.PrefixFrom(a.Addr, a.Addr.BitLen()))
	}
	if err := s.writeRecord(r); err != nil {
		return AddResult{}, cniErr(CodeIOFailure, "endpoint record", err)
	}
	undo = append(undo, func() { s.removeRecord(hostIf) })

	p := s.pod(r)
	// The host end's name is this attachment's alone: what a cut-short
	// ADD left under it goes before the new one is made.
	if err := s.dp.DelPort(hostIf); err != nil && !errors.Is(err, vswitch.ErrPortNotFound) {
		return AddResult{}, cniErr(CodePort, "delete stale port "+hostIf, err)
	}
	if err := podnet.Teardown(podnet.Pod{Host: podnet.End{Name: hostIf}, Pod: podnet.End{NS: "/nonexistent", Name: h.IfName}}); err != nil {
		return AddResult{}, cniErr(CodePlumbing, "delete stale veth "+hostIf, err)
	}
	t1 := time.Now()
	res, err := podnet.Setup(p)
	tSetup := time.Since(t1)
	if err != nil {
		code := uint32(CodePlumbing)
		if errors.Is(err, os.ErrExist) || strings.Contains(err.Error(), "file exists") {
			code = CodeIfaceExists
			return AddResult{}, cniErr(code, fmt.Sprintf("interface %s in %s is taken", h.IfName, req.NetNS), err)
		}
		return AddResult{}, cniErr(code, "pod plumbing", err)
	}
	undo = append(undo, func() {
		if err := podnet.Teardown(p); err != nil {
			s.log.Warn("undo: teardown", "handle", h, "err", err)
		}
	})

	pc := spec.PortConfig{Name: hostIf, Kind: spec.PortPod, Mode: mode, Addrs: r.Addrs, MTU: r.MTU}
	copy(pc.PeerMAC[:], res.PodMAC)
	t2 := time.Now()
	st, err := s.dp.AddPort(pc)
	if err != nil {
		return AddResult{}, cniErr(CodePort, "xvsd port "+hostIf, err)
	}
	undo = append(undo, func() { s.dp.DelPort(hostIf) })
	if err := s.addMemifs(ctx, r, memifs, ar, &undo); err != nil {
		return AddResult{}, err
	}
	s.log.Info("pod added", "pod", req.Namespace+"/"+req.Pod, "handle", h, "port", hostIf, "addrs", r.Addrs, "mode", st.Mode, "reason", st.Reason,
		"memifs", len(r.Memifs), "assign", tAssign, "plumb", tSetup, "addport", time.Since(t2))
	return s.result(r, res.HostMAC.String(), res.PodMAC.String(), st), nil
}

// families picks dual-stack, or the one family that has pools when the
// pod asks for no family explicitly.
func (s *Server) families(ctx context.Context, v4pools, v6pools []string) (bool, bool) {
	if len(v4pools) > 0 || len(v6pools) > 0 {
		return len(v4pools) > 0 || len(v6pools) == 0, len(v6pools) > 0 || len(v4pools) == 0
	}
	pools, _, err := s.alloc.Usage(ctx)
	if err != nil {
		return true, true
	}
	var v4, v6 bool
	for _, p := range pools {
		if !p.Disabled {
			v4, v6 = v4 || !p.Is6(), v6 || p.Is6()
		}
	}
	if !v4 && !v6 {
		return true, true // let Assign name the missing pools
	}
	return v4, v6
}

func (s *Server) result(r *record, hostMAC, podMAC string, st spec.PortStatus) AddResult {
	p := podnet.Calico("", r.HostIf, r.NetNS, r.Handle.IfName, r.Addrs, r.MTU)
	return AddResult{
		HostIf: r.HostIf, HostMAC: hostMAC, PodMAC: podMAC, Addrs: r.Addrs, Routes: p.Pod.Routes,
		MTU: r.MTU, Mode: st.Mode.String(), ModeReason: s.modeReason(r, st), Memifs: s.memifResults(r),
	}
}

func (s *Server) modeReason(r *record, st spec.PortStatus) string {
	switch {
	case r.Mode != "" && r.Mode != "auto":
		return "mode " + r.Mode + " from the network config"
	case st.Mode == spec.ModeAFPacket:
		if st.Reason != "" {
			return "fell back to af-packet: " + st.Reason
		}
		return "fell back to af-packet"
	case st.Reason != "":
		return st.Reason
	}
	return "auto: AF_XDP"
}

// existing answers a repeated ADD of a pod that is all there.
func (s *Server) existing(ctx context.Context, r *record) (AddResult, bool) {
	st, ok := s.port(r.HostIf)
	if !ok {
		return AddResult{}, false
	}
	als, err := s.alloc.Get(ctx, r.Handle)
	if err != nil || len(als) != len(r.Addrs) {
		return AddResult{}, false
	}
	if err := podnet.Check(s.pod(r)); err != nil {
		return AddResult{}, false
	}
	if err := s.checkMemifs(ctx, r); err != nil {
		return AddResult{}, false
	}
	mac, _ := podnet.MAC(r.NetNS, r.Handle.IfName)
	return s.result(r, fmtMAC(st.MAC), mac.String(), st), true
}

func fmtMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func (s *Server) port(name string) (spec.PortStatus, bool) {
	for _, p := range s.dp.Ports() {
		if p.Name == name {
			return p, true
		}
	}
	return spec.PortStatus{}, false
}

// Del runs CNI DEL: the port, the veth, the addresses, the record. It
// succeeds when any or all of them are already gone (netns deleted, xvsd
// restarted, DEL repeated).
func (s *Server) Del(ctx context.Context, h ipam.Handle, netns string) error {
	if err := h.Validate(); err != nil {
		return cniErr(CodeInvalidEnv, "bad attachment", err)
	}
	unlock := s.lock(h)
	defer unlock()
	return s.del(ctx, h, netns)
}

func (s *Server) del(ctx context.Context, h ipam.Handle, netns string) error {
	hostIf := HostIfName(h)
	if r, err := s.readRecord(hostIf); err == nil {
		if err := s.delMemifs(ctx, r); err != nil {
			return err
		}
	}
	if err := s.dp.DelPort(hostIf); err != nil && !errors.Is(err, vswitch.ErrPortNotFound) {
		return cniErr(CodePort, "delete xvsd port "+hostIf, err)
	}
	// The host end alone: deleting it takes the pod end, and the pod's
	// netns may be gone or reused.
	if err := podnet.Teardown(podnet.Pod{Host: podnet.End{Name: hostIf}, Pod: podnet.End{NS: "/nonexistent", Name: h.IfName}}); err != nil {
		return cniErr(CodePlumbing, "delete veth "+hostIf, err)
	}
	if _, err := s.alloc.Release(ctx, h); err != nil {
		return cniErr(ipamCode(err), "ipam release", err)
	}
	s.removeRecord(hostIf)
	s.log.Info("pod deleted", "handle", h, "port", hostIf)
	return nil
}

// Check runs CNI CHECK: the allocation, the port and the plumbing are as
// ADD made them.
func (s *Server) Check(ctx context.Context, h ipam.Handle, netns string) error {
	if err := h.Validate(); err != nil {
		return cniErr(CodeInvalidEnv, "bad attachment", err)
	}
	unlock := s.lock(h)
	defer unlock()
	hostIf := HostIfName(h)
	r, err := s.readRecord(hostIf)
	if err != nil {
		return cniErr(CodeUnknownContainer, fmt.Sprintf("no endpoint for %s", h), err)
	}
	if netns != "" && netns != r.NetNS {
		return errorf(CodeCheckFailed, "netns %s: ADD was for %s", netns, r.NetNS)
	}
	als, err := s.alloc.Get(ctx, h)
	if err != nil {
		return cniErr(ipamCode(err), "ipam", err)
	}
	var got []netip.Prefix
	for _, a := range als {
		got = append(got, netip.PrefixFrom(a.Addr, a.Addr.BitLen()))
	}
	if !slices.Equal(got, r.Addrs) {
		return errorf(CodeCheckFailed, "allocation of %s: addresses %v, endpoint has %v", h, got, r.Addrs)
	}
	st, ok := s.port(hostIf)
	if !ok {
		return errorf(CodeCheckFailed, "xvsd has no port %s for %s", hostIf, h)
	}
	if !st.Up {
		return errorf(CodeCheckFailed, "xvsd port %s is down: %s", hostIf, st.Reason)
	}
	if err := podnet.Check(s.pod(r)); err != nil {
		return cniErr(CodeCheckFailed, "pod plumbing", err)
	}
	return s.checkMemifs(ctx, r)
}

// GC releases every attachment of this node not in valid: allocations,
// endpoints, ports, veths.
func (s *Server) GC(ctx context.Context, valid []ipam.Handle) error {
	keep := map[string]bool{}
	for _, h := range valid {
		keep[HostIfName(h)] = true
		// A valid attachment keeps its memif ports' addresses too.
		for i := range maxMemifs {
			valid = append(valid, MemifHandle(h, i))
		}
	}
	recs, err := s.records()
	if err != nil {
		return cniErr(CodeIOFailure, "endpoint records", err)
	}
	var errs []error
	for _, r := range recs {
		if keep[r.HostIf] {
			continue
		}
		unlock := s.lock(r.Handle)
		err := s.del(ctx, r.Handle, r.NetNS)
		unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	rel, err := s.alloc.GC(ctx, valid)
	if err != nil {
		errs = append(errs, cniErr(ipamCode(err), "ipam gc", err))
	}
	for _, a := range rel {
		// An allocation without a record (ADD cut short): its port and
		// veth, if any.
		if isMemifHandle(a.Handle) {
			continue // its port goes in the sweep
		}
		hostIf := HostIfName(a.Handle)
		s.dp.DelPort(hostIf)
		podnet.Teardown(podnet.Pod{Host: podnet.End{Name: hostIf}, Pod: podnet.End{NS: "/nonexistent", Name: a.Handle.IfName}})
	}
	s.sweep(ctx)
	if len(errs) > 0 {
		return asError(CodeIOFailure, "gc", errors.Join(errs...))
	}
	return nil
}

// Status is CNI STATUS: nil when xvsd can take ADDs.
func (s *Server) Status(ctx context.Context) error {
	if !s.dp.Ready() {
		return errorf(CodeNotReady, "xvsd's dataplane is not ready")
	}
	pools, _, err := s.alloc.Usage(ctx)
	if err != nil {
		return cniErr(CodeNotReady, "ipam store", err)
	}
	for _, p := range pools {
		if !p.Disabled {
			return nil
		}
	}
	return errorf(CodeNotReady, "no enabled IP pool")
}

// Start re-adopts the pods of this node from the store after a restart:
// each allocation whose host veth is still there gets its port (and so
// its routes) back; veths of ours with no allocation behind them are
// deleted. Then it installs the blocks' blackhole routes.
func (s *Server) Start(ctx context.Context) error {
	als, err := s.alloc.Allocations(ctx)
	if err != nil {
		return fmt.Errorf("cni server: allocations: %w", err)
	}
	byHost := map[string][]ipam.Allocation{}
	for _, a := range als {
		if a.Node == s.opt.Node && !isMemifHandle(a.Handle) {
			n := HostIfName(a.Handle)
			byHost[n] = append(byHost[n], a)
		}
	}
	recs, err := s.records()
	if err != nil {
		return fmt.Errorf("cni server: endpoint records: %w", err)
	}
	recBy := map[string]*record{}
	for _, r := range recs {
		recBy[r.HostIf] = r
	}
	adopted := 0
	for hostIf, as := range byHost {
		r := recBy[hostIf]
		if r == nil {
			r = &record{Handle: as[0].Handle, HostIf: hostIf, Pod: as[0].Pod, Namespace: as[0].Namespace}
		}
		r.Addrs = r.Addrs[:0]
		for _, a := range as {
			r.Addrs = append(r.Addrs, netip.PrefixFrom(a.Addr, a.Addr.BitLen()))
		}
		slices.SortFunc(r.Addrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		ok, err := linkExists(hostIf)
		if err != nil || !ok {
			continue // the runtime's DEL or GC frees it
		}
		if _, has := s.port(hostIf); has {
			adopted++
			s.readoptMemifs(ctx, r)
			continue
		}
		mode, _ := parseMode(r.Mode)
		pc := spec.PortConfig{Name: hostIf, Kind: spec.PortPod, Mode: mode, Addrs: r.Addrs, MTU: r.MTU}
		if r.NetNS != "" {
			// The pod's MAC, so xvsd can send to it before it speaks.
			if mac, err := podnet.MAC(r.NetNS, r.Handle.IfName); err == nil {
				copy(pc.PeerMAC[:], mac)
			}
		}
		if st, err := s.dp.AddPort(pc); err != nil {
			s.log.Warn("re-adopt: port", "port", hostIf, "handle", r.Handle, "err", err)
		} else {
			adopted++
			s.log.Info("re-adopted pod", "pod", r.Namespace+"/"+r.Pod, "port", hostIf, "addrs", r.Addrs, "mode", st.Mode)
			s.readoptMemifs(ctx, r)
		}
	}
	s.sweep(ctx)
	s.syncBlocks(ctx)
	s.log.Info("cni server started", "pods", adopted, "node", s.opt.Node)
	return nil
}

// sweep deletes what no allocation stands behind: records, and host veths
// and ports of ours (a crash between release and cleanup).
func (s *Server) sweep(ctx context.Context) {
	als, err := s.alloc.Allocations(ctx)
	if err != nil {
		return
	}
	held := map[string]bool{}
	for _, a := range als {
		if a.Node == s.opt.Node {
			held[HostIfName(a.Handle)] = true
		}
	}
	links, err := netlink.LinkList()
	if err == nil {
		for _, l := range links {
			n := l.Attrs().Name
			if l.Type() == "veth" && isHostIfName(n) && !held[n] {
				s.log.Info("deleting orphan veth", "veth", n)
				s.dp.DelPort(n)
				netlink.LinkDel(l)
			}
		}
	}
	ports := s.dp.Ports()
	for _, p := range ports {
		if p.Kind == spec.PortPod && isHostIfName(p.Name) && !held[p.Name] {
			s.dp.DelPort(p.Name)
		}
	}
	// Records last: an ADD writes a memif's record entry before its
	// allocation and its port, so what was seen above has its entry now.
	recs, err := s.records()
	if err != nil {
		return
	}
	var live []*record
	for _, r := range recs {
		if !held[r.HostIf] {
			if err := s.delMemifs(ctx, r); err != nil {
				s.log.Warn("sweep: memif ports", "port", r.HostIf, "err", err)
			}
			s.removeRecord(r.HostIf)
			continue
		}
		live = append(live, r)
	}
	mh, mp := memifHeld(live)
	for _, p := range ports {
		if p.Kind == spec.PortPod && p.Mode == spec.ModeMemif && isMemifPortName(p.Name) && !mp[p.Name] {
			s.log.Info("deleting orphan memif port", "port", p.Name)
			s.dp.DelPort(p.Name)
		}
	}
	for _, a := range als {
		if a.Node == s.opt.Node && isMemifHandle(a.Handle) && !mh[a.Handle] {
			s.log.Info("releasing orphan memif allocation", "handle", a.Handle, "addr", a.Addr)
			s.alloc.Release(ctx, a.Handle)
		}
	}
}

func linkExists(name string) (bool, error) {
	_, err := netlink.LinkByName(name)
	if err == nil {
		return true, nil
	}
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false, nil
	}
	return false, err
}

// syncBlocks installs a blackhole route for each block affine to the node
// and removes those of blocks it lost, then tells subscribers.
func (s *Server) syncBlocks(ctx context.Context) {
	blocks, err := s.alloc.NodeBlocks(ctx, s.opt.Node)
	if err != nil {
		s.log.Warn("node blocks", "err", err)
		return
	}
	s.bmu.Lock()
	defer s.bmu.Unlock()
	want := map[netip.Prefix]bool{}
	var adds []spec.Route
	for _, b := range blocks {
		want[b] = true
		if !s.blackhole[b] {
			adds = append(adds, spec.Route{Prefix: b, Blackhole: true})
		}
	}
	var dels []netip.Prefix
	for b := range s.blackhole {
		if !want[b] {
			dels = append(dels, b)
		}
	}
	if len(adds) == 0 && len(dels) == 0 {
		return
	}
	if err := s.dp.ApplyRoutes(fib.OriginIPAM, adds, dels); err != nil {
		s.log.Warn("block blackhole routes", "adds", len(adds), "dels", len(dels), "err", err)
		return
	}
	s.blackhole = want
	for c := range s.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// NodeBlocks returns the blocks affine to this node: the prefixes it
// advertises through BGP.
func (s *Server) NodeBlocks(ctx context.Context) ([]netip.Prefix, error) {
	return s.alloc.NodeBlocks(ctx, s.opt.Node)
}

// SubscribeBlocks returns a channel that receives (coalesced) when the
// node's blocks change; read NodeBlocks then. cancel ends the
// subscription.
func (s *Server) SubscribeBlocks() (changed <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	s.bmu.Lock()
	s.subs[c] = true
	s.bmu.Unlock()
	return c, func() {
		s.bmu.Lock()
		delete(s.subs, c)
		s.bmu.Unlock()
	}
}

// Endpoint is one pod attachment as `xvsctl show endpoints` lists it.
type Endpoint struct {
	Pod, Namespace, Node string
	Addrs                []netip.Prefix
	HostIf               string
	Handle               ipam.Handle
	NetNS                string
	Mode, ModeReason     string
	Up                   bool
	Memifs               []MemifResult // the pod's memif ports; Up: a peer is connected
}

// Endpoints lists this node's pod attachments.
func (s *Server) Endpoints(ctx context.Context) ([]Endpoint, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	var eps []Endpoint
	for _, r := range recs {
		ep := Endpoint{Pod: r.Pod, Namespace: r.Namespace, Node: s.opt.Node, Addrs: r.Addrs, HostIf: r.HostIf, Handle: r.Handle, NetNS: r.NetNS}
		if st, ok := s.port(r.HostIf); ok {
			ep.Mode, ep.ModeReason, ep.Up = st.Mode.String(), s.modeReason(r, st), st.Up
		} else {
			ep.Mode, ep.ModeReason = "-", "no port"
		}
		ep.Memifs = s.memifResults(r)
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b Endpoint) int {
		return strings.Compare(a.Namespace+"/"+a.Pod+"/"+a.HostIf, b.Namespace+"/"+b.Pod+"/"+b.HostIf)
	})
	return eps, nil
}

// Usage lists pools and blocks for xvsctl.
func (s *Server) Usage(ctx context.Context) ([]ipam.PoolUsage, []ipam.BlockUsage, error) {
	return s.alloc.Usage(ctx)
}
