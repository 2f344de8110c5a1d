package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults, as Calico has them.
const (
	DefaultASNumber      = 64512
	DefaultListenPort    = 179
	DefaultHoldTime      = 90 * time.Second
	DefaultRestartTime   = 120 * time.Second
	DefaultConnectRetry  = 5 * time.Second
	defaultBFDMultiplier = 3
)

// ErrInvalidConfig is wrapped by every validation error (a *ConfigError).
var ErrInvalidConfig = errors.New("invalid bgp config")

// ConfigError names the offending field (YAML path, e.g. "peers[1].asNumber")
// and its value.
type ConfigError struct {
	Field  string
	Value  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("bgp: %s %q: %s", e.Field, e.Value, e.Reason)
}

func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func cfgErr(field string, value any, format string, args ...any) error {
	return &ConfigError{Field: field, Value: fmt.Sprint(value), Reason: fmt.Sprintf(format, args...)}
}

// Family is an address family a session carries: "ipv4" or "ipv6" (unicast).
type Family string

const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Config is the node's BGP configuration, in the shapes of Calico's
// BGPConfiguration, Node.spec.bgp and BGPPeer. It is embedded in xvsd's
// config; zero values take the defaults documented per field.
type Config struct {
	// ASNumber is the cluster's AS (Calico's asNumber); 0 means 64512.
	ASNumber uint32 `yaml:"asNumber,omitempty" json:"asNumber,omitempty"`
	// NodeASNumber overrides ASNumber for this node (Node.spec.bgp.asNumber).
	NodeASNumber uint32 `yaml:"nodeASNumber,omitempty" json:"nodeASNumber,omitempty"`
	// NodeIPv4 and NodeIPv6 are the node's addresses
	// (Node.spec.bgp.ipv4Address/ipv6Address, without the mask): BGP
	// listens and connects from them over the kernel's TCP, and they are
	// the next hops of the routes this node advertises. At least one is
	// required.
	NodeIPv4 netip.Addr `yaml:"nodeIPv4" json:"nodeIPv4,omitzero"`
	NodeIPv6 netip.Addr `yaml:"nodeIPv6" json:"nodeIPv6,omitzero"`
	// RouterID defaults to NodeIPv4, else one derived from NodeIPv6 (its
	// last four bytes, as an IPv4 address; 0.0.0.0 and broadcast excluded).
	RouterID netip.Addr `yaml:"routerID" json:"routerID,omitzero"`
	// ListenPort is the TCP port BGP listens on; 0 means 179, -1 does not
	// listen (outgoing sessions only).
	ListenPort int `yaml:"listenPort,omitempty" json:"listenPort,omitempty"`
	// NodeToNodeMeshEnabled defaults to true (nil): every address in
	// MeshMembers is an iBGP peer in the cluster AS.
	NodeToNodeMeshEnabled *bool `yaml:"nodeToNodeMeshEnabled,omitempty" json:"nodeToNodeMeshEnabled,omitempty"`
	// MeshMembers are the other nodes' addresses (the caller sets them,
	// later from the Kubernetes nodes). The node's own addresses are
	// skipped, so every node may get the same list. An IPv4 member carries
	// IPv4 routes and an IPv6 member IPv6 routes, separate sessions as
	// Calico's BIRD has them.
	MeshMembers []netip.Addr `yaml:"meshMembers" json:"meshMembers,omitempty"`
	// MeshPassword is the TCP MD5 password of the mesh sessions
	// (Calico's nodeMeshPassword).
	MeshPassword string `yaml:"nodeMeshPassword,omitempty" json:"-"`
	// Peers are the explicit peers (Calico's BGPPeer), global or node
	// specific.
	Peers []Peer `yaml:"peers,omitempty" json:"peers,omitempty"`
	// RouteReflectorClusterID makes this node a route reflector
	// (Node.spec.bgp.routeReflectorClusterID, dotted quad): peers marked
	// routeReflectorClient are its clients.
	RouteReflectorClusterID string `yaml:"routeReflectorClusterID,omitempty" json:"routeReflectorClusterID,omitempty"`
	// GracefulRestart (RFC 4724).
	GracefulRestart GracefulRestart `yaml:"gracefulRestart,omitempty" json:"gracefulRestart,omitzero"`
	// Communities are added to every route this node advertises: "AS:N"
	// or a well-known name (no-export, no-advertise, no-export-subconfed,
	// no-peer, blackhole).
	Communities []string `yaml:"communities,omitempty" json:"communities,omitempty"`
	// ServiceClusterIPs and ServiceExternalIPs are advertised beside the
	// node's own prefixes (Calico's serviceClusterIPs/serviceExternalIPs).
	ServiceClusterIPs  []netip.Prefix `yaml:"serviceClusterIPs,omitempty" json:"serviceClusterIPs,omitempty"`
	ServiceExternalIPs []netip.Prefix `yaml:"serviceExternalIPs,omitempty" json:"serviceExternalIPs,omitempty"`
	// MaxPaths bounds the equal-cost paths (ECMP) of one prefix handed to
	// the RouteSink; 0 and 1 mean one path (no ECMP, as Calico's BIRD
	// without "merge paths"). Above 1 GoBGP runs its multipath selection,
	// which costs about twice the time and memory per received path.
	MaxPaths int `yaml:"maxPaths,omitempty" json:"maxPaths,omitempty"`
}

// GracefulRestart configures RFC 4724 on every session. Enabled makes the
// speaker a helper (it keeps a restarting peer's routes, marked stale, for
// the peer's restart time) and, unless HelperOnly, a restarting speaker
// that announces its forwarding state is preserved.
type GracefulRestart struct {
	Enabled    bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	HelperOnly bool `yaml:"helperOnly,omitempty" json:"helperOnly,omitempty"`
	// RestartTime is announced to peers: how long they keep this node's
	// routes while it restarts; 0 means 120s, at most 4095s.
	RestartTime time.Duration `yaml:"restartTime,omitempty" json:"restartTime,omitempty"`
	// StaleRoutesTime bounds how long a restarted peer's stale routes are
	// kept waiting for its End-of-RIB; 0 means the peer's restart time.
	StaleRoutesTime time.Duration `yaml:"staleRoutesTime,omitempty" json:"staleRoutesTime,omitempty"`
	// Restarting is set by the caller when this start is a restart with
	// the forwarding state kept (xvsd restarted, the dataplane did not):
	// the restart-state bit is set and peers keep the routes they had.
	Restarting bool `yaml:"-" json:"-"`
}

// PeerScope tells where a peer came from, for status: Calico's global
// and node-specific BGPPeers.
type PeerScope string

const (
	ScopeGlobal PeerScope = "global"
	ScopeNode   PeerScope = "node"
)

// Peer is an explicit BGP peer (Calico's BGPPeer).
type Peer struct {
	// Address is the peer's IPv4 or IPv6 address (Calico's peerIP).
	Address netip.Addr `yaml:"peerIP" json:"peerIP"`
	// ASNumber is the peer's AS; equal to the node's AS makes it iBGP.
	ASNumber uint32 `yaml:"asNumber" json:"asNumber"`
	// Port is the peer's TCP port; 0 means 179.
	Port uint16 `yaml:"port,omitempty" json:"port,omitempty"`
	// SourceAddress is the local address of the session; it defaults to
	// the node address of the peer's family.
	SourceAddress netip.Addr `yaml:"sourceAddress" json:"sourceAddress,omitzero"`
	// Scope is "global" (default) or "node" (a node-specific peer).
	Scope PeerScope `yaml:"scope,omitempty" json:"scope,omitempty"`
	// Password is the TCP MD5 (RFC 2385) password.
	Password string `yaml:"password,omitempty" json:"-"`
	// HoldTime defaults to 90s; 0s after parsing cannot be asked for
	// (RFC 4271 allows 0 or at least 3s: use 3s or more).
	HoldTime time.Duration `yaml:"holdTime,omitempty" json:"holdTime,omitempty"`
	// KeepaliveTime defaults to a third of the hold time.
	KeepaliveTime time.Duration `yaml:"keepaliveTime,omitempty" json:"keepaliveTime,omitempty"`
	// ConnectRetry is the wait between connection attempts; 0 means 5s.
	ConnectRetry time.Duration `yaml:"connectRetry,omitempty" json:"connectRetry,omitempty"`
	// TTLSecurity enables GTSM (RFC 5082) for an eBGP peer that many hops
	// away (Calico's ttlSecurity; 1 is directly connected).
	TTLSecurity uint8 `yaml:"ttlSecurity,omitempty" json:"ttlSecurity,omitempty"`
	// Multihop is the TTL of an eBGP session to a peer that is not
	// directly connected; 0 means 1 (single hop).
	Multihop uint8 `yaml:"multihop,omitempty" json:"multihop,omitempty"`
	// Families the session carries; default: the family of Address.
	// ["ipv4", "ipv6"] on an IPv4 peer carries IPv6 over it (MP-BGP, the
	// node's IPv6 address as next hop); on an IPv6 peer it carries IPv4
	// with an IPv6 next hop where the node has no IPv4 (RFC 8950).
	Families []Family `yaml:"families,omitempty" json:"families,omitempty"`
	// RouteReflectorClient makes the peer a client of this node, which
	// must then have a routeReflectorClusterID.
	RouteReflectorClient bool `yaml:"routeReflectorClient,omitempty" json:"routeReflectorClient,omitempty"`
	// RouteReflector marks the peer as this node's route reflector (for
	// status only: reflection is the reflector's business).
	RouteReflector bool `yaml:"routeReflector,omitempty" json:"routeReflector,omitempty"`
	// Passive waits for the peer to connect.
	Passive bool `yaml:"passive,omitempty" json:"passive,omitempty"`
	// BFD runs a BFD session (GoBGP's, RFC 5880/5881, single hop, UDP
	// 3784) beside the BGP session and takes it down when BFD fails.
	BFD *BFD `yaml:"bfd,omitempty" json:"bfd,omitempty"`
}

// BFD timers; zero values mean 300ms and a multiplier of 3.
type BFD struct {
	MinTx      time.Duration `yaml:"minTx,omitempty" json:"minTx,omitempty"`
	MinRx      time.Duration `yaml:"minRx,omitempty" json:"minRx,omitempty"`
	Multiplier uint8         `yaml:"multiplier,omitempty" json:"multiplier,omitempty"`
}

// LocalAS is the node's AS after defaults.
func (c *Config) LocalAS() uint32 {
	switch {
	case c.NodeASNumber != 0:
		return c.NodeASNumber
	case c.ASNumber != 0:
		return c.ASNumber
	}
	return DefaultASNumber
}

// MeshEnabled reports nodeToNodeMeshEnabled after its default.
func (c *Config) MeshEnabled() bool {
	return c.NodeToNodeMeshEnabled == nil || *c.NodeToNodeMeshEnabled
}

func (c *Config) routerID() netip.Addr {
	if c.RouterID.IsValid() {
		return c.RouterID
	}
	if c.NodeIPv4.IsValid() {
		return c.NodeIPv4
	}
	b := c.NodeIPv6.As16()
	id := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	if id.IsUnspecified() || id == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		// A router ID must not be 0.0.0.0; fold the high half in.
		var x [4]byte
		for i := 0; i < 12; i++ {
			x[i%4] ^= b[i]
		}
		x[0] |= 1
		id = netip.AddrFrom4(x)
	}
	return id
}

func (c *Config) listenPort() int {
	if c.ListenPort == 0 {
		return DefaultListenPort
	}
	return c.ListenPort
}

func (c *Config) maxPaths() int {
	if c.MaxPaths == 0 {
		return 1
	}
	return c.MaxPaths
}

func (g *GracefulRestart) restartTime() time.Duration {
	if g.RestartTime == 0 {
		return DefaultRestartTime
	}
	return g.RestartTime
}

// families returns the peer's families after their default.
func (p *Peer) families() []Family {
	if len(p.Families) > 0 {
		return p.Families
	}
	if p.Address.Is4() {
		return []Family{IPv4}
	}
	return []Family{IPv6}
}

func (p *Peer) has(f Family) bool {
	for _, x := range p.families() {
		if x == f {
			return true
		}
	}
	return false
}

func (p *Peer) holdTime() time.Duration {
	if p.HoldTime == 0 {
		return DefaultHoldTime
	}
	return p.HoldTime
}

func (p *Peer) keepalive() time.Duration {
	if p.KeepaliveTime == 0 {
		return p.holdTime() / 3
	}
	return p.KeepaliveTime
}

// validAS rejects 0, AS_TRANS (RFC 6793) and the reserved last ASes of
// both ranges (RFC 7300).
func validAS(as uint32) bool {
	return as != 0 && as != 23456 && as != 65535 && as != 4294967295
}

// Validate checks the config and returns the first error, a *ConfigError
// naming the field and its value.
func (c *Config) Validate() error {
	if c.ASNumber != 0 && !validAS(c.ASNumber) {
		return cfgErr("asNumber", c.ASNumber, "not a usable AS number (0, 23456, 65535 and 4294967295 are reserved)")
	}
	if c.NodeASNumber != 0 && !validAS(c.NodeASNumber) {
		return cfgErr("nodeASNumber", c.NodeASNumber, "not a usable AS number (0, 23456, 65535 and 4294967295 are reserved)")
	}
	if !c.NodeIPv4.IsValid() && !c.NodeIPv6.IsValid() {
		return cfgErr("nodeIPv4", "", "a node address is required (nodeIPv4 or nodeIPv6)")
	}
	if c.NodeIPv4.IsValid() && (!c.NodeIPv4.Is4() || c.NodeIPv4.IsUnspecified()) {
		return cfgErr("nodeIPv4", c.NodeIPv4, "not a unicast IPv4 address")
	}
	if c.NodeIPv6.IsValid() && (!c.NodeIPv6.Is6() || c.NodeIPv6.Is4In6() || c.NodeIPv6.IsUnspecified() || c.NodeIPv6.IsLinkLocalUnicast()) {
		return cfgErr("nodeIPv6", c.NodeIPv6, "not a global IPv6 address (IPv4-mapped and link-local addresses cannot be next hops here)")
	}
	if c.RouterID.IsValid() && (!c.RouterID.Is4() || c.RouterID.IsUnspecified()) {
		return cfgErr("routerID", c.RouterID, "a router ID is a non-zero IPv4 address")
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		return cfgErr("listenPort", c.ListenPort, "not a TCP port (1-65535, 0 for 179, -1 for none)")
	}
	if c.MaxPaths < 0 || c.MaxPaths > 64 {
		return cfgErr("maxPaths", c.MaxPaths, "must be 0-64")
	}
	if c.RouteReflectorClusterID != "" {
		if a, err := netip.ParseAddr(c.RouteReflectorClusterID); err != nil || !a.Is4() {
			return cfgErr("routeReflectorClusterID", c.RouteReflectorClusterID, "a cluster ID is a dotted quad (e.g. 244.0.0.1)")
		}
	}
	if gr := c.GracefulRestart; gr.RestartTime < 0 || gr.RestartTime > 4095*time.Second || gr.RestartTime%time.Second != 0 {
		return cfgErr("gracefulRestart.restartTime", gr.RestartTime, "must be whole seconds, at most 4095s")
	}
	if gr := c.GracefulRestart; gr.StaleRoutesTime < 0 || gr.StaleRoutesTime%time.Second != 0 {
		return cfgErr("gracefulRestart.staleRoutesTime", gr.StaleRoutesTime, "must be whole seconds")
	}
	for i, s := range c.Communities {
		if _, err := parseCommunity(s); err != nil {
			return cfgErr(fmt.Sprintf("communities[%d]", i), s, "%v", err)
		}
	}
	for i, p := range c.ServiceClusterIPs {
		if !p.IsValid() || p != p.Masked() {
			return cfgErr(fmt.Sprintf("serviceClusterIPs[%d]", i), p, "not a network prefix (host bits set or invalid)")
		}
	}
	for i, p := range c.ServiceExternalIPs {
		if !p.IsValid() || p != p.Masked() {
			return cfgErr(fmt.Sprintf("serviceExternalIPs[%d]", i), p, "not a network prefix (host bits set or invalid)")
		}
	}
	seen := map[netip.Addr]string{}
	for i, m := range c.MeshMembers {
		f := fmt.Sprintf("meshMembers[%d]", i)
		if !m.IsValid() || m.IsUnspecified() || m.Is4In6() {
			return cfgErr(f, m, "not a node address")
		}
		if prev, dup := seen[m]; dup {
			return cfgErr(f, m, "duplicate peer (also %s)", prev)
		}
		seen[m] = f
	}
	local := c.LocalAS()
	for i := range c.Peers {
		p := &c.Peers[i]
		f := fmt.Sprintf("peers[%d]", i)
		if !p.Address.IsValid() || p.Address.IsUnspecified() || p.Address.Is4In6() {
			return cfgErr(f+".peerIP", p.Address, "not a peer address")
		}
		if p.Address == c.NodeIPv4 || p.Address == c.NodeIPv6 {
			return cfgErr(f+".peerIP", p.Address, "is the node's own address")
		}
		if prev, dup := seen[p.Address]; dup {
			return cfgErr(f+".peerIP", p.Address, "duplicate peer (also %s)", prev)
		}
		seen[p.Address] = f + ".peerIP"
		if !validAS(p.ASNumber) {
			return cfgErr(f+".asNumber", p.ASNumber, "not a usable AS number (0, 23456, 65535 and 4294967295 are reserved)")
		}
		if p.SourceAddress.IsValid() && p.SourceAddress.Is4() != p.Address.Is4() {
			return cfgErr(f+".sourceAddress", p.SourceAddress, "not of the peer address's family")
		}
		if !p.SourceAddress.IsValid() {
			if p.Address.Is4() && !c.NodeIPv4.IsValid() {
				return cfgErr(f+".peerIP", p.Address, "an IPv4 peer needs nodeIPv4 or sourceAddress")
			}
			if p.Address.Is6() && !c.NodeIPv6.IsValid() {
				return cfgErr(f+".peerIP", p.Address, "an IPv6 peer needs nodeIPv6 or sourceAddress")
			}
		}
		switch p.Scope {
		case "", ScopeGlobal, ScopeNode:
		default:
			return cfgErr(f+".scope", p.Scope, `must be "global" or "node"`)
		}
		if h := p.HoldTime; h != 0 && (h < 3*time.Second || h > 65535*time.Second || h%time.Second != 0) {
			return cfgErr(f+".holdTime", h, "must be whole seconds, 3s-65535s")
		}
		if k := p.KeepaliveTime; k != 0 && (k < time.Second || k%time.Second != 0 || k >= p.holdTime()) {
			return cfgErr(f+".keepaliveTime", k, "must be whole seconds, at least 1s and below the hold time %s", p.holdTime())
		}
		if r := p.ConnectRetry; r < 0 || r%time.Second != 0 {
			return cfgErr(f+".connectRetry", r, "must be whole seconds")
		}
		ibgp := p.ASNumber == local
		if p.TTLSecurity != 0 && ibgp {
			return cfgErr(f+".ttlSecurity", p.TTLSecurity, "TTL security is for eBGP peers (asNumber %d is the node's)", p.ASNumber)
		}
		if p.Multihop != 0 && p.TTLSecurity != 0 {
			return cfgErr(f+".multihop", p.Multihop, "multihop and ttlSecurity exclude each other")
		}
		if p.Multihop != 0 && ibgp {
			return cfgErr(f+".multihop", p.Multihop, "multihop is for eBGP peers (iBGP is multihop already)")
		}
		if len(p.Families) > 2 {
			return cfgErr(f+".families", strings.Join(famStrings(p.Families), ","), "at most ipv4 and ipv6")
		}
		fs := map[Family]bool{}
		for j, fam := range p.Families {
			if fam != IPv4 && fam != IPv6 {
				return cfgErr(fmt.Sprintf("%s.families[%d]", f, j), fam, `must be "ipv4" or "ipv6"`)
			}
			if fs[fam] {
				return cfgErr(fmt.Sprintf("%s.families[%d]", f, j), fam, "listed twice")
			}
			fs[fam] = true
		}
		if p.has(IPv6) && p.Address.Is4() && !c.NodeIPv6.IsValid() {
			return cfgErr(f+".families", "ipv6", "IPv6 over an IPv4 session needs nodeIPv6 as its next hop (never an IPv4-mapped one)")
		}
		if p.RouteReflectorClient {
			if c.RouteReflectorClusterID == "" {
				return cfgErr(f+".routeReflectorClient", true, "a route reflector needs routeReflectorClusterID")
			}
			if !ibgp {
				return cfgErr(f+".routeReflectorClient", true, "route reflector clients are iBGP peers (asNumber %d is not the node's %d)", p.ASNumber, local)
			}
		}
		if p.BFD != nil {
			if p.BFD.MinTx < 0 || p.BFD.MinRx < 0 || p.BFD.MinTx%time.Microsecond != 0 {
				return cfgErr(f+".bfd", fmt.Sprintf("%+v", *p.BFD), "intervals must be positive")
			}
			if p.Multihop > 1 {
				return cfgErr(f+".bfd", "multihop", "GoBGP's BFD is single hop only")
			}
		}
	}
	return nil
}

func famStrings(fs []Family) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

var wellKnownCommunities = map[string]uint32{
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
	"no-peer":             0xFFFFFF04,
	"blackhole":           0xFFFF029A,
	"graceful-shutdown":   0xFFFF0000,
}

// parseCommunity parses "AS:N" (each 0-65535) or a well-known name.
func parseCommunity(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[strings.ToLower(s)]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, errors.New(`a community is "AS:N" or a well-known name`)
	}
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, errors.New("both halves of a community are 0-65535")
	}
	return uint32(a)<<16 | uint32(b), nil
}
