package config

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/xvs-project/xvs/bgp"
	"github.com/xvs-project/xvs/spec"
)

// BGP is the bgp: section: the speaker's configuration in Calico's shapes
// (bgp.Config, inline: asNumber, nodeIPv4, meshMembers, peers, ...) and
// what xvsd adds around it. Absent: no BGP.
type BGP struct {
	bgp.Config `yaml:",inline"`
	// Advertise lists the node's pod blocks (e.g. 198.19.1.0/26,
	// fd00:19:1::/122), advertised as aggregates; xvsd installs a local
	// blackhole for each, so the unused part of a block is dropped here
	// instead of bouncing back to the default route. When the CNI server
	// supplies IPAM's node blocks they join these.
	Advertise []string `yaml:"advertise"`
	// VXLAN maps other nodes' BGP addresses to their VTEPs: a learned
	// route whose next hop (or, failing that, whose peer) is one of an
	// entry's addresses goes into the tunnel to that VTEP instead of
	// being routed natively. Calico keeps the VTEP on the Node object;
	// until the Kubernetes agent exists it is written here.
	VXLAN []BGPVXLAN `yaml:"vxlan"`
}

// BGPVXLAN is one entry of bgp.vxlan: a node's addresses and its VTEP.
type BGPVXLAN struct {
	// Addresses are the node's BGP addresses (its IPv4 and IPv6 ones):
	// the next hops and peer addresses its routes arrive with.
	Addresses []string `yaml:"addresses"`
	// Remote is the VTEP's address (default: the first address).
	Remote string `yaml:"remote"`
	// MAC is the VTEP's MAC.
	MAC string `yaml:"mac"`
}

// BGPConfig is the resolved bgp: section.
type BGPConfig struct {
	Speaker   bgp.Config
	Advertise []netip.Prefix
	// VXLAN maps a node's BGP address to its VTEP.
	VXLAN map[netip.Addr]spec.VXLANRoute
}

// resolveBGP checks the bgp: section; vxlanOn says whether the node has a
// vxlan: section (bgp.vxlan needs it).
func resolveBGP(f *BGP, vxlanOn bool, e *errs) *BGPConfig {
	if f == nil {
		return nil
	}
	c := &BGPConfig{Speaker: f.Config, VXLAN: map[netip.Addr]spec.VXLANRoute{}}
	if err := f.Config.Validate(); err != nil {
		for _, err := range unjoinErrs(err) {
			var ce *bgp.ConfigError
			if errors.As(err, &ce) {
				fe := &FieldError{Field: "bgp." + ce.Field, Err: errors.New(ce.Reason)}
				if ce.Value != "" {
					fe.Value = fmt.Sprintf("%q", ce.Value)
				}
				*e = append(*e, fe)
				continue
			}
			*e = append(*e, fmt.Errorf("bgp: %w", err))
		}
	}
	seen := map[netip.Prefix]int{}
	for i, s := range f.Advertise {
		field := fmt.Sprintf("bgp.advertise[%d]", i)
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			e.str(field, s, "not a prefix")
			continue
		case p != p.Masked():
			e.str(field, s, "host bits set (want %s)", p.Masked())
			continue
		case p.Bits() == 0:
			e.str(field, s, "a default route is not a pod block")
			continue
		}
		if j, dup := seen[p]; dup {
			e.str(field, s, "also bgp.advertise[%d]", j)
			continue
		}
		seen[p] = i
		c.Advertise = append(c.Advertise, p)
	}
	if len(f.VXLAN) > 0 && !vxlanOn {
		e.missing("vxlan", "bgp.vxlan needs the node's vxlan: section")
	}
	for i, v := range f.VXLAN {
		field := fmt.Sprintf("bgp.vxlan[%d]", i)
		mac, err := ParseMAC(v.MAC)
		if err != nil {
			if v.MAC == "" {
				e.missing(field+".mac", "the VTEP's MAC is required")
			} else {
				e.str(field+".mac", v.MAC, "not a MAC address")
			}
		}
		if len(v.Addresses) == 0 {
			e.missing(field+".addresses", "at least one node address is required")
		}
		var addrs []netip.Addr
		for j, s := range v.Addresses {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" || !a.IsGlobalUnicast() {
				e.str(fmt.Sprintf("%s.addresses[%d]", field, j), s, "not a unicast address")
				continue
			}
			if _, dup := c.VXLAN[a]; dup {
				e.str(fmt.Sprintf("%s.addresses[%d]", field, j), s, "already in another bgp.vxlan entry")
				continue
			}
			addrs = append(addrs, a)
		}
		remote := netip.Addr{}
		if v.Remote != "" {
			if remote, err = netip.ParseAddr(v.Remote); err != nil || !remote.IsGlobalUnicast() {
				e.str(field+".remote", v.Remote, "not a unicast address")
				continue
			}
		} else if len(addrs) > 0 {
			remote = addrs[0]
		}
		for _, a := range addrs {
			c.VXLAN[a] = spec.VXLANRoute{Remote: remote.Unmap(), MAC: mac}
		}
	}
	return c
}

func unjoinErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
