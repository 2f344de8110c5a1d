package memstore

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"sync"

	"github.com/xvs-project/xvs/ipam"
)

// Store keeps pools and blocks in maps.
type Store struct {
	mu     sync.Mutex
	rev    uint64                      // last revision handed out
	pools  map[string]ipam.Pool        // by name
	blocks map[netip.Prefix]ipam.Block // by CIDR, Revision set
	byH    map[string]map[netip.Prefix]bool
}

var _ ipam.BatchStore = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{pools: map[string]ipam.Pool{}, blocks: map[netip.Prefix]ipam.Block{}, byH: map[string]map[netip.Prefix]bool{}}
}

func (s *Store) ListPools(context.Context) ([]ipam.Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ipam.Pool, 0, len(s.pools))
	for _, p := range s.pools {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) PutPool(_ context.Context, p ipam.Pool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pools[p.Name] = p
	return nil
}

func (s *Store) DeletePool(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pools[name]; !ok {
		return fmt.Errorf("pool %q: %w", name, ipam.ErrNotFound)
	}
	delete(s.pools, name)
	return nil
}

func (s *Store) ListBlocks(context.Context) ([]ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ipam.Block, 0, len(s.blocks))
	for _, b := range s.blocks {
		out = append(out, b.Clone())
	}
	ipam.SortBlocks(out)
	return out, nil
}

func (s *Store) GetBlock(_ context.Context, cidr netip.Prefix) (ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blocks[cidr]
	if !ok {
		return ipam.Block{}, fmt.Errorf("block %s: %w", cidr, ipam.ErrNotFound)
	}
	return b.Clone(), nil
}

func (s *Store) CreateBlock(_ context.Context, b ipam.Block) (ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blocks[b.CIDR]; ok {
		return ipam.Block{}, fmt.Errorf("block %s: %w", b.CIDR, ipam.ErrExists)
	}
	if !ipam.CheckBlock(&b) {
		return ipam.Block{}, fmt.Errorf("block %s: invalid allocations", b.CIDR)
	}
	return s.put(b), nil
}

// put stores b with a new revision and keeps the handle index in step.
func (s *Store) put(b ipam.Block) ipam.Block {
	if old, ok := s.blocks[b.CIDR]; ok {
		for _, h := range old.Handles() {
			delete(s.byH[h], b.CIDR)
			if len(s.byH[h]) == 0 {
				delete(s.byH, h)
			}
		}
	}
	for _, h := range b.Handles() {
		if s.byH[h] == nil {
			s.byH[h] = map[netip.Prefix]bool{}
		}
		s.byH[h][b.CIDR] = true
	}
	s.rev++
	b = b.Clone()
	b.Revision = strconv.FormatUint(s.rev, 10)
	s.blocks[b.CIDR] = b
	return b.Clone()
}

func (s *Store) check(b ipam.Block) error {
	cur, ok := s.blocks[b.CIDR]
	if !ok {
		return fmt.Errorf("block %s: %w", b.CIDR, ipam.ErrNotFound)
	}
	if cur.Revision != b.Revision {
		return fmt.Errorf("block %s revision %s, now %s: %w", b.CIDR, b.Revision, cur.Revision, ipam.ErrConflict)
	}
	if !ipam.CheckBlock(&b) {
		return fmt.Errorf("block %s: invalid allocations", b.CIDR)
	}
	return nil
}

func (s *Store) UpdateBlock(_ context.Context, b ipam.Block) (ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(b); err != nil {
		return ipam.Block{}, err
	}
	return s.put(b), nil
}

func (s *Store) UpdateBlocks(_ context.Context, bs []ipam.Block) ([]ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[netip.Prefix]bool{}
	for _, b := range bs {
		if seen[b.CIDR] {
			return nil, fmt.Errorf("block %s twice in one batch: %w", b.CIDR, ipam.ErrConflict)
		}
		seen[b.CIDR] = true
		if err := s.check(b); err != nil {
			return nil, err
		}
	}
	out := make([]ipam.Block, len(bs))
	for i, b := range bs {
		out[i] = s.put(b)
	}
	return out, nil
}

func (s *Store) DeleteBlock(_ context.Context, b ipam.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.blocks[b.CIDR]
	if !ok {
		return fmt.Errorf("block %s: %w", b.CIDR, ipam.ErrNotFound)
	}
	if cur.Revision != b.Revision {
		return fmt.Errorf("block %s revision %s, now %s: %w", b.CIDR, b.Revision, cur.Revision, ipam.ErrConflict)
	}
	for _, h := range cur.Handles() {
		delete(s.byH[h], b.CIDR)
		if len(s.byH[h]) == 0 {
			delete(s.byH, h)
		}
	}
	delete(s.blocks, b.CIDR)
	return nil
}

func (s *Store) BlocksByHandle(_ context.Context, handle string) ([]ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ipam.Block
	for c := range s.byH[handle] {
		out = append(out, s.blocks[c].Clone())
	}
	ipam.SortBlocks(out)
	return out, nil
}

func (s *Store) Close() error { return nil }
