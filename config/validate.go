package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// Config is a validated configuration: the switch's and the daemon's.
type Config struct {
	Switch      vswitch.Config
	APISocket   string
	MetricsAddr string
	HealthAddr  string
	LogLevel    slog.Level
	LogFormat   string // "text" or "json"
	// StateFile records the ports and routes added through the API, so a
	// restarted xvsd re-adopts every pod with its addresses.
	StateFile string
	// IPAM, when set, runs the CNI server on these pools.
	IPAM *IPAMConfig
	// BGP is the resolved bgp: section; nil without one.
	BGP *BGPConfig
	// Kube is the resolved kubernetes: section; nil without one.
	Kube *KubeConfig
	// Services are the services: list, validated one by one and as a
	// list (names unique); the switch checks the set for clashes.
	Services []spec.Service
	// NAT holds the nat: section's port range and internal prefixes;
	// NATFor adds the pools and the uplinks' subnets.
	NAT spec.NATConfig
}

// LinkCheck reports whether an interface exists in xvsd's network namespace:
// nil if it does, an error wrapping ErrNoSuchInterface if it does not, any
// other error if it could not tell.
type LinkCheck func(name string) error

// NetlinkLinkCheck asks the kernel (netlink, the caller's namespace).
func NetlinkLinkCheck(name string) error {
	_, err := netlink.LinkByName(name)
	if err == nil {
		return nil
	}
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, syscall.ENODEV) {
		return ErrNoSuchInterface
	}
	return err
}

// Options change how Resolve validates.
type Options struct {
	// LinkCheck checks that each port's interface exists; nil skips the check
	// (tests, and tools that validate a file for another host).
	LinkCheck LinkCheck
}

// Limits on values that the dataplane would otherwise reject late.
const (
	MaxWorkers  = 256
	MaxIdleSpin = 100 * time.Millisecond
	maxIfName   = 15 // IFNAMSIZ - 1
)

// Resolve applies defaults, validates f and converts it. The error lists
// every invalid field (errors.Join of *FieldError), not just the first.
func (f *File) Resolve(opt Options) (*Config, error) {
	var e errs
	c := &Config{}
	sc := &c.Switch

	switch {
	case f.Workers < 0 || f.Workers > MaxWorkers:
		e.num("workers", f.Workers, "must be between 1 and %d", MaxWorkers)
	case f.Workers == 0:
		sc.Workers = 1
	default:
		sc.Workers = f.Workers
	}
	switch {
	case f.BatchSize < 0 || f.BatchSize > vswitch.MaxBatchSize:
		e.num("batch_size", f.BatchSize, "must be between 1 and %d", vswitch.MaxBatchSize)
	case f.BatchSize == 0:
		sc.BatchSize = vswitch.DefaultBatchSize
	default:
		sc.BatchSize = f.BatchSize
	}
	switch f.Poll {
	case "", "adaptive":
		sc.Poll = dataplane.PollAdaptive
	case "busy":
		sc.Poll = dataplane.PollBusy
	default:
		e.str("poll", f.Poll, "must be busy or adaptive")
	}
	for i, cpu := range f.WorkerCPUs {
		if cpu < 0 || cpu >= runtime.NumCPU() {
			e.num(fmt.Sprintf("worker_cpus[%d]", i), cpu, "this machine has CPUs 0..%d", runtime.NumCPU()-1)
		}
	}
	if len(f.WorkerCPUs) > max(sc.Workers, 1) {
		e.num("worker_cpus", len(f.WorkerCPUs), "more CPUs than workers (%d)", max(sc.Workers, 1))
	}
	sc.WorkerCPUs = f.WorkerCPUs
	sc.XDPFastPath = f.XDPFastPath
	if f.IdleSpin != "" {
		d, err := time.ParseDuration(f.IdleSpin)
		switch {
		case err != nil || d < 0 || d > MaxIdleSpin:
			e.str("idle_spin", f.IdleSpin, "must be a duration from 0s to %s", MaxIdleSpin)
		case d == 0:
			sc.IdleSpin = vswitch.NoIdleSpin
		default:
			sc.IdleSpin = d
		}
	}
	switch {
	case f.Frames == 0:
		sc.Frames = vswitch.DefaultFrames
	case f.Frames < 64 || f.Frames&(f.Frames-1) != 0:
		e.num("frames", f.Frames, "must be a power of two, at least 64")
	default:
		sc.Frames = f.Frames
	}
	switch f.FrameSize {
	case 0:
		sc.FrameSize = vswitch.DefaultFrameSize
	case 2048, 4096:
		sc.FrameSize = f.FrameSize
	default:
		e.num("frame_size", f.FrameSize, "must be 2048 or 4096")
	}
	if f.Frames != 0 && sc.BatchSize != 0 && f.Frames < 4*sc.BatchSize {
		e.num("frames", f.Frames, "must be at least 4 × batch_size (%d)", sc.BatchSize)
	}

	sc.GatewayV4 = vswitch.DefaultGatewayV4
	if f.GatewayV4 != "" {
		a, err := netip.ParseAddr(f.GatewayV4)
		switch {
		case err != nil:
			e.str("gateway_v4", f.GatewayV4, "invalid address")
		case !a.Is4():
			e.str("gateway_v4", f.GatewayV4, "not an IPv4 address")
		default:
			sc.GatewayV4 = a
		}
	}
	sc.GatewayV6 = vswitch.DefaultGatewayV6
	if f.GatewayV6 != "" {
		a, err := netip.ParseAddr(f.GatewayV6)
		switch {
		case err != nil:
			e.str("gateway_v6", f.GatewayV6, "invalid address")
		case !a.Is6() || a.Is4In6():
			e.str("gateway_v6", f.GatewayV6, "not an IPv6 address")
		case a.Zone() != "":
			e.str("gateway_v6", f.GatewayV6, "must not have a zone")
		default:
			sc.GatewayV6 = a
		}
	}
	sc.GatewayMAC = vswitch.DefaultGatewayMAC
	if f.GatewayMAC != "" {
		if m, err := ParseMAC(f.GatewayMAC); err != nil {
			e.strErr("gateway_mac", f.GatewayMAC, err)
		} else if m[0]&1 != 0 || m == ([6]byte{}) {
			e.str("gateway_mac", f.GatewayMAC, "must be a unicast address")
		} else {
			sc.GatewayMAC = m
		}
	}
	switch {
	case f.ICMPRate < 0:
		e.num("icmp_rate", f.ICMPRate, "must not be negative")
	case f.ICMPRate == 0:
		sc.ICMPRate = vswitch.DefaultICMPRate
	default:
		sc.ICMPRate = f.ICMPRate
	}

	if f.VXLAN != nil {
		sc.VXLAN = resolveVXLAN(f.VXLAN, &e)
	}

	c.StateFile = orDefault(f.StateFile, DefaultStateFile)
	if !filepath.IsAbs(c.StateFile) {
		e.str("state_file", c.StateFile, "must be an absolute path")
	}
	c.APISocket = orDefault(f.APISocket, DefaultAPISocket)
	if !filepath.IsAbs(c.APISocket) {
		e.str("api_socket", c.APISocket, "must be an absolute path")
	}
	c.MetricsAddr = orDefault(f.MetricsAddr, DefaultMetricsAddr)
	if err := CheckLoopback(c.MetricsAddr); err != nil {
		e.strErr("metrics_addr", c.MetricsAddr, err)
	}
	c.HealthAddr = orDefault(f.HealthAddr, DefaultHealthAddr)
	if err := CheckLoopback(c.HealthAddr); err != nil {
		e.strErr("health_addr", c.HealthAddr, err)
	}
	lvl := orDefault(f.LogLevel, DefaultLogLevel)
	if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
		e.str("log_level", lvl, "must be debug, info, warn or error")
	}
	c.LogFormat = orDefault(f.LogFormat, DefaultLogFormat)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		e.str("log_format", c.LogFormat, "must be text or json")
	}

	// Ports: each on its own, then across ports.
	names := make(map[string]int)
	for i, p := range f.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		pc, perrs := ResolvePort(field, p, opt.LinkCheck)
		e = append(e, perrs...)
		if p.Name != "" {
			if j, dup := names[p.Name]; dup {
				e.str(field+".name", p.Name, "duplicate port name (also ports[%d])", j)
			} else {
				names[p.Name] = i
			}
		}
		sc.Ports = append(sc.Ports, pc)
	}
	e = append(e, checkOverlaps(sc.Ports)...)

	seen := make(map[netip.Prefix]int)
	for i, r := range f.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		sr, rerrs := ResolveRoute(field, r, sc.Ports)
		e = append(e, rerrs...)
		if r.VXLAN != nil && f.VXLAN == nil {
			e.str(field+".vxlan.remote", r.VXLAN.Remote, "a vxlan route needs the vxlan: section (this node's VTEP)")
		}
		if len(rerrs) == 0 {
			if j, dup := seen[sr.Prefix]; dup {
				e.str(field+".prefix", r.Prefix, "duplicate route (also routes[%d])", j)
			}
			seen[sr.Prefix] = i
		}
		sc.Routes = append(sc.Routes, sr)
	}

	if f.IPAM != nil {
		c.IPAM = f.IPAM.resolve(&e)
	}
	c.BGP = resolveBGP(f.BGP, f.VXLAN != nil, &e)
	if f.Kubernetes != nil {
		node := ""
		if c.IPAM != nil && f.IPAM.Node != "" {
			node = c.IPAM.Node
		}
		c.Kube = f.Kubernetes.resolve(node, &e)
		if c.IPAM != nil {
			kubeIPAM(f, c, &e)
		}
	}
	svcs, serrs := ResolveServices("services", f.Services)
	e = append(e, serrs...)
	c.Services = svcs
	c.NAT = resolveNAT(f.NAT, &e)
	if err := e.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// resolveVXLAN validates the vxlan: section.
func resolveVXLAN(x *VXLAN, e *errs) *vswitch.VXLANConfig {
	vc := &vswitch.VXLANConfig{}
	switch {
	case x.VNI < 0 || x.VNI > 1<<24-1:
		e.num("vxlan.vni", x.VNI, "must be 1..16777215")
	case x.VNI == 0:
		vc.VNI = vswitch.DefaultVNI
	default:
		vc.VNI = uint32(x.VNI)
	}
	if x.Port < 0 || x.Port > 65535 {
		e.num("vxlan.port", x.Port, "must be 1..65535")
	} else {
		vc.Port = uint16(x.Port)
	}
	if x.MAC != "" {
		if m, err := ParseMAC(x.MAC); err != nil {
			e.strErr("vxlan.mac", x.MAC, err)
		} else if m[0]&1 != 0 || m == ([6]byte{}) {
			e.str("vxlan.mac", x.MAC, "must be a unicast address")
		} else {
			vc.MAC = m
		}
	}
	if x.VTEPv4 != "" {
		a, err := netip.ParseAddr(x.VTEPv4)
		if err != nil || !a.Is4() || !a.IsGlobalUnicast() {
			e.str("vxlan.vtep_v4", x.VTEPv4, "not a unicast IPv4 address")
		} else {
			vc.VTEP4 = a
		}
	}
	if x.VTEPv6 != "" {
		a, err := netip.ParseAddr(x.VTEPv6)
		if err != nil || !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || a.Zone() != "" {
			e.str("vxlan.vtep_v6", x.VTEPv6, "not a global unicast IPv6 address")
		} else {
			vc.VTEP6 = a
		}
	}
	return vc
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// CheckLoopback checks that addr is host:port with a loopback host, so the
// unauthenticated metrics and health endpoints never face the network.
func CheckLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("invalid port")
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return errors.New("must be a loopback address (127.0.0.1, ::1 or localhost)")
	}
	return nil
}

// ParseMAC parses a 48-bit MAC address in colon or dash hex form.
func ParseMAC(s string) ([6]byte, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return [6]byte{}, errors.New("invalid MAC address")
	}
	return [6]byte(hw), nil
}

// ResolvePort validates one port on its own (cross-port checks are
// Resolve's) and converts it. field prefixes the errors ("ports[0]"); check
// may be nil. The API server uses it for AddPort so both paths reject the
// same values with the same words.
func ResolvePort(field string, p Port, check LinkCheck) (spec.PortConfig, []error) {
	var e errs
	pc := spec.PortConfig{Name: p.Name, Queue: p.Queue, MTU: p.MTU}
	switch {
	case p.Name == "":
		e.missing(field+".name", "required")
	case len(p.Name) > maxIfName || strings.ContainsAny(p.Name, "/ \t\n:") || p.Name == "." || p.Name == "..":
		e.str(field+".name", p.Name, "not a valid interface name")
	case check != nil && p.Mode != spec.ModeMemif.String(): // a memif port has no kernel interface
		if err := check(p.Name); err != nil {
			e.strErr(field+".name", p.Name, err)
		}
	}
	kindOK := false
	if p.Kind == "" {
		e.missing(field+".kind", "required (pod, uplink or host)")
	} else if k, ok := spec.ParsePortKind(p.Kind); !ok {
		e.str(field+".kind", p.Kind, "must be pod, uplink or host")
	} else {
		pc.Kind, kindOK = k, true
	}
	isPod := kindOK && pc.Kind == spec.PortPod
	if p.Mode != "" {
		if m, ok := spec.ParseMode(p.Mode); !ok {
			e.str(field+".mode", p.Mode, "must be auto, xdp-zerocopy, xdp-native, xdp-generic, af-packet or memif")
		} else {
			pc.Mode = m
		}
	}
	if p.Queue < 0 {
		e.num(field+".queue", p.Queue, "must not be negative")
	} else if p.Queue != 0 && kindOK && pc.Kind != spec.PortUplink {
		e.num(field+".queue", p.Queue, "only an uplink has queues")
	}
	switch {
	case p.Queues < 0 || p.Queues > 64:
		e.num(field+".queues", p.Queues, "must be 1..64")
	case p.Queues > 1 && kindOK && pc.Kind != spec.PortUplink:
		e.num(field+".queues", p.Queues, "only an uplink has queues")
	case p.Queues > 1 && pc.Mode == spec.ModeAFPacket:
		e.num(field+".queues", p.Queues, "several queues need AF_XDP, not mode af-packet")
	default:
		pc.Queues = p.Queues
	}
	for j, s := range p.Addresses {
		af := fmt.Sprintf("%s.addresses[%d]", field, j)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			e.str(af, s, "invalid prefix")
			continue
		}
		kind := pc.Kind
		if !isPod {
			kind = spec.PortUplink // only a pod's addresses are held to one address
		}
		if fe := spec.ValidatePortAddr(kind, pfx); fe != nil {
			e.str(af, s, "%s", fe.Msg)
			continue
		}
		pc.Addrs = append(pc.Addrs, pfx)
	}
	if p.PeerMAC != "" {
		if kindOK && !isPod {
			e.str(field+".peer_mac", p.PeerMAC, "only pod ports have a peer MAC")
		} else if m, err := ParseMAC(p.PeerMAC); err != nil {
			e.strErr(field+".peer_mac", p.PeerMAC, err)
		} else if m[0]&1 != 0 {
			e.str(field+".peer_mac", p.PeerMAC, "must be a unicast address")
		} else {
			pc.PeerMAC = m
		}
	}
	if p.MTU != 0 && (p.MTU < 576 || p.MTU > 9000) {
		e.num(field+".mtu", p.MTU, "must be between 576 and 9000")
	}
	resolveMemif(field, p, &pc, &e)
	return pc, e
}

// checkOverlaps rejects what spec.AddrConflict calls a clash between two
// ports of the file. Errors name the later port.
func checkOverlaps(ports []spec.PortConfig) []error {
	var e errs
	for i := range ports {
		for j := 0; j < i; j++ {
			if a, b, clash := spec.AddrConflict(ports[i], ports[j]); clash {
				e.str(fmt.Sprintf("ports[%d].addresses[%d]", i, a), ports[i].Addrs[a].String(),
					"overlaps ports[%d].addresses[%d] %q (%s)", j, b, ports[j].Addrs[b].String(), ports[j].Name)
			}
		}
	}
	return e
}

// CheckPodOverlap reports which existing port, if any, clashes with the
// new port's addresses (spec.AddrConflict). The API server uses it before
// AddPort.
func CheckPodOverlap(existing []spec.PortStatus, add spec.PortConfig) error {
	for _, ps := range existing {
		if a, b, clash := spec.AddrConflict(add, spec.PortConfig{Name: ps.Name, Kind: ps.Kind, Addrs: ps.Addrs}); clash {
			return fmt.Errorf("address %s overlaps %s of port %q", add.Addrs[a], ps.Addrs[b], ps.Name)
		}
	}
	return nil
}

// ResolveRoute parses one route, checks it by the rules every route
// follows (spec.Route.Validate) and against the ports it may use
// (spec.Route.RoutePort: their addresses are the connected subnets), and
// converts it.
func ResolveRoute(field string, r Route, ports []spec.PortConfig) (spec.Route, []error) {
	var e errs
	sr := spec.Route{Port: r.Port, Blackhole: r.Blackhole}
	pfx, err := netip.ParsePrefix(r.Prefix)
	switch {
	case r.Prefix == "":
		e.missing(field+".prefix", "required")
		return sr, e
	case err != nil:
		e.str(field+".prefix", r.Prefix, "invalid prefix")
		return sr, e
	}
	sr.Prefix = pfx
	raw := map[string]string{"prefix": r.Prefix, "via": r.Via, "port": r.Port, "blackhole": "true"}
	if r.Via != "" {
		via, err := netip.ParseAddr(r.Via)
		if err != nil {
			e.str(field+".via", r.Via, "invalid address")
			return sr, e
		}
		sr.Via = via
	}
	if x := r.VXLAN; x != nil {
		raw["vxlan.remote"], raw["vxlan.mac"] = x.Remote, x.MAC
		vr := &spec.VXLANRoute{}
		if a, err := netip.ParseAddr(x.Remote); x.Remote == "" {
			e.missing(field+".vxlan.remote", "required (the other node's VTEP address)")
		} else if err != nil {
			e.str(field+".vxlan.remote", x.Remote, "invalid address")
		} else {
			vr.Remote = a
		}
		if x.MAC == "" {
			e.missing(field+".vxlan.mac", "required (the other node's VTEP MAC)")
		} else if m, err := ParseMAC(x.MAC); err != nil {
			e.strErr(field+".vxlan.mac", x.MAC, err)
		} else {
			vr.MAC = m
		}
		sr.VXLAN = vr
		if len(e) > 0 {
			return sr, e
		}
	}
	e.shared(field, sr.Validate(), raw)
	if len(e) > 0 {
		return sr, e
	}
	if _, _, err := sr.RoutePort(ports); err != nil {
		e.shared(field, []error{err}, raw)
	}
	return sr, e
}
