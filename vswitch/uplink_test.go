package vswitch

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
)

func TestUplinkGleanThenForward(t *testing.T) {
	l := &fakeLab{ports: map[string]*porttest.FakePort{}}
	upMAC := [6]byte{0x02, 0xaa, 0, 0, 0, 1}
	opener := func(req port.OpenRequest) (port.Opened, error) {
		pc, u := req.Config, req.Umem
		fp := porttest.NewFakePort(u, 64)
		l.ports[pc.Name] = fp
		mac := [6]byte{0x02, 0xff, 0, 0, 0, byte(len(l.ports))}
		if pc.Kind == spec.PortUplink {
			mac = upMAC
		}
		return port.Opened{Port: fp, MAC: mac, MTU: 1500}, nil
	}
	cfg := Config{
		Ports: []spec.PortConfig{
			{Name: "up", Kind: spec.PortUplink, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("fd00:1::1/64")}},
			{Name: "pod1", Kind: spec.PortPod, PeerMAC: pod1MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod1v4, 32), netip.PrefixFrom(pod1v6, 128)}},
		},
		Routes: []spec.Route{{Prefix: netip.MustParsePrefix("198.19.0.0/16"), Via: netip.MustParseAddr("198.18.0.254")}},
	}
	sw, err := New(cfg, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	l.sw = sw

	// Attached destination and gateway route: both unresolved.
	out := l.runVector(t, "pod1",
		udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.18.0.2"), 64, 10),
		udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.19.1.1"), 64, 10))
	if len(out["up"]) != 0 {
		t.Fatalf("forwarded %d frames before resolution", len(out["up"]))
	}
	if c := sw.Counters(); c.Drops[dataplane.DropNoNeighbor] != 2 || c.Events[dataplane.EvGleans] != 2 {
		t.Fatalf("no-neighbor %d gleans %d, want 2 2", c.Drops[dataplane.DropNoNeighbor], c.Events[dataplane.EvGleans])
	}
	var asked []netip.Addr
	for len(sw.events) > 0 {
		asked = append(asked, (<-sw.events).Addr)
	}
	if len(asked) != 2 || asked[0] != netip.MustParseAddr("198.18.0.2") || asked[1] != netip.MustParseAddr("198.18.0.254") {
		t.Fatalf("resolution requests %v, want [198.18.0.2 198.18.0.254]", asked)
	}

	// The kernel resolves both (as the neighbour monitor would report).
	gwMACs := map[string][6]byte{"198.18.0.2": {0x02, 0xbb, 0, 0, 0, 2}, "198.18.0.254": {0x02, 0xbb, 0, 0, 0, 254}}
	up := sw.byName["up"]
	for a, m := range gwMACs {
		sw.nbr.update(neighUpdate(up.ifindex, netip.MustParseAddr(a), m))
	}
	out = l.runVector(t, "pod1",
		udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.18.0.2"), 64, 10),
		udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.19.1.1"), 64, 10))
	if len(out["up"]) != 2 {
		t.Fatalf("forwarded %d frames after resolution, want 2", len(out["up"]))
	}
	for i, want := range []string{"198.18.0.2", "198.18.0.254"} {
		eth := decode(out["up"][i]).Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if [6]byte(eth.DstMAC) != gwMACs[want] || [6]byte(eth.SrcMAC) != upMAC {
			t.Errorf("frame %d: dst %s src %s, want %x %x", i, eth.DstMAC, eth.SrcMAC, gwMACs[want], upMAC)
		}
	}
	// Traffic from the outside to a pod arrives on the uplink.
	out = l.runVector(t, "up", udp4(t, gwMACs["198.18.0.2"], netip.MustParseAddr("198.18.0.2"), pod1v4, 64, 10))
	if len(out["pod1"]) != 1 {
		t.Fatalf("uplink to pod: got %d frames, want 1", len(out["pod1"]))
	}
	// The node's own address is the host's: the switch punts (no host port
	// yet, so it counts), it never answers for it.
	out = l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.18.0.1"), 64, 10))
	if len(out["pod1"])+len(out["up"]) != 0 || sw.Counters().Drops[dataplane.DropPunt] != 1 {
		t.Fatalf("node address: frames out %d, punt drops %d", len(out["pod1"])+len(out["up"]), sw.Counters().Drops[dataplane.DropPunt])
	}
}

func TestHostPort(t *testing.T) {
	l := &fakeLab{ports: map[string]*porttest.FakePort{}}
	opener := func(req port.OpenRequest) (port.Opened, error) {
		pc, u := req.Config, req.Umem
		fp := porttest.NewFakePort(u, 64)
		l.ports[pc.Name] = fp
		return port.Opened{Port: fp, MAC: [6]byte{0x02, 0xff, 0, 0, 0, byte(len(l.ports))}, MTU: 1500}, nil
	}
	hostMAC := [6]byte{0x02, 0x48, 0, 0, 0, 1}
	cfg := Config{Ports: []spec.PortConfig{
		{Name: "up", Kind: spec.PortUplink, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}},
		{Name: "host", Kind: spec.PortHost},
		{Name: "pod1", Kind: spec.PortPod, PeerMAC: pod1MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod1v4, 32), netip.PrefixFrom(pod1v6, 128)}},
	}}
	sw, err := New(cfg, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	l.sw = sw
	node := netip.MustParseAddr("198.18.0.1")

	// Before the host has spoken, its MAC is unknown: punts are counted.
	l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, node, 64, 10))
	if d := sw.Counters().Drops[dataplane.DropPunt]; d != 1 {
		t.Fatalf("punt drops %d, want 1", d)
	}
	// The host resolves the gateway through the host port (proxy ARP) and
	// sends to a pod: forwarded, and its MAC is learned.
	out := l.runVector(t, "host", udp4(t, hostMAC, node, pod1v4, 64, 10))
	if len(out["pod1"]) != 1 {
		t.Fatalf("host to pod: %d frames, want 1", len(out["pod1"]))
	}
	sw.learned(sw.byName["host"].ID, (<-sw.events).MAC)
	// Pod to the node's address goes to the host, TTL untouched.
	out = l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, node, 64, 10))
	if len(out["host"]) != 1 {
		t.Fatalf("pod to node: %d frames on the host port, want 1 (counters %+v)", len(out["host"]), sw.Counters())
	}
	pkt := decode(out["host"][0])
	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ip.TTL != 64 || [6]byte(eth.DstMAC) != hostMAC {
		t.Errorf("punted frame: ttl %d dst %s, want 64 %x", ip.TTL, eth.DstMAC, hostMAC)
	}
}

// TestUplinkQueues: an uplink with two queues on a two-worker switch. Each
// worker sends what it routes to the uplink through the queue it serves, so
// nothing crosses between workers; deleting the uplink takes its queue along.
func TestUplinkQueues(t *testing.T) {
	ports := map[string]*porttest.FakePort{}
	opener := func(req port.OpenRequest) (port.Opened, error) {
		pc, u := req.Config, req.Umem
		fp := porttest.NewFakePort(u, 64)
		name := pc.Name
		if pc.Queue > 0 {
			name = fmt.Sprintf("%s/q%d", pc.Name, pc.Queue)
		}
		ports[name] = fp
		return port.Opened{Port: fp, MAC: [6]byte{0x02, 0xaa, 0, 0, 0, 1}, MTU: 1500}, nil
	}
	cfg := Config{Workers: 2, Ports: []spec.PortConfig{
		{Name: "up", Kind: spec.PortUplink, Queues: 2, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}},
		{Name: "pod0", Kind: spec.PortPod, PeerMAC: pod2MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod2v4, 32)}}, // fills worker 0
		{Name: "pod1", Kind: spec.PortPod, PeerMAC: pod1MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod1v4, 32)}},
	}}
	sw, err := New(cfg, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	up, q1, pod := sw.byName["up"], sw.byName["up/q1"], sw.byName["pod1"]
	if q1 == nil || up.Worker != 0 || q1.Worker != 1 || pod.Worker != 1 {
		t.Fatalf("placement: up on %d, up/q1 %v, pod1 on %d; want 0, on 1, 1", up.Worker, q1, pod.Worker)
	}
	out := netip.MustParseAddr("198.18.0.2")
	sw.nbr.update(neighUpdate(up.ifindex, out, [6]byte{0x02, 0xbb, 0, 0, 0, 2}))
	w1 := sw.workers[1]
	ports["pod1"].In <- udp4(t, pod1MAC, pod1v4, out, 64, 10)
	w1.Step()
	select {
	case <-ports["up/q1"].Out:
	default:
		t.Fatalf("frame did not leave through worker 1's queue (counters %+v)", sw.Counters())
	}
	if w1.HandedOff(0) || len(ports["up"].Out) != 0 {
		t.Fatalf("frame was handed to worker 0")
	}
	if err := sw.DelPort("up/q1"); err == nil {
		t.Fatalf("deleting a queue on its own succeeded")
	}
	if err := sw.DelPort("up"); err != nil {
		t.Fatal(err)
	}
	if len(sw.Ports()) != 2 {
		t.Fatalf("ports after deleting the uplink: %+v", sw.Ports())
	}
}
