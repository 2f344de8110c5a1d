package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/xvs-project/xvs/bgp"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/kube/agent"
	"github.com/xvs-project/xvs/kube/services"
	"github.com/xvs-project/xvs/spec"
)

// kubeNode is the daemon's Kubernetes node agent and what it drives.
type kubeNode struct {
	rc     *rest.Config // the client config, the IPAM store's too
	agent  *agent.Agent
	svcs   *services.Watcher // nil when the switch has no NAT stage
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newKube builds the agent (it runs from startKube, once the switch, the
// CNI server and BGP are up). Without a kubernetes: section it does
// nothing.
func (d *Daemon) newKube() error {
	kcfg := d.cfg.Kube
	if kcfg == nil {
		return nil
	}
	var rc *rest.Config
	var err error
	if kcfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kcfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return fmt.Errorf("kubernetes: client config: %w", err)
	}
	opt := agent.Options{Config: rc, Node: kcfg.Node, Namespace: kcfg.Namespace, Logger: d.log.With("component", "kube"),
		VTEP: d.vtep}
	if ra, ok := d.sw.(RouteApplier); ok {
		opt.Routes = ra
	}
	if d.cfg.BGP != nil {
		opt.BGP = kubeBGP{d}
	}
	if d.cfg.IPAM != nil {
		opt.Pools = kubePools{d}
	}
	a, err := agent.New(opt)
	if err != nil {
		return err
	}
	d.kube = &kubeNode{rc: rc, agent: a}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	if d.kube.svcs, err = d.newKubeServices(kc, kcfg.Node); err != nil {
		return err
	}
	return nil
}

// startKube runs the agent and feeds it the node's blocks.
func (d *Daemon) startKube() {
	if d.kube == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.kube.cancel = cancel
	d.kube.wg.Go(func() { d.kube.agent.Run(ctx) })
	if w := d.kube.svcs; w != nil {
		d.kube.wg.Go(func() { w.Run(ctx) })
	}
	if c := d.CNI(); c != nil {
		ch, stop := c.SubscribeBlocks()
		d.kube.wg.Go(func() {
			defer stop()
			for {
				if bs, err := c.NodeBlocks(ctx); err == nil {
					// BGP follows the CNI server's blocks by itself
					// (bgp.go); the agent publishes them on the Node.
					d.kube.agent.SetBlocks(bs)
				}
				select {
				case <-ctx.Done():
					return
				case <-ch:
				}
			}
		})
	}
}

func (d *Daemon) stopKube() {
	if d.kube != nil && d.kube.cancel != nil {
		d.kube.cancel()
		d.kube.wg.Wait()
		d.kube.cancel = nil
	}
}

// Kube returns the node agent, nil without a kubernetes: section.
func (d *Daemon) Kube() *agent.Agent {
	if d.kube == nil {
		return nil
	}
	return d.kube.agent
}

// vtep is the node's VTEP as the config sets it: the vxlan: section's MAC
// (else the first uplink's) and addresses (else the first uplink's).
func (d *Daemon) vtep() (agent.VTEP, bool) {
	vx := d.cfg.Switch.VXLAN
	if vx == nil {
		return agent.VTEP{}, false
	}
	v := agent.VTEP{MAC: net.HardwareAddr(slices.Clone(vx.MAC[:])), V4: vx.VTEP4, V6: vx.VTEP6}
	for _, p := range d.sw.Ports() {
		if p.Kind != spec.PortUplink {
			continue
		}
		if vx.MAC == ([6]byte{}) {
			v.MAC = net.HardwareAddr(slices.Clone(p.MAC[:]))
		}
		for _, a := range p.Addrs {
			v.Subnets = append(v.Subnets, a.Masked())
			switch {
			case !v.V4.IsValid() && a.Addr().Is4():
				v.V4 = a.Addr()
			case !v.V6.IsValid() && a.Addr().Is6() && !a.Addr().IsLinkLocalUnicast():
				v.V6 = a.Addr()
			}
		}
		break
	}
	return v, len(v.MAC) == 6 && v.MAC.String() != "00:00:00:00:00:00"
}

// kubeBGP applies the agent's BGP state to the speaker: the mesh members
// and the BGPPeers join the file's peers; the AS and the mesh switch are
// the API's when it sets them. The speaker cannot change its AS at run
// time: a different one is refused (and reported in the agent's status)
// until xvsd restarts.
type kubeBGP struct{ d *Daemon }

func (k kubeBGP) SetBGP(ctx context.Context, st agent.BGPState) error {
	b := k.d.bgp
	if b == nil {
		return errors.New("bgp is not running")
	}
	cfg := b.cfg.Speaker
	cfg.MeshMembers = slices.Concat(cfg.MeshMembers, st.Mesh)
	cfg.Peers = slices.Clone(cfg.Peers)
	for _, p := range st.Peers {
		if !slices.ContainsFunc(cfg.Peers, func(q bgp.Peer) bool { return q.Address == p.Address }) {
			cfg.Peers = append(cfg.Peers, p)
		}
	}
	if st.ASNumber != 0 {
		cfg.ASNumber = st.ASNumber
	}
	if !st.MeshEnabled {
		off := false
		cfg.NodeToNodeMeshEnabled = &off
	}
	slices.SortFunc(cfg.MeshMembers, netip.Addr.Compare)
	cfg.MeshMembers = slices.Compact(cfg.MeshMembers)
	return b.speaker.Reconfigure(ctx, cfg)
}

// kubePools takes the agent's pool state for the CNI server's
// allocator. Its store, kube/ipamstore, reads the IPPools itself, so only
// this node's labels (for the pools' nodeSelectors) are applied, and the
// pools' natOutgoing flags become the switch's NAT policy.
type kubePools struct{ d *Daemon }

func (k kubePools) SetPools(_ context.Context, ps []ipam.Pool) error {
	if err := k.d.setKubePools(ps); err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	return nil
}

func (k kubePools) SetNodeLabels(l map[string]string) {
	if c := k.d.cni; c != nil && c.alloc != nil {
		c.alloc.SetNodeLabels(l)
	}
}

// kubeCollectors are the agent's metrics.
func (d *Daemon) kubeCollectors() []prometheus.Collector {
	if d.kube == nil {
		return nil
	}
	a := d.kube.agent
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	var svc []prometheus.Collector
	if w := d.kube.svcs; w != nil {
		svc = []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xvs_kube_services", Help: "Services from the API in the switch's last set."},
				func() float64 { return float64(w.Stats().Services) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "xvs_kube_service_ports_skipped_total", Help: "Service ports left out (SCTP), once per Service version."},
				func() float64 { return float64(w.Stats().SkippedPorts) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "xvs_kube_services_refused_total", Help: "Services left out as invalid, once per Service version."},
				func() float64 { return float64(w.Stats().Refused) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "xvs_kube_service_apply_errors_total", Help: "Service sets the switch refused (retried)."},
				func() float64 { return float64(w.Stats().ApplyErrors) }),
		}
	}
	return append(svc,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "xvs_kube_watch_errors_total", Help: "Watch and list errors of the node agent's informers."},
			func() float64 { return float64(a.Status().WatchErrors) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "xvs_kube_resyncs_total", Help: "Full resyncs: the first sync and each reconnect to the API server."},
			func() float64 { return float64(a.Status().Resyncs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xvs_kube_connected", Help: "1 when the last probe of the API server's /readyz succeeded."},
			func() float64 { return b2f(a.Status().Connected) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xvs_kube_synced", Help: "1 once the agent's caches synced."},
			func() float64 { return b2f(a.Status().Synced) }),
	)
}
