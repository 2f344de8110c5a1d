package ipamstore

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/xvs-project/xvs/ipam"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
)

// DefaultOverlayTTL bounds how long the store trusts its own writes over
// an informer cache that has not shown them (see overlay).
const DefaultOverlayTTL = 2 * time.Minute

// handleIndex is the informer index of blocks by handle key.
const handleIndex = "handle"

// Options configures a Store.
type Options struct {
	// Logger receives refused pools, undecodable blocks and watch
	// errors; nil discards.
	Logger *slog.Logger
	// Kube, when set, records an Event on every refused IPPool (reason
	// InvalidIPPool, the message naming the field), from component xvsd
	// on host Node. Nil: refusals are only logged and listed (Refused).
	Kube kubernetes.Interface
	// Node names the event source's host.
	Node string
	// OverlayTTL: see DefaultOverlayTTL; 0 means the default.
	OverlayTTL time.Duration
}

// Store is an ipam.Store on the Kubernetes API. See the package doc.
type Store struct {
	cs  *client.Clientset
	log *slog.Logger

	blocks cache.SharedIndexInformer
	pools  cache.SharedIndexInformer
	bo     *overlay[*xvsv1.IPAMBlock]
	po     *overlay[*xvsv1.IPPool]

	cancel context.CancelFunc
	wg     sync.WaitGroup

	events      record.EventRecorder // nil without Options.Kube
	broadcaster record.EventBroadcaster
	poolsDirty  chan struct{} // a pool changed: check the pools again

	mu       sync.Mutex        // guards reported, badBlock, refused
	reported map[string]string // pool name → the refusal last reported (with its resourceVersion)
	badBlock map[string]string // block name → resourceVersion last logged as undecodable
	refused  []*PoolError      // the last check's refusals
	closed   bool
}

var _ ipam.Store = (*Store)(nil)

// New starts informers on IPAMBlocks and IPPools and returns once both
// have synced (ctx bounds that wait only; the informers run until Close).
// cs is the xvs.dev client; opts.Kube, if set, records Events.
func New(ctx context.Context, cs *client.Clientset, opts Options) (*Store, error) {
	s := &Store{
		cs: cs, log: opts.Logger,
		reported: map[string]string{}, badBlock: map[string]string{},
		poolsDirty: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ttl := opts.OverlayTTL
	if ttl <= 0 {
		ttl = DefaultOverlayTTL
	}
	s.bo, s.po = newOverlay[*xvsv1.IPAMBlock](ttl), newOverlay[*xvsv1.IPPool](ttl)

	rc := cs.RESTClient()
	s.blocks = cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(rc, xvsv1.ResourceIPAMBlocks, "", fields.Everything()),
		&xvsv1.IPAMBlock{}, 0,
		cache.Indexers{handleIndex: func(obj any) ([]string, error) {
			b, ok := obj.(*xvsv1.IPAMBlock)
			if !ok {
				return nil, nil
			}
			return blockHandles(b), nil
		}})
	s.pools = cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(rc, xvsv1.ResourceIPPools, "", fields.Everything()),
		&xvsv1.IPPool{}, 0, cache.Indexers{})
	if _, err := s.blocks.AddEventHandler(observer(s.bo, nil)); err != nil {
		return nil, err
	}
	if _, err := s.pools.AddEventHandler(observer(s.po, s.poolChanged)); err != nil {
		return nil, err
	}
	for name, inf := range map[string]cache.SharedIndexInformer{"ipamblocks": s.blocks, "ippools": s.pools} {
		if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			s.log.Warn("ipam store: watch failed, retrying", "resource", name, "err", err)
		}); err != nil {
			return nil, err
		}
	}
	if opts.Kube != nil {
		s.broadcaster = record.NewBroadcaster()
		s.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: opts.Kube.CoreV1().Events("")})
		s.events = s.broadcaster.NewRecorder(client.Scheme, corev1.EventSource{Component: "xvsd", Host: opts.Node})
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.blocks.RunWithContext(runCtx) })
	s.wg.Go(func() { s.pools.RunWithContext(runCtx) })
	if !cache.WaitForCacheSync(ctx.Done(), s.blocks.HasSynced, s.pools.HasSynced) {
		s.Close()
		return nil, fmt.Errorf("ipam store: informers did not sync: %w", context.Cause(ctx))
	}
	s.wg.Go(func() { s.checkPoolsLoop(runCtx) })
	return s, nil
}

// observer keeps an overlay in step with an informer; changed (may be
// nil) is called on every event.
func observer[T interface {
	*xvsv1.IPAMBlock | *xvsv1.IPPool
	metav1.Object
}](o *overlay[T], changed func()) cache.ResourceEventHandlerFuncs {
	see := func(obj any, deletion bool) {
		if _, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			// A relist found it gone; its last version is old news, the
			// ttl handles what the overlay still holds.
			if changed != nil {
				changed()
			}
			return
		}
		if m, ok := obj.(metav1.Object); ok {
			o.observed(m.GetName(), m.GetResourceVersion(), deletion)
		}
		if changed != nil {
			changed()
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { see(obj, false) },
		UpdateFunc: func(_, obj any) { see(obj, false) },
		DeleteFunc: func(obj any) { see(obj, true) },
	}
}

// Close stops the informers and the event recorder.
func (s *Store) Close() error {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if closed {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	if s.broadcaster != nil {
		s.broadcaster.Shutdown()
	}
	return nil
}

// HasSynced reports whether both informers have listed once.
func (s *Store) HasSynced() bool { return s.blocks.HasSynced() && s.pools.HasSynced() }

// Clientset is the xvs.dev client the store writes with.
func (s *Store) Clientset() *client.Clientset { return s.cs }

// --- blocks ---

// blockObj is the block object to show for name: the cache's, or this
// process's newer knowledge of it.
func (s *Store) blockObj(name string) (*xvsv1.IPAMBlock, bool) {
	var cached *xvsv1.IPAMBlock
	obj, ok, err := s.blocks.GetStore().GetByKey(name)
	if err == nil && ok {
		cached, ok = obj.(*xvsv1.IPAMBlock)
	} else {
		ok = false
	}
	return s.bo.resolve(name, cached, ok)
}

// decode is blockFromObject, logging (once per version) an object that
// cannot be used.
func (s *Store) decode(o *xvsv1.IPAMBlock) (ipam.Block, bool) {
	b, err := blockFromObject(o)
	if err == nil {
		return b, true
	}
	s.mu.Lock()
	if s.badBlock[o.Name] != o.ResourceVersion {
		if len(s.badBlock) > 1024 {
			clear(s.badBlock)
		}
		s.badBlock[o.Name] = o.ResourceVersion
		s.log.Warn("ipam store: ignoring an IPAM block", "err", err)
	}
	s.mu.Unlock()
	return ipam.Block{}, false
}

// ListBlocks returns every usable block, sorted by CIDR (IPv4 first).
func (s *Store) ListBlocks(context.Context) ([]ipam.Block, error) {
	names := map[string]bool{}
	for _, k := range s.blocks.GetStore().ListKeys() {
		names[k] = true
	}
	for _, k := range s.bo.names() {
		names[k] = true
	}
	out := make([]ipam.Block, 0, len(names))
	for n := range names {
		if o, ok := s.blockObj(n); ok {
			if b, ok := s.decode(o); ok {
				out = append(out, b)
			}
		}
	}
	ipam.SortBlocks(out)
	return out, nil
}

// GetBlock returns one block; ipam.ErrNotFound if there is none (or it
// cannot be decoded).
func (s *Store) GetBlock(_ context.Context, cidr netip.Prefix) (ipam.Block, error) {
	name := xvsv1.BlockName(cidr)
	o, ok := s.blockObj(name)
	if ok {
		if b, ok := s.decode(o); ok {
			return b, nil
		}
	}
	return ipam.Block{}, fmt.Errorf("block %s: %w", cidr, ipam.ErrNotFound)
}

// BlocksByHandle returns the blocks holding an allocation of the handle,
// from the informer's handle index and this process's newer writes.
func (s *Store) BlocksByHandle(_ context.Context, handle string) ([]ipam.Block, error) {
	names := map[string]bool{}
	objs, err := s.blocks.GetIndexer().ByIndex(handleIndex, handle)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if b, ok := o.(*xvsv1.IPAMBlock); ok {
			names[b.Name] = true
		}
	}
	for _, n := range s.bo.names() {
		names[n] = true
	}
	var out []ipam.Block
	for n := range names {
		o, ok := s.blockObj(n)
		if !ok || !holds(o, handle) {
			continue
		}
		if b, ok := s.decode(o); ok {
			out = append(out, b)
		}
	}
	ipam.SortBlocks(out)
	return out, nil
}

// CreateBlock claims a block: one Create of the object named
// BlockName(cidr). ipam.ErrExists if it exists; the existing object is
// read at once, so the caller's next read shows it.
func (s *Store) CreateBlock(ctx context.Context, b ipam.Block) (ipam.Block, error) {
	if !ipam.CheckBlock(&b) {
		return ipam.Block{}, fmt.Errorf("block %s: invalid allocations", b.CIDR)
	}
	b.Revision = ""
	got, err := s.cs.IPAMBlocks().Create(ctx, objectFromBlock(b, nil), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		s.refresh(ctx, xvsv1.BlockName(b.CIDR), "")
		return ipam.Block{}, fmt.Errorf("block %s: %w", b.CIDR, ipam.ErrExists)
	}
	if err != nil {
		return ipam.Block{}, fmt.Errorf("create block %s: %w", b.CIDR, err)
	}
	return s.wrote(got)
}

// wrote records an object the API server returned for our write and
// decodes it.
func (s *Store) wrote(got *xvsv1.IPAMBlock) (ipam.Block, error) {
	s.bo.put(got)
	nb, err := blockFromObject(got)
	if err != nil {
		return ipam.Block{}, fmt.Errorf("the API server returned %w", err)
	}
	return nb, nil
}

// refresh reads a block live after a lost compare-and-swap, so the next
// read shows the version that won (or its absence: a tombstone above
// rv) without waiting for the informer.
func (s *Store) refresh(ctx context.Context, name, rv string) {
	cur, err := s.cs.IPAMBlocks().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		s.bo.put(cur)
	case apierrors.IsNotFound(err):
		if rv != "" {
			s.bo.tombstone(name, rv)
		}
	}
}

// noRevision answers an update or delete without a Revision, which the
// API server would take as unconditional: ErrNotFound if the block is
// gone, else ErrConflict.
func (s *Store) noRevision(ctx context.Context, cidr netip.Prefix) error {
	_, err := s.cs.IPAMBlocks().Get(ctx, xvsv1.BlockName(cidr), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("block %s: %w", cidr, ipam.ErrNotFound)
	case err != nil:
		return fmt.Errorf("block %s: %w", cidr, err)
	}
	return fmt.Errorf("block %s: no revision given: %w", cidr, ipam.ErrConflict)
}

// UpdateBlock writes b if b.Revision is the object's resourceVersion
// (an Update carrying it): ipam.ErrConflict if someone wrote it since,
// ipam.ErrNotFound if it is gone.
func (s *Store) UpdateBlock(ctx context.Context, b ipam.Block) (ipam.Block, error) {
	if !ipam.CheckBlock(&b) {
		return ipam.Block{}, fmt.Errorf("block %s: invalid allocations", b.CIDR)
	}
	if b.Revision == "" {
		return ipam.Block{}, s.noRevision(ctx, b.CIDR)
	}
	name := xvsv1.BlockName(b.CIDR)
	var meta *metav1.ObjectMeta
	if cur, ok := s.blockObj(name); ok {
		meta = &cur.ObjectMeta
	}
	got, err := s.cs.IPAMBlocks().Update(ctx, objectFromBlock(b, meta), metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err):
		s.refresh(ctx, name, b.Revision)
		return ipam.Block{}, fmt.Errorf("block %s revision %s: %w", b.CIDR, b.Revision, ipam.ErrConflict)
	case apierrors.IsNotFound(err):
		s.bo.tombstone(name, b.Revision)
		return ipam.Block{}, fmt.Errorf("block %s: %w", b.CIDR, ipam.ErrNotFound)
	case err != nil:
		return ipam.Block{}, fmt.Errorf("update block %s: %w", b.CIDR, err)
	}
	return s.wrote(got)
}

// DeleteBlock deletes the block if b.Revision is still its
// resourceVersion (a Delete with that precondition).
func (s *Store) DeleteBlock(ctx context.Context, b ipam.Block) error {
	if b.Revision == "" {
		return s.noRevision(ctx, b.CIDR)
	}
	name := xvsv1.BlockName(b.CIDR)
	rv := b.Revision
	err := s.cs.IPAMBlocks().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	switch {
	case apierrors.IsConflict(err):
		s.refresh(ctx, name, rv)
		return fmt.Errorf("block %s revision %s: %w", b.CIDR, rv, ipam.ErrConflict)
	case apierrors.IsNotFound(err):
		s.bo.tombstone(name, rv)
		return fmt.Errorf("block %s: %w", b.CIDR, ipam.ErrNotFound)
	case err != nil:
		return fmt.Errorf("delete block %s: %w", b.CIDR, err)
	}
	s.bo.tombstone(name, rv)
	return nil
}

// --- pools ---

func (s *Store) poolObjs() []*xvsv1.IPPool {
	names := map[string]bool{}
	for _, k := range s.pools.GetStore().ListKeys() {
		names[k] = true
	}
	for _, k := range s.po.names() {
		names[k] = true
	}
	out := make([]*xvsv1.IPPool, 0, len(names))
	for n := range names {
		var cached *xvsv1.IPPool
		obj, ok, err := s.pools.GetStore().GetByKey(n)
		if err == nil && ok {
			cached, ok = obj.(*xvsv1.IPPool)
		} else {
			ok = false
		}
		if p, ok := s.po.resolve(n, cached, ok); ok {
			out = append(out, p)
		}
	}
	return out
}

// ListPools returns the usable pools, sorted by name: every IPPool but
// those refused (see ValidPools), which are reported (Refused, an Event)
// and left out, so the rest of the configuration still applies.
func (s *Store) ListPools(context.Context) ([]ipam.Pool, error) {
	return s.checkPools(), nil
}

// Refused lists the IPPools the last check refused, by name.
func (s *Store) Refused() []*PoolError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*PoolError(nil), s.refused...)
}

func (s *Store) poolChanged() {
	select {
	case s.poolsDirty <- struct{}{}:
	default:
	}
}

// checkPoolsLoop checks the pools whenever one changes, so a refused pool
// is reported when it appears, not when a pod next needs an address.
func (s *Store) checkPoolsLoop(ctx context.Context) {
	s.checkPools()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.poolsDirty:
			s.checkPools()
		}
	}
}

// checkPools validates every pool, reports new refusals and returns the
// usable pools.
func (s *Store) checkPools() []ipam.Pool {
	objs := s.poolObjs()
	ok, bad := ValidPools(objs)
	byName := make(map[string]*xvsv1.IPPool, len(objs))
	for _, o := range objs {
		byName[o.Name] = o
	}
	s.mu.Lock()
	s.refused = bad
	var report []*PoolError
	seen := map[string]bool{}
	for _, e := range bad {
		seen[e.Pool] = true
		key := byName[e.Pool].ResourceVersion + "\x00" + e.Error()
		if s.reported[e.Pool] != key {
			s.reported[e.Pool] = key
			report = append(report, e)
		}
	}
	for n := range s.reported {
		if !seen[n] {
			delete(s.reported, n) // valid again (or gone): report a new refusal anew
		}
	}
	s.mu.Unlock()
	for _, e := range report {
		s.log.Warn("ipam store: refusing an IP pool; the other pools still apply", "pool", e.Pool, "field", e.Field, "value", e.Value, "err", e)
		if s.events != nil {
			s.events.Event(byName[e.Pool], corev1.EventTypeWarning, "InvalidIPPool", eventMessage(e))
		}
	}
	return ok
}

// PutPool creates or replaces the IPPool of p.Name (the ipam.Store
// contract). xvsd never calls it in a cluster: pools are the operator's
// objects, and xvsd's RBAC role only reads them.
func (s *Store) PutPool(ctx context.Context, p ipam.Pool) error {
	for attempt := 0; ; attempt++ {
		cur, err := s.cs.IPPools().Get(ctx, p.Name, metav1.GetOptions{})
		var got *xvsv1.IPPool
		switch {
		case apierrors.IsNotFound(err):
			got, err = s.cs.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: p.Name}, Spec: specFromPool(p, nil)}, metav1.CreateOptions{})
		case err == nil:
			cur.Spec = specFromPool(p, &cur.Spec)
			got, err = s.cs.IPPools().Update(ctx, cur, metav1.UpdateOptions{})
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 8 {
			continue
		}
		if err != nil {
			return fmt.Errorf("pool %q: %w", p.Name, err)
		}
		s.po.put(got)
		s.poolChanged()
		return nil
	}
}

// DeletePool deletes the IPPool; ipam.ErrNotFound if there is none.
func (s *Store) DeletePool(ctx context.Context, name string) error {
	for attempt := 0; ; attempt++ {
		cur, err := s.cs.IPPools().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("pool %q: %w", name, ipam.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("pool %q: %w", name, err)
		}
		rv := cur.ResourceVersion
		err = s.cs.IPPools().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if apierrors.IsConflict(err) && attempt < 8 {
			continue
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pool %q: %w", name, err)
		}
		s.po.tombstone(name, rv)
		s.poolChanged()
		return nil
	}
}
