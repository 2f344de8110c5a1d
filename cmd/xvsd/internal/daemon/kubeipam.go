package daemon

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/kubernetes"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/cniserver"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/kube/client"
	"github.com/xvs-project/xvs/kube/ipamstore"
)

// errNotSynced is what the IPAM store answers until its informers have
// listed IPAMBlocks and IPPools once.
var errNotSynced = errors.New("the Kubernetes IPAM store has not synced with the API server yet")

// lazyStore is the ipam.Store the allocator is built on with a
// kubernetes: section: kube/ipamstore once it has synced, errNotSynced
// before. It lets the CNI server, BGP and the agent be wired at start
// while the API server may still be unreachable; nothing is ever claimed
// anywhere else in the meantime.
type lazyStore struct {
	st atomic.Pointer[ipamstore.Store]
}

var _ ipam.Store = (*lazyStore)(nil)

func (l *lazyStore) get() (*ipamstore.Store, error) {
	if s := l.st.Load(); s != nil {
		return s, nil
	}
	return nil, errNotSynced
}

func (l *lazyStore) ListPools(ctx context.Context) ([]ipam.Pool, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.ListPools(ctx)
}

func (l *lazyStore) PutPool(ctx context.Context, p ipam.Pool) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.PutPool(ctx, p)
}

func (l *lazyStore) DeletePool(ctx context.Context, name string) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.DeletePool(ctx, name)
}

func (l *lazyStore) ListBlocks(ctx context.Context) ([]ipam.Block, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.ListBlocks(ctx)
}

func (l *lazyStore) GetBlock(ctx context.Context, cidr netip.Prefix) (ipam.Block, error) {
	s, err := l.get()
	if err != nil {
		return ipam.Block{}, err
	}
	return s.GetBlock(ctx, cidr)
}

func (l *lazyStore) CreateBlock(ctx context.Context, b ipam.Block) (ipam.Block, error) {
	s, err := l.get()
	if err != nil {
		return ipam.Block{}, err
	}
	return s.CreateBlock(ctx, b)
}

func (l *lazyStore) UpdateBlock(ctx context.Context, b ipam.Block) (ipam.Block, error) {
	s, err := l.get()
	if err != nil {
		return ipam.Block{}, err
	}
	return s.UpdateBlock(ctx, b)
}

func (l *lazyStore) DeleteBlock(ctx context.Context, b ipam.Block) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.DeleteBlock(ctx, b)
}

func (l *lazyStore) BlocksByHandle(ctx context.Context, handle string) ([]ipam.Block, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.BlocksByHandle(ctx, handle)
}

// Close closes the store if it was opened.
func (l *lazyStore) Close() error {
	if s := l.st.Load(); s != nil {
		return s.Close()
	}
	return nil
}

// cniGate is the CNI service xvsd registers with a kubernetes: section:
// until the IPAM store has synced and the CNI server has re-adopted the
// node's pods, STATUS says not ready (code 50), ADD, DEL, CHECK and GC
// ask the runtime to try again later (code 11) and the listings are
// Unavailable; then every call goes to the CNI server.
type cniGate struct {
	xvspb.UnimplementedCNIServer
	svc atomic.Pointer[xvspb.CNIServer]
	why atomic.Pointer[string] // why not yet, for the messages
}

func (g *cniGate) open(s xvspb.CNIServer) { g.svc.Store(&s) }

func (g *cniGate) reason() string {
	if w := g.why.Load(); w != nil {
		return *w
	}
	return errNotSynced.Error()
}

func (g *cniGate) setReason(s string) { g.why.Store(&s) }

func (g *cniGate) closed(code uint32) *xvspb.CNIError {
	return &xvspb.CNIError{Code: code, Msg: "xvsd is not ready for pods", Details: g.reason()}
}

func (g *cniGate) CNIAdd(ctx context.Context, r *xvspb.CNIRequest) (*xvspb.CNIAddReply, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).CNIAdd(ctx, r)
	}
	return &xvspb.CNIAddReply{Error: g.closed(cniserver.CodeTryAgainLater)}, nil
}

func (g *cniGate) CNIDel(ctx context.Context, r *xvspb.CNIRequest) (*xvspb.CNIReply, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).CNIDel(ctx, r)
	}
	return &xvspb.CNIReply{Error: g.closed(cniserver.CodeTryAgainLater)}, nil
}

func (g *cniGate) CNICheck(ctx context.Context, r *xvspb.CNIRequest) (*xvspb.CNIReply, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).CNICheck(ctx, r)
	}
	return &xvspb.CNIReply{Error: g.closed(cniserver.CodeTryAgainLater)}, nil
}

func (g *cniGate) CNIGC(ctx context.Context, r *xvspb.CNIGCRequest) (*xvspb.CNIReply, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).CNIGC(ctx, r)
	}
	return &xvspb.CNIReply{Error: g.closed(cniserver.CodeTryAgainLater)}, nil
}

func (g *cniGate) CNIStatus(ctx context.Context, r *xvspb.CNIStatusRequest) (*xvspb.CNIReply, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).CNIStatus(ctx, r)
	}
	return &xvspb.CNIReply{Error: g.closed(cniserver.CodeNotReady)}, nil
}

func (g *cniGate) ListPools(ctx context.Context, r *xvspb.ListPoolsRequest) (*xvspb.ListPoolsResponse, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).ListPools(ctx, r)
	}
	return nil, status.Error(codes.Unavailable, g.reason())
}

func (g *cniGate) ListBlocks(ctx context.Context, r *xvspb.ListBlocksRequest) (*xvspb.ListBlocksResponse, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).ListBlocks(ctx, r)
	}
	return nil, status.Error(codes.Unavailable, g.reason())
}

func (g *cniGate) ListEndpoints(ctx context.Context, r *xvspb.ListEndpointsRequest) (*xvspb.ListEndpointsResponse, error) {
	if s := g.svc.Load(); s != nil {
		return (*s).ListEndpoints(ctx, r)
	}
	return nil, status.Error(codes.Unavailable, g.reason())
}

// kubeIPAM is what runs the Kubernetes IPAM store behind the CNI server.
type kubeIPAM struct {
	lazy   *lazyStore
	gate   *cniGate
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  chan struct{} // closed once the gate opened
}

// runKubeIPAM opens the Kubernetes IPAM store (waiting, with client-go's
// backoff, for the API server), re-adopts the node's pods, starts the
// Reclaimer and then opens the gate. It runs until stopCNI.
func (d *Daemon) runKubeIPAM(c *cni, k *kubeIPAM) {
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	log := d.log.With("component", "cni")
	rc := d.kube.rc
	k.wg.Go(func() {
		xc, err := client.NewForConfig(rc)
		if err != nil {
			k.gate.setReason(err.Error())
			log.Error("kubernetes ipam store: client", "err", err)
			return
		}
		kc, err := kubernetes.NewForConfig(rc)
		if err != nil {
			k.gate.setReason(err.Error())
			log.Error("kubernetes ipam store: client", "err", err)
			return
		}
		log.Info("kubernetes ipam store: waiting for the API server's IPAMBlocks and IPPools")
		st, err := ipamstore.New(ctx, xc, ipamstore.Options{Logger: log, Kube: kc, Node: d.cfg.IPAM.Node})
		if err != nil {
			return // stopped before it synced
		}
		k.lazy.st.Store(st)
		k.gate.setReason("re-adopting the node's pods")
		for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
			err := c.srv.Start(ctx)
			if err == nil {
				break
			}
			k.gate.setReason(err.Error())
			log.Warn("cni server: start failed, retrying", "err", err, "in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		r := ipamstore.NewReclaimer(kc, st, d.cfg.IPAM.Node, ipamstore.ReclaimOptions{
			Grace: d.cfg.Kube.ReclaimGrace, Logger: log.With("part", "reclaimer")})
		k.wg.Go(func() {
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("reclaimer stopped", "err", err)
			}
		})
		k.gate.open(c.srv.Service())
		close(k.ready)
		log.Info("kubernetes ipam store synced; the CNI server takes pods")
	})
}

func (k *kubeIPAM) stop() {
	if k.cancel != nil {
		k.cancel()
	}
	k.wg.Wait()
}

// CNIReady is closed once the CNI server takes pods: at once without a
// kubernetes: section, once the Kubernetes IPAM store synced with one
// (tests). Nil without an ipam: section.
func (d *Daemon) CNIReady() <-chan struct{} {
	if d.cni == nil {
		return nil
	}
	if d.cni.kube == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return d.cni.kube.ready
}
