package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Calico's pod gateway convention, which xvsd answers for on pod ports.
var (
	GatewayV4  = netip.MustParseAddr("169.254.1.1")
	GatewayV6  = netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")
	GatewayMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
)

// Address plan. Everything comes from 198.18.0.0/15 (RFC 2544 benchmarking)
// and fd00::/8 (ULA): 198.18/16 and fd00:18::/32 are the underlay between
// the nodes and the outside namespace, 198.19/16 and fd00:19::/32 hold the
// pod blocks, one /24 and one /64 per node.
const (
	maxNodes       = 250
	maxPodsPerNode = 250
	// DefaultStateRoot holds one directory per lab: state, configs, logs.
	DefaultStateRoot = "/run/xvs-lab"
	// DefaultPodMTU is the MTU of every veth the lab creates.
	DefaultMTU = 1500
)

// Options says what lab to build. The zero value is one node with two pods
// and an outside namespace, and no xvsd.
type Options struct {
	// Prefix starts the name of every namespace the lab creates; empty picks
	// "xl" and four random hex digits. See ValidPrefix.
	Prefix string
	// Nodes is the number of node namespaces (default 1).
	Nodes int
	// PodsPerNode is the number of pods behind each node (default 2).
	PodsPerNode int
	// NoOutside leaves out the outside namespace and the uplinks.
	NoOutside bool
	// MTU of every veth (default 1500).
	MTU int
	// StaticNeighbors gives each pod a permanent neighbour entry for the
	// gateways, so pods need no ARP/NDP answer from the node.
	StaticNeighbors bool
	// PodTxChecksum leaves TX checksum offload on in the pods. By default
	// it is off, as the CNI plugin sets it: a veth hands TCP and UDP out
	// with the checksum left to "hardware" (CHECKSUM_PARTIAL), AF_XDP
	// does not carry that state, and the receiver would drop the frame.
	PodTxChecksum bool
	// PodMode is the mode of xvsd's pod ports ("" lets xvsd pick: AF_XDP).
	// "af-packet" runs them over AF_PACKET with offloads: pods keep TSO
	// and TX checksum offload, and TCP crosses the switch in 64 KiB GSO
	// super-frames (see vswitch's doc). Pods keep TX checksum offload on.
	PodMode string
	// UplinkMode is the mode of xvsd's uplink ports ("" lets xvsd pick:
	// AF_XDP). "af-packet" runs them over AF_PACKET steered by tc: XDP on
	// a veth takes the peer's TSO away, so an AF_XDP uplink gets TCP from
	// the outside segment by segment, an af-packet one gets it whole.
	UplinkMode string
	// UplinkGRO turns GRO on at the nodes' ends of the uplinks, as a NIC's
	// driver has it: the segments the outside sends each node are merged
	// before its stack, its tc and its packet sockets see them (VXLAN by
	// the node's own VXLAN socket, if it has one). veth leaves it off; the
	// uplinks otherwise deliver segment by segment.
	UplinkGRO bool
	// XDPFastPath turns xvsd's fast path on (xdp_fast_path) and, with
	// AF_XDP pod ports, GRO on in the pods, which veth needs to take
	// XDP-redirected frames.
	XDPFastPath bool
	// HostPort gives each node a host port: a veth pair in the node's
	// namespace, the kernel on one end (routing the pod block via the
	// gateway), xvsd on the other, so the node itself reaches its pods
	// (kubelet probes, hostNetwork pods). Needs the outside (the node's
	// addresses are its uplink's).
	HostPort bool
	// UplinkQueues gives each uplink veth that many queues, and xvsd one
	// AF_XDP socket per queue (default 1).
	UplinkQueues int
	// Encap is how nodes reach each other's pods: "" (native routing: the
	// outside routes every node's pod blocks to it) or "vxlan" (Calico's
	// VXLAN mode: the outside routes only the underlay, each node is a
	// VTEP with a MAC of its own, xvsd gets vxlan routes to the other
	// nodes' blocks and KernelRouting sets up Calico's vxlan devices; the
	// pods' MTU leaves room for VXLAN over IPv6: 70 bytes).
	Encap string
	// BGP has the nodes learn each other's pod blocks over BGP (xvsd's
	// bgp: section) instead of from static routes, and the outside routes
	// no pod block. With native routing the nodes share one segment (a
	// bridge in the outside; node i at 198.18.0.i+1/24 and fd00:18::i+1/64,
	// the outside at .254 and ::fe), so a BGP next hop is a neighbour;
	// node-to-node mesh sessions over IPv4 and over IPv6. With Encap vxlan
	// the underlay stays routed and each node has one IPv4 session per
	// other node carrying both families, its IPv6 pod routes tunnelled to
	// the IPv4 VTEP (IPv6 pods over an IPv4 underlay).
	BGP bool
	// BGPOutsideAS, with BGP and native routing, has every node peer with
	// the outside's addresses (198.18.0.254 and fd00:18::fe, an IPv4 and
	// an IPv6 session) in that AS: the caller runs a router there (BIRD
	// in the tests).
	BGPOutsideAS uint32
	// BGPOutsideOneSession makes that one IPv4 session per node carrying
	// IPv4 and IPv6 (MP-BGP) instead of a session per family.
	BGPOutsideOneSession bool

	// XVSD is the path to the xvsd binary; empty builds the topology only.
	XVSD string
	// XVSDArgs returns xvsd's arguments for a config file; nil uses
	// DefaultXVSDArgs.
	XVSDArgs func(configPath string) []string
	// Workers is written to each node's xvsd config (default 1).
	Workers int
	// ReadyTimeout bounds the wait for xvsd's readiness (default 20s).
	ReadyTimeout time.Duration
	// StopTimeout is how long a stopped process gets between SIGTERM and
	// SIGKILL (default 5s).
	StopTimeout time.Duration
	// ExecTimeout bounds every command run by Exec (default 60s).
	ExecTimeout time.Duration
	// Detach lets xvsd outlive this process (xvsctl lab up). Otherwise the
	// kernel sends xvsd SIGKILL when this process dies, so a crashed test
	// leaves no dataplane behind.
	Detach bool

	// StateRoot holds the lab's directory (default /run/xvs-lab).
	StateRoot string
	// KeepDir keeps the lab's directory (configs, logs) after Close.
	KeepDir bool
	// Logf, when set, receives one line per step (t.Logf fits).
	Logf func(format string, args ...any)
}

func (o *Options) setDefaults() error {
	if o.Prefix == "" {
		o.Prefix = NewPrefix()
	}
	if err := ValidPrefix(o.Prefix); err != nil {
		return err
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.PodsPerNode == 0 {
		o.PodsPerNode = 2
	}
	switch o.Encap {
	case "", EncapVXLAN:
	default:
		return fmt.Errorf("encap %q: want vxlan or nothing (native routing)", o.Encap)
	}
	if o.Nodes < 1 || o.Nodes > maxNodes {
		return fmt.Errorf("nodes %d: want 1..%d", o.Nodes, maxNodes)
	}
	if o.PodsPerNode < 0 || o.PodsPerNode > maxPodsPerNode {
		return fmt.Errorf("pods per node %d: want 0..%d", o.PodsPerNode, maxPodsPerNode)
	}
	if o.MTU == 0 {
		o.MTU = DefaultMTU
	}
	for _, m := range []struct {
		what string
		v    *string
	}{{"pod", &o.PodMode}, {"uplink", &o.UplinkMode}} {
		switch *m.v {
		case "", "auto":
			*m.v = ""
		case "af-packet", "xdp-native", "xdp-generic":
		default:
			return fmt.Errorf("%s mode %q: want auto, af-packet, xdp-native or xdp-generic", m.what, *m.v)
		}
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 20 * time.Second
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 5 * time.Second
	}
	if o.ExecTimeout == 0 {
		o.ExecTimeout = 60 * time.Second
	}
	if o.StateRoot == "" {
		o.StateRoot = DefaultStateRoot
	}
	if o.XVSDArgs == nil {
		o.XVSDArgs = DefaultXVSDArgs
	}
	return nil
}

// DefaultXVSDArgs is how the lab starts xvsd on a config file.
func DefaultXVSDArgs(configPath string) []string {
	return []string{"-config", configPath}
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{2,9}$`)

// ErrBadPrefix is returned for a prefix that could match names the lab did
// not create.
var ErrBadPrefix = errors.New("lab prefix must be 3-10 lowercase letters or digits, starting with a letter")

// ValidPrefix reports whether p can name a lab. Short, plain prefixes keep
// every interface name within IFNAMSIZ and keep Sweep from matching
// namespaces of other tools.
func ValidPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("%q: %w", p, ErrBadPrefix)
	}
	return nil
}

// NewPrefix returns "xl" and four random hex digits.
func NewPrefix() string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return "xl" + hex.EncodeToString(b[:])
}

// Topology is a lab as data: what New creates and Close deletes. It is
// computed by Plan without touching the kernel and saved in the state file.
type Topology struct {
	Prefix     string
	Namespaces []string // full names, in creation order
	Nodes      []*Node
	Pods       []*Pod
	Outside    string // namespace of the outside world; empty if none
	Links      []*Link
	Sysctls    []Sysctl
	Routes     []Route
	Neighbors  []Neighbor
	// TxChecksumOff lists interfaces whose TX checksum offload is turned
	// off (ethtool -K DEV tx off), so what they send is complete on the
	// wire as a real NIC's frames are.
	TxChecksumOff []IfRef
	// GROOn lists interfaces whose GRO is turned on (pods, for the fast
	// path; uplinks, with Options.UplinkGRO).
	GROOn []IfRef
	MTU   int
	// Encap is Options.Encap: "" or "vxlan".
	Encap string
	// BGP is Options.BGP; BGPOutsideAS Options.BGPOutsideAS.
	BGP                  bool   `json:",omitempty"`
	BGPOutsideAS         uint32 `json:",omitempty"`
	BGPOutsideOneSession bool   `json:",omitempty"`
	// Bridges are made after the links, with their members enslaved.
	Bridges []Bridge `json:",omitempty"`
}

// Bridge is a Linux bridge in a namespace (Options.BGP's shared segment).
type Bridge struct {
	NS      string
	Name    string
	MAC     net.HardwareAddr
	Addrs   []netip.Prefix
	Members []string
}

// EncapVXLAN is Options.Encap for Calico's VXLAN mode.
const EncapVXLAN = "vxlan"

// VXLAN as Calico sets it up: one VNI, the IANA port, and the overhead
// the pods' MTU leaves room for (VXLAN over IPv6).
const (
	VXLANVNI      = 4096
	VXLANPort     = 4789
	vxlanOverhead = 70
)

// IfRef names an interface in a namespace.
type IfRef struct{ NS, Dev string }

// Node is a namespace that runs xvsd with kernel forwarding off.
type Node struct {
	Name       string // short name: "node", or "node1", "node2", ...
	NS         string // namespace
	Index      int
	Uplink     string       // uplink interface in NS; empty without an outside
	UplinkV4   netip.Prefix // node's uplink address and subnet (198.18.i.1/24)
	UplinkV6   netip.Prefix // fd00:18:i::1/64
	Queues     int          // uplink queues xvsd serves (0 or 1: one)
	PodMode    string       // xvsd's mode for the pod ports ("" for its default)
	UplinkMode string       // xvsd's mode for the uplink ("" for its default)
	FastPath   bool         // xvsd's xdp_fast_path
	GatewayV4  netip.Addr   // the outside end of the uplink (198.18.i.2)
	GatewayV6  netip.Addr
	PodsV4     netip.Prefix // this node's pod block (198.19.i.0/24)
	PodsV6     netip.Prefix // fd00:19:i::/64
	Pods       []string     // pod short names, in order
	HostIf     string       // the switch's end of the host port; empty without one
	HostKern   string       // the kernel's end of the host port
	// VTEPMAC is the node's VXLAN tunnel endpoint MAC (Encap vxlan).
	VTEPMAC net.HardwareAddr `json:",omitempty"`
	// VTEP4 is xvsd's vxlan.vtep_v4 when set (the uplink's address
	// otherwise); a test that sets it gives the node that address.
	VTEP4 netip.Addr `json:",omitzero"`

	// xvsd's files and endpoints (inside NS for the TCP addresses).
	Config  string
	Log     string
	State   string // xvsd's state file: API-added ports and routes
	Socket  string
	Metrics string
	Health  string
}

// Pod is a namespace joined to its node by a veth pair.
type Pod struct {
	Name   string // short name: "pod1", "pod2", ... numbered across nodes
	NS     string
	Node   string           // short name of its node
	HostIf string           // host end, in the node's namespace
	MAC    net.HardwareAddr // of eth0
	V4     netip.Addr       // /32 on eth0
	V6     netip.Addr       // /128 on eth0
}

// PodIf is the pod end's name in every pod namespace.
const PodIf = "eth0"

// Link is a veth pair between two namespaces.
type Link struct {
	Kind   string // "pod", "uplink" or "host"
	A, B   End
	Queues int // rx and tx queues on each end (0: the kernel's default, 1)
	MTU    int `json:",omitempty"` // of both ends; 0: the topology's
}

// End is one side of a veth pair.
type End struct {
	NS    string
	Name  string
	MAC   net.HardwareAddr
	Addrs []netip.Prefix
}

// Sysctl is one value written under /proc/sys in a namespace.
type Sysctl struct {
	NS, Key, Value string // Key as sysctl(8) spells it: net.ipv4.ip_forward
}

// Route is one kernel route in a namespace.
type Route struct {
	NS     string
	Dst    netip.Prefix
	Via    netip.Addr
	Dev    string
	OnLink bool
}

// Neighbor is one permanent neighbour entry.
type Neighbor struct {
	NS   string
	Dev  string
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// NodeByName returns a node by short name or namespace, or nil.
func (t *Topology) NodeByName(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name || n.NS == name {
			return n
		}
	}
	return nil
}

// PodByName returns a pod by short name or namespace, or nil.
func (t *Topology) PodByName(name string) *Pod {
	for _, p := range t.Pods {
		if p.Name == name || p.NS == name {
			return p
		}
	}
	return nil
}

// NS maps a short name ("node", "pod1", "outside") or a namespace of this
// lab to the namespace.
func (t *Topology) NS(name string) (string, error) {
	if n := t.NodeByName(name); n != nil {
		return n.NS, nil
	}
	if p := t.PodByName(name); p != nil {
		return p.NS, nil
	}
	if t.Outside != "" && (name == "outside" || name == t.Outside) {
		return t.Outside, nil
	}
	return "", fmt.Errorf("lab %s has no namespace %q", t.Prefix, name)
}

func mac(b ...byte) net.HardwareAddr { return net.HardwareAddr(b) }

func v4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

// v6 returns fd00:g:i::h.
func v6(g uint16, i, h int) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfd, 0x00
	b[2], b[3] = byte(g>>8), byte(g)
	b[4], b[5] = byte(i>>8), byte(i)
	b[14], b[15] = byte(h>>8), byte(h)
	return netip.AddrFrom16(b)
}

// Plan computes the topology for opts without touching the kernel.
func Plan(opts Options) (*Topology, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	p := opts.Prefix
	t := &Topology{Prefix: p, MTU: opts.MTU, Encap: opts.Encap, BGP: opts.BGP, BGPOutsideAS: opts.BGPOutsideAS, BGPOutsideOneSession: opts.BGPOutsideOneSession}
	if opts.BGPOutsideAS != 0 && (!opts.BGP || opts.Encap != "" || opts.NoOutside) {
		return nil, fmt.Errorf("bgp outside AS %d: needs bgp, native routing and the outside", opts.BGPOutsideAS)
	}
	if opts.BGP && opts.NoOutside && opts.Nodes > 1 {
		return nil, fmt.Errorf("bgp needs the outside: it carries the sessions")
	}
	// BGP with native routing: one segment for every node.
	shared := opts.BGP && opts.Encap == "" && !opts.NoOutside
	podMTU := 0
	if opts.Encap == EncapVXLAN {
		if opts.NoOutside && opts.Nodes > 1 {
			return nil, fmt.Errorf("encap vxlan needs the outside: it carries the tunnels")
		}
		mtu := opts.MTU
		if mtu == 0 {
			mtu = DefaultMTU
		}
		podMTU = mtu - vxlanOverhead
	}
	dir := stateDir(opts.StateRoot, p)
	if !opts.NoOutside {
		t.Outside = p + "-out"
	}
	pod := 0
	for i := 0; i < opts.Nodes; i++ {
		n := &Node{Name: "node", Index: i}
		if opts.Nodes > 1 {
			n.Name = fmt.Sprintf("node%d", i+1)
		}
		n.NS = p + "-" + n.Name
		n.PodMode = opts.PodMode
		n.UplinkMode = opts.UplinkMode
		n.FastPath = opts.XDPFastPath
		n.PodsV4 = netip.PrefixFrom(v4(198, 19, byte(i), 0), 24)
		n.PodsV6 = netip.PrefixFrom(v6(0x19, i, 0), 64)
		if opts.Encap == EncapVXLAN {
			n.VTEPMAC = mac(0x02, 0x58, 0x03, 0x00, byte(i), 1)
		}
		n.Config = dir + "/" + n.Name + ".yaml"
		n.Log = dir + "/" + n.Name + ".log"
		n.State = dir + "/" + n.Name + ".state.json"
		n.Socket = "/run/xvs/" + n.NS + ".sock"
		n.Metrics = "127.0.0.1:9091"
		n.Health = "127.0.0.1:9099"
		t.Namespaces = append(t.Namespaces, n.NS)
		t.Nodes = append(t.Nodes, n)
		// Forwarding off: whatever crosses the node went through xvsd.
		// IPv4 devconf is inherited from the root namespace, so say it.
		t.Sysctls = append(t.Sysctls,
			Sysctl{n.NS, "net.ipv4.ip_forward", "0"},
			Sysctl{n.NS, "net.ipv6.conf.all.forwarding", "0"},
		)
		for j := 1; j <= opts.PodsPerNode; j++ {
			pod++
			pd := &Pod{
				Name: fmt.Sprintf("pod%d", pod),
				Node: n.Name,
				MAC:  mac(0x02, 0x58, 0x00, 0x00, byte(i), byte(j)),
				V4:   v4(198, 19, byte(i), byte(j)),
				V6:   v6(0x19, i, j),
			}
			pd.NS = p + "-" + pd.Name
			pd.HostIf = "xl" + pd.Name + "h"
			n.Pods = append(n.Pods, pd.Name)
			t.Pods = append(t.Pods, pd)
			t.Namespaces = append(t.Namespaces, pd.NS)
			t.Links = append(t.Links, &Link{
				Kind: "pod",
				MTU:  podMTU,
				A:    End{NS: n.NS, Name: pd.HostIf, MAC: GatewayMAC},
				B: End{NS: pd.NS, Name: PodIf, MAC: pd.MAC, Addrs: []netip.Prefix{
					netip.PrefixFrom(pd.V4, 32), netip.PrefixFrom(pd.V6, 128),
				}},
			})
			t.Sysctls = append(t.Sysctls,
				Sysctl{pd.NS, "net.ipv6.conf.all.disable_ipv6", "0"},
				Sysctl{pd.NS, "net.ipv6.conf.eth0.accept_dad", "0"},
				Sysctl{n.NS, "net.ipv6.conf." + pd.HostIf + ".accept_dad", "0"},
			)
			t.Routes = append(t.Routes,
				Route{NS: pd.NS, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: GatewayV4, Dev: PodIf, OnLink: true},
				Route{NS: pd.NS, Dst: netip.MustParsePrefix("::/0"), Via: GatewayV6, Dev: PodIf},
			)
			if !opts.PodTxChecksum && opts.PodMode != "af-packet" {
				t.TxChecksumOff = append(t.TxChecksumOff, IfRef{pd.NS, PodIf})
			}
			if opts.XDPFastPath && opts.PodMode != "af-packet" {
				// XDP redirects need NAPI at the receiving end; the tc
				// fast path of AF_PACKET ports delivers without it.
				t.GROOn = append(t.GROOn, IfRef{pd.NS, PodIf})
			}
			if opts.StaticNeighbors {
				t.Neighbors = append(t.Neighbors,
					Neighbor{pd.NS, PodIf, GatewayV4, GatewayMAC},
					Neighbor{pd.NS, PodIf, GatewayV6, GatewayMAC},
				)
			}
		}
	}
	if t.Outside != "" {
		t.Namespaces = append(t.Namespaces, t.Outside)
		fwd := "0"
		if opts.Nodes > 1 {
			fwd = "1" // the outside routes between nodes
		}
		t.Sysctls = append(t.Sysctls,
			Sysctl{t.Outside, "net.ipv4.ip_forward", fwd},
			Sysctl{t.Outside, "net.ipv6.conf.all.forwarding", fwd},
		)
		var br *Bridge
		if shared {
			t.Bridges = append(t.Bridges, Bridge{NS: t.Outside, Name: "br0", MAC: mac(0x02, 0x58, 0x01, 0xff, 0, 0xfe),
				Addrs: []netip.Prefix{netip.PrefixFrom(v4(198, 18, 0, 254), 24), netip.PrefixFrom(v6(0x18, 0, 0xfe), 64)}})
			br = &t.Bridges[len(t.Bridges)-1]
		}
		for _, n := range t.Nodes {
			i := n.Index
			n.Uplink = "uplink0"
			n.UplinkV4 = netip.PrefixFrom(v4(198, 18, byte(i), 1), 24)
			n.UplinkV6 = netip.PrefixFrom(v6(0x18, i, 1), 64)
			n.GatewayV4 = v4(198, 18, byte(i), 2)
			n.GatewayV6 = v6(0x18, i, 2)
			outAddrs := []netip.Prefix{netip.PrefixFrom(n.GatewayV4, 24), netip.PrefixFrom(n.GatewayV6, 64)}
			if br != nil {
				n.UplinkV4 = netip.PrefixFrom(v4(198, 18, 0, byte(i+1)), 24)
				n.UplinkV6 = netip.PrefixFrom(v6(0x18, 0, i+1), 64)
				n.GatewayV4, n.GatewayV6 = br.Addrs[0].Addr(), br.Addrs[1].Addr()
				outAddrs = nil
			}
			outIf := n.Name
			if br != nil {
				br.Members = append(br.Members, outIf)
			}
			n.Queues = opts.UplinkQueues
			t.Links = append(t.Links, &Link{
				Kind:   "uplink",
				Queues: opts.UplinkQueues,
				A: End{NS: n.NS, Name: n.Uplink, MAC: mac(0x02, 0x58, 0x01, 0x00, byte(i), 1),
					Addrs: []netip.Prefix{n.UplinkV4, n.UplinkV6}},
				B: End{NS: t.Outside, Name: outIf, MAC: mac(0x02, 0x58, 0x01, 0x00, byte(i), 2),
					Addrs: outAddrs},
			})
			t.Sysctls = append(t.Sysctls,
				Sysctl{n.NS, "net.ipv6.conf." + n.Uplink + ".accept_dad", "0"},
				Sysctl{t.Outside, "net.ipv6.conf." + outIf + ".accept_dad", "0"},
			)
			// The outside stands for the network: its frames arrive with
			// their checksums done, as from a real NIC.
			t.TxChecksumOff = append(t.TxChecksumOff, IfRef{t.Outside, outIf})
			if opts.UplinkGRO {
				t.GROOn = append(t.GROOn, IfRef{n.NS, n.Uplink})
			}
			if opts.Encap == "" && !opts.BGP {
				// Native routing; with VXLAN the network knows only the
				// nodes, and pods cross it inside the tunnels.
				t.Routes = append(t.Routes,
					Route{NS: t.Outside, Dst: n.PodsV4, Via: n.UplinkV4.Addr(), Dev: outIf},
					Route{NS: t.Outside, Dst: n.PodsV6, Via: n.UplinkV6.Addr(), Dev: outIf},
				)
			}
			if opts.HostPort {
				n.HostIf, n.HostKern = "xvshostp", "xvshost"
				t.Links = append(t.Links, &Link{
					Kind: "host",
					A:    End{NS: n.NS, Name: n.HostKern, MAC: mac(0x02, 0x58, 0x02, 0x00, byte(i), 1)},
					B:    End{NS: n.NS, Name: n.HostIf, MAC: GatewayMAC},
				})
				t.Sysctls = append(t.Sysctls,
					Sysctl{n.NS, "net.ipv6.conf." + n.HostKern + ".accept_dad", "0"},
					Sysctl{n.NS, "net.ipv6.conf." + n.HostIf + ".accept_dad", "0"},
				)
				t.TxChecksumOff = append(t.TxChecksumOff, IfRef{n.NS, n.HostKern})
				t.Routes = append(t.Routes,
					Route{NS: n.NS, Dst: n.PodsV4, Via: GatewayV4, Dev: n.HostKern, OnLink: true},
					Route{NS: n.NS, Dst: n.PodsV6, Via: GatewayV6, Dev: n.HostKern},
				)
			}
		}
	} else if opts.HostPort {
		return nil, fmt.Errorf("HostPort needs the outside (the node's addresses are its uplink's)")
	}
	if opts.Encap == EncapVXLAN && t.Outside != "" {
		// The nodes' own underlay: each node's kernel reaches the other
		// nodes' VTEP addresses through the outside, as a real host's
		// routes would; kernel VXLAN devices, Calico's or xvsd's, need
		// them.
		for _, n := range t.Nodes {
			for _, m := range t.Nodes {
				if m != n {
					t.Routes = append(t.Routes,
						Route{NS: n.NS, Dst: m.UplinkV4.Masked(), Via: n.GatewayV4, Dev: n.Uplink},
						Route{NS: n.NS, Dst: m.UplinkV6.Masked(), Via: n.GatewayV6, Dev: n.Uplink},
					)
				}
			}
		}
	}
	for _, l := range t.Links {
		for _, e := range []End{l.A, l.B} {
			if len(e.Name) > 15 {
				return nil, fmt.Errorf("interface name %q longer than 15 bytes", e.Name)
			}
		}
	}
	return t, nil
}

// HasPrefix reports whether namespace name belongs to a lab with prefix p.
func HasPrefix(name, p string) bool { return strings.HasPrefix(name, p+"-") }
