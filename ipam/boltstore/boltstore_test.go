package boltstore_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/boltstore"
	"github.com/xvs-project/xvs/ipam/ipamtest"
)

func openTemp(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "ipam.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	ipamtest.TestStore(t, func(t *testing.T) ipam.Store { return openTemp(t) })
}

// A second process (or a second Open in this one) must not write the
// same file: bbolt's flock refuses it after the timeout.
func TestSecondOpenRefused(t *testing.T) {
	s := openTemp(t)
	if _, err := boltstore.Open(s.Path(), boltstore.Options{Timeout: 50e6}); err == nil {
		t.Fatal("second Open of a locked store succeeded")
	}
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Opening and closing the store, as xvsd does on each start, leaves no
// file descriptor behind.
func TestNoFDLeak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.db")
	count := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd: %v", err)
		}
		return len(es)
	}
	before := count()
	for i := 0; i < 20; i++ {
		s, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ListBlocks(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := count(); after > before {
		t.Errorf("%d file descriptors open after 20 Open/Close, %d before", after, before)
	}
}
