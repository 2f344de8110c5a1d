package spec

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/xvs-project/xvs/encap"
)

// FieldError is a rule a field broke: it names the field (relative to
// the value checked: "via", "vxlan.remote", "addresses[1]"), the value
// and the rule. The config loader prefixes the field with where the value
// sits in the file; the switch with the route's prefix or the port's name.
type FieldError struct {
	Field string // empty: the value as a whole
	Value string // the offending value as text; empty when missing
	Msg   string
	// Num: Value is a number, shown without quotes.
	Num bool
}

func (e *FieldError) Error() string {
	switch {
	case e.Field == "":
		return e.Msg
	case e.Value == "":
		return fmt.Sprintf("%s: %s", e.Field, e.Msg)
	case e.Num:
		return fmt.Sprintf("%s: %s: %s", e.Field, e.Value, e.Msg)
	}
	return fmt.Sprintf("%s: %q: %s", e.Field, e.Value, e.Msg)
}

func fieldErr(field, value, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Value: value, Msg: fmt.Sprintf(format, a...)}
}

// Unicast reports whether a may be a route's gateway or a tunnel's far
// end: a global unicast address the switch forwards to.
func Unicast(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" || a.Is4In6() || !a.IsGlobalUnicast() {
		return false
	}
	if a.Is4() {
		return encap.IsIPv4Forwardable(a.As4())
	}
	return encap.IsIPv6Forwardable(a.As16())
}

// Validate checks the rules a route follows on its own, whoever sends
// it: a valid prefix without host bits, and exactly one kind of next hop
// (a VXLAN tunnel to a unicast VTEP outside the prefix with a unicast
// MAC; a blackhole; or a gateway of the prefix's family and a port). It
// returns every rule broken, as *FieldError.
func (r Route) Validate() []error {
	var errs []error
	add := func(field, value, format string, a ...any) {
		errs = append(errs, fieldErr(field, value, format, a...))
	}
	switch {
	case !r.Prefix.IsValid():
		return []error{fieldErr("prefix", "", "required")}
	case r.Prefix.Addr().Zone() != "" || r.Prefix.Addr().Is4In6():
		return []error{fieldErr("prefix", r.Prefix.String(), "invalid prefix")}
	case r.Prefix.Masked() != r.Prefix:
		return []error{fieldErr("prefix", r.Prefix.String(), "host bits set (did you mean %s?)", r.Prefix.Masked())}
	}
	if len(r.ECMP) > 0 {
		switch {
		case r.VXLAN != nil || r.Blackhole || r.Port != "" || !r.Via.IsValid():
			add("ecmp", fmt.Sprint(r.ECMP), "equal-cost gateways need via, and no port, blackhole or vxlan")
		default:
			for i, a := range r.ECMP {
				f := fmt.Sprintf("ecmp[%d]", i)
				switch {
				case a.Zone() != "" || a.Is4In6() || !Unicast(a) || a.IsLinkLocalUnicast():
					add(f, a.String(), "not a global unicast address")
				case a.Is4() != r.Prefix.Addr().Is4():
					add(f, a.String(), "address family differs from prefix %s", r.Prefix)
				case a == r.Via || slices.Contains(r.ECMP[:i], a):
					add(f, a.String(), "given twice")
				}
			}
		}
	}
	if x := r.VXLAN; x != nil {
		if r.Via.IsValid() {
			add("via", r.Via.String(), "a vxlan route has no via (the tunnel is the next hop)")
		}
		if r.Port != "" {
			add("port", r.Port, "a vxlan route has no output port")
		}
		if r.Blackhole {
			add("blackhole", "true", "a route is either vxlan or blackhole")
		}
		switch {
		case !x.Remote.IsValid():
			add("vxlan.remote", "", "required (the other node's VTEP address)")
		case x.Remote.Zone() != "" || x.Remote.Is4In6():
			add("vxlan.remote", x.Remote.String(), "invalid address")
		case !Unicast(x.Remote):
			add("vxlan.remote", x.Remote.String(), "not a unicast address")
		case r.Prefix.Contains(x.Remote):
			add("vxlan.remote", x.Remote.String(), "inside %s: the tunnel would route into itself", r.Prefix)
		}
		if x.MAC == [6]byte{} || x.MAC[0]&1 != 0 {
			add("vxlan.mac", net.HardwareAddr(x.MAC[:]).String(), "must be a unicast address")
		}
		return errs
	}
	if r.Blackhole {
		if r.Via.IsValid() {
			add("via", r.Via.String(), "a blackhole route has no next hop")
		}
		if r.Port != "" {
			add("port", r.Port, "a blackhole route has no output port")
		}
		return errs
	}
	switch {
	case !r.Via.IsValid():
		if r.Port == "" {
			add("", "", "needs via, port or blackhole")
		}
	case r.Via.Zone() != "":
		add("via", r.Via.String(), "give the port with port:, not a zone")
	case r.Via.Is4() != r.Prefix.Addr().Is4():
		add("via", r.Via.String(), "address family differs from prefix %s", r.Prefix)
	case r.Via.Is6() && r.Via.IsLinkLocalUnicast() && r.Port == "":
		add("via", r.Via.String(), "a link-local next hop needs port:")
	}
	return errs
}

// RoutePort finds the port a gateway route leaves by among ports: the one
// it names, which must then have the gateway on one of its subnets
// (unless the gateway is link-local); else the uplink with the gateway on
// one of its subnets. A route without a gateway needs its port named.
// ok is false for a blackhole or VXLAN route, which leave by no port.
func (r Route) RoutePort(ports []PortConfig) (i int, ok bool, err error) {
	if r.Blackhole || r.VXLAN != nil {
		return 0, false, nil
	}
	if r.Port != "" {
		i = -1
		for j := range ports {
			if ports[j].Name == r.Port {
				i = j
			}
		}
		switch {
		case i < 0:
			return 0, false, fieldErr("port", r.Port, "no such port")
		case !r.Via.IsValid() || r.Via.IsLinkLocalUnicast() || onSubnet(ports[i], r.Via):
			return i, true, nil
		}
		return 0, false, fieldErr("via", r.Via.String(), "not on a connected subnet of port %q", r.Port)
	}
	for j := range ports {
		if ports[j].Kind == PortUplink && onSubnet(ports[j], r.Via) {
			return j, true, nil
		}
	}
	return 0, false, fieldErr("via", r.Via.String(), "not on any connected subnet")
}

func onSubnet(pc PortConfig, a netip.Addr) bool {
	for _, p := range pc.Addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ValidatePortAddr checks one address of a port of kind k: a valid
// prefix, no IPv4-mapped address, and a single address (/32, /128) on a
// pod. The error's field is empty: the caller knows which address it is.
func ValidatePortAddr(k PortKind, a netip.Prefix) *FieldError {
	switch {
	case !a.IsValid() || a.Addr().Zone() != "":
		return fieldErr("", a.String(), "invalid prefix")
	case a.Addr().Is4In6():
		return fieldErr("", a.String(), "IPv4-mapped IPv6 address")
	case k == PortPod && !a.IsSingleIP():
		return fieldErr("", a.String(), "a pod address must be a /32 or /128")
	}
	return nil
}

// AddrConflict reports whether two ports' addresses clash: the same
// address on two ports (except the node's addresses, which a host port
// lists as reached through it and the uplink holds), or two pods with
// overlapping prefixes. It returns the indexes of the first clash in
// a.Addrs and b.Addrs.
func AddrConflict(a, b PortConfig) (ia, ib int, clash bool) {
	node := a.Kind == PortHost && b.Kind == PortUplink || a.Kind == PortUplink && b.Kind == PortHost
	pods := a.Kind == PortPod && b.Kind == PortPod
	for i, pa := range a.Addrs {
		for j, pb := range b.Addrs {
			if (pa.Addr() == pb.Addr() && !node) || (pods && pa.Overlaps(pb)) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}
