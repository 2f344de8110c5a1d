package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/xvs-project/xvs/bgp"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/ipam"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// The annotations a node publishes on its Node object.
const (
	AnnotationVTEPMAC = "xvs.dev/vxlan-tunnel-mac"
	AnnotationVTEP4   = "xvs.dev/IPv4VXLANTunnelAddr"
	AnnotationVTEP6   = "xvs.dev/IPv6VXLANTunnelAddr"
	// AnnotationBlocks is a JSON list of the node's IPAM block CIDRs.
	AnnotationBlocks = "xvs.dev/blocks"
)

// DefaultProbeInterval is how often the agent checks the API server.
const DefaultProbeInterval = 5 * time.Second

// BGPState is what the cluster says this node's BGP speaker should do.
type BGPState struct {
	// ASNumber is the AS from the BGPConfiguration; 0 when none sets it.
	ASNumber uint32
	// MeshEnabled is nodeToNodeMeshEnabled (default true).
	MeshEnabled bool
	// Mesh holds every node's InternalIP addresses, this node's included
	// (the speaker skips its own), sorted.
	Mesh []netip.Addr
	// Peers are the BGPPeers that apply to this node, sorted by address.
	Peers []bgp.Peer
}

// BGPSink takes the BGP state; the daemon applies it to its speaker.
type BGPSink interface {
	SetBGP(ctx context.Context, st BGPState) error
}

// RouteApplier is the switch's batched route entry point.
type RouteApplier interface {
	ApplyRoutes(origin fib.Origin, adds []spec.Route, dels []netip.Prefix) error
}

// PoolSink takes the IPPools and this node's labels (the CNI server's
// allocator, for a store that does not read IPPools itself).
type PoolSink interface {
	SetPools(ctx context.Context, pools []ipam.Pool) error
	SetNodeLabels(labels map[string]string)
}

// VTEP is this node's VXLAN tunnel endpoint, published on its Node.
type VTEP struct {
	MAC      net.HardwareAddr
	V4, V6   netip.Addr
	Subnets  []netip.Prefix // the uplink's subnets, for CrossSubnet
	Disabled bool
}

// Options configure an Agent.
type Options struct {
	Config    *rest.Config
	Node      string
	Namespace string // Secrets of BGPPeer passwords
	Logger    *slog.Logger

	BGP    BGPSink      // nil: no BGP
	Routes RouteApplier // nil: no VXLAN routes
	Pools  PoolSink     // nil: pools not fed
	// VTEP returns this node's VTEP; nil or ok false: none published
	// and no VXLAN routes.
	VTEP func() (VTEP, bool)

	ProbeInterval time.Duration
}

// Status is the agent's sync state, as `xvsctl kube status` shows it.
type Status struct {
	Node        string         `json:"node"`
	Connected   bool           `json:"connected"`
	Synced      bool           `json:"synced"`
	LastError   string         `json:"lastError,omitempty"`
	LastResync  time.Time      `json:"lastResync,omitzero"`
	Resyncs     uint64         `json:"resyncs"`
	WatchErrors uint64         `json:"watchErrors"`
	Objects     map[string]int `json:"objects"`
	ASNumber    uint32         `json:"asNumber,omitempty"`
	MeshPeers   int            `json:"meshPeers"`
	Peers       int            `json:"peers"`
	VXLANRoutes int            `json:"vxlanRoutes"`
	Refused     []string       `json:"refused,omitempty"`
}

// Agent is a running node agent.
type Agent struct {
	opt  Options
	log  *slog.Logger
	kube kubernetes.Interface
	xvs  *client.Clientset

	nodeInf, podInf, nsInf, secInf cache.SharedIndexInformer
	poolInf, bgpcInf, peerInf      cache.SharedIndexInformer
	nodes                          listersv1.NodeLister
	pods                           listersv1.PodLister
	nss                            listersv1.NamespaceLister
	secrets                        listersv1.SecretLister

	kick chan struct{}

	watchErrors, resyncs atomic.Uint64

	mu         sync.Mutex // guards the fields below
	blocks     []netip.Prefix
	connected  bool
	synced     bool
	lastErr    string
	lastResync time.Time
	status     Status
	routes     map[netip.Prefix]spec.Route // installed, origin kube
	lastBGP    *BGPState
	lastPools  []ipam.Pool
	published  map[string]string
	wasDown    bool
}

// New builds the agent's clients and informers; nothing runs until Run.
func New(opt Options) (*Agent, error) {
	if opt.Config == nil || opt.Node == "" {
		return nil, errors.New("kube agent: a client config and a node name are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.ProbeInterval <= 0 {
		opt.ProbeInterval = DefaultProbeInterval
	}
	kc, err := kubernetes.NewForConfig(opt.Config)
	if err != nil {
		return nil, fmt.Errorf("kube agent: %w", err)
	}
	xc, err := client.NewForConfig(opt.Config)
	if err != nil {
		return nil, fmt.Errorf("kube agent: %w", err)
	}
	a := &Agent{opt: opt, log: opt.Logger, kube: kc, xvs: xc, kick: make(chan struct{}, 1), routes: map[netip.Prefix]spec.Route{}}
	all := informers.NewSharedInformerFactory(kc, 0)
	a.nodeInf = all.Core().V1().Nodes().Informer()
	a.nodes = all.Core().V1().Nodes().Lister()
	a.nsInf = all.Core().V1().Namespaces().Informer()
	a.nss = all.Core().V1().Namespaces().Lister()
	mine := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opt.Node).String()
	}))
	a.podInf = mine.Core().V1().Pods().Informer()
	a.pods = mine.Core().V1().Pods().Lister()
	if opt.Namespace != "" {
		sec := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithNamespace(opt.Namespace))
		a.secInf = sec.Core().V1().Secrets().Informer()
		a.secrets = sec.Core().V1().Secrets().Lister()
	}
	rc := xc.RESTClient()
	a.poolInf = cache.NewSharedIndexInformer(cache.NewListWatchFromClient(rc, xvsv1.ResourceIPPools, "", fields.Everything()), &xvsv1.IPPool{}, 0, cache.Indexers{})
	a.bgpcInf = cache.NewSharedIndexInformer(cache.NewListWatchFromClient(rc, xvsv1.ResourceBGPConfigurations, "", fields.Everything()), &xvsv1.BGPConfiguration{}, 0, cache.Indexers{})
	a.peerInf = cache.NewSharedIndexInformer(cache.NewListWatchFromClient(rc, xvsv1.ResourceBGPPeers, "", fields.Everything()), &xvsv1.BGPPeer{}, 0, cache.Indexers{})
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.poke() },
		UpdateFunc: func(_, _ any) { a.poke() },
		DeleteFunc: func(any) { a.poke() },
	}
	for _, inf := range a.informers() {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, err
		}
		if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			a.watchErrors.Add(1)
			a.setErr(err)
			cache.DefaultWatchErrorHandler(ctx, r, err)
		}); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *Agent) informers() []cache.SharedIndexInformer {
	l := []cache.SharedIndexInformer{a.nodeInf, a.podInf, a.nsInf, a.poolInf, a.bgpcInf, a.peerInf}
	if a.secInf != nil {
		l = append(l, a.secInf)
	}
	return l
}

func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) setErr(err error) {
	a.mu.Lock()
	a.lastErr = err.Error()
	a.mu.Unlock()
}

// SetBlocks replaces this node's blocks, published in AnnotationBlocks.
func (a *Agent) SetBlocks(ps []netip.Prefix) {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	a.mu.Lock()
	a.blocks = ps
	a.mu.Unlock()
	a.poke()
}

// Run runs the informers and reconciles until ctx is done. On return the
// routes it installed stay: xvsd keeps forwarding what it has.
func (a *Agent) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, inf := range a.informers() {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	defer wg.Wait()
	probe := time.NewTicker(a.opt.ProbeInterval)
	defer probe.Stop()
	a.probe(ctx)
	backoff := time.Duration(0)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-probe.C:
			a.probe(ctx)
		case <-retry:
		}
		if !a.hasSynced() {
			continue
		}
		if err := a.reconcile(ctx); err != nil {
			a.setErr(err)
			a.log.Warn("kube reconcile", "err", err)
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			retry = time.After(backoff)
			continue
		}
		backoff, retry = 0, nil
	}
}

func (a *Agent) hasSynced() bool {
	for _, inf := range a.informers() {
		if !inf.HasSynced() {
			return false
		}
	}
	a.mu.Lock()
	first := !a.synced
	a.synced = true
	a.mu.Unlock()
	if first {
		a.resyncs.Add(1)
	}
	return true
}

// probe asks the API server's /readyz; a reconnect after a failure counts
// as a resync (the informers relist) and reconciles at once.
func (a *Agent) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := a.kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(pctx).Error()
	a.mu.Lock()
	was := a.connected
	a.connected = err == nil
	if err != nil {
		a.lastErr = "probe: " + err.Error()
		a.wasDown = true
	}
	reconnect := err == nil && a.wasDown && a.synced
	if err == nil {
		a.wasDown = false
	}
	a.mu.Unlock()
	if err != nil && was {
		a.log.Warn("kubernetes API unreachable; forwarding on with what we have", "err", err)
	}
	if reconnect {
		a.log.Info("kubernetes API reachable again: resync")
		a.resyncs.Add(1)
		a.poke()
	}
}

// Status returns the sync state.
func (a *Agent) Status() Status {
	a.mu.Lock()
	st := a.status
	st.Node = a.opt.Node
	st.Connected, st.Synced, st.LastError, st.LastResync = a.connected, a.synced, a.lastErr, a.lastResync
	st.Refused = slices.Clone(a.status.Refused)
	a.mu.Unlock()
	st.Resyncs, st.WatchErrors = a.resyncs.Load(), a.watchErrors.Load()
	st.Objects = map[string]int{
		"nodes": len(a.nodeInf.GetStore().ListKeys()), "pods": len(a.podInf.GetStore().ListKeys()),
		"namespaces": len(a.nsInf.GetStore().ListKeys()), "ippools": len(a.poolInf.GetStore().ListKeys()),
		"bgpconfigurations": len(a.bgpcInf.GetStore().ListKeys()), "bgppeers": len(a.peerInf.GetStore().ListKeys()),
	}
	return st
}

// PodAnnotations returns the annotations of a pod on this node and of its
// namespace: from the caches, else (a pod the informer has not seen yet)
// from the API server.
func (a *Agent) PodAnnotations(ctx context.Context, namespace, name string) (pod, ns map[string]string, err error) {
	p, err := a.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		p, err = a.kube.CoreV1().Pods(namespace).Get(gctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	pod = p.Annotations
	if n, err := a.nss.Get(namespace); err == nil {
		ns = n.Annotations
	}
	return pod, ns, nil
}

// reconcile makes the sinks follow the caches.
func (a *Agent) reconcile(ctx context.Context) error {
	var refused []string
	var errs []error
	self, err := a.nodes.Get(a.opt.Node)
	if err != nil {
		self = nil
		refused = append(refused, fmt.Sprintf("node %q: %v", a.opt.Node, err))
	}
	if self != nil {
		if err := a.publish(ctx, self); err != nil {
			errs = append(errs, err)
		}
		if a.opt.Pools != nil {
			a.opt.Pools.SetNodeLabels(self.Labels)
		}
	}
	pools, bad := a.poolList()
	refused = append(refused, bad...)
	if a.opt.Pools != nil && !slices.Equal(pools, a.lastPoolsSnapshot()) {
		if err := a.opt.Pools.SetPools(ctx, pools); err != nil {
			errs = append(errs, fmt.Errorf("pools: %w", err))
		} else {
			a.mu.Lock()
			a.lastPools = pools
			a.mu.Unlock()
		}
	}
	var st BGPState
	if a.opt.BGP != nil {
		var bad []string
		st, bad = a.bgpState(self)
		refused = append(refused, bad...)
		a.mu.Lock()
		same := a.lastBGP != nil && equalBGP(*a.lastBGP, st)
		a.mu.Unlock()
		if !same {
			if err := a.opt.BGP.SetBGP(ctx, st); err != nil {
				errs = append(errs, fmt.Errorf("bgp: %w", err))
			} else {
				a.mu.Lock()
				a.lastBGP = &st
				a.mu.Unlock()
			}
		}
	}
	nroutes := 0
	if a.opt.Routes != nil {
		n, err := a.syncRoutes(pools)
		nroutes = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	a.mu.Lock()
	a.lastResync = time.Now()
	a.status.ASNumber, a.status.Peers, a.status.VXLANRoutes, a.status.Refused = st.ASNumber, len(st.Peers), nroutes, refused
	a.status.MeshPeers = 0
	if st.MeshEnabled {
		a.status.MeshPeers = max(0, len(st.Mesh)-len(a.selfAddrs(self)))
	}
	if len(errs) == 0 {
		a.lastErr = ""
	}
	a.mu.Unlock()
	return errors.Join(errs...)
}

func (a *Agent) lastPoolsSnapshot() []ipam.Pool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastPools
}

func (a *Agent) selfAddrs(n *corev1.Node) []netip.Addr {
	if n == nil {
		return nil
	}
	return internalIPs(n)
}

// internalIPs are a node's InternalIP addresses.
func internalIPs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, ad := range n.Status.Addresses {
		if ad.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(ad.Address); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// publish writes this node's VTEP and blocks annotations when they differ.
func (a *Agent) publish(ctx context.Context, self *corev1.Node) error {
	want := map[string]*string{AnnotationVTEPMAC: nil, AnnotationVTEP4: nil, AnnotationVTEP6: nil, AnnotationBlocks: nil}
	set := func(k, v string) { want[k] = &v }
	if a.opt.VTEP != nil {
		if v, ok := a.opt.VTEP(); ok && !v.Disabled {
			set(AnnotationVTEPMAC, v.MAC.String())
			if v.V4.IsValid() {
				set(AnnotationVTEP4, v.V4.String())
			}
			if v.V6.IsValid() {
				set(AnnotationVTEP6, v.V6.String())
			}
		}
	}
	a.mu.Lock()
	blocks := a.blocks
	a.mu.Unlock()
	if len(blocks) > 0 {
		js, _ := json.Marshal(blocks)
		set(AnnotationBlocks, string(js))
	}
	diff := false
	for k, v := range want {
		cur, has := self.Annotations[k]
		if (v == nil && has) || (v != nil && (!has || cur != *v)) {
			diff = true
		}
	}
	if !diff {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := a.kube.CoreV1().Nodes().Patch(pctx, a.opt.Node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("annotate node %s: %w", a.opt.Node, err)
	}
	return nil
}

// poolList converts the IPPools; invalid ones are refused, naming the
// field, and the rest still apply.
func (a *Agent) poolList() ([]ipam.Pool, []string) {
	var out []ipam.Pool
	var refused []string
	for _, o := range a.poolInf.GetStore().List() {
		ip := o.(*xvsv1.IPPool)
		p, err := toPool(ip)
		if err != nil {
			refused = append(refused, fmt.Sprintf("ippool %s: %v", ip.Name, err))
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	var ok []ipam.Pool
	for i, p := range out {
		clash := false
		for j, q := range out {
			if i != j && p.CIDR.Overlaps(q.CIDR) && (j < i) {
				refused = append(refused, fmt.Sprintf("ippool %s: spec.cidr %s overlaps ippool %s (%s)", p.Name, p.CIDR, q.Name, q.CIDR))
				clash = true
				break
			}
		}
		if !clash {
			ok = append(ok, p)
		}
	}
	return ok, refused
}

func toPool(ip *xvsv1.IPPool) (ipam.Pool, error) {
	cidr, err := xvsv1.ParseCIDR(ip.Spec.CIDR)
	if err != nil {
		return ipam.Pool{}, fmt.Errorf("spec.cidr: %w", err)
	}
	p := ipam.Pool{Name: ip.Name, CIDR: cidr, BlockSize: int(ip.Spec.BlockSize), NATOutgoing: ip.Spec.NATOutgoing, NodeSelector: ip.Spec.NodeSelector, Disabled: ip.Spec.Disabled}
	switch ip.Spec.VXLANMode {
	case "", xvsv1.VXLANNever:
		p.Encapsulation = ipam.EncapNone
	case xvsv1.VXLANAlways:
		p.Encapsulation = ipam.EncapVXLAN
	case xvsv1.VXLANCrossSubnet:
		p.Encapsulation = ipam.EncapVXLANCrossSubnet
	default:
		return ipam.Pool{}, fmt.Errorf("spec.vxlanMode %q: want Always, CrossSubnet or Never", ip.Spec.VXLANMode)
	}
	if err := p.Validate(); err != nil {
		return ipam.Pool{}, err
	}
	return p, nil
}

// bgpState computes the BGP state from the caches.
func (a *Agent) bgpState(self *corev1.Node) (BGPState, []string) {
	var refused []string
	st := BGPState{MeshEnabled: true}
	apply := func(name string) {
		o, ok, _ := a.bgpcInf.GetStore().GetByKey(name)
		if !ok {
			return
		}
		c := o.(*xvsv1.BGPConfiguration)
		if c.Spec.ASNumber != nil {
			st.ASNumber = *c.Spec.ASNumber
		}
		if c.Spec.NodeToNodeMeshEnabled != nil {
			st.MeshEnabled = *c.Spec.NodeToNodeMeshEnabled
		}
	}
	apply(xvsv1.BGPConfigurationDefault)
	apply(xvsv1.BGPConfigurationNodePrefix + a.opt.Node)
	nodes, _ := a.nodes.List(everything)
	for _, n := range nodes {
		st.Mesh = append(st.Mesh, internalIPs(n)...)
	}
	slices.SortFunc(st.Mesh, netip.Addr.Compare)
	st.Mesh = slices.Compact(st.Mesh)
	var nodeLabels map[string]string
	if self != nil {
		nodeLabels = self.Labels
	}
	for _, o := range a.peerInf.GetStore().List() {
		bp := o.(*xvsv1.BGPPeer)
		switch {
		case bp.Spec.Node != "":
			if bp.Spec.Node != a.opt.Node {
				continue
			}
		case bp.Spec.NodeSelector != "":
			sel, err := ipam.ParseSelector(bp.Spec.NodeSelector)
			if err != nil {
				refused = append(refused, fmt.Sprintf("bgppeer %s: spec.nodeSelector %q: %v", bp.Name, bp.Spec.NodeSelector, err))
				continue
			}
			if !sel.Matches(nodeLabels) {
				continue
			}
		}
		addr, err := netip.ParseAddr(bp.Spec.PeerIP)
		if err != nil {
			refused = append(refused, fmt.Sprintf("bgppeer %s: spec.peerIP %q: %v", bp.Name, bp.Spec.PeerIP, err))
			continue
		}
		p := bgp.Peer{Address: addr.Unmap(), ASNumber: bp.Spec.ASNumber, Scope: bgp.ScopeGlobal}
		if bp.Spec.Node != "" || bp.Spec.NodeSelector != "" {
			p.Scope = bgp.ScopeNode
		}
		if pw := bp.Spec.Password; pw != nil && pw.SecretKeyRef != nil {
			s, err := a.secret(pw.SecretKeyRef.Name, pw.SecretKeyRef.Key)
			if err != nil {
				refused = append(refused, fmt.Sprintf("bgppeer %s: spec.password.secretKeyRef: %v", bp.Name, err))
				continue
			}
			p.Password = s
		}
		st.Peers = append(st.Peers, p)
	}
	slices.SortFunc(st.Peers, func(x, y bgp.Peer) int { return x.Address.Compare(y.Address) })
	return st, refused
}

func (a *Agent) secret(name, key string) (string, error) {
	if a.secrets == nil {
		return "", errors.New("no secrets namespace configured")
	}
	s, err := a.secrets.Secrets(a.opt.Namespace).Get(name)
	if err != nil {
		return "", fmt.Errorf("secret %s/%s: %w", a.opt.Namespace, name, err)
	}
	v, ok := s.Data[key]
	if !ok {
		return "", fmt.Errorf("secret %s/%s has no key %q", a.opt.Namespace, name, key)
	}
	return string(v), nil
}

func equalBGP(x, y BGPState) bool {
	return x.ASNumber == y.ASNumber && x.MeshEnabled == y.MeshEnabled && slices.Equal(x.Mesh, y.Mesh) &&
		slices.EqualFunc(x.Peers, y.Peers, func(p, q bgp.Peer) bool {
			return p.Address == q.Address && p.ASNumber == q.ASNumber && p.Password == q.Password && p.Scope == q.Scope
		})
}

// wantRoutes computes the VXLAN routes to other nodes' blocks.
func (a *Agent) wantRoutes(pools []ipam.Pool) map[netip.Prefix]spec.Route {
	want := map[netip.Prefix]spec.Route{}
	if a.opt.VTEP == nil {
		return want
	}
	local, ok := a.opt.VTEP()
	if !ok || local.Disabled {
		return want
	}
	nodes, _ := a.nodes.List(everything)
	for _, n := range nodes {
		if n.Name == a.opt.Node {
			continue
		}
		mac, err := net.ParseMAC(n.Annotations[AnnotationVTEPMAC])
		if err != nil || len(mac) != 6 {
			continue
		}
		v4, _ := netip.ParseAddr(n.Annotations[AnnotationVTEP4])
		v6, _ := netip.ParseAddr(n.Annotations[AnnotationVTEP6])
		var blocks []netip.Prefix
		if err := json.Unmarshal([]byte(n.Annotations[AnnotationBlocks]), &blocks); err != nil {
			continue
		}
		for _, b := range blocks {
			var pool *ipam.Pool
			for i := range pools {
				if pools[i].CIDR.Overlaps(b) && pools[i].CIDR.Bits() <= b.Bits() {
					pool = &pools[i]
				}
			}
			if pool == nil {
				continue
			}
			// The outer family: the block's own where both ends have it,
			// else the other (IPv6 pods over an IPv4 underlay).
			remote := v4
			if b.Addr().Is6() && v6.IsValid() && local.V6.IsValid() || !(v4.IsValid() && local.V4.IsValid()) {
				remote = v6
			}
			if !remote.IsValid() || (remote.Is4() && !local.V4.IsValid()) || (remote.Is6() && !local.V6.IsValid()) {
				continue
			}
			switch pool.EffectiveEncapsulation() {
			case ipam.EncapVXLAN:
			case ipam.EncapVXLANCrossSubnet:
				same := false
				for _, s := range local.Subnets {
					for _, ad := range internalIPs(n) {
						same = same || s.Contains(ad)
					}
				}
				if same {
					continue
				}
			default:
				continue
			}
			r := spec.Route{Prefix: b, VXLAN: &spec.VXLANRoute{Remote: remote}}
			copy(r.VXLAN.MAC[:], mac)
			want[b] = r
		}
	}
	return want
}

var everything = labels.Everything()

// syncRoutes installs and removes the VXLAN routes; a route the switch
// refuses is left out, logged and named in the error.
func (a *Agent) syncRoutes(pools []ipam.Pool) (int, error) {
	want := a.wantRoutes(pools)
	a.mu.Lock()
	have := a.routes
	a.mu.Unlock()
	var adds []spec.Route
	var dels []netip.Prefix
	for p, r := range want {
		if h, ok := have[p]; !ok || *h.VXLAN != *r.VXLAN {
			adds = append(adds, r)
		}
	}
	for p := range have {
		if _, ok := want[p]; !ok {
			dels = append(dels, p)
		}
	}
	if len(adds) == 0 && len(dels) == 0 {
		return len(have), nil
	}
	var refused []error
	for range len(adds) + len(dels) + 1 {
		err := a.opt.Routes.ApplyRoutes(fib.OriginKube, adds, dels)
		if err == nil {
			break
		}
		var re *vswitch.RouteError
		if !errors.As(err, &re) {
			return len(have), fmt.Errorf("vxlan routes: %w", err)
		}
		op, i := re.Op, re.Index
		refused = append(refused, err)
		if op == "adds" && i < len(adds) {
			delete(want, adds[i].Prefix)
			adds = slices.Delete(adds, i, i+1)
		} else if op == "dels" && i < len(dels) {
			dels = slices.Delete(dels, i, i+1)
		} else {
			return len(have), fmt.Errorf("vxlan routes: %w", err)
		}
	}
	next := map[netip.Prefix]spec.Route{}
	for p, r := range have {
		next[p] = r
	}
	for _, p := range dels {
		delete(next, p)
	}
	for _, r := range adds {
		next[r.Prefix] = r
	}
	a.mu.Lock()
	a.routes = next
	a.mu.Unlock()
	if len(refused) > 0 {
		return len(next), fmt.Errorf("vxlan routes refused: %w", errors.Join(refused...))
	}
	return len(next), nil
}
