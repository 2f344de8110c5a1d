// Command xvs-bench runs the benchmark scenarios of package perf and writes,
// per scenario, results.json, results.md and SVG plots into -out/NAME, and
// all the tables into -out/summary.md.
//
//	go run ./perf/cmd/xvs-bench -quick -out out/bench   # under 2 minutes
//	go run ./perf/cmd/xvs-bench -full  -out out/bench   # under 15 minutes
//
// It needs root (it builds network namespaces, all named xp*, and deletes
// them at the end). xvsd is taken from -xvsd, else bin/xvsd, else $PATH;
// without it the xvsd column is skipped and the report says why.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xvs-project/xvs/perf"
)

func main() { os.Exit(run()) }

func run() int {
	quick := flag.Bool("quick", false, "the quick set (under 2 minutes; the default)")
	full := flag.Bool("full", false, "the full set (under 15 minutes)")
	out := flag.String("out", "out/bench", "directory for the results")
	xvsd := flag.String("xvsd", "", "xvsd binary (default bin/xvsd, then $PATH)")
	rounds := flag.Int("rounds", 0, "override the sets' A B A B rounds")
	only := flag.String("only", "", "run only loads whose name contains this")
	noIperf := flag.Bool("no-iperf", false, "leave out the iperf3 loads")
	fwdList := flag.String("forwarders", "", "comma list replacing the scenarios' forwarders: kernel, xvsd, xvsd-af-packet, xvsd-xdp-fast-path, xvsd-af-packet-tc-fast-path, xdp-redirect (the kernel, the baseline, always runs first)")
	xvsdFlags := flag.String("xvsd-flags", "", "extra xvsd flags for the xvsd forwarders, space-separated (e.g. \"-idle-spin 0s\")")
	which := flag.String("scenarios", "", "comma list of scenarios: pod-to-pod, tcp, cross-node, cross-node-vxlan, ring (pod-to-pod runs iperf3 itself only without tcp; cross-node and cross-node-vxlan take kernel, xvsd, xvsd-af-packet and xvsd-xdp-fast-path of -forwarders); default: pod-to-pod, tcp and ring, and both cross-node scenarios in the full set")
	shared := flag.String("shared", "", "a note on what else ran on the machine, copied into the report")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "xvs-bench: unexpected argument %q\n", flag.Arg(0))
		return 2
	}
	if *quick && *full {
		fmt.Fprintln(os.Stderr, "xvs-bench: -quick and -full are exclusive")
		return 2
	}
	set := perf.Quick
	if *full {
		set = perf.Full
	}
	if *xvsd == "" {
		*xvsd = findXVSD()
	}
	_, iperfErr := exec.LookPath("iperf3")
	xflags := strings.Fields(*xvsdFlags)
	known := map[string]func() perf.Forwarder{
		"kernel":             perf.Kernel,
		"xvsd":               func() perf.Forwarder { return perf.XVSDWith(*xvsd, "", xflags) },
		"xvsd-af-packet":     func() perf.Forwarder { return perf.XVSDWith(*xvsd, "af-packet", xflags) },
		"xdp-redirect":       perf.XDPRedirect,
		"xvsd-xdp-fast-path": func() perf.Forwarder { return perf.XVSDFastPath(*xvsd, xflags) },
		"xvsd-af-packet-tc-fast-path": func() perf.Forwarder {
			return perf.XVSDAFPacketFastPath(*xvsd, xflags)
		},
	}
	var chosen []perf.Forwarder
	if *fwdList != "" {
		chosen = []perf.Forwarder{perf.Kernel()}
		for _, n := range strings.Split(*fwdList, ",") {
			mk := known[n]
			if mk == nil {
				fmt.Fprintf(os.Stderr, "xvs-bench: unknown forwarder %q (want kernel, xvsd, xvsd-af-packet, xvsd-xdp-fast-path, xvsd-af-packet-tc-fast-path, xdp-redirect)\n", n)
				return 2
			}
			if n != "kernel" {
				chosen = append(chosen, mk())
			}
		}
	}
	fwds := func(names ...string) []perf.Forwarder {
		if chosen != nil {
			return chosen
		}
		var f []perf.Forwarder
		for _, n := range names {
			f = append(f, known[n]())
		}
		return f
	}
	// crossFwds: the kernel, then xvsd with AF_XDP and with af-packet pod
	// ports, and with af-packet pods and uplinks and the fast path (or
	// those of -forwarders), on two nodes, natively routed or through
	// VXLAN.
	crossFwds := func(vxlan bool) []perf.Forwarder {
		kernel, x := perf.KernelCrossNode, perf.XVSDCrossNode
		if vxlan {
			kernel, x = perf.KernelCrossNodeVXLAN, perf.XVSDCrossNodeVXLAN
		}
		cross := map[string]func() perf.Forwarder{
			"kernel":         kernel,
			"xvsd":           func() perf.Forwarder { return x(*xvsd, "", xflags) },
			"xvsd-af-packet": func() perf.Forwarder { return x(*xvsd, "af-packet", xflags) },
		}
		cross["xvsd-xdp-fast-path"] = func() perf.Forwarder { return perf.XVSDCrossNodeFastPath(*xvsd, xflags) }
		if vxlan {
			cross["xvsd-xdp-fast-path"] = func() perf.Forwarder { return perf.XVSDCrossNodeVXLANFastPath(*xvsd, xflags) }
			cross["xvsd-af-packet-tc-fast-path"] = func() perf.Forwarder { return perf.XVSDCrossNodeVXLANTCFastPath(*xvsd, xflags) }
		} else {
			cross["xvsd-af-packet-tc-fast-path"] = func() perf.Forwarder { return perf.XVSDCrossNodeTCFastPath(*xvsd, xflags) }
		}
		names := []string{"kernel", "xvsd", "xvsd-af-packet", "xvsd-af-packet-tc-fast-path"}
		if *fwdList != "" {
			names = []string{"kernel"}
			for _, n := range strings.Split(*fwdList, ",") {
				if n != "kernel" && cross[n] != nil {
					names = append(names, n)
				}
			}
		}
		var f []perf.Forwarder
		for _, n := range names {
			f = append(f, cross[n]())
		}
		return f
	}
	scenarios := map[string]func() perf.Scenario{
		"pod-to-pod": func() perf.Scenario {
			withTCP := slices.Contains(strings.Split(*which, ","), "tcp")
			return perf.PodToPod(set, fwds("kernel", "xvsd", "xvsd-xdp-fast-path", "xdp-redirect"), !*noIperf && iperfErr == nil && !withTCP)
		},
		"cross-node": func() perf.Scenario {
			return perf.CrossNode(set, crossFwds(false), !*noIperf && iperfErr == nil)
		},
		"cross-node-vxlan": func() perf.Scenario {
			return perf.CrossNodeVXLAN(set, crossFwds(true), !*noIperf && iperfErr == nil)
		},
		"ring": func() perf.Scenario { return perf.Ring(set) },
		"tcp": func() perf.Scenario {
			if *noIperf || iperfErr != nil {
				return perf.Scenario{Name: "tcp/" + string(set)}
			}
			// The quick set leaves out AF_XDP pod ports' worker path, the
			// slowest for TCP by far.
			f := []string{"kernel", "xvsd-af-packet", "xvsd-af-packet-tc-fast-path", "xvsd-xdp-fast-path"}
			if set == perf.Full {
				f = slices.Insert(f, 1, "xvsd")
			}
			return perf.TCP(set, fwds(f...))
		},
	}
	if *which == "" {
		*which = "pod-to-pod,tcp,ring"
		if set == perf.Full {
			*which = "pod-to-pod,tcp,cross-node,cross-node-vxlan,ring"
		}
	}
	names := strings.Split(*which, ",")
	for _, n := range names {
		if scenarios[n] == nil {
			fmt.Fprintf(os.Stderr, "xvs-bench: unknown scenario %q (want pod-to-pod, tcp, cross-node, cross-node-vxlan, ring)\n", n)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	logf := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	code := 0
	var summary strings.Builder
	for _, name := range names {
		s := scenarios[name]()
		if *rounds > 0 {
			s.Rounds = *rounds
		}
		if *only != "" {
			var ls []perf.Load
			for _, l := range s.Loads {
				if strings.Contains(l.Name(), *only) {
					ls = append(ls, l)
				}
			}
			s.Loads = ls
		}
		rep, err := s.Run(ctx, logf)
		if rep == nil {
			fmt.Fprintf(os.Stderr, "xvs-bench: %s: %v\n", name, err)
			code = 1
			continue
		}
		rep.Command = "xvs-bench " + strings.Join(os.Args[1:], " ")
		rep.Machine.Shared = *shared
		files, werr := rep.Write(filepath.Join(*out, name))
		for _, f := range files {
			fmt.Println(f)
		}
		if err = errors.Join(err, werr); err != nil {
			fmt.Fprintf(os.Stderr, "xvs-bench: %s: %v\n", name, err)
			code = 1
		}
		fmt.Fprintf(&summary, "## %s\n\n%s\n", name, rep.Markdown())
	}
	if err := os.WriteFile(filepath.Join(*out, "summary.md"), []byte(summary.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "xvs-bench: %v\n", err)
		code = 1
	}
	fmt.Print(summary.String())
	return code
}

func findXVSD() string {
	if _, err := os.Stat("bin/xvsd"); err == nil {
		return "bin/xvsd"
	}
	if p, err := exec.LookPath("xvsd"); err == nil {
		return p
	}
	return ""
}
