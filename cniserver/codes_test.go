package cniserver

import (
	"fmt"
	"testing"

	"github.com/xvs-project/xvs/ipam"
)

func TestIPAMCode(t *testing.T) {
	tests := []struct {
		err  error
		want uint32
	}{
		{ipam.ErrPoolExhausted, CodePoolExhausted},
		{ipam.ErrUnknownPool, CodeUnknownPool},
		{ipam.ErrPoolDisabled, CodePoolDisabled},
		{ipam.ErrPoolNotSelected, CodePoolNotSelected},
		{ipam.ErrPoolConflict, CodePoolConflict},
		{ipam.ErrBadAnnotation, CodeBadAnnotation},
		{ipam.ErrInvalidRequest, CodeInvalidEnv},
		{fmt.Errorf("store: disk full"), CodeIOFailure},
	}
	for _, tc := range tests {
		wrapped := fmt.Errorf("assign a/eth0: %w", &ipam.PoolError{Pool: "p", Err: tc.err})
		if got := ipamCode(wrapped); got != tc.want {
			t.Errorf("ipamCode(%v) = %d, want %d", wrapped, got, tc.want)
		}
	}
}

func TestHostIfName(t *testing.T) {
	seen := map[string]ipam.Handle{}
	for i := range 1000 {
		h := ipam.Handle{ContainerID: fmt.Sprintf("c%d", i), IfName: "eth0"}
		n := HostIfName(h)
		if len(n) > 15 || !isHostIfName(n) || HostIfName(h) != n {
			t.Fatalf("HostIfName(%v) = %q: want a stable name of at most 15 bytes", h, n)
		}
		if o, dup := seen[n]; dup {
			t.Fatalf("%v and %v both get %s", o, h, n)
		}
		seen[n] = h
	}
	for _, n := range []string{"xvs", "eth0", "xvs12345678901g", "xvs1234567890123"} {
		if isHostIfName(n) {
			t.Errorf("isHostIfName(%q) = true", n)
		}
	}
}
