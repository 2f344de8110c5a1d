package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Pod is one veth pair as a CNI plugin sets it up: the host end in the
// namespace that serves the pod (xvsd's, or the node's kernel), the pod
// end moved into the pod's namespace under the name the runtime asks for.
// Each end carries what is configured on it, in that end's namespace.
type Pod struct {
	Host End // NS: xvsd's namespace ("" for the caller's own)
	Pod  End // NS: the pod's netns path (CNI_NETNS); Name: CNI_IFNAME
	// MTU of both ends; 0 leaves the kernel's default (1500).
	MTU int `json:",omitempty"`
	// Queues is the number of rx and tx queues of each end; 0 leaves the
	// kernel's default (for a veth, one per possible CPU). AF_XDP binds
	// one socket per queue, so a multi-queue host end lets xvsd spread a
	// pod over workers.
	Queues int `json:",omitempty"`
}

// End is one side of the pair and what goes on it.
type End struct {
	// NS is the path of the end's network namespace (a /run/netns/NAME
	// bind mount or /proc/PID/ns/net); "" is the caller's own.
	NS   string
	Name string
	// MAC of the end; nil lets the kernel pick a random one.
	MAC net.HardwareAddr `json:",omitempty"`
	// Addrs go on the end: /32 and /128 for a pod. IPv6 addresses skip
	// duplicate address detection, so they are usable at once.
	Addrs     []netip.Prefix `json:",omitempty"`
	Routes    []Route        `json:",omitempty"`
	Neighbors []Neighbor     `json:",omitempty"`
	// Sysctls are written in the end's namespace after the pair exists
	// (so a key may name it) and before any address or the link is up
	// (so accept_dad and the like hold from the start).
	Sysctls  []Sysctl `json:",omitempty"`
	Offloads Offloads `json:",omitzero"`
}

// Route is a kernel route through an end.
type Route struct {
	Dst netip.Prefix
	// Via is the gateway; the zero Addr makes a link-scope route.
	Via netip.Addr `json:",omitzero"`
	// OnLink lets the gateway be outside every subnet on the link, as
	// 169.254.1.1 is for a pod with a /32.
	OnLink bool `json:",omitempty"`
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.OnLink {
		s += " onlink"
	}
	return s
}

// Neighbor is a permanent (static) neighbour entry on an end.
type Neighbor struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// Sysctl is one value under /proc/sys, in sysctl(8) spelling
// (net.ipv6.conf.eth0.accept_dad; a dot inside a name is written "/").
type Sysctl struct{ Key, Value string }

// Result is what Setup made.
type Result struct {
	HostIndex int              // ifindex of the host end, in Host.NS
	HostMAC   net.HardwareAddr // the host end's MAC
	PodIndex  int              // ifindex of the pod end, in Pod.NS
	PodMAC    net.HardwareAddr
}

// The gateway a Calico pod routes through: 169.254.1.1 and the link-local
// address that GatewayMAC's EUI-64 gives (so the host end owns it), both
// answered for on the host end.
var (
	GatewayV4  = netip.MustParseAddr("169.254.1.1")
	GatewayV6  = netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")
	GatewayMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
)

// Calico returns the Pod that Calico's CNI plugin makes for addrs: the
// host end with GatewayMAC; on the pod end addrs, default routes through
// GatewayV4 (on-link) and GatewayV6 for the families addrs hold, permanent
// neighbour entries for the gateways (so the pod needs no answer to
// ARP/NDP), IPv6 enabled and DAD off. Offloads are the caller's: they
// depend on how the host end is driven.
func Calico(hostNS, hostIf, podNS, podIf string, addrs []netip.Prefix, mtu int) Pod {
	p := Pod{
		Host: End{NS: hostNS, Name: hostIf, MAC: GatewayMAC},
		Pod:  End{NS: podNS, Name: podIf, Addrs: addrs},
		MTU:  mtu,
	}
	var v4, v6 bool
	for _, a := range addrs {
		v4, v6 = v4 || a.Addr().Is4(), v6 || a.Addr().Is6()
	}
	if v4 {
		p.Pod.Routes = append(p.Pod.Routes, Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: GatewayV4, OnLink: true})
		p.Pod.Neighbors = append(p.Pod.Neighbors, Neighbor{Addr: GatewayV4, MAC: GatewayMAC})
	}
	if v6 {
		p.Pod.Routes = append(p.Pod.Routes, Route{Dst: netip.MustParsePrefix("::/0"), Via: GatewayV6})
		p.Pod.Neighbors = append(p.Pod.Neighbors, Neighbor{Addr: GatewayV6, MAC: GatewayMAC})
		p.Pod.Sysctls = append(p.Pod.Sysctls,
			Sysctl{"net.ipv6.conf.all.disable_ipv6", "0"},
			Sysctl{IfSysctl("net.ipv6.conf", podIf, "accept_dad"), "0"})
		p.Host.Sysctls = append(p.Host.Sysctls, Sysctl{IfSysctl("net.ipv6.conf", hostIf, "accept_dad"), "0"})
	}
	return p
}

// IfSysctl spells the per-interface key prefix.dev.leaf, writing dots in
// dev as sysctl(8) wants them.
func IfSysctl(prefix, dev, leaf string) string {
	return prefix + "." + strings.ReplaceAll(dev, ".", "/") + "." + leaf
}

// validate checks p without touching the kernel; errors name the field
// and the value.
func (p *Pod) validate() error {
	if p.MTU != 0 && (p.MTU < 68 || p.MTU > 65535) {
		return fmt.Errorf("mtu %d: want 68-65535 (or 0 for the default)", p.MTU)
	}
	if p.Queues < 0 || p.Queues > 256 {
		return fmt.Errorf("queues %d: want 0-256", p.Queues)
	}
	if p.Host.NS == p.Pod.NS && p.Host.Name == p.Pod.Name {
		return fmt.Errorf("pod.name %q: same as host.name in the same namespace", p.Pod.Name)
	}
	for _, e := range []struct {
		field string
		e     *End
	}{{"host", &p.Host}, {"pod", &p.Pod}} {
		if err := e.e.validate(e.field); err != nil {
			return err
		}
	}
	return nil
}

func validName(n string) bool {
	if n == "" || len(n) >= unix.IFNAMSIZ || n == "." || n == ".." {
		return false
	}
	return !strings.ContainsAny(n, "/: \t\n")
}

func validMAC(m net.HardwareAddr) bool {
	return len(m) == 6 && m[0]&1 == 0 && !(m[0]|m[1]|m[2]|m[3]|m[4]|m[5] == 0)
}

func (e *End) validate(field string) error {
	if !validName(e.Name) {
		return fmt.Errorf("%s.name %q: not an interface name (1-15 characters, no '/', ':' or space)", field, e.Name)
	}
	if e.MAC != nil && !validMAC(e.MAC) {
		return fmt.Errorf("%s.mac %q: not a unicast Ethernet address", field, e.MAC)
	}
	seen := map[netip.Addr]bool{}
	for i, a := range e.Addrs {
		if !a.IsValid() || a.Addr().Zone() != "" {
			return fmt.Errorf("%s.addrs[%d] %q: not a prefix", field, i, a)
		}
		if seen[a.Addr()] {
			return fmt.Errorf("%s.addrs[%d] %s: listed twice", field, i, a)
		}
		seen[a.Addr()] = true
	}
	for i, r := range e.Routes {
		if !r.Dst.IsValid() {
			return fmt.Errorf("%s.routes[%d].dst %q: not a prefix", field, i, r.Dst)
		}
		if r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4() {
			return fmt.Errorf("%s.routes[%d].via %s: not of the family of %s", field, i, r.Via, r.Dst)
		}
		if r.OnLink && !r.Via.IsValid() {
			return fmt.Errorf("%s.routes[%d] %s: onlink without a gateway", field, i, r.Dst)
		}
	}
	for i, n := range e.Neighbors {
		if !n.Addr.IsValid() {
			return fmt.Errorf("%s.neighbors[%d].addr %q: not an address", field, i, n.Addr)
		}
		if len(n.MAC) != 6 {
			return fmt.Errorf("%s.neighbors[%d].mac %q: not an Ethernet address", field, i, n.MAC)
		}
	}
	for i, s := range e.Sysctls {
		if _, err := sysctlPath(s.Key); err != nil {
			return fmt.Errorf("%s.sysctls[%d]: %w", field, i, err)
		}
	}
	if _, err := e.Offloads.asks(); err != nil {
		return fmt.Errorf("%s.%w", field, err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func nlRoute(index int, r Route) *netlink.Route {
	nr := &netlink.Route{LinkIndex: index, Family: family(r.Dst.Addr()), Dst: prefixNet(r.Dst.Masked())}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.OnLink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr
}

func nlNeigh(index int, n Neighbor) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex: index, Family: family(n.Addr), State: netlink.NUD_PERMANENT,
		IP: n.Addr.AsSlice(), HardwareAddr: n.MAC,
	}
}

func nlAddr(a netip.Prefix) *netlink.Addr {
	addr := &netlink.Addr{IPNet: prefixNet(a)}
	if a.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	return addr
}

// retry runs a netlink dump again while the kernel reports that the
// table changed under it (the library returns partial results then).
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		if v, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// nsName is how errors name a namespace.
func nsName(path string) string {
	if path == "" {
		return "own netns"
	}
	return path
}

// errGone tells whether err says a namespace or interface no longer exists.
func errGone(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL)
}
