package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/xvs-project/xvs/api/xvspb"
)

// writeJSON prints m in proto3 JSON with the .proto's field names, every
// field present, indented. protojson varies its whitespace on purpose;
// json.Indent makes the output stable.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

func newTab(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// FormatPorts prints the ports table; the reason of every port that is
// down or fell back follows it.
func FormatPorts(w io.Writer, ports []*xvspb.Port) error {
	if len(ports) == 0 {
		_, err := io.WriteString(w, "no ports\n")
		return err
	}
	tw := newTab(w)
	fmt.Fprintln(tw, "ID\tNAME\tKIND\tMODE\tSTATE\tMTU\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tTX DROPS\tPEER MAC\tADDRESSES")
	var notes []string
	for _, p := range ports {
		state := "down"
		if p.Up {
			state = "up"
		}
		st := p.GetStats()
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
			p.Id, p.Name, p.Kind, p.Mode, state, p.Mtu,
			st.GetRxPackets(), st.GetRxBytes(), st.GetTxPackets(), st.GetTxBytes(), st.GetTxDrops(),
			dash(p.PeerMac), dash(strings.Join(p.Addresses, ",")))
		if p.Reason != "" {
			notes = append(notes, fmt.Sprintf("%s: %s: %s", p.Name, state, p.Reason))
		}
		if n := memifNote(p); n != "" {
			notes = append(notes, n)
		}
		if k := st.GetKernelRxDropped() + st.GetKernelRxRingFull() + st.GetKernelFillEmpty() + st.GetKernelTxInvalid(); k > 0 {
			notes = append(notes, fmt.Sprintf("%s: kernel AF_XDP drops: rx-dropped %d, rx-ring-full %d, fill-ring-empty %d, tx-invalid %d",
				p.Name, st.GetKernelRxDropped(), st.GetKernelRxRingFull(), st.GetKernelFillEmpty(), st.GetKernelTxInvalid()))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	}
	return nil
}

// FormatRoutes prints the routes table. The TABLE column appears only when
// some route is outside table 0.
func FormatRoutes(w io.Writer, routes []*xvspb.Route) error {
	if len(routes) == 0 {
		_, err := io.WriteString(w, "no routes\n")
		return err
	}
	tables := false
	for _, r := range routes {
		tables = tables || r.Table != 0
	}
	tw := newTab(w)
	if tables {
		fmt.Fprint(tw, "TABLE\t")
	}
	fmt.Fprintln(tw, "PREFIX\tORIGIN\tKIND\tVIA\tPORT\tNEXT HOP")
	for _, r := range routes {
		if tables {
			fmt.Fprintf(tw, "%d\t", r.Table)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Prefix, r.Origin, r.Kind, dash(r.Via), dash(r.Port), dash(r.NextHop))
	}
	return tw.Flush()
}

// FormatNeighbors prints the neighbour table.
func FormatNeighbors(w io.Writer, ns []*xvspb.Neighbor) error {
	if len(ns) == 0 {
		_, err := io.WriteString(w, "no neighbors\n")
		return err
	}
	tw := newTab(w)
	fmt.Fprintln(tw, "PORT\tADDRESS\tMAC\tSTATE")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Port, n.Address, dash(n.Mac), n.State)
	}
	return tw.Flush()
}

// FormatCounters prints the non-zero drops by reason, then the non-zero
// events.
func FormatCounters(w io.Writer, c *xvspb.GetCountersResponse) error {
	tw := newTab(w)
	section := func(title, none string, cs []*xvspb.Counter) {
		n := 0
		for _, x := range cs {
			if x.Value == 0 {
				continue
			}
			if n == 0 {
				fmt.Fprintf(tw, "%s\tCOUNT\n", title)
			}
			fmt.Fprintf(tw, "%s\t%d\n", x.Name, x.Value)
			n++
		}
		if n == 0 {
			fmt.Fprintln(tw, none)
		}
	}
	section("DROP REASON", "no drops", c.GetDrops())
	fmt.Fprintln(tw)
	section("EVENT", "no events", c.GetEvents())
	return tw.Flush()
}

// FormatFIBSummary prints route counts.
func FormatFIBSummary(w io.Writer, s *xvspb.FibSummary) error {
	tw := newTab(w)
	fmt.Fprintf(tw, "IPv4 routes:\t%d\n", s.GetRoutesV4())
	fmt.Fprintf(tw, "IPv6 routes:\t%d\n", s.GetRoutesV6())
	if s.GetTables() > 0 {
		fmt.Fprintf(tw, "tables:\t%d\n", s.GetTables())
		fmt.Fprintf(tw, "next hops:\t%d\n", s.GetNextHops())
		fmt.Fprintf(tw, "memory:\t%.1f MiB\n", float64(s.GetMemoryBytes())/(1<<20))
		fmt.Fprintf(tw, "updates:\t%d (%.0f/s over the last 10 s)\n", s.GetUpdates(), s.GetUpdateRate())
	}
	for _, sec := range []struct {
		title string
		cs    []*xvspb.Counter
	}{{"ORIGIN", s.GetByOrigin()}, {"KIND", s.GetByKind()}} {
		if len(sec.cs) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\n%s\tROUTES\n", sec.title)
		for _, c := range sec.cs {
			fmt.Fprintf(tw, "%s\t%d\n", c.Name, c.Value)
		}
	}
	return tw.Flush()
}

// FormatStatus prints the daemon's status the way an operator reads it.
func FormatStatus(w io.Writer, s *xvspb.StatusResponse, now time.Time) error {
	up := now.Sub(time.Unix(s.StartTimeUnix, 0)).Truncate(time.Second)
	if up < 0 {
		up = 0
	}
	ready := "ready"
	if !s.Ready {
		ready = "NOT READY"
	}
	fmt.Fprintf(w, "xvsd is running (version %s, pid %d, up %s).\n\n", s.Version, s.Pid, up)
	tw := newTab(w)
	fmt.Fprintf(tw, "Dataplane:\t%s\n", ready)
	fmt.Fprintf(tw, "Ports:\t%d (%d up)\n", s.Ports, s.PortsUp)
	fmt.Fprintf(tw, "Routes:\t%d IPv4, %d IPv6\n", s.GetFib().GetRoutesV4(), s.GetFib().GetRoutesV6())
	fmt.Fprintf(tw, "Neighbors:\t%s\n", strconv.FormatUint(uint64(s.Neighbors), 10))
	return tw.Flush()
}
