package ipam_test

import (
	"testing"

	"github.com/xvs-project/xvs/ipam"
)

// A selector comes from a user's IPPool: any text must parse or fail,
// never panic, and what parses must evaluate on any labels.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"", "all()", `zone == "a"`, `has(a) && !(b in {"x", 'y'}) || c not in {}`, `a != 'b'`, `((`, `in in {"in"}`, `!`, `a == "`} {
		f.Add(s, "a", "x")
	}
	f.Fuzz(func(t *testing.T, src, k, v string) {
		s, err := ipam.ParseSelector(src)
		if err != nil {
			return
		}
		s.Matches(map[string]string{k: v})
		s.Matches(nil)
		if s.String() != src {
			t.Fatalf("String() = %q, parsed %q", s.String(), src)
		}
	})
}

// Annotations come from any pod's author.
func FuzzPodPools(f *testing.F) {
	for _, s := range []string{`["a"]`, `[]`, `["198.18.0.0/16","b"]`, `[1]`, `{"a":1}`, `null`, `[""]`, `"a"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		l, _, err := ipam.PodPools(map[string]string{ipam.AnnotationIPv4Pools: v}, nil, nil, nil)
		if err == nil {
			for _, p := range l {
				if p == "" {
					t.Fatalf("empty pool name accepted from %q", v)
				}
			}
		}
	})
}
