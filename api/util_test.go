package api_test

import "net/netip"

func netipAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
