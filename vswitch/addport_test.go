package vswitch

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
)

// TestAddPortOpensUnlocked: while a port's driver is still opening it
// (an AF_XDP socket and its program take milliseconds), the switch goes
// on: another port opens and joins, the ports are listed, a route is
// added. The name and the addresses being opened are taken meanwhile,
// and the slow port joins once its driver returns.
func TestAddPortOpensUnlocked(t *testing.T) {
	release := make(chan struct{})
	opening := make(chan struct{}, 1)
	opener := func(req port.OpenRequest) (port.Opened, error) {
		if req.Config.Name == "slow" {
			opening <- struct{}{}
			<-release
		}
		return port.Opened{Port: porttest.NewFakePort(req.Umem, 64), MTU: 1500}, nil
	}
	sw, err := New(Config{Workers: 2}, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	pod := func(name, addr string) spec.PortConfig {
		return spec.PortConfig{Name: name, Kind: spec.PortPod, PeerMAC: [6]byte{2, 0, 0, 0, 0, 1},
			Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}}
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := sw.AddPort(pod("slow", "198.19.0.1/32"))
		slowDone <- err
	}()
	<-opening
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := sw.AddPort(pod("fast", "198.19.0.2/32")); err != nil {
			t.Errorf("AddPort fast while slow opens: %v", err)
		}
		if _, err := sw.AddPort(pod("slow", "198.19.0.3/32")); !errors.Is(err, ErrPortExists) {
			t.Errorf("AddPort of the name being opened: %v, want ErrPortExists", err)
		}
		if _, err := sw.AddPort(pod("other", "198.19.0.1/32")); !errors.Is(err, ErrConfig) {
			t.Errorf("AddPort of the address being opened: %v, want ErrConfig", err)
		}
		if n := len(sw.Ports()); n != 1 {
			t.Errorf("%d ports listed while slow opens, want 1 (fast)", n)
		}
		if err := sw.AddRoute(spec.Route{Prefix: netip.MustParsePrefix("198.19.9.0/24"), Blackhole: true}); err != nil {
			t.Errorf("AddRoutes while slow opens: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the switch waited for a port being opened")
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatalf("AddPort slow: %v", err)
	}
	if n := len(sw.Ports()); n != 2 {
		t.Errorf("%d ports, want 2", n)
	}
	if _, ok := sw.FIB().Get(0, netip.MustParsePrefix("198.19.0.1/32")); !ok {
		t.Errorf("slow pod's route missing")
	}
}

// TestAddPortClosedWhileOpening: a port whose open ends after Close is
// closed, not added, and Close waits for it.
func TestAddPortClosedWhileOpening(t *testing.T) {
	release := make(chan struct{})
	opening := make(chan struct{})
	var fp *closeRecorder
	opener := func(req port.OpenRequest) (port.Opened, error) {
		close(opening)
		<-release
		fp = &closeRecorder{FakePort: porttest.NewFakePort(req.Umem, 64)}
		return port.Opened{Port: fp, MTU: 1500}, nil
	}
	sw, err := New(Config{}, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	added := make(chan error, 1)
	go func() {
		_, err := sw.AddPort(spec.PortConfig{Name: "p", Kind: spec.PortPod, Addrs: []netip.Prefix{netip.MustParsePrefix("198.19.0.1/32")}})
		added <- err
	}()
	<-opening
	closed := make(chan error, 1)
	go func() { closed <- sw.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a port was being opened")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-added; err == nil {
		t.Errorf("AddPort after Close: nil error")
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if !fp.closed {
		t.Errorf("the port opened after Close was not closed")
	}
}

// closeRecorder is a fake port that records its Close.
type closeRecorder struct {
	*porttest.FakePort
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return c.FakePort.Close() }
