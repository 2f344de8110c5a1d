package maglev

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func names(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("198.18.2.%d:8080", i+1)
	}
	return s
}

func mustNew(t *testing.T, ns []string) *Table {
	t.Helper()
	return mustNewSize(t, ns, 0)
}

func mustNewSize(t *testing.T, ns []string, m uint32) *Table {
	t.Helper()
	tb, err := New(ns, m)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// moved returns the share of random flows whose backend (by name)
// differs between a and b.
func moved(a, b *Table, an, bn []string) float64 {
	rng := rand.New(rand.NewPCG(1, 1))
	const flows = 200000
	m := 0
	for range flows {
		h := rng.Uint64()
		if an[a.Lookup(h)] != bn[b.Lookup(h)] {
			m++
		}
	}
	return float64(m) / flows
}

// TestDisruption: removing one of N backends moves about 1/N of the
// flows (those it had, and few others), adding one moves about 1/(N+1).
func TestDisruption(t *testing.T) {
	for _, n := range []int{3, 5, 10, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			all := names(n + 1)
			m := SizeFor(n + 1)
			base := mustNewSize(t, all[:n], m)
			// Remove backend 1.
			less := append(append([]string(nil), all[:1]...), all[2:n]...)
			rm := moved(base, mustNewSize(t, less, m), all[:n], less)
			// Add backend n.
			add := moved(base, mustNewSize(t, all, m), all[:n], all)
			t.Logf("N=%d (M=%d): removing one moves %.4f (1/N = %.4f), adding one moves %.4f (1/(N+1) = %.4f)",
				n, base.Size(), rm, 1/float64(n), add, 1/float64(n+1))
			if rm < 0.9/float64(n) || rm > 1.3/float64(n)+0.005 {
				t.Errorf("removing one of %d moved %.4f of flows, want about %.4f", n, rm, 1/float64(n))
			}
			if add < 0.9/float64(n+1) || add > 1.3/float64(n+1)+0.005 {
				t.Errorf("adding one to %d moved %.4f of flows, want about %.4f", n, add, 1/float64(n+1))
			}
		})
	}
}

// TestBalance: every backend gets close to 1/N of the slots.
func TestBalance(t *testing.T) {
	for _, n := range []int{1, 2, 7, 100} {
		tb := mustNew(t, names(n))
		count := make([]int, n)
		for _, b := range tb.entries {
			count[b]++
		}
		ideal := float64(tb.Size()) / float64(n)
		for i, c := range count {
			if float64(c) < ideal*0.98-1 || float64(c) > ideal*1.02+1 {
				t.Errorf("N=%d: backend %d has %d slots of %d, ideal %.1f", n, i, c, tb.Size(), ideal)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		names []string
		size  uint32
		want  string
	}{
		{names(3), 100, "maglev size 100: want a prime above the backend count (3), at most 65537"},
		{names(3), 3, "maglev size 3: want a prime above the backend count (3), at most 65537"},
		{[]string{"a", "a"}, 0, `maglev backend "a": listed twice`},
	} {
		if _, err := New(tc.names, tc.size); err == nil || err.Error() != tc.want {
			t.Errorf("New(%d names, %d) = %v, want %q", len(tc.names), tc.size, err, tc.want)
		}
	}
	tb, err := New(nil, 0)
	if err != nil || tb.Lookup(1) != -1 {
		t.Errorf("empty table: %v, lookup %d", err, tb.Lookup(1))
	}
}

func TestLookupZeroAlloc(t *testing.T) {
	tb := mustNew(t, names(10))
	a, _ := NewAffinity(1024)
	var h uint64
	if n := testing.AllocsPerRun(1000, func() {
		h += 0x9e3779b97f4a7c15
		b := tb.Lookup(h)
		c := [16]byte{198, 18, 0, byte(h)}
		if _, ok := a.Lookup(c, 1, 5, 10800); !ok {
			a.Set(c, 1, uint32(b), 5)
		}
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

func TestAffinity(t *testing.T) {
	a, err := NewAffinity(16)
	if err != nil {
		t.Fatal(err)
	}
	c1 := [16]byte{198, 18, 0, 1}
	c2 := [16]byte{198, 18, 0, 2}
	a.Set(c1, 7, 3, 100)
	for _, tc := range []struct {
		name    string
		client  [16]byte
		svc     uint32
		now     uint32
		backend uint32
		ok      bool
	}{
		{"same client", c1, 7, 150, 3, true},
		{"other service", c1, 8, 150, 0, false},
		{"other client", c2, 7, 150, 0, false},
		{"just before timeout", c1, 7, 100 + 59, 3, true},
		{"timed out", c1, 7, 100 + 60, 0, false},
	} {
		b, ok := a.Lookup(tc.client, tc.svc, tc.now, 60)
		if b != tc.backend || ok != tc.ok {
			t.Errorf("%s: (%d, %v), want (%d, %v)", tc.name, b, ok, tc.backend, tc.ok)
		}
	}
	a.Set(c1, 7, 4, 200)
	if b, ok := a.Lookup(c1, 7, 201, 60); b != 4 || !ok {
		t.Errorf("after re-set: %d %v", b, ok)
	}
	a.Forget(7, 4)
	if _, ok := a.Lookup(c1, 7, 201, 60); ok {
		t.Error("forgotten backend still returned")
	}
	// More clients than the table holds: the oldest go, the newest stay.
	for i := range 64 {
		a.Set([16]byte{198, 19, 0, byte(i)}, 1, uint32(i), uint32(1000+i))
	}
	if a.Evictions() == 0 {
		t.Error("no evictions counted")
	}
	if b, ok := a.Lookup([16]byte{198, 19, 0, 63}, 1, 1100, 10800); !ok || b != 63 {
		t.Errorf("newest client lost: %d %v", b, ok)
	}
	if _, err := NewAffinity(2); err == nil {
		t.Error("size 2 accepted")
	}
}
