package ipam_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/xvs-project/xvs/ipam"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestPoolValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pool    ipam.Pool
		wantErr error
		wantMsg string // substring of the error
	}{
		{"v4 default", ipam.Pool{Name: "v4", CIDR: pfx("198.18.0.0/16")}, nil, ""},
		{"v6 default", ipam.Pool{Name: "v6", CIDR: pfx("fd00:18::/64")}, nil, ""},
		{"v4 /32 blocks", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/24"), BlockSize: 32}, nil, ""},
		{"v4 /20 blocks", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/16"), BlockSize: 20}, nil, ""},
		{"v6 /116 blocks", ipam.Pool{Name: "a", CIDR: pfx("fd00::/48"), BlockSize: 116}, nil, ""},
		{"v6 /128 blocks", ipam.Pool{Name: "a", CIDR: pfx("fd00::/120"), BlockSize: 128}, nil, ""},
		{"block equal to pool", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/26")}, nil, ""},
		{"all encapsulations", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/16"), Encapsulation: ipam.EncapVXLANCrossSubnet, NATOutgoing: true, NodeSelector: `zone == "a" && !has(edge)`}, nil, ""},
		{"v4 block 19", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/16"), BlockSize: 19}, ipam.ErrBadBlockSize, `pool "a": blockSize 19: IPv4 allows 20-32`},
		{"v4 block 33", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/16"), BlockSize: 33}, ipam.ErrBadBlockSize, "blockSize 33"},
		{"v6 block 115", ipam.Pool{Name: "a", CIDR: pfx("fd00::/48"), BlockSize: 115}, ipam.ErrBadBlockSize, "IPv6 allows 116-128"},
		{"v6 pool with v4 block size", ipam.Pool{Name: "a", CIDR: pfx("fd00::/48"), BlockSize: 26}, ipam.ErrBadBlockSize, "blockSize 26"},
		{"v6 block 129", ipam.Pool{Name: "a", CIDR: pfx("fd00::/48"), BlockSize: 129}, ipam.ErrBadBlockSize, "blockSize 129"},
		{"block larger than pool", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/28")}, ipam.ErrBadBlockSize, "blockSize 26: blocks larger than the pool's /28"},
		{"host bits", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.1/16")}, ipam.ErrInvalidPool, "cidr 198.18.0.1/16: host bits set (want 198.18.0.0/16)"},
		{"no cidr", ipam.Pool{Name: "a"}, ipam.ErrInvalidPool, "cidr"},
		{"mapped", ipam.Pool{Name: "a", CIDR: pfx("::ffff:198.18.0.0/112")}, ipam.ErrInvalidPool, "IPv4-mapped"},
		{"bad name", ipam.Pool{Name: "Pool_1", CIDR: pfx("198.18.0.0/16")}, ipam.ErrInvalidPool, `name "Pool_1"`},
		{"empty name", ipam.Pool{CIDR: pfx("198.18.0.0/16")}, ipam.ErrInvalidPool, `name ""`},
		{"bad encapsulation", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/16"), Encapsulation: "ipip"}, ipam.ErrInvalidPool, `encapsulation "ipip"`},
		{"bad selector", ipam.Pool{Name: "a", CIDR: pfx("198.18.0.0/16"), NodeSelector: `zone = "a"`}, ipam.ErrInvalidPool, `nodeSelector "zone = \"a\""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.pool.Validate()
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tc.wantMsg)
			}
			var pe *ipam.PoolError
			if err != nil && !errors.As(err, &pe) {
				t.Errorf("Validate() = %T, want *ipam.PoolError", err)
			}
		})
	}
}

func TestValidatePools(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pools   []ipam.Pool
		wantErr error
		wantMsg string
	}{
		{"dual-stack", []ipam.Pool{{Name: "a", CIDR: pfx("198.18.0.0/16")}, {Name: "b", CIDR: pfx("fd00::/48")}}, nil, ""},
		{"overlap", []ipam.Pool{{Name: "a", CIDR: pfx("198.18.0.0/16")}, {Name: "b", CIDR: pfx("198.18.4.0/24")}}, ipam.ErrPoolOverlap, `pool "b": cidr 198.18.4.0/24: overlaps pool "a" (198.18.0.0/16)`},
		{"same name", []ipam.Pool{{Name: "a", CIDR: pfx("198.18.0.0/16")}, {Name: "a", CIDR: pfx("fd00::/48")}}, ipam.ErrInvalidPool, "two pools have this name"},
		{"one bad", []ipam.Pool{{Name: "a", CIDR: pfx("198.18.0.0/16")}, {Name: "b", CIDR: pfx("fd00::/48"), BlockSize: 64}}, ipam.ErrBadBlockSize, `pool "b": blockSize 64`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ipam.ValidatePools(tc.pools)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("ValidatePools() = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("ValidatePools() = %q, want it to contain %q", err, tc.wantMsg)
			}
		})
	}
}

func TestSelector(t *testing.T) {
	labels := map[string]string{"zone": "a", "kubernetes.io/hostname": "n1", "rack": "r2"}
	for _, tc := range []struct {
		sel     string
		want    bool
		wantErr string
	}{
		{"", true, ""},
		{"all()", true, ""},
		{`zone == "a"`, true, ""},
		{`zone == 'b'`, false, ""},
		{`zone != "b"`, true, ""},
		{`missing != "b"`, true, ""},
		{`missing == ""`, false, ""},
		{`has(zone)`, true, ""},
		{`!has(zone)`, false, ""},
		{`has(gpu)`, false, ""},
		{`kubernetes.io/hostname in {"n1", "n2"}`, true, ""},
		{`rack not in {"r1","r3"}`, true, ""},
		{`missing not in {"r1"}`, true, ""},
		{`rack in {}`, false, ""},
		{`zone == "a" && rack == "r1"`, false, ""},
		{`zone == "b" || rack == "r2"`, true, ""},
		{`zone == "b" || rack == "r2" && has(gpu)`, false, ""}, // && binds tighter
		{`(zone == "b" || rack == "r2") && !has(gpu)`, true, ""},
		{`!(zone == "a")`, false, ""},
		{`zone = "a"`, false, "want ==, !=, in or not in"},
		{`zone == a`, false, "want a quoted string"},
		{`zone == "a`, false, "unterminated"},
		{`has(zone`, false, "want )"},
		{`zone == "a" &&`, false, "want a label key"},
		{`zone in {"a" "b"}`, false, "want , or }"},
		{`all() extra`, false, "unexpected"},
	} {
		t.Run(tc.sel, func(t *testing.T) {
			s, err := ipam.ParseSelector(tc.sel)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSelector() = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Matches(labels); got != tc.want {
				t.Errorf("Matches() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPodPools(t *testing.T) {
	for _, tc := range []struct {
		name         string
		pod, ns      map[string]string
		conf4, conf6 []string
		want4, want6 string
		wantErr      error
	}{
		{"none", nil, nil, nil, nil, "[]", "[]", nil},
		{"config", nil, nil, []string{"c4"}, []string{"c6"}, "[c4]", "[c6]", nil},
		{"namespace over config", nil, map[string]string{ipam.AnnotationIPv4Pools: `["ns4"]`}, []string{"c4"}, []string{"c6"}, "[ns4]", "[c6]", nil},
		{"pod over namespace", map[string]string{ipam.AnnotationIPv4Pools: `["p4"]`, ipam.AnnotationIPv6Pools: `["fd00:18::/64"]`},
			map[string]string{ipam.AnnotationIPv4Pools: `["ns4"]`, ipam.AnnotationIPv6Pools: `["ns6"]`}, nil, nil, "[p4]", "[fd00:18::/64]", nil},
		{"per family", map[string]string{ipam.AnnotationIPv6Pools: `["p6"]`}, map[string]string{ipam.AnnotationIPv4Pools: `["ns4"]`}, nil, nil, "[ns4]", "[p6]", nil},
		{"empty list is unset", map[string]string{ipam.AnnotationIPv4Pools: `[]`}, map[string]string{ipam.AnnotationIPv4Pools: `["ns4"]`}, nil, nil, "[ns4]", "[]", nil},
		{"not json", map[string]string{ipam.AnnotationIPv4Pools: `pool-a`}, nil, nil, nil, "", "", ipam.ErrBadAnnotation},
		{"not strings", nil, map[string]string{ipam.AnnotationIPv6Pools: `[1]`}, nil, nil, "", "", ipam.ErrBadAnnotation},
		{"empty name", map[string]string{ipam.AnnotationIPv4Pools: `[""]`}, nil, nil, nil, "", "", ipam.ErrBadAnnotation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v4, v6, err := ipam.PodPools(tc.pod, tc.ns, tc.conf4, tc.conf6)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("PodPools() error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "cni.projectcalico.org/ipv") {
					t.Errorf("error %q does not name the annotation", err)
				}
				return
			}
			if g := fmtList(v4) + " " + fmtList(v6); g != tc.want4+" "+tc.want6 {
				t.Errorf("PodPools() (-want +got):\n-%s %s\n+%s", tc.want4, tc.want6, g)
			}
		})
	}
}

func fmtList(l []string) string { return "[" + strings.Join(l, " ") + "]" }
