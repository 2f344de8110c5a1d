package boltstore

import (
	"encoding/json"
	"testing"

	"github.com/xvs-project/xvs/ipam"
)

// A block record read back from the file may be anything a crash, a disk
// or an older version left: it must decode or fail, never panic, and
// what decodes must keep the block invariants.
func FuzzDecodeBlock(f *testing.F) {
	f.Add([]byte("198.18.0.0/29"), []byte(`{"cidr":"198.18.0.0/29","affinity":"n1","allocations":[{"addr":"198.18.0.1","handle":{"containerID":"c","ifName":"eth0"},"node":"n1"}],"rev":3}`))
	f.Add([]byte("fd00::/126"), []byte(`{"cidr":"fd00::/126","allocations":[{"addr":"fd00::9","handle":{}}],"rev":1}`))
	f.Add([]byte("198.18.0.0/29"), []byte(`{"cidr":"198.18.0.0/29","allocations":[{"addr":"198.18.0.1"},{"addr":"198.18.0.1"}]}`))
	f.Add([]byte("x"), []byte(`{`))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		b, err := decodeBlock(k, v)
		if err != nil {
			return
		}
		if !ipam.CheckBlock(&b) {
			t.Fatalf("decoded block breaks its invariants: %+v", b)
		}
		again, err := json.Marshal(blockRecord{CIDR: b.CIDR, Affinity: b.Affinity, Allocations: b.Allocations})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeBlock(k, again); err != nil {
			t.Fatalf("re-encoded block does not decode: %v", err)
		}
	})
}
