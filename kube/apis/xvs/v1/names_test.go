package v1

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestBlockName(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"198.19.1.64/26", "198-19-1-64-26"},
		{"198.19.1.77/26", "198-19-1-64-26"}, // host bits cleared
		{"fd00:10::40/122", "fd00-10--40-122"},
		{"::/122", "0---122"},
		{"fd00:10:244:1:2:3:4:40/122", "fd00-10-244-1-2-3-4-40-122"},
	} {
		got := BlockName(netip.MustParsePrefix(tc.prefix))
		if got != tc.want {
			t.Errorf("BlockName(%s) = %q, want %q", tc.prefix, got, tc.want)
		}
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("BlockName(%s) = %q: not an object name: %v", tc.prefix, got, errs)
		}
	}
}

// TestBlockNameDistinct: distinct blocks of both families never share a
// name, and every name is a valid object name.
func TestBlockNameDistinct(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]netip.Prefix{}
	for range 20000 {
		var p netip.Prefix
		if r.IntN(2) == 0 {
			var a [4]byte
			for i := range a {
				a[i] = byte(r.IntN(4)) // few values: collisions of text would show
			}
			p = netip.PrefixFrom(netip.AddrFrom4(a), 20+r.IntN(13)).Masked()
		} else {
			var a [16]byte
			for i := range a {
				if r.IntN(3) == 0 {
					a[i] = byte(r.IntN(3))
				}
			}
			p = netip.PrefixFrom(netip.AddrFrom16(a), 116+r.IntN(13)).Masked()
		}
		n := BlockName(p)
		if q, ok := seen[n]; ok && q != p {
			t.Fatalf("%s and %s are both %q", p, q, n)
		}
		seen[n] = p
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Fatalf("BlockName(%s) = %q: %v", p, n, errs)
		}
	}
}

func TestEffectiveBlockSize(t *testing.T) {
	for _, tc := range []struct {
		spec IPPoolSpec
		want int
		ok   bool
	}{
		{IPPoolSpec{CIDR: "198.19.0.0/17"}, 26, true},
		{IPPoolSpec{CIDR: "fd00:10::/48"}, 122, true},
		{IPPoolSpec{CIDR: "198.19.0.0/17", BlockSize: 28}, 28, true},
		{IPPoolSpec{CIDR: "pods"}, 0, false},
	} {
		got, ok := tc.spec.EffectiveBlockSize()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%+v: EffectiveBlockSize() = %d, %v; want %d, %v", tc.spec, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"198.19.0.0/17", true}, {"198.19.0.1/17", false}, {"fd00::/8", true}, {"x", false}} {
		if _, err := ParseCIDR(tc.in); (err == nil) != tc.ok {
			t.Errorf("ParseCIDR(%q) err = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}
