package vswitch

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xsk"
)

var (
	pod1MAC = [6]byte{0x02, 0, 0, 0, 0, 1}
	pod2MAC = [6]byte{0x02, 0, 0, 0, 0, 2}
	pod1v4  = netip.MustParseAddr("198.18.10.1")
	pod2v4  = netip.MustParseAddr("198.18.10.2")
	pod1v6  = netip.MustParseAddr("fd00:10::1")
	pod2v6  = netip.MustParseAddr("fd00:10::2")
	gwMAC   = DefaultGatewayMAC
)

// fakeLab is a switch with two fake pod ports.
type fakeLab struct {
	sw      *Switch
	ports   map[string]*porttest.FakePort
	offload map[string]*porttest.FakeOffloadPort
}

func newFakeLab(t testing.TB, poll dataplane.PollMode) *fakeLab {
	return newFakeLabWith(t, poll, []spec.PortConfig{
		{Name: "pod1", Kind: spec.PortPod, PeerMAC: pod1MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod1v4, 32), netip.PrefixFrom(pod1v6, 128)}},
		{Name: "pod2", Kind: spec.PortPod, PeerMAC: pod2MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod2v4, 32), netip.PrefixFrom(pod2v6, 128)}},
	}, nil)
}

// newFakeLabWith builds a fake lab with the given ports; those named in
// offload are FakeOffloadPorts.
func newFakeLabWith(t testing.TB, poll dataplane.PollMode, ports []spec.PortConfig, offload map[string]bool) *fakeLab {
	t.Helper()
	l := &fakeLab{ports: map[string]*porttest.FakePort{}, offload: map[string]*porttest.FakeOffloadPort{}}
	opener := func(req port.OpenRequest) (port.Opened, error) {
		pc, u := req.Config, req.Umem
		var p port.Port
		fp := porttest.NewFakePort(u, 1024)
		if offload[pc.Name] {
			op := porttest.NewFakeOffloadPort(u, 1024)
			fp, p = op.FakePort, op
			l.offload[pc.Name] = op
		} else {
			p = fp
		}
		l.ports[pc.Name] = fp
		return port.Opened{Port: p, MAC: [6]byte{0x02, 0xff, 0, 0, 0, byte(len(l.ports))}, MTU: 1500}, nil
	}
	cfg := Config{
		Poll:   poll,
		Ports:  ports,
		Routes: []spec.Route{{Prefix: netip.MustParsePrefix("198.19.0.0/16"), Blackhole: true}},
	}
	sw, err := New(cfg, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	l.sw = sw
	return l
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func udp4(t testing.TB, srcMAC [6]byte, src, dst netip.Addr, ttl uint8, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: srcMAC[:], DstMAC: gwMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}
	u := &layers.UDP{SrcPort: 1234, DstPort: 5678}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, u, gopacket.Payload(make([]byte, payload)))
}

func udp6(t testing.TB, srcMAC [6]byte, src, dst netip.Addr, hop uint8, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: srcMAC[:], DstMAC: gwMAC[:], EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	u := &layers.UDP{SrcPort: 1234, DstPort: 5678}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, u, gopacket.Payload(make([]byte, payload)))
}

// runVector pushes frames into port in and runs one vector synchronously
// (the workers are not started), returning what each port sent.
func (l *fakeLab) runVector(t testing.TB, in string, frames ...[]byte) map[string][][]byte {
	t.Helper()
	fp := l.ports[in]
	for _, f := range frames {
		fp.In <- f
	}
	w := l.sw.workers[0]
	w.Step()
	out := map[string][][]byte{}
	for name, p := range l.ports {
		for {
			select {
			case b := <-p.Out:
				out[name] = append(out[name], b)
				continue
			default:
			}
			break
		}
	}
	return out
}

func decode(b []byte) gopacket.Packet {
	return gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
}

func TestForwardIPv4(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	out := l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, pod2v4, 64, 100))
	if len(out["pod2"]) != 1 || len(out["pod1"]) != 0 {
		t.Fatalf("got %d frames on pod2, %d on pod1; want 1, 0 (counters %+v)", len(out["pod2"]), len(out["pod1"]), l.sw.Counters())
	}
	pkt := decode(out["pod2"][0])
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if [6]byte(eth.DstMAC) != pod2MAC || [6]byte(eth.SrcMAC) != gwMAC {
		t.Errorf("L2 rewrite: dst %s src %s, want %x %x", eth.DstMAC, eth.SrcMAC, pod2MAC, gwMAC)
	}
	if ip.TTL != 63 {
		t.Errorf("TTL %d, want 63", ip.TTL)
	}
	// gopacket recomputes nothing on decode: check the checksum ourselves.
	raw := out["pod2"][0][14:34]
	if sum := onesSum(raw); sum != 0xffff {
		t.Errorf("IPv4 header checksum invalid after rewrite (sum %#x)", sum)
	}
	if c := l.sw.Counters(); c.Events[dataplane.EvForwarded4] != 1 {
		t.Errorf("forwarded-ipv4 = %d, want 1", c.Events[dataplane.EvForwarded4])
	}
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestForwardIPv6(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	out := l.runVector(t, "pod1", udp6(t, pod1MAC, pod1v6, pod2v6, 64, 100))
	if len(out["pod2"]) != 1 {
		t.Fatalf("got %d frames on pod2, want 1 (counters %+v)", len(out["pod2"]), l.sw.Counters())
	}
	pkt := decode(out["pod2"][0])
	ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ip.HopLimit != 63 || [6]byte(eth.DstMAC) != pod2MAC {
		t.Errorf("hop limit %d dst %s, want 63 %x", ip.HopLimit, eth.DstMAC, pod2MAC)
	}
}

func TestProxyARP(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	req := serialize(t,
		&layers.Ethernet{SrcMAC: pod1MAC[:], DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: pod1MAC[:], SourceProtAddress: pod1v4.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{169, 254, 1, 1}})
	// A gratuitous ARP for the pod's own address gets no answer.
	grat := append([]byte(nil), req...)
	copy(grat[38:42], pod1v4.AsSlice())
	out := l.runVector(t, "pod1", req, grat)
	if len(out["pod1"]) != 1 {
		t.Fatalf("got %d replies, want 1", len(out["pod1"]))
	}
	arp := decode(out["pod1"][0]).Layer(layers.LayerTypeARP).(*layers.ARP)
	if arp.Operation != layers.ARPReply || [6]byte(arp.SourceHwAddress) != gwMAC ||
		!net.IP(arp.SourceProtAddress).Equal(net.IPv4(169, 254, 1, 1)) || [6]byte(arp.DstHwAddress) != pod1MAC {
		t.Errorf("bad ARP reply: %+v", arp)
	}
}

func TestProxyNDP(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	gw6 := DefaultGatewayV6.As16()
	snm := net.IP{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, gw6[13], gw6[14], gw6[15]}
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: pod1v6.AsSlice(), DstIP: snm}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	icmp.SetNetworkLayerForChecksum(ip)
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: gw6[:], Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: pod1MAC[:]}}}
	frame := serialize(t, &layers.Ethernet{SrcMAC: pod1MAC[:], DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, gw6[13], gw6[14], gw6[15]}, EthernetType: layers.EthernetTypeIPv6}, ip, icmp, ns)
	out := l.runVector(t, "pod1", frame)
	if len(out["pod1"]) != 1 {
		t.Fatalf("got %d adverts, want 1 (counters %+v)", len(out["pod1"]), l.sw.Counters())
	}
	pkt := decode(out["pod1"][0])
	na, ok := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok {
		t.Fatalf("not an NA: %v", pkt)
	}
	if !net.IP(na.TargetAddress).Equal(gw6[:]) || !na.Solicited() || !na.Router() {
		t.Errorf("bad NA: target %s flags %#x", na.TargetAddress, na.Flags)
	}
	rip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if !rip.DstIP.Equal(pod1v6.AsSlice()) || rip.HopLimit != 255 {
		t.Errorf("NA to %s hop %d, want %s 255", rip.DstIP, rip.HopLimit, pod1v6)
	}
}

func TestTTLExpired(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	out := l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, pod2v4, 1, 50), udp6(t, pod1MAC, pod1v6, pod2v6, 1, 50))
	if len(out["pod1"]) != 2 || len(out["pod2"]) != 0 {
		t.Fatalf("got %d on pod1, %d on pod2; want 2, 0", len(out["pod1"]), len(out["pod2"]))
	}
	p4 := decode(out["pod1"][0])
	ic := p4.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	ip := p4.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ic.TypeCode.Type() != layers.ICMPv4TypeTimeExceeded || !ip.SrcIP.Equal(net.IPv4(169, 254, 1, 1)) || !ip.DstIP.Equal(pod1v4.AsSlice()) {
		t.Errorf("v4: got %v from %s to %s", ic.TypeCode, ip.SrcIP, ip.DstIP)
	}
	p6 := decode(out["pod1"][1])
	ic6 := p6.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ic6.TypeCode.Type() != layers.ICMPv6TypeTimeExceeded {
		t.Errorf("v6: got %v", ic6.TypeCode)
	}
	if c := l.sw.Counters(); c.Drops[dataplane.DropTTL] != 2 || c.Events[dataplane.EvICMPErrors] != 2 {
		t.Errorf("ttl drops %d icmp errors %d, want 2 2", c.Drops[dataplane.DropTTL], c.Events[dataplane.EvICMPErrors])
	}
}

func TestNoRoute(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	out := l.runVector(t, "pod1",
		udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.18.99.9"), 64, 10),
		udp6(t, pod1MAC, pod1v6, netip.MustParseAddr("fd00:99::9"), 64, 10),
		udp4(t, pod1MAC, pod1v4, netip.MustParseAddr("198.19.1.1"), 64, 10), // blackhole: silent
	)
	if len(out["pod1"]) != 2 {
		t.Fatalf("got %d unreachables, want 2", len(out["pod1"]))
	}
	ic := decode(out["pod1"][0]).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 0) {
		t.Errorf("v4 got %v, want net unreachable", ic.TypeCode)
	}
	if c := l.sw.Counters(); c.Drops[dataplane.DropNoRoute] != 3 {
		t.Errorf("no-route drops = %d, want 3", c.Drops[dataplane.DropNoRoute])
	}
}

func TestEchoGateway(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	eth := &layers.Ethernet{SrcMAC: pod1MAC[:], DstMAC: gwMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: pod1v4.AsSlice(), DstIP: net.IPv4(169, 254, 1, 1).To4()}
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: 1}
	out := l.runVector(t, "pod1", serialize(t, eth, ip, ic, gopacket.Payload([]byte("hello"))))
	if len(out["pod1"]) != 1 {
		t.Fatalf("got %d replies, want 1", len(out["pod1"]))
	}
	b := out["pod1"][0]
	rep := decode(b).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if rep.TypeCode.Type() != 0 || rep.Id != 7 {
		t.Errorf("got %v id %d", rep.TypeCode, rep.Id)
	}
	if s := onesSum(b[34:]); s != 0xffff {
		t.Errorf("icmp checksum invalid (sum %#x)", s)
	}
}

func TestMTU(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	out := l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, pod2v4, 64, 1600), udp6(t, pod1MAC, pod1v6, pod2v6, 64, 1600))
	if len(out["pod1"]) != 2 {
		t.Fatalf("got %d errors back, want 2", len(out["pod1"]))
	}
	ic := decode(out["pod1"][0]).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 4) {
		t.Errorf("got %v, want frag needed", ic.TypeCode)
	}
	ic6 := decode(out["pod1"][1]).Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ic6.TypeCode.Type() != layers.ICMPv6TypePacketTooBig {
		t.Errorf("got %v, want packet too big", ic6.TypeCode)
	}
}

func TestMalformedCounted(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	good := udp4(t, pod1MAC, pod1v4, pod2v4, 64, 10)
	badSum := append([]byte(nil), good...)
	badSum[24] ^= 0xff
	badIHL := append([]byte(nil), good...)
	badIHL[14] = 0x43
	out := l.runVector(t, "pod1", []byte{1, 2, 3}, badSum, badIHL, good[:30], []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xcc, 0})
	if len(out["pod2"])+len(out["pod1"]) != 0 {
		t.Fatalf("malformed frames were forwarded")
	}
	c := l.sw.Counters()
	if c.Drops[dataplane.DropBadEthernet] != 1 || c.Drops[dataplane.DropBadL3] != 3 || c.Drops[dataplane.DropUnknownProto] != 1 {
		t.Errorf("drops: bad-eth %d bad-l3 %d unknown %d; want 1 3 1", c.Drops[dataplane.DropBadEthernet], c.Drops[dataplane.DropBadL3], c.Drops[dataplane.DropUnknownProto])
	}
}

func TestLearnPodMAC(t *testing.T) {
	l := newFakeLab(t, dataplane.PollBusy)
	if _, err := l.sw.AddPort(spec.PortConfig{Name: "pod3", Kind: spec.PortPod, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.10.3/32")}}); err != nil {
		t.Fatal(err)
	}
	mac3 := [6]byte{0x02, 0, 0, 0, 0, 3}
	l.sw.Start()
	l.ports["pod3"].In <- udp4(t, mac3, netip.MustParseAddr("198.18.10.3"), pod1v4, 64, 10)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r, ok := l.sw.LookupRoute(netip.MustParseAddr("198.18.10.3")); ok && r.Origin == "pod" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pod3 route not installed after learning its MAC")
}

func TestWorkerRunsAndStops(t *testing.T) {
	for _, mode := range []dataplane.PollMode{dataplane.PollBusy, dataplane.PollAdaptive} {
		l := newFakeLab(t, mode)
		if err := l.sw.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			l.ports["pod1"].In <- udp4(t, pod1MAC, pod1v4, pod2v4, 64, 10)
		}
		got := 0
		timeout := time.After(5 * time.Second)
		for got < 100 {
			select {
			case <-l.ports["pod2"].Out:
				got++
			case <-timeout:
				t.Fatalf("mode %d: got %d of 100 frames", mode, got)
			}
		}
		if err := l.sw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// sinkPort frees whatever it is given: the allocation and cost tests use it
// so nothing but the pipeline is measured.
type sinkPort struct{ u *xsk.Umem }

func (s *sinkPort) Receive([]port.Packet) int { return 0 }
func (s *sinkPort) Transmit(p []port.Packet) int {
	for i := range p {
		s.u.Free(p[i].Addr)
	}
	return len(p)
}
func (s *sinkPort) Flush()          {}
func (s *sinkPort) PollFD() int     { return -1 }
func (s *sinkPort) Mode() spec.Mode { return spec.ModeAuto }
func (s *sinkPort) Close() error    { return nil }

// vectorBench is a switch on sink ports with a prepared vector of frames.
type vectorBench struct {
	sw     *Switch
	w      *dataplane.Worker
	in     *portState
	frames [][]byte
	vec    []port.Packet
}

func newVectorBench(t testing.TB, v6 bool, n int) *vectorBench {
	opener := func(req port.OpenRequest) (port.Opened, error) {
		u := req.Umem
		return port.Opened{Port: &sinkPort{u: u}, MTU: 1500}, nil
	}
	cfg := Config{Ports: []spec.PortConfig{
		{Name: "pod1", Kind: spec.PortPod, PeerMAC: pod1MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod1v4, 32), netip.PrefixFrom(pod1v6, 128)}},
		{Name: "pod2", Kind: spec.PortPod, PeerMAC: pod2MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod2v4, 32), netip.PrefixFrom(pod2v6, 128)}},
	}}
	sw, err := New(cfg, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	vb := &vectorBench{sw: sw, w: sw.workers[0], vec: make([]port.Packet, n)}
	vb.in = sw.byName["pod1"]
	f := udp4(t, pod1MAC, pod1v4, pod2v4, 64, 18)
	if v6 {
		f = udp6(t, pod1MAC, pod1v6, pod2v6, 64, 10)
	}
	vb.frames = [][]byte{f}
	return vb
}

// fill puts n fresh copies of the template into UMEM frames.
func (vb *vectorBench) fill() []port.Packet {
	u := vb.w.Umem()
	f := vb.frames[0]
	for i := range vb.vec {
		a, ok := u.Alloc()
		if !ok {
			panic("umem exhausted")
		}
		copy(u.Frame(a)[port.Headroom:], f)
		vb.vec[i] = port.Packet{Addr: a + port.Headroom, Len: uint32(len(f))}
	}
	return vb.vec
}

func (vb *vectorBench) run() {
	vb.w.Process(vb.fill(), vb.in.Port)
	vb.w.Flush()
}

func TestPipelineZeroAlloc(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		vb := newVectorBench(t, v6, 64)
		vb.run()
		if a := testing.AllocsPerRun(100, vb.run); a != 0 {
			t.Errorf("v6=%v: %v allocations per vector, want 0", v6, a)
		}
		// The vectors must have been forwarded, not dropped early.
		vb.w.PublishCounters()
		c := vb.sw.Counters()
		if got, want := c.Events[dataplane.EvForwarded4]+c.Events[dataplane.EvForwarded6], uint64(102*64); got != want { // our warm-up, AllocsPerRun's, and its 100 runs
			t.Errorf("v6=%v: forwarded %d frames, want %d (drops %v)", v6, got, want, c.Drops)
		}
	}
}

func benchVector(b *testing.B, v6 bool) {
	vb := newVectorBench(b, v6, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vb.run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vb.vec)), "ns/packet")
}

// BenchmarkPipelineIPv4 / IPv6: one vector of 64 frames through parse,
// lookup, rewrite and the per-port batch. BenchmarkRingLoop is the same
// vector with no processing: copy in, hand to the output port.
func BenchmarkPipelineIPv4(b *testing.B) { benchVector(b, false) }
func BenchmarkPipelineIPv6(b *testing.B) { benchVector(b, true) }

func BenchmarkRingLoop(b *testing.B) {
	vb := newVectorBench(b, false, 64)
	out := vb.sw.byName["pod2"]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pk := vb.fill()
		for j := range pk {
			vb.w.Emit(&pk[j], out.Port)
		}
		vb.w.Flush()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vb.vec)), "ns/packet")
}

func FuzzPipeline(f *testing.F) {
	f.Add(udp4(f, pod1MAC, pod1v4, pod2v4, 64, 10))
	f.Add(udp6(f, pod1MAC, pod1v6, pod2v6, 64, 10))
	f.Add(udp4(f, pod1MAC, pod1v4, pod2v4, 1, 10))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1})
	vb := newVectorBench(f, false, 1)
	u := vb.w.Umem()
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > u.FrameSize()-port.Headroom {
			frame = frame[:u.FrameSize()-port.Headroom]
		}
		before := u.FreeCount()
		a, _ := u.Alloc()
		copy(u.Frame(a)[port.Headroom:], frame)
		vb.vec[0] = port.Packet{Addr: a + port.Headroom, Len: uint32(len(frame))}
		vb.w.Tick()
		vb.w.Process(vb.vec[:1], vb.in.Port)
		vb.w.Flush()
		if got := u.FreeCount(); got != before {
			t.Fatalf("frame leak: %d free before, %d after", before, got)
		}
	})
}

var _ = fib.NoRoute

func TestWorkerCPUsRefused(t *testing.T) {
	for _, cpus := range [][]int{{runtime.NumCPU()}, {-1}, {0, 0}} {
		_, err := New(Config{Workers: 1, WorkerCPUs: cpus}, nil, withoutKernel())
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "worker_cpus") {
			t.Errorf("worker_cpus %v: error %v, want one naming worker_cpus", cpus, err)
		}
	}
}

func TestTwoWorkersHandoff(t *testing.T) {
	ports := map[string]*porttest.FakePort{}
	opener := func(req port.OpenRequest) (port.Opened, error) {
		pc, u := req.Config, req.Umem
		fp := porttest.NewFakePort(u, 1024)
		ports[pc.Name] = fp
		return port.Opened{Port: fp, MTU: 1500}, nil
	}
	// Pinned workers (the last CPU and CPU 0) must forward like unpinned ones.
	cfg := Config{Workers: 2, WorkerCPUs: []int{runtime.NumCPU() - 1, 0}, Ports: []spec.PortConfig{
		{Name: "pod1", Kind: spec.PortPod, PeerMAC: pod1MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod1v4, 32), netip.PrefixFrom(pod1v6, 128)}},
		{Name: "pod2", Kind: spec.PortPod, PeerMAC: pod2MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod2v4, 32), netip.PrefixFrom(pod2v6, 128)}},
	}}
	sw, err := New(cfg, nil, WithDrivers(porttest.Registry(opener)), withoutKernel())
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if a, b := sw.byName["pod1"].Worker, sw.byName["pod2"].Worker; a == b {
		t.Fatalf("both pods on worker %d; want them spread", a)
	}
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	// Paced in bursts smaller than any ring, so every frame must arrive.
	const bursts, burst = 40, 50
	timeout := time.After(20 * time.Second)
	for r := 0; r < bursts; r++ {
		for i := 0; i < burst; i++ {
			ports["pod1"].In <- udp4(t, pod1MAC, pod1v4, pod2v4, 64, 10)
			ports["pod2"].In <- udp6(t, pod2MAC, pod2v6, pod1v6, 64, 10)
		}
		for got1, got2 := 0, 0; got1 < burst || got2 < burst; {
			select {
			case b := <-ports["pod2"].Out:
				if [6]byte(b[0:6]) != pod2MAC {
					t.Fatalf("frame to pod2 has dst %x", b[0:6])
				}
				got2++
			case <-ports["pod1"].Out:
				got1++
			case <-timeout:
				t.Fatalf("burst %d: got %d and %d of %d frames; counters %+v", r, got1, got2, burst, sw.Counters())
			}
		}
	}
}
