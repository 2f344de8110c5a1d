package v1

import (
	"fmt"
	"net/netip"
	"strings"
)

// BlockName is the IPAMBlock object name of a block prefix, as Calico
// spells it: the canonical text with '.', ':' and '/' turned into '-'
// (198.19.1.64/26 is "198-19-1-64-26", fd00:10::40/122 is
// "fd00-10--40-122"), with a leading "0" when the text would start with
// '-' (the prefix ::/122). The host bits are cleared first, so every
// spelling of a prefix has one name, and distinct prefixes have distinct
// names (a canonical IPv4 text has 4 dot-separated parts, an IPv6 one
// never mixes '.' and ':' outside ::ffff:a.b.c.d, which keeps its "::").
func BlockName(p netip.Prefix) string {
	s := strings.NewReplacer(".", "-", ":", "-", "/", "-").Replace(p.Masked().String())
	if strings.HasPrefix(s, "-") {
		s = "0" + s
	}
	return s
}

// ParseCIDR parses a prefix field of these types (a pool's or a block's
// cidr) and requires host bits zero, as the CRD does.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := parsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("cidr %q: host bits must be zero", s)
	}
	return p, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("cidr %q: %w", s, err)
	}
	return p, nil
}
