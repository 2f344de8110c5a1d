package ctl

import "testing"

// TestOpsDistinct: the Op blocks of the files (parse.go, cni.go,
// service.go) start at their own offsets; two commands sharing an Op run
// each other's handler (show endpoints once ran show services' JSON).
func TestOpsDistinct(t *testing.T) {
	words := [][]string{
		{"show", "ports"}, {"show", "routes"}, {"show", "counters"},
		{"show", "pools"}, {"show", "blocks"}, {"show", "endpoints"},
		{"show", "services"}, {"show", "conntrack"},
	}
	seen := map[Op]string{}
	for _, w := range words {
		c, err := Parse(w)
		if err != nil {
			t.Fatalf("parse %v: %v", w, err)
		}
		if prev, dup := seen[c.Op]; dup {
			t.Errorf("%v and %s share Op %d", w, prev, c.Op)
		}
		seen[c.Op] = w[1]
	}
}
