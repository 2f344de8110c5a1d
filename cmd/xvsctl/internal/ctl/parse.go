package ctl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/bgp"
)

// usageError is a mistake in the command line: exit 2 and print usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// Op is what a command line asks for.
type Op int

const (
	OpShowPorts Op = iota + 1
	OpShowRoutes
	OpShowNeighbors
	OpShowCounters
	OpShowFIBSummary
	OpRouteAdd
	OpRouteDel
	OpPortAdd
	OpPortDel
	OpStatus
	OpLab
	OpHelp
	OpNodeStatus // bgp.go
	OpBGPRoutes
	OpBGPPeerList
	OpBGPPeerAdd
	OpBGPPeerDel
	OpBGPMesh
	OpBGPAdvertise
	OpKubeStatus // kube.go
)

// Command is a parsed command line (after the global flags).
type Command struct {
	Op    Op
	Match string                 // OpShowRoutes: "" or an address or prefix
	Route *xvspb.AddRouteRequest // OpRouteAdd; Prefix only for OpRouteDel
	Port  *xvspb.PortConfig      // OpPortAdd; Name only for OpPortDel
	Args  []string               // OpLab: everything after "lab"
	BGP   BGPQuery               // OpBGPRoutes
	// BGPPeer is OpBGPPeerAdd's peer; Address only for OpBGPPeerDel.
	BGPPeer bgp.Peer
	// BGPMeshOn and BGPAddrs are OpBGPMesh's; BGPPrefixes OpBGPAdvertise's.
	BGPMeshOn   bool
	BGPAddrs    []netip.Addr
	BGPPrefixes []netip.Prefix
	// Svc is the services commands' (service.go).
	Svc ServiceCmd
}

// Parse parses a command (the words after the global flags).
func Parse(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, usagef("no command")
	}
	w, rest := args[0], args[1:]
	switch w {
	case "show", "sh":
		return parseShow(rest)
	case "route":
		return parseRoute(rest)
	case "port":
		return parsePort(rest)
	case "status":
		if err := noMore(rest, "status"); err != nil {
			return nil, err
		}
		return &Command{Op: OpStatus}, nil
	case "lab":
		return &Command{Op: OpLab, Args: rest}, nil
	case "node":
		return parseNode(rest)
	case "bgp":
		return parseBGP(rest)
	case "kube":
		return parseKube(rest)
	case "service", "svc":
		return parseService(rest)
	case "help", "-h", "-help", "--help":
		return &Command{Op: OpHelp}, nil
	}
	return nil, usagef("unknown command %q", w)
}

func noMore(rest []string, cmd string) error {
	if len(rest) > 0 {
		return usagef("%s: unexpected argument %q", cmd, rest[0])
	}
	return nil
}

func parseShow(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, usagef("show: what? ports, routes, neighbors, counters, fib summary, pools, blocks, endpoints, services or conntrack")
	}
	w, rest := args[0], args[1:]
	switch w {
	case "ports", "port":
		return &Command{Op: OpShowPorts}, noMore(rest, "show ports")
	case "routes", "route":
		c := &Command{Op: OpShowRoutes}
		if len(rest) > 0 {
			c.Match, rest = rest[0], rest[1:]
		}
		return c, noMore(rest, "show routes")
	case "neighbors", "neighbours", "neighbor", "neigh":
		return &Command{Op: OpShowNeighbors}, noMore(rest, "show neighbors")
	case "counters", "stats":
		return &Command{Op: OpShowCounters}, noMore(rest, "show counters")
	case "fib":
		if len(rest) == 0 || rest[0] != "summary" {
			return nil, usagef("show fib: only \"show fib summary\" (use \"show routes\" for the routes)")
		}
		return &Command{Op: OpShowFIBSummary}, noMore(rest[1:], "show fib summary")
	}
	if c, err := parseShowService(w, rest); c != nil || err != nil {
		return c, err
	}
	if c, err := parseShowCNI(w, rest); c != nil || err != nil {
		return c, err
	}
	return nil, usagef("show: unknown object %q", w)
}

func parseRoute(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, usagef("route: add or del?")
	}
	switch args[0] {
	case "add":
		return parseRouteAdd(args[1:])
	case "del", "delete", "rm":
		if len(args) < 2 {
			return nil, usagef("route del: missing PREFIX")
		}
		return &Command{Op: OpRouteDel, Route: &xvspb.AddRouteRequest{Prefix: args[1]}}, noMore(args[2:], "route del")
	}
	return nil, usagef("route: unknown action %q (add or del)", args[0])
}

// parseRouteAdd: PREFIX via ADDR [dev PORT] | PREFIX dev PORT | PREFIX blackhole
// | PREFIX vxlan ADDR mac MAC
func parseRouteAdd(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, usagef("route add: missing PREFIX")
	}
	r := &xvspb.AddRouteRequest{Prefix: args[0]}
	rest := args[1:]
	for len(rest) > 0 {
		switch w := rest[0]; w {
		case "via", "dev", "port":
			if len(rest) < 2 {
				return nil, usagef("route add: %s needs a value", w)
			}
			v := rest[1]
			if w == "via" {
				if r.Via != "" {
					return nil, usagef("route add: via given twice")
				}
				r.Via = v
			} else {
				if r.Port != "" {
					return nil, usagef("route add: dev given twice")
				}
				r.Port = v
			}
			rest = rest[2:]
		case "blackhole":
			r.Blackhole = true
			rest = rest[1:]
		case "vxlan", "mac":
			if len(rest) < 2 {
				return nil, usagef("route add: %s needs a value", w)
			}
			if w == "vxlan" {
				r.VxlanRemote = rest[1]
			} else {
				r.VxlanMac = rest[1]
			}
			rest = rest[2:]
		default:
			return nil, usagef("route add: unexpected %q (want via ADDR, dev PORT, blackhole or vxlan ADDR mac MAC)", w)
		}
	}
	vxlan := r.VxlanRemote != "" || r.VxlanMac != ""
	switch {
	case vxlan && (r.VxlanRemote == "" || r.VxlanMac == ""):
		return nil, usagef("route add: a vxlan route needs vxlan ADDR and mac MAC")
	case vxlan && (r.Blackhole || r.Via != "" || r.Port != ""):
		return nil, usagef("route add: a vxlan route takes no via, dev or blackhole")
	case vxlan:
		return &Command{Op: OpRouteAdd, Route: r}, nil
	case r.Blackhole && (r.Via != "" || r.Port != ""):
		return nil, usagef("route add: a blackhole route takes no via or dev")
	case !r.Blackhole && r.Via == "" && r.Port == "":
		return nil, usagef("route add: %s needs via ADDR, dev PORT or blackhole", r.Prefix)
	}
	return &Command{Op: OpRouteAdd, Route: r}, nil
}

func parsePort(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, usagef("port: add or del?")
	}
	switch args[0] {
	case "add":
		return parsePortAdd(args[1:])
	case "del", "delete", "rm":
		if len(args) < 2 {
			return nil, usagef("port del: missing NAME")
		}
		return &Command{Op: OpPortDel, Port: &xvspb.PortConfig{Name: args[1]}}, noMore(args[2:], "port del")
	}
	return nil, usagef("port: unknown action %q (add or del)", args[0])
}

// parsePortAdd: NAME [kind=pod|uplink|host] [addr=CIDR[,CIDR]]... [peer-mac=MAC] [mode=MODE] [queue=N] [mtu=N]
func parsePortAdd(args []string) (*Command, error) {
	if len(args) == 0 || strings.Contains(args[0], "=") {
		return nil, usagef("port add: missing NAME")
	}
	pc := &xvspb.PortConfig{Name: args[0], Kind: "pod"}
	for _, kv := range args[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return nil, usagef("port add: %q: want KEY=VALUE", kv)
		}
		switch k {
		case "kind":
			pc.Kind = v
		case "addr", "address", "addresses":
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					pc.Addresses = append(pc.Addresses, a)
				}
			}
		case "peer-mac", "peer_mac", "mac":
			pc.PeerMac = v
		case "mode":
			pc.Mode = v
		case "queue", "mtu":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, usagef("port add: %s=%q: not a number", k, v)
			}
			if k == "queue" {
				pc.Queue = uint32(n)
			} else {
				pc.Mtu = uint32(n)
			}
		default:
			if strings.HasPrefix(k, "memif-") {
				if err := parseMemifKey(pc, k, v); err != nil {
					return nil, err
				}
				continue
			}
			return nil, usagef("port add: unknown key %q (kind, addr, peer-mac, mode, queue, mtu, memif-*)", k)
		}
	}
	return &Command{Op: OpPortAdd, Port: pc}, nil
}

// Usage is printed for help and usage errors.
const Usage = `usage: xvsctl [-s SOCKET] [-o table|json] [-timeout D] COMMAND

commands:
  show ports                        ports, their mode, state and traffic
  show routes [ADDR|PREFIX]         the FIB, or the route that forwards ADDR
  show neighbors                    ARP/NDP entries
  show counters                     non-zero drops by reason, and events
  show fib summary                  route counts by family, origin and kind
  show pools                        IP pools (CNI server): block size, encapsulation, usage
  show blocks                       IPAM blocks, their node and usage
  show endpoints                    pods attached through CNI: addresses, interface, port mode and why
  show services                     load-balanced services (file, API, Kubernetes), endpoints, NAT policy
  show conntrack [tcp|udp|icmp|icmpv6] [ADDR] [port=N] [state=S] [mark=N] [limit=N]
                                    tracked flows (default limit 1000) and the table's counters
  service set -f FILE               replace the API's services with FILE's services: list (- is stdin)
  service clear                     remove the API's services (the file's and Kubernetes' stay)
  route add PREFIX via ADDR [dev PORT]
  route add PREFIX dev PORT         attached route
  route add PREFIX blackhole
  route add PREFIX vxlan ADDR mac MAC   into a tunnel to another node's VTEP
  route del PREFIX
  port add NAME [kind=pod|uplink|host] [addr=CIDR[,CIDR]] [peer-mac=MAC]
                [mode=auto|xdp-zerocopy|xdp-native|xdp-generic|af-packet|memif]
                [queue=N] [mtu=N]
                [memif-socket=PATH|@NAME] [memif-netns=PATH] [memif-id=N]
                [memif-queues=N] [memif-ring=N] [memif-polling=true]   (mode=memif)
  port del NAME
  status                            is xvsd running and ready
  node status                       BGP sessions, as calicoctl node status
  kube status                       the Kubernetes node agent: connected, synced, last resync, objects
  bgp routes [-family v4|v6] [-peer ADDR] [-advertised]
                                    BGP routes: best, received from or sent to a peer
  bgp peer list                     the BGP peers (run-time changes below, no restart)
  bgp peer add ADDR -as N [-families ipv4,ipv6] [-password P] [-scope node]
               [-hold 90s] [-keepalive 30s] [-multihop N] [-ttl-security N]
               [-passive] [-rr-client] [-rr]
  bgp peer del ADDR
  bgp mesh on|off [MEMBER-ADDR ...]
  bgp advertise [PREFIX ...]         the static prefixes advertised beside the IPAM blocks
  lab ...                           the test lab (see xvsctl lab -h)

-s and -o may also follow the command.
`
