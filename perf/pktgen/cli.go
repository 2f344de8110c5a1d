package pktgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xvs-project/xvs/perf/gen"
)

// Exit codes of the command.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// Main is the xvs-pktgen command: it parses args, runs, prints a summary
// to stdout and, with -json, writes the Result.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, jsonPath, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "xvs-pktgen: %v\n", err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "xvs-pktgen: %v\n", err)
		if IsUsage(err) {
			return ExitUsage
		}
		if res == nil {
			return ExitFail
		}
	}
	PrintSummary(stdout, res)
	if jsonPath != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		b = append(b, '\n')
		if jsonPath == "-" {
			stdout.Write(b)
		} else if werr := os.WriteFile(jsonPath, b, 0o644); werr != nil {
			fmt.Fprintf(stderr, "xvs-pktgen: write %s: %v\n", jsonPath, werr)
			return ExitFail
		}
	}
	if err != nil {
		return ExitFail
	}
	return ExitOK
}

// ParseFlags turns the command line into a Config (checked) and the JSON
// output path.
func ParseFlags(args []string, stderr io.Writer) (Config, string, error) {
	var c Config
	fs := flag.NewFlagSet("xvs-pktgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: xvs-pktgen -iface IF -mode tx|rx|txrx [-count N | -duration D] [flags]\n\n"+
			"Sends generator traffic on exactly the interface given and/or counts it on\n"+
			"the receiving one: loss, reordering, duplicates, latency p50/p99/p999.\n\n")
		fs.PrintDefaults()
	}
	mode := fs.String("mode", "txrx", "tx, rx or txrx")
	fs.StringVar(&c.Iface, "iface", "", "interface to send on (tx, txrx) or receive on (rx)")
	fs.StringVar(&c.Netns, "netns", "", "network namespace of -iface (a name under /run/netns)")
	fs.StringVar(&c.RxIface, "rx-iface", "", "txrx: interface to receive on (default -iface)")
	fs.StringVar(&c.RxNetns, "rx-netns", "", "txrx: namespace of -rx-iface (default -netns)")
	rxIO := fs.String("rx-io", "afpacket", "sink: afpacket, afxdp (the ring layer behind the pod steering program; the interface's stack sees nothing meanwhile) or auto")
	ioFlag := fs.String("io", "auto", "auto, afxdp, afpacket, or asavie (AF_XDP via asavie/xdp, the baseline)")
	src := fs.String("src", "", "source address (IPv4 or IPv6)")
	dst := fs.String("dst", "", "destination address, same family as -src")
	srcMAC := fs.String("src-mac", "", "source MAC (default: the interface's)")
	dstMAC := fs.String("dst-mac", "", "destination MAC: the next hop's")
	sport := fs.Uint("sport", 1024, "UDP source port (first flow)")
	dport := fs.Uint("dport", 9, "UDP destination port")
	size := fs.String("size", "64", "frame bytes without FCS, a comma list to cycle, or imix")
	fs.IntVar(&c.Flows, "flows", 1, "number of flows")
	flowBy := fs.String("flow-by", "port", "what varies between flows: port (UDP source port) or addr (source address)")
	rate := fs.String("rate", "0", "packets per second (k, M suffixes); 0 sends as fast as possible")
	fs.Uint64Var(&c.Count, "count", 0, "packets to send (rx: to receive) then stop")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (cap 1h)")
	fs.DurationVar(&c.Linger, "linger", 300*time.Millisecond, "txrx: wait this long for stragglers after the last send")
	vni := fs.Int("vxlan-vni", -1, "wrap in VXLAN with this VNI (-1: no VXLAN)")
	osrc := fs.String("outer-src", "", "VXLAN outer source address")
	odst := fs.String("outer-dst", "", "VXLAN outer destination address")
	isrcMAC := fs.String("inner-src-mac", "", "VXLAN inner source MAC (default 02:58:56:00:00:01)")
	idstMAC := fs.String("inner-dst-mac", "", "VXLAN inner destination MAC (default 02:58:56:00:00:02)")
	stream := fs.Uint("stream", 1, "stream id in the payload; the sink counts only its own stream")
	fs.IntVar(&c.Batch, "batch", 64, "frames per system call")
	jsonPath := fs.String("json", "", "write the result as JSON to this file (- for stdout)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return c, "", err
	}
	if fs.NArg() > 0 {
		return c, "", usage("unexpected argument %q", fs.Arg(0))
	}
	c.Mode, c.IO, c.RxIO, c.Progress = Mode(*mode), IO(*ioFlag), IO(*rxIO), !*quiet
	if c.Flows < 1 || c.Flows > MaxFlows {
		return c, "", usage("flows %d: want 1..%d", c.Flows, MaxFlows)
	}
	var err error
	if c.Src, err = parseAddr("-src", *src); err != nil {
		return c, "", err
	}
	if c.Dst, err = parseAddr("-dst", *dst); err != nil {
		return c, "", err
	}
	if c.SrcMAC, err = parseMAC("-src-mac", *srcMAC); err != nil {
		return c, "", err
	}
	if c.DstMAC, err = parseMAC("-dst-mac", *dstMAC); err != nil {
		return c, "", err
	}
	if *sport == 0 || *sport > 65535 || *dport == 0 || *dport > 65535 {
		return c, "", usage("ports must be 1..65535")
	}
	c.SrcPort, c.DstPort = uint16(*sport), uint16(*dport)
	if *stream > 65535 {
		return c, "", usage("stream %d: want 0..65535", *stream)
	}
	c.Stream = uint16(*stream)
	if c.Sizes, c.IMIX, err = gen.ParseSizes(*size); err != nil {
		return c, "", usage("-size: %v", err)
	}
	switch *flowBy {
	case "port":
		c.FlowBy = gen.FlowSrcPort
	case "addr":
		c.FlowBy = gen.FlowSrcAddr
	default:
		return c, "", usage("-flow-by %q: want port or addr", *flowBy)
	}
	if c.Rate, err = parseRate(*rate); err != nil {
		return c, "", err
	}
	if *vni >= 0 {
		vx := &gen.VXLAN{VNI: uint32(*vni)}
		if *vni >= 1<<24 {
			return c, "", usage("-vxlan-vni %d does not fit in 24 bits", *vni)
		}
		if vx.Src, err = parseAddr("-outer-src", *osrc); err != nil {
			return c, "", err
		}
		if vx.Dst, err = parseAddr("-outer-dst", *odst); err != nil {
			return c, "", err
		}
		if vx.InnerSrcMAC, err = parseMAC("-inner-src-mac", *isrcMAC); err != nil {
			return c, "", err
		}
		if vx.InnerDstMAC, err = parseMAC("-inner-dst-mac", *idstMAC); err != nil {
			return c, "", err
		}
		c.VXLAN = vx
	} else if *osrc != "" || *odst != "" {
		return c, "", usage("-outer-src/-outer-dst need -vxlan-vni")
	}
	if err := c.Check(); err != nil {
		return c, "", err
	}
	return c, *jsonPath, nil
}

func parseAddr(name, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, usage("%s %q is not an IPv4 or IPv6 address", name, s)
	}
	return a.Unmap(), nil
}

func parseMAC(name, s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, usage("%s %q is not an Ethernet MAC address", name, s)
	}
	return m, nil
}

func parseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	mul := 1.0
	switch {
	case strings.HasSuffix(t, "M"), strings.HasSuffix(t, "m"):
		mul, t = 1e6, t[:len(t)-1]
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		mul, t = 1e3, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, usage("-rate %q: want packets per second, e.g. 100000, 250k or 1M", s)
	}
	return v * mul, nil
}

// PrintSummary writes a human summary of r.
func PrintSummary(w io.Writer, r *Result) {
	if r == nil {
		return
	}
	if r.IONote != "" {
		fmt.Fprintf(w, "note: %s\n", r.IONote)
	}
	if t := r.Tx; t != nil {
		fmt.Fprintf(w, "tx %s: %d packets, %d bytes in %.3fs: %.3f Mpps, %.3f Gb/s (stopped by %s)\n",
			t.IO, t.Packets, t.Bytes, t.Seconds, t.PPS/1e6, t.Gbps, t.Stopped)
	}
	if x := r.Rx; x != nil {
		fmt.Fprintf(w, "rx %s: %d unique of %d expected, lost %d (%.4f%%), %d reordered, %d duplicates, %d late, %d socket drops; %.3f Mpps\n",
			x.IO, x.Unique, x.Expected, x.Lost, 100*x.LossRatio, x.Reordered, x.Dups, x.Late, x.SocketDrops, x.PPS/1e6)
		l := x.Latency
		fmt.Fprintf(w, "latency: p50 %s  p99 %s  p999 %s  max %s\n",
			time.Duration(l.P50), time.Duration(l.P99), time.Duration(l.P999), time.Duration(l.Max))
	}
}
