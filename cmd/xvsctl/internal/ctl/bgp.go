package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/bgp"
)

// BGPQuery is what `xvsctl bgp routes` asks for.
type BGPQuery struct {
	Family     string // "", "ipv4" or "ipv6"
	Peer       string
	Advertised bool
}

// parseNode: node status.
func parseNode(args []string) (*Command, error) {
	if len(args) == 0 || args[0] != "status" {
		return nil, usagef("node: only \"node status\"")
	}
	return &Command{Op: OpNodeStatus}, noMore(args[1:], "node status")
}

// parseBGP: bgp routes [-family v4|v6] [-peer ADDR] [-advertised]; bgp
// peer list|add|del; bgp mesh; bgp advertise.
func parseBGP(args []string) (*Command, error) {
	if len(args) > 0 {
		switch args[0] {
		case "peer":
			return parseBGPPeer(args[1:])
		case "mesh":
			return parseBGPMesh(args[1:])
		case "advertise":
			c := &Command{Op: OpBGPAdvertise}
			for i, a := range args[1:] {
				p, err := netip.ParsePrefix(a)
				if err != nil || p != p.Masked() {
					return nil, usagef("bgp advertise: prefix %d %q: not a network prefix", i+1, a)
				}
				c.BGPPrefixes = append(c.BGPPrefixes, p)
			}
			return c, nil
		}
	}
	if len(args) == 0 || args[0] != "routes" {
		return nil, usagef("bgp: \"bgp routes\", \"bgp peer\", \"bgp mesh\" or \"bgp advertise\"")
	}
	fs := flag.NewFlagSet("bgp routes", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fam := fs.String("family", "", "v4 or v6")
	peer := fs.String("peer", "", "peer address")
	adv := fs.Bool("advertised", false, "what is advertised to -peer")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, usagef("bgp routes: %v", err)
	}
	q := BGPQuery{Peer: *peer, Advertised: *adv}
	switch *fam {
	case "":
	case "v4", "ipv4", "4":
		q.Family = "ipv4"
	case "v6", "ipv6", "6":
		q.Family = "ipv6"
	default:
		return nil, usagef("bgp routes: -family %q: want v4 or v6", *fam)
	}
	if q.Peer != "" {
		if _, err := netip.ParseAddr(q.Peer); err != nil {
			return nil, usagef("bgp routes: -peer %q: not an address", q.Peer)
		}
	}
	if q.Advertised && q.Peer == "" {
		return nil, usagef("bgp routes: -advertised needs -peer")
	}
	return &Command{Op: OpBGPRoutes, BGP: q}, noMore(fs.Args(), "bgp routes")
}

// parseBGPPeer: peer list | add ADDR -as N [flags] | del ADDR.
func parseBGPPeer(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, usagef("bgp peer: list, add or del")
	}
	switch args[0] {
	case "list", "ls":
		return &Command{Op: OpBGPPeerList}, noMore(args[1:], "bgp peer list")
	case "del", "delete", "rm":
		if len(args) != 2 {
			return nil, usagef("bgp peer del: one peer address")
		}
		a, err := netip.ParseAddr(args[1])
		if err != nil {
			return nil, usagef("bgp peer del: %q: not an IP address", args[1])
		}
		return &Command{Op: OpBGPPeerDel, BGPPeer: bgp.Peer{Address: a}}, nil
	case "add":
	default:
		return nil, usagef("bgp peer: %q: want list, add or del", args[0])
	}
	if len(args) < 2 {
		return nil, usagef("bgp peer add: the peer address first")
	}
	a, err := netip.ParseAddr(args[1])
	if err != nil {
		return nil, usagef("bgp peer add: %q: not an IP address", args[1])
	}
	fs := flag.NewFlagSet("bgp peer add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	as := fs.Uint("as", 0, "peer AS")
	fams := fs.String("families", "", "ipv4,ipv6")
	pw := fs.String("password", "", "MD5 password")
	scope := fs.String("scope", "", "global or node")
	hold := fs.Duration("hold", 0, "hold time")
	ka := fs.Duration("keepalive", 0, "keepalive time")
	mh := fs.Uint("multihop", 0, "eBGP multihop TTL")
	ttl := fs.Uint("ttl-security", 0, "TTL security hops")
	passive := fs.Bool("passive", false, "never connect, only accept")
	rrc := fs.Bool("rr-client", false, "the peer is this node's route reflector client")
	rr := fs.Bool("rr", false, "the peer is a route reflector")
	if err := fs.Parse(args[2:]); err != nil {
		return nil, usagef("bgp peer add: %v", err)
	}
	if *as == 0 || *as > 1<<32-1 {
		return nil, usagef("bgp peer add: -as %d: want 1..4294967295", *as)
	}
	if *mh > 255 || *ttl > 255 {
		return nil, usagef("bgp peer add: -multihop and -ttl-security are 0..255")
	}
	p := bgp.Peer{Address: a, ASNumber: uint32(*as), Password: *pw, Scope: bgp.PeerScope(*scope), HoldTime: *hold,
		KeepaliveTime: *ka, Multihop: uint8(*mh), TTLSecurity: uint8(*ttl), Passive: *passive,
		RouteReflectorClient: *rrc, RouteReflector: *rr}
	if *fams != "" {
		for _, f := range strings.Split(*fams, ",") {
			p.Families = append(p.Families, bgp.Family(strings.TrimSpace(f)))
		}
	}
	return &Command{Op: OpBGPPeerAdd, BGPPeer: p}, noMore(fs.Args(), "bgp peer add")
}

// parseBGPMesh: mesh on|off [MEMBER ...].
func parseBGPMesh(args []string) (*Command, error) {
	if len(args) == 0 || (args[0] != "on" && args[0] != "off") {
		return nil, usagef("bgp mesh: on or off, then the members' addresses")
	}
	c := &Command{Op: OpBGPMesh, BGPMeshOn: args[0] == "on"}
	for _, m := range args[1:] {
		a, err := netip.ParseAddr(m)
		if err != nil {
			return nil, usagef("bgp mesh: member %q: not an IP address", m)
		}
		c.BGPAddrs = append(c.BGPAddrs, a)
	}
	return c, nil
}

// runBGP runs the BGP commands; false if cmd is not one.
func runBGP(ctx context.Context, c *api.Client, g Globals, cmd *Command, w io.Writer, now func() time.Time) (bool, error) {
	switch cmd.Op {
	case OpNodeStatus:
		st, err := c.BGPStatus(ctx)
		if errors.Is(err, api.ErrNoBGP) {
			io.WriteString(w, "xvsd is running.\n\nBGP is not configured (no bgp: section in xvsd's config).\n")
			return true, nil
		}
		if err != nil {
			return true, err
		}
		if g.Output == "json" {
			return true, writeIndented(w, st)
		}
		return true, bgp.FormatStatus(w, st, now())
	case OpBGPRoutes:
		rs, err := c.BGPRoutes(ctx, cmd.BGP.Family, cmd.BGP.Peer, cmd.BGP.Advertised)
		if err != nil {
			return true, err
		}
		if g.Output == "json" {
			return true, writeIndented(w, rs)
		}
		return true, bgp.FormatRoutes(w, rs)
	case OpBGPPeerList:
		ps, err := c.BGPPeers(ctx)
		if err != nil {
			return true, err
		}
		if g.Output == "json" {
			return true, writeIndented(w, ps)
		}
		if len(ps) == 0 {
			_, err := io.WriteString(w, "no explicit peers\n")
			return true, err
		}
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "%s as %d", p.Address, p.ASNumber)
			if len(p.Families) > 0 {
				fmt.Fprintf(&b, " families %v", p.Families)
			}
			if p.Scope != "" {
				fmt.Fprintf(&b, " scope %s", p.Scope)
			}
			b.WriteString("\n")
		}
		_, err = io.WriteString(w, b.String())
		return true, err
	case OpBGPPeerAdd:
		return true, c.AddBGPPeer(ctx, cmd.BGPPeer)
	case OpBGPPeerDel:
		return true, c.DeleteBGPPeer(ctx, cmd.BGPPeer.Address)
	case OpBGPMesh:
		return true, c.SetBGPMesh(ctx, cmd.BGPMeshOn, cmd.BGPAddrs)
	case OpBGPAdvertise:
		return true, c.SetBGPAdvertised(ctx, cmd.BGPPrefixes)
	}
	return false, nil
}

func writeIndented(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
