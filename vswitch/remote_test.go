package vswitch

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
)

// newRemoteLab is a switch with the fast path on, an uplink whose
// neighbours route 198.19.1.0/24 and fd00:19:1::/64, a blackholed
// 198.19.3.0/24, and pod1 (its tc fast path taken as in force) and pod2
// (without one).
func newRemoteLab(t *testing.T) (*fakeLab, *portState) {
	t.Helper()
	fp, err := xdpprog.NewFastPath(2 * maxRemoteFast)
	skipIfNotSupported(t, "fast path maps", err)
	l := &fakeLab{ports: map[string]*porttest.FakePort{}, offload: map[string]*porttest.FakeOffloadPort{}}
	nodeOpener := l.nodeOpener(nil)
	// pod1's tc program is taken as forwarding.
	opener := porttest.Driver(func(req port.OpenRequest) (port.Opened, error) {
		op, err := nodeOpener(req)
		if err == nil && req.Config.Name == "pod1" {
			op.Port.(*porttest.FakePort).Fast = port.FastTC
		}
		return op, err
	})
	pod := func(name string, mac [6]byte, a4, a6 netip.Addr) spec.PortConfig {
		return spec.PortConfig{Name: name, Kind: spec.PortPod, PeerMAC: mac, Addrs: []netip.Prefix{netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 128)}}
	}
	cfg := Config{
		XDPFastPath: true,
		Ports: []spec.PortConfig{
			{Name: "up", Kind: spec.PortUplink, Addrs: []netip.Prefix{netip.PrefixFrom(local4, 24), netip.PrefixFrom(local6, 64)}},
			pod("pod1", pod1MAC, pod1v4, pod1v6),
			pod("pod2", pod2MAC, pod2v4, pod2v6),
		},
		Routes: []spec.Route{
			{Prefix: netip.MustParsePrefix("198.19.1.0/24"), Via: remote4},
			{Prefix: netip.MustParsePrefix("fd00:19:1::/64"), Via: remote6},
			{Prefix: netip.MustParsePrefix("198.19.3.0/24"), Blackhole: true},
		},
	}
	t.Cleanup(func() { fp.Close() }) // after the switch's Close, a no-op then
	up := l.startNode(t, cfg, WithDrivers(porttest.Registry(opener)), WithFastPath(fp))
	if !l.sw.byName["pod1"].TCFast {
		t.Fatal("pod1's tc fast path is not taken as in force")
	}
	return l, up
}

// events runs the control plane's side of what the vector raised: the
// remote destinations asked for, and a FIB change.
func (l *fakeLab) events() (asked []netip.Addr) {
	for {
		select {
		case ev := <-l.sw.events:
			if ev.Kind == dataplane.ReqRemote {
				asked = append(asked, ev.Addr)
				l.sw.addRemote(ev.Addr)
			}
		case <-l.sw.fibChanged:
			l.sw.recheckRemotes()
		default:
			return asked
		}
	}
}

// TestRemoteFastPath: what a worker routes out of the uplink for a pod
// whose tc program forwards becomes a fast-path destination, with the
// neighbour's MAC and the uplink's MTU; FIB changes update or remove it.
func TestRemoteFastPath(t *testing.T) {
	l, up := newRemoteLab(t)
	l.events()
	dst4, dst6 := remotePod4, remotePod6
	out := l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, dst4, 64, 20), udp6(t, pod1MAC, pod1v6, dst6, 64, 20))
	if len(out["up"]) != 2 {
		t.Fatalf("%d frames out of the uplink, want 2", len(out["up"]))
	}
	if asked := l.events(); len(asked) != 2 {
		t.Fatalf("asked for %v, want both destinations", asked)
	}
	for _, a := range []netip.Addr{dst4, dst6} {
		e := l.sw.remotes[a]
		if e != (remoteFast{ifindex: up.ifindex, mtu: 1500, dst: peerMAC, src: upMAC}) {
			t.Errorf("%v: entry %+v", a, e)
		}
		if idx, ok := l.sw.fast.Has(a); !ok || idx != up.ifindex {
			t.Errorf("%v: fast path has %v out of %d, want out of %d", a, ok, idx, up.ifindex)
		}
	}
	if c := l.sw.Counters(); c.Events[dataplane.EvFastRemote] != 2 {
		t.Errorf("fast-path-remotes %d, want 2", c.Events[dataplane.EvFastRemote])
	}

	// Asked once a second at most; not for pods without a tc fast path,
	// nor for what does not leave by the uplink.
	l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, dst4, 64, 20))
	l.runVector(t, "pod2", udp4(t, pod2MAC, pod2v4, netip.MustParseAddr("198.19.1.6"), 64, 20))
	l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, pod2v4, 64, 20), udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.19.3.1"), 64, 20))
	if asked := l.events(); len(asked) != 0 {
		t.Errorf("asked for %v, want nothing", asked)
	}
	// The control plane checks for itself: a blackholed address is not
	// added however it is asked.
	l.sw.addRemote(netip.MustParseAddr("198.19.3.1"))
	if len(l.sw.remotes) != 2 {
		t.Errorf("remotes %v after asking for a blackholed address", l.sw.remotes)
	}

	// The neighbour moves: the entries follow.
	other := [6]byte{0x02, 0xbb, 0, 0, 0, 9}
	l.sw.nbr.update(neighUpdate(up.ifindex, remote4, other))
	l.events()
	if e := l.sw.remotes[dst4]; e.dst != other {
		t.Errorf("after the neighbour changed: %+v", e)
	}
	if e := l.sw.remotes[dst6]; e.dst != peerMAC {
		t.Errorf("IPv6 entry changed with the IPv4 neighbour: %+v", e)
	}
	// The route goes: so does the entry.
	if err := l.sw.DelRoute(netip.MustParsePrefix("198.19.1.0/24")); err != nil {
		t.Fatal(err)
	}
	l.events()
	if _, ok := l.sw.remotes[dst4]; ok {
		t.Error("entry kept after its route was deleted")
	}
	if _, ok := l.sw.fast.Has(dst4); ok {
		t.Error("fast path still has the deleted route's destination")
	}
	if _, ok := l.sw.remotes[dst6]; !ok {
		t.Error("IPv6 entry removed with the IPv4 route")
	}
}

// TestRemoteLearnZeroAlloc: routing out of the uplink for a pod with a tc
// fast path, asking for its destinations (each vector to new ones, so the
// worker asks every time), allocates nothing.
func TestRemoteLearnZeroAlloc(t *testing.T) {
	l, _ := newRemoteLab(t)
	w := l.sw.workers[0]
	pod := l.sw.byName["pod1"]
	vec := make([]port.Packet, 64)
	frames := [][]byte{
		udp4(t, pod1MAC, pod1v4, remotePod4, 64, 18),
		udp6(t, pod1MAC, pod1v6, remotePod6, 64, 18),
	}
	i, asked := 0, 0
	f := func() {
		// A fresh worker clock each time: the once-a-second limit lets
		// the next request through.
		w.SetNow(w.Now() + int64(2*time.Second))
		processDiscard(w, vec, pod, frames[i%2])
		i++
		for len(l.sw.events) > 0 {
			<-l.sw.events
			asked++
		}
	}
	f()
	if a := testing.AllocsPerRun(50, f); a != 0 {
		t.Errorf("%v allocations per vector, want 0", a)
	}
	if asked < 50 {
		t.Errorf("the worker asked %d times in 51 vectors: the test missed the path", asked)
	}
}

// TestRemoteFastPathFull: a full set of remote destinations is cleared
// for the next one, so stale entries cannot keep new flows out for good.
func TestRemoteFastPathFull(t *testing.T) {
	l, _ := newRemoteLab(t)
	l.events()
	base := remotePod6.As16()
	old := func(i int) netip.Addr {
		b := base
		b[14], b[15] = byte(i>>8), byte(i)
		return netip.AddrFrom16(b)
	}
	for i := range maxRemoteFast {
		l.sw.addRemote(old(i))
	}
	if len(l.sw.remotes) != maxRemoteFast {
		t.Fatalf("%d remote destinations, want %d", len(l.sw.remotes), maxRemoteFast)
	}
	l.sw.addRemote(remotePod4)
	if len(l.sw.remotes) != 1 {
		t.Errorf("%d remote destinations after one more, want 1 (the set cleared)", len(l.sw.remotes))
	}
	if _, ok := l.sw.fast.Has(remotePod4); !ok {
		t.Error("the new destination is not in the fast path")
	}
	if _, ok := l.sw.fast.Has(old(7)); ok {
		t.Error("an old destination is still in the fast path")
	}
}

// TestRemoteFastPathTunnel: with the kernel's VXLAN device there, a
// destination behind a VXLAN route becomes a tunnel entry: into the
// device, with the remote VTEP's MAC and the node's VTEP MAC, the
// tunnel's MTU; without it, VXLAN stays with the workers.
func TestRemoteFastPathTunnel(t *testing.T) {
	fp, err := xdpprog.NewFastPath(64)
	skipIfNotSupported(t, "fast path maps", err)
	l := newVXLANLabFast(t, fp) // fp closed with the switch
	l.sw.addRemote(remotePod4)
	if len(l.sw.remotes) != 0 {
		t.Fatalf("remotes %v without the kernel's device", l.sw.remotes)
	}
	l.sw.ktunIndex.Store(1) // lo stands in for the device
	for _, c := range []struct {
		dst, remote netip.Addr
		mtu         int
	}{{remotePod4, remote4, 1450}, {remotePod6, remote6, 1430}, {remoteV6v4, remote4, 1450}} {
		l.sw.addRemote(c.dst)
		e, ok := l.sw.remotes[c.dst]
		want := remoteFast{ifindex: 1, mtu: c.mtu, dst: peerVTEP, src: vtepMAC, vni: DefaultVNI, remote: c.remote}
		if !ok || e != want {
			t.Errorf("%v: entry %+v, want %+v", c.dst, e, want)
		}
		if idx, ok := fp.Has(c.dst); !ok || idx != 1 {
			t.Errorf("%v: fast path has %v out of %d", c.dst, ok, idx)
		}
	}
}
