package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/netip"
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

// parseBGP: bgp routes [-family v4|v6] [-peer ADDR] [-advertised].
func parseBGP(args []string) (*Command, error) {
	if len(args) == 0 || args[0] != "routes" {
		return nil, usagef("bgp: only \"bgp routes\"")
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
