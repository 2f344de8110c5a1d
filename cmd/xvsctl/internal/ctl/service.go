package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/spec"
)

// The services commands.
const (
	OpShowServices Op = iota + 200 // apart from the CNI listings (100...) and parse.go's (1...)
	OpShowConntrack
	OpServiceSet
)

// ServiceCmd is what the services commands carry.
type ServiceCmd struct {
	Filter   []string         // OpShowConntrack: conntrack.ParseFilter's words
	Limit    int              // OpShowConntrack
	Services []config.Service // OpServiceSet
}

// parseShowService: show services | show conntrack [FILTER...] [limit=N].
func parseShowService(w string, rest []string) (*Command, error) {
	switch w {
	case "services", "service", "svc":
		return &Command{Op: OpShowServices}, noMore(rest, "show services")
	case "conntrack", "ct":
		c := &Command{Op: OpShowConntrack}
		for _, a := range rest {
			if v, ok := strings.CutPrefix(a, "limit="); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n <= 0 {
					return nil, usagef("show conntrack: limit %q: want a positive number", v)
				}
				c.Svc.Limit = n
				continue
			}
			c.Svc.Filter = append(c.Svc.Filter, a)
		}
		if _, err := conntrack.ParseFilter(c.Svc.Filter); err != nil {
			return nil, usagef("show conntrack: %v", err)
		}
		return c, nil
	}
	return nil, nil
}

// parseService: service set -f FILE | service clear.
func parseService(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, usagef("service: set -f FILE or clear")
	}
	switch args[0] {
	case "clear":
		return &Command{Op: OpServiceSet}, noMore(args[1:], "service clear")
	case "set":
		rest := args[1:]
		if len(rest) != 2 || (rest[0] != "-f" && rest[0] != "--file") {
			return nil, usagef("service set: want -f FILE (YAML with a services: list, as in xvsd's config)")
		}
		svcs, err := readServices(rest[1])
		if err != nil {
			return nil, usagef("service set: %v", err)
		}
		return &Command{Op: OpServiceSet, Svc: ServiceCmd{Services: svcs}}, nil
	}
	return nil, usagef("service: unknown subcommand %q (set or clear)", args[0])
}

// readServices reads a YAML file holding a services: list, strictly
// (unknown keys are errors, as in xvsd's config); "-" is stdin.
func readServices(path string) ([]config.Service, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Services []config.Service `yaml:"services"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc.Services, nil
}

func runService(ctx context.Context, c *api.Client, g Globals, cmd *Command, w io.Writer) (bool, error) {
	switch cmd.Op {
	case OpShowServices:
		svcs, nat, err := c.ListServices(ctx)
		if err != nil {
			return true, err
		}
		if g.Output == "json" {
			m := &xvspb.ListServicesResponse{Nat: &xvspb.NATConfig{Outgoing: prefixStrs(nat.Outgoing), Internal: prefixStrs(nat.Internal),
				PortMin: uint32(nat.PortMin), PortMax: uint32(nat.PortMax)}}
			for _, s := range svcs {
				p := api.ServiceToPB(s.Service)
				p.Source = s.Source
				m.Services = append(m.Services, p)
			}
			return true, writeJSON(w, m)
		}
		return true, FormatServices(w, svcs, nat)
	case OpShowConntrack:
		ct, err := c.ShowConntrack(ctx, cmd.Svc.Filter, cmd.Svc.Limit)
		if errors.Is(err, api.ErrNoConntrack) {
			_, err = fmt.Fprintf(w, "%v\n", err)
			return true, err
		}
		if err != nil {
			return true, err
		}
		if g.Output == "json" {
			return true, writeIndented(w, ct)
		}
		return true, FormatConntrack(w, ct)
	case OpServiceSet:
		return true, c.SetServices(ctx, cmd.Svc.Services)
	}
	return false, nil
}

func prefixStrs(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func hostPort(a netip.Addr, p uint16) string { return netip.AddrPortFrom(a, p).String() }

// FormatServices prints one row per service port, then the NAT policy.
func FormatServices(w io.Writer, svcs []api.SourcedService, nat spec.NATConfig) error {
	if len(svcs) == 0 {
		io.WriteString(w, "no services\n")
	} else {
		tw := newTab(w)
		fmt.Fprintln(tw, "NAME\tSOURCE\tCLUSTER-IPS\tPORT\tNODEPORT\tAFFINITY\tPOLICY\tENDPOINTS")
		for _, s := range svcs {
			var ips []string
			for _, a := range s.ClusterIPs {
				ips = append(ips, a.String())
			}
			aff := "-"
			if s.Affinity {
				aff = "ClientIP/" + s.AffinityTimeout.String()
			}
			pol := []string{"int=Cluster", "ext=Cluster"}
			if s.InternalLocal {
				pol[0] = "int=Local"
			}
			if s.ExternalLocal {
				pol[1] = "ext=Local"
			}
			for _, p := range s.Ports {
				port := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
				if p.Name != "" {
					port = p.Name + ":" + port
				}
				np := "-"
				if p.NodePort != 0 {
					np = strconv.Itoa(int(p.NodePort))
				}
				var eps []string
				for _, e := range p.Endpoints {
					s := hostPort(e.Addr, e.Port)
					var flags []string
					if e.Local {
						flags = append(flags, "local")
					}
					if !e.Ready {
						flags = append(flags, "not-ready")
						if e.Serving {
							flags = append(flags, "serving")
						}
					}
					if e.Terminating {
						flags = append(flags, "terminating")
					}
					if len(flags) > 0 {
						s += "(" + strings.Join(flags, ",") + ")"
					}
					eps = append(eps, s)
				}
				if len(eps) == 0 {
					eps = []string{"none"}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Source, dash(strings.Join(ips, ",")), port, np, aff,
					strings.Join(pol, ","), strings.Join(eps, " "))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(nat.Outgoing) == 0 {
		_, err := io.WriteString(w, "natOutgoing: off\n")
		return err
	}
	lo, hi := nat.PortMin, nat.PortMax
	if lo == 0 {
		lo, hi = config.DefaultNATPortMin, config.DefaultNATPortMax
	}
	_, err := fmt.Fprintf(w, "natOutgoing: from %s, ports %d-%d, never to %s\n",
		strings.Join(prefixStrs(nat.Outgoing), ","), lo, hi, dash(strings.Join(prefixStrs(nat.Internal), ",")))
	return err
}

// FormatConntrack prints the flows, conntrack -L's fields in columns, and
// the table's counters.
func FormatConntrack(w io.Writer, ct *api.Conntrack) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "PROTO\tSTATE\tEXPIRES\tORIGINAL\tREPLY\tPACKETS\tBYTES\tMARK")
	for _, f := range ct.Flows {
		dir := func(k api.FlowKey) string {
			if f.Proto == "icmp" || f.Proto == "icmpv6" {
				return fmt.Sprintf("%s -> %s id=%d", k.Src, k.Dst, k.SPort)
			}
			return hostPort(k.Src, k.SPort) + " -> " + hostPort(k.Dst, k.DPort)
		}
		st := f.State
		if f.Embryonic {
			st += "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%ds\t%s\t%s\t%d/%d\t%d/%d\t%d\n", f.Proto, st, f.Expires, dir(f.Orig), dir(f.Reply),
			f.Packets[0], f.Packets[1], f.Bytes[0], f.Bytes[1], f.Mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := ct.Stats
	more := ""
	if ct.Truncated {
		more = " (more flows match: raise limit=N)"
	}
	_, err := fmt.Fprintf(w, "%d flows shown%s; table %d/%d, created %d, expired %d, evicted %d, deleted %d; new flows dropped: full %d, embryonic limit %d, conflict %d, no port %d\n",
		len(ct.Flows), more, s.Entries, s.Size, s.Created, s.Expired, s.Evicted, s.Deleted, s.DropFull, s.DropEmbryonic, s.DropConflict, s.DropNoPort)
	return err
}
