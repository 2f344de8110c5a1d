package boltstore_test

import (
	"net/netip"
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
