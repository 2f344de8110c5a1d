package memstore_test

import (
	"testing"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/ipamtest"
	"github.com/xvs-project/xvs/ipam/memstore"
)

func TestConformance(t *testing.T) {
	ipamtest.TestStore(t, func(*testing.T) ipam.Store { return memstore.New() })
}
