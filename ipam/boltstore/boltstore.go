// Package boltstore is the embedded default ipam.Store: one bbolt file on
// the node, written in transactions, so that a kill -9 at any point
// leaves exactly the last committed state.
//
// # Layout
//
// Three buckets. "pools": pool name → JSON ipam.Pool. "blocks": CIDR →
// JSON block with its revision. "handles": handle key, NUL, CIDR → empty,
// the index BlocksByHandle reads with one cursor seek. A block update
// rewrites the block and its index entries in the same transaction, and
// UpdateBlocks commits all its blocks in one, so an address, its owner and
// its index entry exist together or not at all, and a dual-stack pod's two
// addresses likewise. The revision is the blocks bucket's sequence, which
// rises in the same transaction as the write it numbers.
//
// # Concurrency
//
// Safe for concurrent use: bbolt runs one writer at a time and readers in
// parallel. The file is locked (flock) against a second process; Open
// waits Options.Timeout for it and then fails.
//
// # Allocation
//
// Every call decodes JSON into fresh values; it is a control-plane path
// (one CNI ADD or DEL), never per packet.
//
// # Cost
//
// One round of Assigns (one request, or all those queued behind the one
// committing) is three read transactions per request at most (handle
// index, pools, blocks) and one write transaction; the write's commit,
// two fdatasyncs, is the floor: 0.83 ms alone on this machine (0.07 ms
// with NoSync, which this store does not use: a power cut could then lose
// or tear a committed allocation). docs/BENCHMARKS.md "## IPAM" has the
// figures: Assign p50 0.6-3.3 ms in process, 1,000-1,270 pods/s with 10
// concurrent Assigns; exec'd per call, as a runtime execs host-local,
// both take 7-8 ms, the exec itself. xvs-cni is meant to ask xvsd over
// its socket instead of opening the file.
//
// # Crash safety, tested
//
// TestCrashSafety SIGKILLs a child process assigning and releasing on a
// file 20 times at random moments and checks the file after each kill
// (Verify and ipamtest.Check), then re-assigns and releases every pod
// left and finds the pools empty. TestCrashCatchesSplitTransactions runs
// the same against this store with its transactions split (splitTx) and
// must find the damage: a dual-stack pod with one address, or an index
// entry without its allocation.
package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/xvs-project/xvs/ipam"
)

var (
	bucketPools   = []byte("pools")
	bucketBlocks  = []byte("blocks")
	bucketHandles = []byte("handles")
)

// Options for Open.
type Options struct {
	// Timeout is how long Open waits for another process's lock on the
	// file; 0 means 1 s.
	Timeout time.Duration
}

// Store is an ipam.BatchStore on a bbolt file.
type Store struct {
	db *bolt.DB
	// splitTx, set only by tests, commits what belongs together in
	// separate transactions (each block, then its index entries): the
	// deliberately broken store the crash test must catch.
	splitTx bool
}

var _ ipam.BatchStore = (*Store)(nil)

// Open opens or creates the store file at path (mode 0600).
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("open ipam store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPools, bucketBlocks, bucketHandles} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init ipam store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

type blockRecord struct {
	CIDR        netip.Prefix      `json:"cidr"`
	Affinity    string            `json:"affinity,omitempty"`
	Allocations []ipam.Allocation `json:"allocations,omitempty"`
	Rev         uint64            `json:"rev"`
}

func decodeBlock(k, v []byte) (ipam.Block, error) {
	var r blockRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return ipam.Block{}, fmt.Errorf("decode block %s: %w", k, err)
	}
	b := ipam.Block{CIDR: r.CIDR, Affinity: r.Affinity, Allocations: r.Allocations, Revision: strconv.FormatUint(r.Rev, 10)}
	if string(k) != r.CIDR.String() || !ipam.CheckBlock(&b) {
		return ipam.Block{}, fmt.Errorf("decode block %s: inconsistent record", k)
	}
	return b, nil
}

func (s *Store) ListPools(ctx context.Context) ([]ipam.Pool, error) {
	var out []ipam.Pool
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPools).ForEach(func(k, v []byte) error {
			var p ipam.Pool
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode pool %s: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

func (s *Store) PutPool(ctx context.Context, p ipam.Pool) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPools).Put([]byte(p.Name), v) })
}

func (s *Store) DeletePool(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPools)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("pool %q: %w", name, ipam.ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}

// ListBlocks returns the blocks in CIDR order: IPv4 first (bbolt sorts
// keys as bytes, so the order is fixed by sorting after decoding).
func (s *Store) ListBlocks(ctx context.Context) ([]ipam.Block, error) {
	var out []ipam.Block
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlocks).ForEach(func(k, v []byte) error {
			b, err := decodeBlock(k, v)
			if err != nil {
				return err
			}
			out = append(out, b)
			return nil
		})
	})
	ipam.SortBlocks(out)
	return out, err
}

func (s *Store) GetBlock(ctx context.Context, cidr netip.Prefix) (ipam.Block, error) {
	var b ipam.Block
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		b, err = getBlock(tx, cidr)
		return err
	})
	return b, err
}

func getBlock(tx *bolt.Tx, cidr netip.Prefix) (ipam.Block, error) {
	k := []byte(cidr.String())
	v := tx.Bucket(bucketBlocks).Get(k)
	if v == nil {
		return ipam.Block{}, fmt.Errorf("block %s: %w", cidr, ipam.ErrNotFound)
	}
	return decodeBlock(k, v)
}

func (s *Store) CreateBlock(ctx context.Context, b ipam.Block) (ipam.Block, error) {
	var out ipam.Block
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if tx.Bucket(bucketBlocks).Get([]byte(b.CIDR.String())) != nil {
			return fmt.Errorf("block %s: %w", b.CIDR, ipam.ErrExists)
		}
		out, err = putBlock(tx, nil, b, true)
		return err
	})
	return out, err
}

func (s *Store) UpdateBlock(ctx context.Context, b ipam.Block) (ipam.Block, error) {
	out, err := s.UpdateBlocks(ctx, []ipam.Block{b})
	if err != nil {
		return ipam.Block{}, err
	}
	return out[0], nil
}

// check returns the current block if b.Revision is current.
func check(tx *bolt.Tx, b ipam.Block) (ipam.Block, error) {
	cur, err := getBlock(tx, b.CIDR)
	if err != nil {
		return ipam.Block{}, err
	}
	if cur.Revision != b.Revision {
		return ipam.Block{}, fmt.Errorf("block %s revision %s, now %s: %w", b.CIDR, b.Revision, cur.Revision, ipam.ErrConflict)
	}
	if !ipam.CheckBlock(&b) {
		return ipam.Block{}, fmt.Errorf("block %s: invalid allocations", b.CIDR)
	}
	return cur, nil
}

func (s *Store) UpdateBlocks(ctx context.Context, bs []ipam.Block) ([]ipam.Block, error) {
	if s.splitTx {
		return s.updateSplit(bs)
	}
	out := make([]ipam.Block, len(bs))
	err := s.db.Update(func(tx *bolt.Tx) error {
		seen := map[netip.Prefix]bool{}
		for i, b := range bs {
			if seen[b.CIDR] {
				return fmt.Errorf("block %s twice in one batch: %w", b.CIDR, ipam.ErrConflict)
			}
			seen[b.CIDR] = true
			cur, err := check(tx, b)
			if err != nil {
				return err
			}
			if out[i], err = putBlock(tx, &cur, b, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updateSplit is the broken variant: one transaction per block, and the
// handle index in a transaction of its own after it.
func (s *Store) updateSplit(bs []ipam.Block) ([]ipam.Block, error) {
	out := make([]ipam.Block, len(bs))
	for i, b := range bs {
		var cur ipam.Block
		err := s.db.Update(func(tx *bolt.Tx) (err error) {
			if cur, err = check(tx, b); err != nil {
				return err
			}
			out[i], err = putBlock(tx, &cur, b, false)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return putIndex(tx, &cur, b) }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// putBlock writes b with the next revision; with index, it also moves the
// handle index entries from old (nil for a new block) to b.
func putBlock(tx *bolt.Tx, old *ipam.Block, b ipam.Block, index bool) (ipam.Block, error) {
	bk := tx.Bucket(bucketBlocks)
	rev, err := bk.NextSequence()
	if err != nil {
		return ipam.Block{}, err
	}
	v, err := json.Marshal(blockRecord{CIDR: b.CIDR, Affinity: b.Affinity, Allocations: b.Allocations, Rev: rev})
	if err != nil {
		return ipam.Block{}, err
	}
	if err := bk.Put([]byte(b.CIDR.String()), v); err != nil {
		return ipam.Block{}, err
	}
	if index {
		if err := putIndex(tx, old, b); err != nil {
			return ipam.Block{}, err
		}
	}
	b = b.Clone()
	b.Revision = strconv.FormatUint(rev, 10)
	return b, nil
}

func indexKey(handle string, cidr netip.Prefix) []byte {
	return []byte(handle + "\x00" + cidr.String())
}

func putIndex(tx *bolt.Tx, old *ipam.Block, b ipam.Block) error {
	hb := tx.Bucket(bucketHandles)
	now := map[string]bool{}
	for _, h := range b.Handles() {
		now[h] = true
		if err := hb.Put(indexKey(h, b.CIDR), nil); err != nil {
			return err
		}
	}
	if old != nil {
		for _, h := range old.Handles() {
			if !now[h] {
				if err := hb.Delete(indexKey(h, b.CIDR)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Store) DeleteBlock(ctx context.Context, b ipam.Block) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		cur, err := getBlock(tx, b.CIDR)
		if err != nil {
			return err
		}
		if cur.Revision != b.Revision {
			return fmt.Errorf("block %s revision %s, now %s: %w", b.CIDR, b.Revision, cur.Revision, ipam.ErrConflict)
		}
		for _, h := range cur.Handles() {
			if err := tx.Bucket(bucketHandles).Delete(indexKey(h, b.CIDR)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketBlocks).Delete([]byte(b.CIDR.String()))
	})
}

func (s *Store) BlocksByHandle(ctx context.Context, handle string) ([]ipam.Block, error) {
	var out []ipam.Block
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := []byte(handle + "\x00")
		c := tx.Bucket(bucketHandles).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			cidr, err := netip.ParsePrefix(string(k[len(prefix):]))
			if err != nil {
				return fmt.Errorf("decode handle index %q: %w", k, err)
			}
			b, err := getBlock(tx, cidr)
			if err != nil {
				return fmt.Errorf("handle index %q: %w", k, err)
			}
			out = append(out, b)
		}
		return nil
	})
	return out, err
}

// Verify checks the whole file in one read transaction: every block
// decodes and keeps its invariants, every allocation has its handle index
// entry and every index entry its allocation. Tests run it after a crash;
// an operator can run it on a copy of the file.
func (s *Store) Verify(ctx context.Context) error {
	return s.db.View(func(tx *bolt.Tx) error {
		want := map[string]bool{}
		err := tx.Bucket(bucketBlocks).ForEach(func(k, v []byte) error {
			b, err := decodeBlock(k, v)
			if err != nil {
				return err
			}
			for _, h := range b.Handles() {
				want[string(indexKey(h, b.CIDR))] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketHandles).ForEach(func(k, _ []byte) error {
			if !want[string(k)] {
				return fmt.Errorf("handle index entry %q without its allocation", k)
			}
			delete(want, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		for k := range want {
			return fmt.Errorf("allocation without handle index entry %q", k)
		}
		return nil
	})
}
