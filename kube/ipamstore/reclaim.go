package ipamstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/xvs-project/xvs/ipam"
)

// DefaultReclaimGrace is how long a Node object must have been gone
// before its blocks and addresses are reclaimed. A kubelet that is still
// alive registers its Node again well within it.
const DefaultReclaimGrace = 10 * time.Minute

// ReclaimOptions configures a Reclaimer.
type ReclaimOptions struct {
	// Grace: DefaultReclaimGrace when 0.
	Grace time.Duration
	// Interval between sweeps: Grace/10 (at least a second) when 0.
	Interval time.Duration
	Logger   *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Reclaimer releases what nodes that left the cluster held: once a node
// named by a block's affinity or an allocation has had no Node object
// for the grace period, every address it allocated is released (its pods
// went with it) and its blocks lose their affinity (ipam.Allocator's
// GC and ReleaseNodeBlocks), the empty ones deleted, so other nodes can
// claim them.
//
// Every agent runs one; there is no leader. Writes are the store's
// compare-and-swap, so two agents reclaiming the same node at once
// conflict, re-read and find the work done. Before reclaiming, a node's
// absence is confirmed by a live Get, not the informer's cache. A node
// never reclaims itself.
type Reclaimer struct {
	kube  kubernetes.Interface
	store ipam.Store
	self  string
	opt   ReclaimOptions
	log   *slog.Logger

	nodes   cache.SharedIndexInformer
	sweepMu sync.Mutex           // one sweep at a time
	mu      sync.Mutex           // guards missing
	missing map[string]time.Time // node → when it was first seen missing
}

// NewReclaimer returns a reclaimer for the node self's agent.
func NewReclaimer(kube kubernetes.Interface, store ipam.Store, self string, opt ReclaimOptions) *Reclaimer {
	if opt.Grace <= 0 {
		opt.Grace = DefaultReclaimGrace
	}
	if opt.Interval <= 0 {
		opt.Interval = max(opt.Grace/10, time.Second)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Reclaimer{kube: kube, store: store, self: self, opt: opt, log: opt.Logger, missing: map[string]time.Time{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.nodes = informers.NewSharedInformerFactory(kube, 0).Core().V1().Nodes().Informer()
	r.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if m, ok := obj.(metav1.Object); ok {
				r.mu.Lock()
				if _, ok := r.missing[m.GetName()]; !ok {
					r.missing[m.GetName()] = r.opt.Now()
				}
				r.mu.Unlock()
			}
		},
	})
	return r
}

// Start runs the Node informer until ctx ends and waits for its sync.
func (r *Reclaimer) Start(ctx context.Context) error {
	go r.nodes.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), r.nodes.HasSynced) {
		return fmt.Errorf("reclaimer: node informer did not sync: %w", context.Cause(ctx))
	}
	return nil
}

// Run starts the informer and sweeps every Interval until ctx ends.
func (r *Reclaimer) Run(ctx context.Context) error {
	if err := r.Start(ctx); err != nil {
		return err
	}
	t := time.NewTicker(r.opt.Interval)
	defer t.Stop()
	for {
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reclaimer: sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep looks at every node the blocks name once: it starts the clock of
// a node without a Node object, forgets nodes that came back, and
// reclaims those gone for the grace period. It returns the nodes it
// reclaimed. Start must have returned first.
func (r *Reclaimer) Sweep(ctx context.Context) ([]string, error) {
	r.sweepMu.Lock()
	defer r.sweepMu.Unlock()
	blocks, err := r.store.ListBlocks(ctx)
	if err != nil {
		return nil, err
	}
	named := map[string]bool{}
	for _, b := range blocks {
		if b.Affinity != "" {
			named[b.Affinity] = true
		}
		for _, al := range b.Allocations {
			named[al.Node] = true
		}
	}
	delete(named, r.self)
	delete(named, "")
	now := r.opt.Now()
	var due []string
	r.mu.Lock()
	for n := range r.missing {
		if !named[n] {
			delete(r.missing, n) // nothing of it left
		}
	}
	for n := range named {
		if _, ok, _ := r.nodes.GetStore().GetByKey(n); ok {
			delete(r.missing, n)
			continue
		}
		first, ok := r.missing[n]
		if !ok {
			r.missing[n] = now
			r.log.Info("reclaimer: a node holding blocks has no Node object; waiting out the grace period", "node", n, "grace", r.opt.Grace)
			continue
		}
		if now.Sub(first) >= r.opt.Grace {
			due = append(due, n)
		}
	}
	r.mu.Unlock()
	sort.Strings(due)
	var done []string
	var errs []error
	for _, n := range due {
		_, err := r.kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err == nil {
			r.mu.Lock()
			delete(r.missing, n) // the cache was behind: it is back
			r.mu.Unlock()
			continue
		}
		if !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("node %q: %w", n, err))
			continue
		}
		if err := r.reclaim(ctx, n); err != nil {
			errs = append(errs, err)
			continue
		}
		r.mu.Lock()
		delete(r.missing, n)
		r.mu.Unlock()
		done = append(done, n)
	}
	if len(errs) > 0 {
		return done, fmt.Errorf("reclaimer: %v", errs)
	}
	return done, nil
}

// reclaim releases node n's addresses and blocks, as n's own allocator
// would: GC with no valid attachments, then ReleaseNodeBlocks.
func (r *Reclaimer) reclaim(ctx context.Context, n string) error {
	a, err := ipam.New(r.store, ipam.Options{Node: n, Logger: r.log})
	if err != nil {
		return err
	}
	gone, err := a.GC(ctx, nil)
	if err != nil {
		return fmt.Errorf("release addresses of node %q: %w", n, err)
	}
	// Another agent reclaiming n at once may delete a block under us
	// (ErrNotFound, which ReleaseNodeBlocks does not retry): read again.
	var blocks []netip.Prefix
	for attempt := 0; ; attempt++ {
		blocks, err = a.ReleaseNodeBlocks(ctx, n)
		if err == nil || !errors.Is(err, ipam.ErrNotFound) || attempt >= 8 {
			break
		}
	}
	if err != nil {
		return err
	}
	r.log.Info("reclaimer: reclaimed a vanished node's blocks", "node", n, "addresses", len(gone), "blocks", blocks, "grace", r.opt.Grace)
	return nil
}
