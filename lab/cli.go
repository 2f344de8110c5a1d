package lab

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: xvsctl lab <command> [flags]

commands:
  up      build a lab (namespaces, veths, addresses) and start xvsd in each node
  down    tear down a lab built by up: stop its processes by PID, delete its namespaces
  status  show labs, or one lab (-o text|json|env)
  sweep   delete every namespace named PREFIX-* and the lab state of PREFIX

Run "xvsctl lab <command> -h" for the flags of a command.
`

// Main implements "xvsctl lab up|down|status|sweep". args are the words
// after "lab" (a leading "lab" is skipped). It returns the exit code.
func Main(args []string) int {
	return mainIO(args, os.Stdout, os.Stderr)
}

func mainIO(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "lab" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "up":
		err = cmdUp(args[1:], stdout, stderr)
	case "down":
		err = cmdDown(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "sweep":
		err = cmdSweep(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "xvsctl lab: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "xvsctl lab %s: %v\n", args[0], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "xvsctl lab %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("xvsctl lab "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// defaultXVSD is xvsd beside the running executable, if there is one.
func defaultXVSD() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "xvsd")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

func cmdUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", stderr)
	var o Options
	fs.StringVar(&o.Prefix, "prefix", "", "namespace prefix (default: xl and 4 random hex digits)")
	fs.IntVar(&o.Nodes, "nodes", 1, "node namespaces")
	fs.IntVar(&o.PodsPerNode, "pods", 2, "pods per node")
	fs.BoolVar(&o.NoOutside, "no-outside", false, "no outside namespace and no uplinks")
	fs.BoolVar(&o.StaticNeighbors, "static-neighbors", false, "permanent gateway neighbour entries in pods")
	fs.StringVar(&o.PodMode, "pod-mode", "", "xvsd pod port mode: auto (AF_XDP) or af-packet (offloads: TSO and checksum offload stay on in the pods)")
	fs.BoolVar(&o.UplinkGRO, "uplink-gro", false, "GRO on at the nodes' uplink ends, as a NIC driver has it (the outside's segments arrive merged)")
	fs.StringVar(&o.UplinkMode, "uplink-mode", "", "xvsd uplink mode: auto (AF_XDP) or af-packet (steered by tc; TCP from the outside arrives in super-frames)")
	fs.BoolVar(&o.XDPFastPath, "xdp-fast-path", false, "xvsd forwards pod-to-pod in the ports' XDP (tc with -pod-mode af-packet) programs; GRO on in AF_XDP pods")
	fs.StringVar(&o.Encap, "encap", "", "how nodes reach each other's pods: native routing (default) or vxlan (Calico's VXLAN mode; the outside routes only the nodes)")
	fs.BoolVar(&o.BGP, "bgp", false, "nodes learn each other's pod blocks over BGP (xvsd's bgp: section); the outside routes no pod block (native routing: the nodes share one segment)")
	fs.Func("bgp-outside-as", "with -bgp: every node also peers with the outside (198.18.0.254, fd00:18::fe) in this AS; run a router there (BIRD)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 32)
		o.BGPOutsideAS = uint32(n)
		return err
	})
	fs.IntVar(&o.Workers, "workers", 1, "xvsd workers")
	fs.StringVar(&o.StateRoot, "state-root", DefaultStateRoot, "directory for lab state, configs and logs")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", 20*time.Second, "wait this long for xvsd's /readyz")
	xvsd := fs.String("xvsd", "", "xvsd binary (default: xvsd beside this program, if present)")
	noXVSD := fs.Bool("no-xvsd", false, "build the topology only")
	quiet := fs.Bool("q", false, "print only the prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	switch {
	case *noXVSD:
	case *xvsd != "":
		abs, err := filepath.Abs(*xvsd)
		if err != nil {
			return err
		}
		o.XVSD = abs
	default:
		o.XVSD = defaultXVSD()
		if o.XVSD == "" {
			fmt.Fprintln(stderr, "xvsctl lab up: no xvsd beside this program; building the topology only (use -xvsd PATH)")
		}
	}
	o.Detach = true
	if !*quiet {
		o.Logf = func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	l, err := New(ctx, o)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		// Interrupted while building: leave nothing behind.
		return errors.Join(errors.New("interrupted"), l.Close())
	}
	if *quiet {
		fmt.Fprintln(stdout, l.Prefix())
		return nil
	}
	st, err := LoadState(o.StateRoot, l.Prefix())
	if err != nil {
		return err
	}
	printStatus(stdout, st)
	fmt.Fprintf(stdout, "\ntear down with: xvsctl lab down -prefix %s\n", l.Prefix())
	return nil
}

// pickPrefix returns the -prefix flag or positional argument, or the only
// lab with state under root.
func pickPrefix(fs *flag.FlagSet, flagPrefix, root string) (string, error) {
	p := flagPrefix
	if p == "" && fs.NArg() == 1 {
		p = fs.Arg(0)
	} else if fs.NArg() > 1 || (p != "" && fs.NArg() > 0) {
		return "", usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if p != "" {
		return p, ValidPrefix(p)
	}
	labs, err := ListStates(root)
	if err != nil {
		return "", err
	}
	switch len(labs) {
	case 0:
		return "", errors.New("no lab found; give -prefix")
	case 1:
		return labs[0], nil
	}
	return "", usageError{fmt.Errorf("several labs (%s): give -prefix", strings.Join(labs, ", "))}
}

func cmdDown(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("down", stderr)
	prefix := fs.String("prefix", "", "lab to tear down (default: the only one)")
	root := fs.String("state-root", DefaultStateRoot, "directory for lab state")
	grace := fs.Duration("grace", 5*time.Second, "time between SIGTERM and SIGKILL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := pickPrefix(fs, *prefix, *root)
	if err != nil {
		return err
	}
	// Finish the teardown even if interrupted.
	signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	logf := func(f string, a ...any) { fmt.Fprintf(stdout, f+"\n", a...) }
	err = Down(*root, p, *grace, logf)
	if errors.Is(err, os.ErrNotExist) {
		// No state: delete what the prefix left, if anything.
		names, serr := SweepRoot(*root, p)
		for _, n := range names {
			fmt.Fprintf(stdout, "deleted namespace %s\n", n)
		}
		return serr
	}
	if err != nil {
		return err
	}
	// Anything created outside the state (a crash between steps) goes too.
	names, err := SweepRoot(*root, p)
	for _, n := range names {
		fmt.Fprintf(stdout, "deleted leftover namespace %s\n", n)
	}
	return err
}

func cmdSweep(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sweep", stderr)
	prefix := fs.String("prefix", "", "prefix of the namespaces to delete (required)")
	root := fs.String("state-root", DefaultStateRoot, "directory for lab state")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *prefix == "" && fs.NArg() == 1 {
		*prefix = fs.Arg(0)
	}
	if *prefix == "" {
		return usageError{errors.New("-prefix is required")}
	}
	names, err := SweepRoot(*root, *prefix)
	for _, n := range names {
		fmt.Fprintf(stdout, "deleted namespace %s\n", n)
	}
	return err
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	prefix := fs.String("prefix", "", "lab to show (default: list labs, or the only one)")
	root := fs.String("state-root", DefaultStateRoot, "directory for lab state")
	format := fs.String("o", "text", "output: text, json or env (shell assignments)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *prefix == "" && fs.NArg() == 0 && *format == "text" {
		labs, err := ListStates(*root)
		if err != nil {
			return err
		}
		if len(labs) != 1 {
			if len(labs) == 0 {
				fmt.Fprintln(stdout, "no labs")
			}
			for _, p := range labs {
				st, err := LoadState(*root, p)
				if err != nil {
					fmt.Fprintf(stdout, "%s\t(%v)\n", p, err)
					continue
				}
				fmt.Fprintf(stdout, "%s\t%d nodes, %d pods, created %s\n", p, len(st.Topology.Nodes),
					len(st.Topology.Pods), st.Created.Format(time.RFC3339))
			}
			return nil
		}
	}
	p, err := pickPrefix(fs, *prefix, *root)
	if err != nil {
		return err
	}
	st, err := LoadState(*root, p)
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "env":
		printEnv(stdout, st)
	case "text":
		printStatus(stdout, st)
	default:
		return usageError{fmt.Errorf("unknown output %q", *format)}
	}
	return nil
}

func printStatus(w io.Writer, st *State) {
	t := st.Topology
	fmt.Fprintf(w, "lab %s (state %s)\n", t.Prefix, st.Dir)
	if t.Encap == EncapVXLAN {
		fmt.Fprintf(w, "encap vxlan: VNI %d, port %d; the outside routes only the nodes\n", VXLANVNI, VXLANPort)
	}
	if t.BGP {
		fmt.Fprintf(w, "bgp: the nodes learn each other's pod blocks (xvsctl node status); the outside routes no pod block\n")
	}
	exists := func(ns string) string {
		if _, err := os.Stat(filepath.Join(NetnsDir, ns)); err != nil {
			return " (missing)"
		}
		return ""
	}
	for _, n := range t.Nodes {
		fmt.Fprintf(w, "node %-8s ns %s%s\n", n.Name, n.NS, exists(n.NS))
		if n.Uplink != "" {
			fmt.Fprintf(w, "  %-8s %s %s (outside %s %s)\n", n.Uplink, n.UplinkV4, n.UplinkV6, n.GatewayV4, n.GatewayV6)
		}
		fmt.Fprintf(w, "  pods     %s %s\n", n.PodsV4, n.PodsV6)
		if len(n.VTEPMAC) != 0 {
			fmt.Fprintf(w, "  vtep     %s\n", n.VTEPMAC)
		}
		xvsd := "not running"
		for _, p := range st.Processes {
			if p.Name == "xvsd" && p.NS == n.NS {
				if p.Alive() {
					xvsd = fmt.Sprintf("pid %d", p.PID)
				} else {
					xvsd = fmt.Sprintf("pid %d (exited)", p.PID)
				}
			}
		}
		fmt.Fprintf(w, "  xvsd     %s, api %s, config %s, log %s\n", xvsd, n.Socket, n.Config, n.Log)
		if n.PodMode != "" || n.UplinkMode != "" || n.FastPath {
			fmt.Fprintf(w, "  modes    pods %s, uplink %s, fast path %v\n", orAuto(n.PodMode), orAuto(n.UplinkMode), n.FastPath)
		}
	}
	for _, p := range t.Pods {
		fmt.Fprintf(w, "pod  %-8s ns %s%s  eth0 %s %s %s  host end %s on %s\n",
			p.Name, p.NS, exists(p.NS), p.V4, p.V6, p.MAC, p.HostIf, p.Node)
	}
	if t.Outside != "" {
		fmt.Fprintf(w, "outside       ns %s%s\n", t.Outside, exists(t.Outside))
	}
}

// printEnv prints shell assignments for scripts: eval "$(xvsctl lab status -o env)".
func printEnv(w io.Writer, st *State) {
	t := st.Topology
	up := func(s string) string { return strings.ToUpper(s) }
	fmt.Fprintf(w, "LAB_PREFIX=%s\nLAB_DIR=%s\n", t.Prefix, st.Dir)
	if t.Encap != "" {
		fmt.Fprintf(w, "LAB_ENCAP=%s\n", t.Encap)
	}
	if t.Outside != "" {
		fmt.Fprintf(w, "LAB_OUTSIDE_NS=%s\n", t.Outside)
	}
	for _, n := range t.Nodes {
		k := "LAB_" + up(n.Name)
		fmt.Fprintf(w, "%s_NS=%s\n%s_SOCKET=%s\n%s_CONFIG=%s\n%s_LOG=%s\n", k, n.NS, k, n.Socket, k, n.Config, k, n.Log)
		if n.Uplink != "" {
			fmt.Fprintf(w, "%s_V4=%s\n%s_V6=%s\n", k, n.UplinkV4.Addr(), k, n.UplinkV6.Addr())
		}
		if len(n.VTEPMAC) != 0 {
			fmt.Fprintf(w, "%s_VTEP_MAC=%s\n", k, n.VTEPMAC)
		}
		for _, p := range st.Processes {
			if p.Name == "xvsd" && p.NS == n.NS {
				fmt.Fprintf(w, "%s_XVSD_PID=%d\n", k, p.PID)
			}
		}
	}
	for _, p := range t.Pods {
		k := "LAB_" + up(p.Name)
		fmt.Fprintf(w, "%s_NS=%s\n%s_V4=%s\n%s_V6=%s\n", k, p.NS, k, p.V4, k, p.V6)
	}
}

// orAuto is a port mode as the status shows it.
func orAuto(m string) string {
	if m == "" {
		return "auto"
	}
	return m
}
