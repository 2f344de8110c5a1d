package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/cniserver"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/boltstore"
)

// cni is the daemon's CNI server and the IPAM store under it.
type cni struct {
	store ipam.Store // *boltstore.Store, or *lazyStore with kubernetes:
	alloc *ipam.Allocator
	srv   *cniserver.Server
	kube  *kubeIPAM // nil without a kubernetes: section
}

// startCNI opens the IPAM store, puts the configured pools in it, and
// re-adopts the node's pods; reg registers the CNI service on the API's
// gRPC server. Without an ipam: section it does nothing.
//
// With a kubernetes: section the store is the API server's
// (kube/ipamstore: IPAMBlock and IPPool objects) and the pools are its
// IPPools; the store syncs, the pods are re-adopted and the Reclaimer
// starts in the background (runKubeIPAM), and until then the CNI service
// says not ready, so nothing is claimed while the API server is out of
// reach.
func (d *Daemon) startCNI(reg func(func(*grpc.Server))) error {
	ic := d.cfg.IPAM
	if ic == nil {
		return nil
	}
	dp, ok := d.sw.(cniserver.Dataplane)
	if !ok {
		return fmt.Errorf("cni server: the dataplane has no ApplyRoutes")
	}
	if err := os.MkdirAll(filepath.Dir(ic.Store), 0o700); err != nil {
		return fmt.Errorf("ipam store: %w", err)
	}
	c := &cni{}
	if d.kube != nil {
		c.kube = &kubeIPAM{lazy: &lazyStore{}, gate: &cniGate{}, ready: make(chan struct{})}
		c.store = c.kube.lazy
	} else {
		st, err := boltstore.Open(ic.Store, boltstore.Options{Timeout: 5 * time.Second})
		if err != nil {
			return err
		}
		c.store = st
	}
	d.cni = c
	log := d.log.With("component", "cni")
	alloc, err := ipam.New(c.store, ipam.Options{Node: ic.Node, NodeLabels: ic.NodeLabels, Logger: log})
	if err != nil {
		return err
	}
	c.alloc = alloc
	ctx := context.Background()
	for i, p := range ic.Pools { // none with kubernetes: (config refuses them)
		if err := alloc.AddPool(ctx, p); err != nil {
			return fmt.Errorf("ipam.pools[%d]: %w", i, err)
		}
	}
	overhead := 50
	if v := d.cfg.Switch.VXLAN; v != nil && !v.VTEP4.IsValid() && v.VTEP6.IsValid() {
		overhead = 70
	}
	opt := cniserver.Options{
		Node: ic.Node, StateDir: ic.Store + ".endpoints", VXLANOverhead: overhead,
		FastPath: d.cfg.Switch.XDPFastPath, Logger: log,
	}
	if k := d.Kube(); k != nil {
		opt.Annotations = k // pod annotations from the agent's cache
	}
	c.srv, err = cniserver.New(alloc, dp, opt)
	if err != nil {
		return err
	}
	if c.kube != nil {
		gate := c.kube.gate
		reg(func(g *grpc.Server) { xvspb.RegisterCNIServer(g, gate) })
		d.runKubeIPAM(c, c.kube)
		return nil
	}
	if err := c.srv.Start(ctx); err != nil {
		return err
	}
	reg(c.srv.Register)
	return nil
}

// CNI returns the CNI server, nil without an ipam: section. The BGP
// wiring reads the node's blocks from it (NodeBlocks, SubscribeBlocks).
func (d *Daemon) CNI() *cniserver.Server {
	if d.cni == nil {
		return nil
	}
	return d.cni.srv
}

func (d *Daemon) stopCNI() {
	if d.cni == nil {
		return
	}
	if d.cni.kube != nil {
		d.cni.kube.stop()
	}
	if d.cni.store != nil {
		d.cni.store.Close()
	}
	d.cni = nil
}
