package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitRuntime = 1
	ExitUsage   = 2
)

// Options carry what main wires in.
type Options struct {
	// Lab runs "xvsctl lab ARGS..." (lab.Main); nil until the lab is built.
	Lab func(args []string) int
	// Now is the clock for "up" in status; nil means time.Now.
	Now func() time.Time
}

// Globals are the flags that apply to every command.
type Globals struct {
	Socket  string
	Output  string // "table" or "json"
	Timeout time.Duration
}

// ParseArgs splits a command line into global flags and the command. The
// global flags may come before the command or, except for lab, after it.
func ParseArgs(args []string) (Globals, *Command, error) {
	g := Globals{Socket: config.DefaultAPISocket, Output: "table", Timeout: 10 * time.Second}
	if s := os.Getenv("XVS_SOCKET"); s != "" {
		g.Socket = s
	}
	fs := flag.NewFlagSet("xvsctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.Socket, "s", g.Socket, "xvsd API socket")
	fs.StringVar(&g.Output, "o", g.Output, "output: table or json")
	fs.DurationVar(&g.Timeout, "timeout", g.Timeout, "how long to wait for xvsd")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return g, &Command{Op: OpHelp}, nil
		}
		return g, nil, usagef("%v", err)
	}
	rest := fs.Args()
	if len(rest) > 0 && rest[0] != "lab" {
		// Pull global flags out of the command's words.
		var words []string
		for i := 0; i < len(rest); i++ {
			a := rest[i]
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !strings.HasPrefix(a, "-") || fs.Lookup(name) == nil {
				words = append(words, a)
				continue
			}
			if !hasVal {
				if i+1 >= len(rest) {
					return g, nil, usagef("flag needs an argument: -%s", name)
				}
				i++
				val = rest[i]
			}
			if err := fs.Set(name, val); err != nil {
				return g, nil, usagef("invalid value %q for flag -%s: %v", val, name, err)
			}
		}
		rest = words
	}
	if g.Output != "table" && g.Output != "json" {
		return g, nil, usagef("-o %q: want table or json", g.Output)
	}
	cmd, err := Parse(rest)
	return g, cmd, err
}

// Main runs one xvsctl command line (without the program name) and
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer, opt Options) int {
	g, cmd, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "xvsctl: %v\n\n%s", err, Usage)
		return ExitUsage
	}
	switch cmd.Op {
	case OpHelp:
		io.WriteString(stdout, Usage)
		return ExitOK
	case OpLab:
		if opt.Lab == nil {
			fmt.Fprintln(stderr, "lab: not built yet")
			return ExitRuntime
		}
		return opt.Lab(cmd.Args)
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	c, err := api.Dial(g.Socket)
	if err != nil {
		fmt.Fprintf(stderr, "xvsctl: %v\n", err)
		return ExitRuntime
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
	defer cancel()
	if err := run(ctx, c, g, cmd, stdout, now); err != nil {
		fmt.Fprintf(stderr, "xvsctl: %s\n", errText(err, g.Socket))
		return ExitRuntime
	}
	return ExitOK
}

// errText is what the user reads: xvsd's own message for refused
// requests, without gRPC's "rpc error: code = ..." wrapping.
func errText(err error, socket string) string {
	var ue *api.UnreachableError
	if errors.As(err, &ue) {
		return ue.Error()
	}
	if s, ok := status.FromError(err); ok {
		if s.Code() == codes.DeadlineExceeded {
			return fmt.Sprintf("xvsd at %s did not answer in time", socket)
		}
		return s.Message()
	}
	return err.Error()
}

func run(ctx context.Context, c *api.Client, g Globals, cmd *Command, w io.Writer, now func() time.Time) error {
	asJSON := g.Output == "json"
	out := func(m proto.Message, table func() error) error {
		if asJSON {
			return writeJSON(w, m)
		}
		return table()
	}
	if cmd.Op == OpKubeStatus {
		return runKube(ctx, c, g, w, now)
	}
	if done, err := runBGP(ctx, c, g, cmd, w, now); done {
		return err
	}
	if done, err := runService(ctx, c, g, cmd, w); done {
		return err
	}
	switch cmd.Op {
	case OpShowPorts:
		ps, err := c.Ports(ctx)
		if err != nil {
			return err
		}
		return out(&xvspb.ListPortsResponse{Ports: ps}, func() error { return FormatPorts(w, ps) })
	case OpShowRoutes:
		rs, err := c.Routes(ctx, cmd.Match)
		if err != nil {
			return err
		}
		return out(&xvspb.ListRoutesResponse{Routes: rs}, func() error { return FormatRoutes(w, rs) })
	case OpShowNeighbors:
		ns, err := c.Neighbors(ctx)
		if err != nil {
			return err
		}
		return out(&xvspb.ListNeighborsResponse{Neighbors: ns}, func() error { return FormatNeighbors(w, ns) })
	case OpShowCounters:
		cs, err := c.Counters(ctx)
		if err != nil {
			return err
		}
		return out(cs, func() error { return FormatCounters(w, cs) })
	case OpShowFIBSummary:
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return out(st.GetFib(), func() error { return FormatFIBSummary(w, st.GetFib()) })
	case OpStatus:
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return out(st, func() error { return FormatStatus(w, st, now()) })
	case OpRouteAdd:
		return c.AddRoute(ctx, cmd.Route)
	case OpRouteDel:
		return c.DelRoute(ctx, cmd.Route.Prefix)
	case OpPortAdd:
		p, err := c.AddPort(ctx, cmd.Port)
		if err != nil {
			return err
		}
		return out(p, func() error { return FormatPorts(w, []*xvspb.Port{p}) })
	case OpPortDel:
		return c.DelPort(ctx, cmd.Port.Name)
	}
	if done, err := runCNI(ctx, c, cmd, w, out); done {
		return err
	}
	return fmt.Errorf("command %d not implemented", cmd.Op)
}
