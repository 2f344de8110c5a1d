package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/xvspb"
)

// The CNI server's listings.
const (
	OpShowPools Op = iota + 100
	OpShowBlocks
	OpShowEndpoints
)

// parseShowCNI parses show pools|blocks|endpoints; nil for other words.
func parseShowCNI(w string, rest []string) (*Command, error) {
	switch w {
	case "pools", "pool", "ippools":
		return &Command{Op: OpShowPools}, noMore(rest, "show pools")
	case "blocks", "block":
		return &Command{Op: OpShowBlocks}, noMore(rest, "show blocks")
	case "endpoints", "endpoint", "ep":
		return &Command{Op: OpShowEndpoints}, noMore(rest, "show endpoints")
	}
	return nil, nil
}

func noCNI(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("xvsd runs no CNI server (its config has no ipam: section)")
	}
	return err
}

// runCNI runs the CNI listings; done is false for other commands.
func runCNI(ctx context.Context, c *api.Client, cmd *Command, w io.Writer, out func(proto.Message, func() error) error) (done bool, err error) {
	switch cmd.Op {
	case OpShowPools:
		r, err := c.CNI().ListPools(ctx, &xvspb.ListPoolsRequest{})
		if err != nil {
			return true, noCNI(err)
		}
		return true, out(r, func() error { return FormatPools(w, r.GetPools()) })
	case OpShowBlocks:
		r, err := c.CNI().ListBlocks(ctx, &xvspb.ListBlocksRequest{})
		if err != nil {
			return true, noCNI(err)
		}
		return true, out(r, func() error { return FormatBlocks(w, r.GetBlocks()) })
	case OpShowEndpoints:
		r, err := c.CNI().ListEndpoints(ctx, &xvspb.ListEndpointsRequest{})
		if err != nil {
			return true, noCNI(err)
		}
		return true, out(r, func() error { return FormatEndpoints(w, r.GetEndpoints()) })
	}
	return false, nil
}

// FormatPools prints pools as a table.
func FormatPools(w io.Writer, ps []*xvspb.IPPool) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "NAME\tCIDR\tBLOCK\tENCAP\tNAT\tSELECTOR\tDISABLED\tBLOCKS\tALLOCATED\tSIZE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t/%d\t%s\t%v\t%s\t%v\t%d\t%d\t%s\n", p.GetName(), p.GetCidr(), p.GetBlockSize(), p.GetEncapsulation(),
			p.GetNatOutgoing(), dash(p.GetNodeSelector()), p.GetDisabled(), p.GetBlocks(), p.GetAllocated(), p.GetCapacity())
	}
	return tw.Flush()
}

// FormatBlocks prints blocks as a table.
func FormatBlocks(w io.Writer, bs []*xvspb.IPBlock) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "CIDR\tPOOL\tNODE\tUSED\tCAPACITY")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", b.GetCidr(), dash(b.GetPool()), dash(b.GetAffinity()), b.GetUsed(), b.GetCapacity())
	}
	return tw.Flush()
}

// FormatEndpoints prints endpoints as a table.
func FormatEndpoints(w io.Writer, es []*xvspb.Endpoint) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tNODE\tADDRESSES\tINTERFACE\tUP\tMODE\tWHY")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", dash(e.GetNamespace()), dash(e.GetPod()), e.GetNode(),
			strings.Join(e.GetAddresses(), ","), e.GetInterface(), e.GetUp(), e.GetMode(), e.GetModeReason())
		for _, m := range e.GetMemifs() {
			// A memif port of the pod above: its own addresses, up while
			// the pod's application is connected.
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", dash(e.GetNamespace()), dash(e.GetPod()), e.GetNode(),
				strings.Join(m.GetAddresses(), ","), m.GetPort(), m.GetUp(), "memif", "socket "+m.GetSocketPath()+" in the pod's netns")
		}
	}
	return tw.Flush()
}
