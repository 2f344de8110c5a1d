package api_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/api/apitest"
	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

func links(names ...string) config.LinkCheck {
	return func(n string) error {
		for _, x := range names {
			if n == x {
				return nil
			}
		}
		return config.ErrNoSuchInterface
	}
}

func setup(t *testing.T) (*apitest.Fake, *api.Client) {
	t.Helper()
	f := apitest.NewFake()
	_, c := apitest.Serve(t, f, api.ServerOptions{Version: "test", LinkCheck: links("eth0", "veth1", "veth2", "veth3")})
	ctx := apitest.Ctx(t)
	if _, err := c.AddPort(ctx, &xvspb.PortConfig{Name: "eth0", Kind: "uplink", Addresses: []string{"192.0.2.10/24", "2001:db8::10/64"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPort(ctx, &xvspb.PortConfig{Name: "veth1", Kind: "pod", Addresses: []string{"10.244.0.5/32"}, PeerMac: "02:00:00:00:00:05"}); err != nil {
		t.Fatal(err)
	}
	return f, c
}

func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("err = %v (code %v), want code %v", err, status.Code(err), code)
	}
	if !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("message %q does not contain %q", status.Convert(err).Message(), msg)
	}
}

func TestPorts(t *testing.T) {
	_, c := setup(t)
	ctx := apitest.Ctx(t)
	ports, err := c.Ports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || ports[1].Name != "veth1" || ports[1].Kind != "pod" || ports[1].Mode != "xdp-native" ||
		ports[1].PeerMac != "02:00:00:00:00:05" || ports[1].Addresses[0] != "10.244.0.5/32" || !ports[1].Up {
		t.Fatalf("ports = %v", ports)
	}
	for _, tc := range []struct {
		name string
		pc   *xvspb.PortConfig
		code codes.Code
		msg  string
	}{
		{"nil", nil, codes.InvalidArgument, "port: required"},
		{"bad prefix", &xvspb.PortConfig{Name: "veth2", Kind: "pod", Addresses: []string{"10.0.0.300/32"}}, codes.InvalidArgument, `port.addresses[0]: "10.0.0.300/32": invalid prefix`},
		{"no link", &xvspb.PortConfig{Name: "veth9", Kind: "pod"}, codes.InvalidArgument, `port.name: "veth9": no such interface`},
		{"bad kind", &xvspb.PortConfig{Name: "veth2", Kind: "vm"}, codes.InvalidArgument, `port.kind: "vm": must be pod, uplink or host`},
		{"bad mode", &xvspb.PortConfig{Name: "veth2", Kind: "pod", Mode: "dpdk"}, codes.InvalidArgument, `port.mode: "dpdk"`},
		{"duplicate", &xvspb.PortConfig{Name: "veth1", Kind: "pod"}, codes.AlreadyExists, `port.name: "veth1": port already exists`},
		{"overlap", &xvspb.PortConfig{Name: "veth2", Kind: "pod", Addresses: []string{"10.244.0.5/32"}}, codes.AlreadyExists, `overlaps 10.244.0.5/32 of port "veth1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AddPort(ctx, tc.pc)
			wantStatus(t, err, tc.code, tc.msg)
		})
	}
	if err := c.DelPort(ctx, "veth7"); status.Code(err) != codes.NotFound {
		t.Errorf("del missing port: %v", err)
	}
	if err := c.DelPort(ctx, "veth1"); err != nil {
		t.Fatal(err)
	}
	if ports, _ := c.Ports(ctx); len(ports) != 1 {
		t.Errorf("after delete: %v", ports)
	}
}

func TestDataplaneErrorCodes(t *testing.T) {
	f, c := setup(t)
	ctx := apitest.Ctx(t)
	f.AddPortErr = fmt.Errorf("open port veth2: %w", errors.New("xdp attach: boom"))
	_, err := c.AddPort(ctx, &xvspb.PortConfig{Name: "veth2", Kind: "pod"})
	wantStatus(t, err, codes.Internal, "open port veth2: xdp attach: boom")
}

func TestRoutes(t *testing.T) {
	_, c := setup(t)
	ctx := apitest.Ctx(t)
	for _, r := range []*xvspb.AddRouteRequest{
		{Prefix: "0.0.0.0/0", Via: "192.0.2.1"},
		{Prefix: "10.1.0.0/16", Via: "192.0.2.11", Port: "eth0"},
		{Prefix: "10.1.2.0/24", Blackhole: true},
		{Prefix: "::/0", Via: "fe80::1", Port: "eth0"},
	} {
		if err := c.AddRoute(ctx, r); err != nil {
			t.Fatalf("add %v: %v", r, err)
		}
	}
	for _, tc := range []struct {
		name string
		r    *xvspb.AddRouteRequest
		msg  string
	}{
		{"not connected", &xvspb.AddRouteRequest{Prefix: "10.9.0.0/16", Via: "198.18.0.1"}, `route.via: "198.18.0.1": not on any connected subnet`},
		{"bad prefix", &xvspb.AddRouteRequest{Prefix: "10.9.0.0/40", Blackhole: true}, `route.prefix: "10.9.0.0/40": invalid prefix`},
		{"host bits", &xvspb.AddRouteRequest{Prefix: "10.9.0.1/16", Blackhole: true}, `did you mean 10.9.0.0/16?`},
		{"no port", &xvspb.AddRouteRequest{Prefix: "10.9.0.0/16", Via: "192.0.2.1", Port: "eth9"}, `route.port: "eth9": no such port`},
		{"empty", &xvspb.AddRouteRequest{}, `route.prefix: required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, c.AddRoute(ctx, tc.r), codes.InvalidArgument, tc.msg)
		})
	}

	all, err := c.Routes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range all {
		got = append(got, r.Prefix)
	}
	want := "0.0.0.0/0 10.1.0.0/16 10.1.2.0/24 10.244.0.5/32 192.0.2.0/24 ::/0 2001:db8::/64"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("routes (-want +got):\n-%s\n+%s", want, g)
	}

	for _, tc := range []struct{ match, want string }{
		{"10.1.2.3", "10.1.2.0/24"},
		{"10.1.3.3", "10.1.0.0/16"},
		{"8.8.8.8", "0.0.0.0/0"},
		{"10.1.0.0/16", "10.1.0.0/16"},
		{"10.1.0.0/20", "10.1.0.0/16"}, // 10.1.2.0/24 is inside it: not the cover
		{"10.0.0.0/8", "0.0.0.0/0"},
		{"2001:db8::99", "2001:db8::/64"},
	} {
		rs, err := c.Routes(ctx, tc.match)
		if err != nil || len(rs) != 1 || rs[0].Prefix != tc.want {
			t.Errorf("match %s = %v, %v; want %s", tc.match, rs, err, tc.want)
		}
	}
	_, err = c.Routes(ctx, "banana")
	wantStatus(t, err, codes.InvalidArgument, `match: "banana": not an address or prefix`)

	wantStatus(t, c.DelRoute(ctx, "10.7.0.0/16"), codes.NotFound, "route not found")
	wantStatus(t, c.DelRoute(ctx, "10.1.0.1/16"), codes.InvalidArgument, "host bits set")
	wantStatus(t, c.DelRoute(ctx, "192.0.2.0/24"), codes.FailedPrecondition, "is connected")
	if err := c.DelRoute(ctx, "0.0.0.0/0"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Routes(ctx, "8.8.8.8")
	wantStatus(t, err, codes.NotFound, `match: "8.8.8.8": no route`)
}

func TestNeighborsCountersStatus(t *testing.T) {
	f, c := setup(t)
	ctx := apitest.Ctx(t)
	f.SetNeighbors([]spec.Neighbor{
		{Port: "veth1", Addr: netipAddr("10.244.0.5"), MAC: [6]byte{2, 0, 0, 0, 0, 5}, State: "static", Static: true},
		{Port: "eth0", Addr: netipAddr("192.0.2.1"), MAC: [6]byte{2, 0, 0, 0, 0, 1}, State: "reachable"},
	})
	ns, err := c.Neighbors(ctx)
	if err != nil || len(ns) != 2 || ns[0].Port != "eth0" || ns[0].Mac != "02:00:00:00:00:01" || ns[1].State != "static" {
		t.Fatalf("neighbors = %v, %v", ns, err)
	}
	var cs dataplane.Counters
	cs.Drops[dataplane.DropNoRoute] = 7
	cs.Events[dataplane.EvForwarded4] = 1000
	f.SetCounters(cs)
	got, err := c.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Drops) != int(dataplane.NumDrops) || len(got.Events) != int(dataplane.NumEvents) {
		t.Fatalf("counters: %d drops %d events", len(got.Drops), len(got.Events))
	}
	if d := got.Drops[dataplane.DropNoRoute]; d.Name != "no-route" || d.Value != 7 {
		t.Errorf("drop = %v", d)
	}
	if e := got.Events[dataplane.EvForwarded4]; e.Name != "forwarded-ipv4" || e.Value != 1000 {
		t.Errorf("event = %v", e)
	}

	f.SetPortStats("veth1", spec.PortStats{}, false, "link gone")
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Version != "test" || st.Pid != int64(os.Getpid()) || st.Ports != 2 || st.PortsUp != 1 || st.Neighbors != 2 {
		t.Errorf("status = %v", st)
	}
	if st.Fib.RoutesV4 != 2 || st.Fib.RoutesV6 != 1 || len(st.Fib.ByOrigin) != 2 || st.Fib.ByOrigin[0].Name != "connected" || st.Fib.ByOrigin[0].Value != 2 {
		t.Errorf("fib summary = %v", st.Fib)
	}
	f.SetReady(false)
	if st, _ := c.Status(ctx); st.Ready {
		t.Error("status ready while not ready")
	}
}

// fibDP is a fake whose FIB is real, to check the summary path over it.
type fibDP struct {
	*apitest.Fake
	f *fib.FIB
}

func (d fibDP) FIB() *fib.FIB { return d.f }

func TestStatusFromFIB(t *testing.T) {
	f := fib.New()
	for _, r := range []fib.Route{
		{Prefix: netipPrefix("10.0.0.0/8"), NextHop: fib.NextHop{Kind: fib.KindDrop}, Origin: fib.OriginStatic},
		{Prefix: netipPrefix("10.1.0.0/16"), NextHop: fib.NextHop{Kind: fib.KindAdjacency, Port: 1, Via: netipAddr("192.0.2.1")}, Origin: fib.OriginBGP},
		{Prefix: netipPrefix("fd00::/8"), NextHop: fib.NextHop{Kind: fib.KindAdjacency, Port: 1, Via: netipAddr("fe80::1")}, Origin: fib.OriginBGP},
	} {
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	_, c := apitest.Serve(t, fibDP{apitest.NewFake(), f}, api.ServerOptions{})
	st, err := c.Status(apitest.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	s := st.Fib
	if s.RoutesV4 != 2 || s.RoutesV6 != 1 || fmt.Sprint(counters(s.ByOrigin)) != "[bgp=2 static=1]" || fmt.Sprint(counters(s.ByKind)) != "[adjacency=2 drop=1]" {
		t.Errorf("summary = %v", s)
	}
}

func counters(cs []*xvspb.Counter) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s=%d", c.Name, c.Value))
	}
	return out
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "xvsd.sock")
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want socket 0600", fi.Mode())
	}
	// A live socket: refuse.
	if _, err := api.Listen(path); !errors.Is(err, api.ErrInUse) {
		t.Errorf("second Listen: %v, want ErrInUse", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}

	// A stale socket (bound, never accepting, closed without unlinking).
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	ln, err = api.Listen(path)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln.Close()

	// Not a socket: leave it alone.
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nobody.sock")
	c, err := api.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Status(apitest.Ctx(t))
	if !errors.Is(err, api.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if want := "cannot reach xvsd at " + path + ": is it running?"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{&config.FieldError{Field: "x", Err: errors.New("bad")}, codes.InvalidArgument},
		{fmt.Errorf("a: %w", api.ErrInvalid), codes.InvalidArgument},
		{fmt.Errorf("a: %w", fib.ErrBadNextHop), codes.InvalidArgument},
		{fmt.Errorf("a: %w", fib.ErrNotFound), codes.NotFound},
		{fmt.Errorf("a: %w", os.ErrNotExist), codes.NotFound},
		{fmt.Errorf("a: %w", api.ErrExists), codes.AlreadyExists},
		{fmt.Errorf("a: %w", api.ErrNotReady), codes.Unavailable},
		{fmt.Errorf("a: %w", api.ErrRefused), codes.FailedPrecondition},
		{fmt.Errorf("port veth1: %w", vswitch.ErrPortExists), codes.AlreadyExists},
		{fmt.Errorf("port veth1: %w", vswitch.ErrPortNotFound), codes.NotFound},
		{fmt.Errorf("via: %w", vswitch.ErrRouteInvalid), codes.InvalidArgument},
		{fmt.Errorf("workers: %w", vswitch.ErrConfig), codes.InvalidArgument},
		{fmt.Errorf("route is connected: %w", vswitch.ErrNotOwner), codes.FailedPrecondition},
		{status.Error(codes.Aborted, "x"), codes.Aborted},
		{errors.New("boom"), codes.Internal},
	} {
		if got := api.Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
