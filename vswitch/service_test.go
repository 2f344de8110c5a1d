package vswitch

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/conntrack"
	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
)

var (
	vip4     = netip.MustParseAddr("198.18.200.10")
	vip6     = netip.MustParseAddr("fd00:200::10")
	vip6o    = netip.MustParseAddr("fd00:200::20") // the IPv6-only service's
	natUpMAC = [6]byte{0x02, 0xaa, 0, 0, 0, 1}
	routerM  = [6]byte{0x02, 0xbb, 0, 0, 0, 254}
	node4    = netip.MustParseAddr("198.18.0.1")
	node6    = netip.MustParseAddr("fd00:1::1")
	far4     = netip.MustParseAddr("198.19.1.1")
	far6     = netip.MustParseAddr("fd00:99::1")
)

// natLab is a switch with three pods and an uplink whose router is
// resolved.
func newNATLab(t testing.TB, ctSize int) *fakeLab { return newNATLabWith(t, ctSize, nil) }

// newNATLabWith is newNATLab with the XDP fast path fp (nil: none), its
// pod ports taken as XDP fast-path ports.
func newNATLabWith(t testing.TB, ctSize int, fast *xdpprog.FastPath) *fakeLab {
	t.Helper()
	l := &fakeLab{ports: map[string]*porttest.FakePort{}}
	opener := func(req port.OpenRequest) (port.Opened, error) {
		fp := porttest.NewFakePort(req.Umem, 1024)
		if req.Config.Kind == spec.PortPod {
			fp.Fast = port.FastXDP
		}
		l.ports[req.Config.Name] = fp
		mac := [6]byte{0x02, 0xff, 0, 0, 0, byte(len(l.ports))}
		if req.Config.Kind == spec.PortUplink {
			mac = natUpMAC
		}
		op := port.Opened{Port: fp, MAC: mac, MTU: 1500}
		if fast != nil && req.Config.Kind == spec.PortPod {
			op.Ifindex = 1 // lo: the devmap wants a real device
		}
		return op, nil
	}
	pod := func(name string, mac [6]byte, a4, a6 netip.Addr) spec.PortConfig {
		return spec.PortConfig{Name: name, Kind: spec.PortPod, PeerMAC: mac, Addrs: []netip.Prefix{netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 128)}}
	}
	cfg := Config{
		ConntrackSize: ctSize,
		Ports: []spec.PortConfig{
			{Name: "up", Kind: spec.PortUplink, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("fd00:1::1/64")}},
			pod("pod1", pod1MAC, pod1v4, pod1v6), pod("pod2", pod2MAC, pod2v4, pod2v6), pod("pod3", pod3MAC, pod3v4, pod3v6),
		},
		Routes: []spec.Route{
			{Prefix: netip.MustParsePrefix("198.19.0.0/16"), Via: netip.MustParseAddr("198.18.0.254")},
			{Prefix: netip.MustParsePrefix("fd00:99::/64"), Via: netip.MustParseAddr("fd00:1::fe")},
		},
	}
	opts := []Option{WithDrivers(porttest.Registry(opener)), withoutKernel()}
	if fast != nil {
		cfg.XDPFastPath = true
		opts = append(opts, WithFastPath(fast))
	}
	sw, err := New(cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	l.sw = sw
	up := sw.byName["up"]
	sw.nbr.update(neighUpdate(up.ifindex, netip.MustParseAddr("198.18.0.254"), routerM))
	sw.nbr.update(neighUpdate(up.ifindex, netip.MustParseAddr("fd00:1::fe"), routerM))
	return l
}

func ep(a netip.Addr, port uint16) spec.Endpoint {
	return spec.Endpoint{Addr: a, Port: port, Local: true, Ready: true, Serving: true}
}

// webService: dual-stack TCP 80 and UDP 53 on pod2; an IPv6-only one.
func webServices() []spec.Service {
	return []spec.Service{
		{Name: "default/web", ClusterIPs: []netip.Addr{vip4, vip6}, Ports: []spec.ServicePort{
			{Name: "http", Protocol: spec.ProtoTCP, Port: 80, Endpoints: []spec.Endpoint{ep(pod2v4, 8080), ep(pod2v6, 8080)}},
			{Name: "dns", Protocol: spec.ProtoUDP, Port: 53, Endpoints: []spec.Endpoint{ep(pod2v4, 5353), ep(pod2v6, 5353)}},
		}},
		{Name: "default/web6", ClusterIPs: []netip.Addr{vip6o}, Ports: []spec.ServicePort{
			{Protocol: spec.ProtoTCP, Port: 443, Endpoints: []spec.Endpoint{ep(pod3v6, 8443)}},
			{Protocol: spec.ProtoUDP, Port: 443, Endpoints: []spec.Endpoint{ep(pod3v6, 8443)}},
		}},
	}
}

// pkt builds a TCP (flags != "") or UDP frame from srcMAC.
func pkt(t testing.TB, srcMAC [6]byte, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, flags string) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC[:], DstMAC: gwMAC[:], EthernetType: layers.EthernetTypeIPv4}
	var ip gopacket.NetworkLayer
	var ipl gopacket.SerializableLayer
	proto := layers.IPProtocolUDP
	if flags != "" {
		proto = layers.IPProtocolTCP
	}
	if src.Is4() {
		v := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ipl = v, v
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ipl = v, v
	}
	payload := gopacket.Payload("hello, service")
	if flags == "" {
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		u.SetNetworkLayerForChecksum(ip)
		return serialize(t, eth, ipl, u, payload)
	}
	tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 1000,
		SYN: strings.Contains(flags, "S"), ACK: strings.Contains(flags, "A"), FIN: strings.Contains(flags, "F"), RST: strings.Contains(flags, "R")}
	tc.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ipl, tc, payload)
}

type flowView struct {
	src, dst     netip.Addr
	sport, dport uint16
}

// view decodes frame b's addresses and ports, and checks every checksum
// by serializing the decoded layers again with checksums computed from
// scratch: a wrong one would differ.
func view(t testing.TB, b []byte) flowView {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	var v flowView
	var ls []gopacket.SerializableLayer
	var netl gopacket.NetworkLayer
	for _, l := range p.Layers() {
		switch x := l.(type) {
		case *layers.Ethernet:
			ls = append(ls, x)
		case *layers.IPv4:
			v.src, v.dst = netip.AddrFrom4([4]byte(x.SrcIP.To4())), netip.AddrFrom4([4]byte(x.DstIP.To4()))
			ls, netl = append(ls, x), x
		case *layers.IPv6:
			v.src, v.dst = netip.AddrFrom16([16]byte(x.SrcIP)), netip.AddrFrom16([16]byte(x.DstIP))
			ls, netl = append(ls, x), x
		case *layers.TCP:
			v.sport, v.dport = uint16(x.SrcPort), uint16(x.DstPort)
			x.SetNetworkLayerForChecksum(netl)
			ls = append(ls, x, gopacket.Payload(x.Payload))
		case *layers.UDP:
			v.sport, v.dport = uint16(x.SrcPort), uint16(x.DstPort)
			x.SetNetworkLayerForChecksum(netl)
			ls = append(ls, x, gopacket.Payload(x.Payload))
		case *layers.ICMPv4, *layers.ICMPv6:
			return v // checked by the caller
		}
	}
	again := serialize(t, ls...)
	if len(again) > len(b) && len(b) < 60 {
		again = again[:len(b)] // gopacket pads to Ethernet's minimum
	}
	if !bytes.Equal(again, b) {
		t.Errorf("frame %v: a checksum or length is wrong:\n got %x\nwant %x", v, b, again)
	}
	return v
}

// one runs frame f in on port in and returns the one frame that came out
// of port out (failing otherwise).
func (l *fakeLab) one(t testing.TB, in, out string, f []byte) flowView {
	t.Helper()
	got := l.runVector(t, in, f)
	if len(got[out]) != 1 {
		l.sw.workers[0].PublishCounters()
		t.Fatalf("%s -> %s: got %d frames out (%v), want 1; counters %s", in, out, len(got[out]), counts(got), l.natCounters())
	}
	return view(t, got[out][0])
}

func counts(m map[string][][]byte) map[string]int {
	c := map[string]int{}
	for k, v := range m {
		c[k] = len(v)
	}
	return c
}

func (l *fakeLab) natCounters() string {
	l.sw.workers[0].PublishCounters()
	c := l.sw.Counters()
	var b strings.Builder
	for i, n := range c.Drops {
		if n != 0 {
			b.WriteString(dataplane.Drop(i).String() + "=" + itoa(n) + " ")
		}
	}
	for i, n := range c.Events {
		if n != 0 && strings.HasPrefix(dataplane.Event(i).String(), "nat") {
			b.WriteString(dataplane.Event(i).String() + "=" + itoa(n) + " ")
		}
	}
	return b.String()
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func (l *fakeLab) drops(d dataplane.Drop) uint64 {
	l.sw.workers[0].PublishCounters()
	return l.sw.Counters().Drops[d]
}

func TestServiceRoundTrip(t *testing.T) {
	l := newNATLab(t, 0)
	if err := l.sw.SetServices(webServices()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name            string
		client, vip, be netip.Addr
		port, bePort    uint16
		bePod           string
		beMAC           [6]byte
		flags           string
	}{
		{"tcp4", pod1v4, vip4, pod2v4, 80, 8080, "pod2", pod2MAC, "S"},
		{"udp4", pod1v4, vip4, pod2v4, 53, 5353, "pod2", pod2MAC, ""},
		{"tcp6", pod1v6, vip6, pod2v6, 80, 8080, "pod2", pod2MAC, "S"},
		{"udp6", pod1v6, vip6, pod2v6, 53, 5353, "pod2", pod2MAC, ""},
		{"tcp6-only", pod1v6, vip6o, pod3v6, 443, 8443, "pod3", pod3MAC, "S"},
		{"udp6-only", pod1v6, vip6o, pod3v6, 443, 8443, "pod3", pod3MAC, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := l.one(t, "pod1", c.bePod, pkt(t, pod1MAC, c.client, 40000, c.vip, c.port, c.flags))
			if want := (flowView{c.client, c.be, 40000, c.bePort}); got != want {
				t.Fatalf("to the backend: %+v, want %+v", got, want)
			}
			replyFlags := ""
			if c.flags != "" {
				replyFlags = "SA"
			}
			got = l.one(t, c.bePod, "pod1", pkt(t, c.beMAC, c.be, c.bePort, c.client, 40000, replyFlags))
			if want := (flowView{c.vip, c.client, c.port, 40000}); got != want {
				t.Fatalf("the reply: %+v, want %+v", got, want)
			}
			if c.flags != "" {
				got = l.one(t, "pod1", c.bePod, pkt(t, pod1MAC, c.client, 40000, c.vip, c.port, "A"))
				if want := (flowView{c.client, c.be, 40000, c.bePort}); got != want {
					t.Fatalf("the ACK: %+v, want %+v", got, want)
				}
			}
		})
	}
	var n int
	l.sw.Conntrack().Walk(l.sw.Conntrack().Now(), func(e *conntrack.Entry) bool { n++; return true })
	if n != len(cases) {
		t.Errorf("conntrack holds %d flows, want %d", n, len(cases))
	}
}

func TestServiceNoEndpoints(t *testing.T) {
	l := newNATLab(t, 0)
	svcs := webServices()
	for i := range svcs[0].Ports {
		svcs[0].Ports[i].Endpoints = nil
	}
	if err := l.sw.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		vip   netip.Addr
		port  uint16
		flags string
	}{{vip4, 80, "S"}, {vip4, 53, ""}, {vip6, 80, "S"}, {vip6, 53, ""}} {
		client := pod1v4
		if c.vip.Is6() {
			client = pod1v6
		}
		got := l.runVector(t, "pod1", pkt(t, pod1MAC, client, 40000, c.vip, c.port, c.flags))
		if len(got["pod1"]) != 1 || len(got["pod2"]) != 0 {
			t.Fatalf("%s:%d: %v, want one reply to pod1", c.vip, c.port, counts(got))
		}
		p := decode(got["pod1"][0])
		if c.vip.Is4() {
			ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if !ok || ic.TypeCode != layers.CreateICMPv4TypeCode(3, 3) {
				t.Fatalf("%s:%d: reply %v, want ICMP port unreachable", c.vip, c.port, p)
			}
		} else {
			ic, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			if !ok || ic.TypeCode != layers.CreateICMPv6TypeCode(1, 4) {
				t.Fatalf("%s:%d: reply %v, want ICMPv6 port unreachable", c.vip, c.port, p)
			}
		}
	}
	if n := l.drops(dataplane.DropNATNoEndpoint); n != 4 {
		t.Errorf("nat-no-endpoint %d, want 4", n)
	}
	// Serving terminating endpoints take the flows when none is ready.
	svcs[0].Ports[0].Endpoints = []spec.Endpoint{{Addr: pod3v4, Port: 8080, Serving: true, Terminating: true}}
	if err := l.sw.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	if got := l.one(t, "pod1", "pod3", pkt(t, pod1MAC, pod1v4, 40001, vip4, 80, "S")); got.dst != pod3v4 {
		t.Fatalf("to a terminating endpoint: %+v", got)
	}
}

// TestServiceAffinity: with ClientIP affinity every flow of a client goes
// to one backend; without, Maglev spreads them.
func TestServiceAffinity(t *testing.T) {
	for _, aff := range []bool{false, true} {
		l := newNATLab(t, 0)
		svcs := []spec.Service{{Name: "default/aff", ClusterIPs: []netip.Addr{vip4}, Affinity: aff, Ports: []spec.ServicePort{
			{Protocol: spec.ProtoUDP, Port: 53, Endpoints: []spec.Endpoint{ep(pod2v4, 53), ep(pod3v4, 53)}}}}}
		if err := l.sw.SetServices(svcs); err != nil {
			t.Fatal(err)
		}
		seen := map[netip.Addr]int{}
		for sport := uint16(30000); sport < 30040; sport++ {
			got := l.runVector(t, "pod1", pkt(t, pod1MAC, pod1v4, sport, vip4, 53, ""))
			for _, name := range []string{"pod2", "pod3"} {
				for _, f := range got[name] {
					seen[view(t, f).dst]++
				}
			}
		}
		if aff && len(seen) != 1 || !aff && len(seen) != 2 {
			t.Errorf("affinity=%v: 40 flows went to %v", aff, seen)
		}
	}
}

// TestServiceEndpointChange: flows to backends that stay keep theirs;
// flows to a removed one are deleted; new flows avoid it.
func TestServiceEndpointChange(t *testing.T) {
	l := newNATLab(t, 0)
	svc := spec.Service{Name: "default/web", ClusterIPs: []netip.Addr{vip4}, Ports: []spec.ServicePort{
		{Protocol: spec.ProtoUDP, Port: 53, Endpoints: []spec.Endpoint{ep(pod2v4, 53), ep(pod3v4, 53)}}}}
	if err := l.sw.SetServices([]spec.Service{svc}); err != nil {
		t.Fatal(err)
	}
	backend := map[uint16]netip.Addr{}
	send := func(sport uint16) netip.Addr {
		got := l.runVector(t, "pod1", pkt(t, pod1MAC, pod1v4, sport, vip4, 53, ""))
		for _, name := range []string{"pod2", "pod3"} {
			if len(got[name]) == 1 {
				return view(t, got[name][0]).dst
			}
		}
		t.Fatalf("sport %d: %v", sport, counts(got))
		return netip.Addr{}
	}
	for sport := uint16(30000); sport < 30040; sport++ {
		backend[sport] = send(sport)
	}
	svc.Ports[0].Endpoints = []spec.Endpoint{ep(pod2v4, 53)} // pod3 leaves
	if err := l.sw.SetServices([]spec.Service{svc}); err != nil {
		t.Fatal(err)
	}
	var moved, kept int
	for sport, was := range backend {
		if was == pod2v4 {
			// Established to a remaining backend: the same flow, still
			// to pod2 (and its reply is translated back).
			if got := send(sport); got != pod2v4 {
				t.Errorf("flow %d to pod2 now goes to %s", sport, got)
			}
			r := l.one(t, "pod2", "pod1", pkt(t, pod2MAC, pod2v4, 53, pod1v4, sport, ""))
			if r.src != vip4 {
				t.Errorf("reply of flow %d from %s", sport, r.src)
			}
			kept++
			continue
		}
		// The removed backend's reply finds no flow: it is not
		// translated (the client ignores it, as behind kube-proxy).
		got := l.runVector(t, "pod3", pkt(t, pod3MAC, pod3v4, 53, pod1v4, sport, ""))
		if len(got["pod1"]) == 1 && view(t, got["pod1"][0]).src == vip4 {
			t.Errorf("flow %d to the removed backend still translated", sport)
		}
		if got := send(sport); got != pod2v4 {
			t.Errorf("new flow %d went to %s", sport, got)
		}
		moved++
	}
	if kept == 0 || moved == 0 {
		t.Fatalf("kept %d moved %d: want both", kept, moved)
	}
}

func TestServiceHairpin(t *testing.T) {
	l := newNATLab(t, 0)
	if err := l.sw.SetServices(webServices()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ vip, be netip.Addr }{{vip4, pod2v4}, {vip6, pod2v6}} {
		got := l.one(t, "pod2", "pod2", pkt(t, pod2MAC, c.be, 40000, c.vip, 80, "S"))
		if got.src != c.vip || got.dst != c.be || got.dport != 8080 || got.sport < DefaultSNATPortMin {
			t.Fatalf("hairpin to %s: %+v, want from the VIP, port in the SNAT range", c.vip, got)
		}
		back := l.one(t, "pod2", "pod2", pkt(t, pod2MAC, c.be, 8080, c.vip, got.sport, "SA"))
		if want := (flowView{c.vip, c.be, 80, 40000}); back != want {
			t.Fatalf("hairpin reply %+v, want %+v", back, want)
		}
	}
}

func TestNATOutgoing(t *testing.T) {
	l := newNATLab(t, 0)
	if err := l.sw.SetNATConfig(spec.NATConfig{
		Outgoing: []netip.Prefix{netip.MustParsePrefix("198.18.10.0/24"), netip.MustParsePrefix("fd00:10::/64")},
		Internal: []netip.Prefix{netip.MustParsePrefix("198.18.10.0/24"), netip.MustParsePrefix("fd00:10::/64"), netip.MustParsePrefix("198.18.0.0/24")},
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		client, node, far netip.Addr
		flags             string
	}{{pod1v4, node4, far4, "S"}, {pod1v4, node4, far4, ""}, {pod1v6, node6, far6, "S"}, {pod1v6, node6, far6, ""}} {
		got := l.one(t, "pod1", "up", pkt(t, pod1MAC, c.client, 40000, c.far, 53, c.flags))
		if got.src != c.node || got.dst != c.far || got.dport != 53 || got.sport < DefaultSNATPortMin {
			t.Fatalf("%v out: %+v, want from %s, a port in 61000-65535", c, got, c.node)
		}
		rf := ""
		if c.flags != "" {
			rf = "SA"
		}
		back := l.one(t, "up", "pod1", pkt(t, routerM, c.far, 53, c.node, got.sport, rf))
		if want := (flowView{c.far, c.client, 53, 40000}); back != want {
			t.Fatalf("%v reply %+v, want %+v", c, back, want)
		}
	}
	// Internal destinations keep the pod's address.
	if got := l.one(t, "pod1", "up", pkt(t, pod1MAC, pod1v4, 40000, netip.MustParseAddr("198.18.0.254"), 53, "")); got.src != pod1v4 {
		t.Errorf("to an internal destination: from %s, want the pod's", got.src)
	}
}

// TestConntrackFull: when the table is full of established flows, new
// flows are dropped and counted and the established ones keep working.
func TestConntrackFull(t *testing.T) {
	const size = 8
	l := newNATLab(t, size)
	if err := l.sw.SetServices(webServices()); err != nil {
		t.Fatal(err)
	}
	for sport := uint16(1000); sport < 1000+size; sport++ {
		l.one(t, "pod1", "pod2", pkt(t, pod1MAC, pod1v4, sport, vip4, 53, ""))
		l.one(t, "pod2", "pod1", pkt(t, pod2MAC, pod2v4, 5353, pod1v4, sport, "")) // replied: not embryonic
	}
	got := l.runVector(t, "pod1", pkt(t, pod1MAC, pod1v4, 2000, vip4, 53, ""))
	if len(got["pod2"]) != 0 {
		t.Fatalf("a new flow got through a full table")
	}
	if n := l.drops(dataplane.DropNATTableFull); n != 1 {
		t.Fatalf("nat-table-full %d, want 1 (%s)", n, l.natCounters())
	}
	for sport := uint16(1000); sport < 1000+size; sport++ {
		if got := l.one(t, "pod1", "pod2", pkt(t, pod1MAC, pod1v4, sport, vip4, 53, "")); got.dst != pod2v4 {
			t.Fatalf("established flow %d: %+v", sport, got)
		}
	}
}

// TestServiceMalformed: what nat.Parse refuses to a VIP is dropped and
// counted by its reason, and nothing of it leaves.
func TestServiceMalformed(t *testing.T) {
	l := newNATLab(t, 0)
	if err := l.sw.SetServices(webServices()); err != nil {
		t.Fatal(err)
	}
	frag := pkt(t, pod1MAC, pod1v4, 40000, vip4, 80, "S")
	frag[14+6] |= 0x20 // more fragments
	fixIPv4Sum(frag)
	trunc := pkt(t, pod1MAC, pod1v4, 40000, vip4, 80, "S")
	trunc = trunc[:14+20+10]
	trunc[14+2], trunc[14+3] = 0, 30 // IP total length: 10 bytes of TCP
	fixIPv4Sum(trunc)
	badICMP := serialize(t,
		&layers.Ethernet{SrcMAC: pod1MAC[:], DstMAC: gwMAC[:], EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: pod1v6.AsSlice(), DstIP: vip6.AsSlice()},
		gopacket.Payload([]byte{128, 0, 0x12, 0x34, 0, 1, 0, 1})) // echo request, wrong checksum
	got := l.runVector(t, "pod1", frag, trunc, badICMP)
	for name, fs := range got {
		if len(fs) != 0 {
			t.Errorf("%d frames left by %s", len(fs), name)
		}
	}
	for _, d := range []dataplane.Drop{dataplane.DropNATFragment, dataplane.DropNATTruncated, dataplane.DropNATBadChecksum} {
		if n := l.drops(d); n != 1 {
			t.Errorf("%s: %d, want 1 (%s)", d, n, l.natCounters())
		}
	}
}

func fixIPv4Sum(f []byte) {
	ip := f[14:34]
	ip[10], ip[11] = 0, 0
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	ip[10], ip[11] = byte(^s>>8), byte(^s)
}

func TestSetServicesErrors(t *testing.T) {
	l := newNATLab(t, 0)
	svcs := webServices()
	svcs[1].ClusterIPs = []netip.Addr{vip6} // the other's ClusterIP, port 443 is free there: fine
	svcs[1].Ports[0].Port = 80              // but TCP 80 is taken
	err := l.sw.SetServices(svcs)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "services[1] (default/web6): ports[0].port: 80") {
		t.Fatalf("got %v", err)
	}
	bad := webServices()
	bad[0].Ports[0].Protocol = spec.ProtoSCTP
	if err := l.sw.SetServices(bad); err == nil || !strings.Contains(err.Error(), "services[0] (default/web): ports[0].protocol: \"SCTP\": not supported") {
		t.Fatalf("got %v", err)
	}
	if l.sw.Services() != nil {
		t.Fatalf("a refused set was kept")
	}
	if err := l.sw.SetNATConfig(spec.NATConfig{PortMin: 100, PortMax: 200}); err == nil || !strings.Contains(err.Error(), "nat: portMin: 100") {
		t.Fatalf("got %v", err)
	}
}

// natBench is newVectorBench with the web services set: frames from pod1
// to the dual-stack ClusterIP's UDP port, to pod2 once translated.
func natBench(t testing.TB, v6 bool) *vectorBench {
	vb := newVectorBench(t, v6, 64)
	if err := vb.sw.SetServices(webServices()); err != nil {
		t.Fatal(err)
	}
	src, dst := pod1v4, vip4
	if v6 {
		src, dst = pod1v6, vip6
	}
	vb.frames = [][]byte{pkt(t, pod1MAC, src, 40000, dst, 53, "")}
	return vb
}

// newFlows makes every frame of the next vector a new flow: a fresh UDP
// source port (IPv4, checksum off).
func (vb *vectorBench) newFlows(next *uint16) {
	f := vb.frames[0]
	*next++
	f[34], f[35] = byte(*next>>8), byte(*next)
	f[40], f[41] = 0, 0
}

func TestNATZeroAlloc(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		vb := natBench(t, v6)
		vb.run()
		if a := testing.AllocsPerRun(100, vb.run); a != 0 {
			t.Errorf("v6=%v: %v allocations per vector of a translated flow, want 0", v6, a)
		}
		vb.w.PublishCounters()
		c := vb.sw.Counters()
		if got, want := c.Events[dataplane.EvNATTranslated], uint64(102*64); got != want {
			t.Errorf("v6=%v: translated %d frames, want %d (drops %v)", v6, got, want, c.Drops)
		}
	}
	// Flow creation (Maglev, Create) allocates nothing either.
	vb := natBench(t, false)
	var sport uint16 = 1000
	vb.run()
	if a := testing.AllocsPerRun(100, func() {
		vb.newFlows(&sport)
		vb.run()
	}); a != 0 {
		t.Errorf("%v allocations per vector of new flows, want 0", a)
	}
	vb.w.PublishCounters()
	if c := vb.sw.Counters(); c.Events[dataplane.EvNATNewDNAT] != 102 {
		t.Errorf("created %d flows, want 102 (drops %v)", c.Events[dataplane.EvNATNewDNAT], c.Drops)
	}
}

// BenchmarkPipelineNATIPv4 / IPv6: BenchmarkPipelineIPv4's vector, to a
// ClusterIP: every frame looked up in conntrack and translated.
func BenchmarkPipelineNATIPv4(b *testing.B) { benchNAT(b, false) }
func BenchmarkPipelineNATIPv6(b *testing.B) { benchNAT(b, true) }

func benchNAT(b *testing.B, v6 bool) {
	vb := natBench(b, v6)
	vb.run()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vb.run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vb.vec)), "ns/packet")
}

// BenchmarkPipelineNATPlainIPv4: plain pod-to-pod forwarding on a switch
// with services configured (the cost NAT adds to untranslated traffic).
func BenchmarkPipelineNATPlainIPv4(b *testing.B) {
	vb := newVectorBench(b, false, 64)
	if err := vb.sw.SetServices(webServices()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vb.run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vb.vec)), "ns/packet")
}

// TestServiceFastPath: with the XDP fast path on, a backend's reply to a
// client pod is not forwarded by the pod's BPF program (which would skip
// the reverse DNAT) but reaches the workers, which translate it; other
// traffic of the backend pod stays fast; a backend that leaves is fast
// again.
func TestServiceFastPath(t *testing.T) {
	fp, err := xdpprog.NewFastPath(64)
	skipIfNotSupported(t, "fast path maps", err)
	t.Cleanup(func() { fp.Close() })
	l := newNATLabWith(t, 0, fp)
	if _, ok := fp.Has(pod1v4); !ok {
		t.Fatal("pod1 is not a fast-path destination")
	}
	prog, err := xdpprog.New(xdpprog.Pod, xdpprog.Options{MissAction: xdpprog.Drop, FastPath: fp})
	skipIfNotSupported(t, "XDP program", err)
	defer prog.Close()
	verdict := func(f []byte) uint32 {
		t.Helper()
		out := make([]byte, len(f)+64)
		v, err := prog.Prog().Run(&ebpf.RunOptions{Data: f, DataOut: out})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	reply4 := pkt(t, pod2MAC, pod2v4, 8080, pod1v4, 40000, "SA")
	reply6 := pkt(t, pod2MAC, pod2v6, 5353, pod1v6, 40000, "")
	other := pkt(t, pod2MAC, pod2v4, 9999, pod1v4, 40000, "SA")
	if v := verdict(reply4); v != xdpprog.Redirect {
		t.Fatalf("before services: verdict %d, want the fast path's redirect", v)
	}
	if err := l.sw.SetServices(webServices()); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][]byte{reply4, reply6} {
		if v := verdict(f); v == xdpprog.Redirect {
			t.Errorf("a backend's reply %+v is forwarded by the fast path", view(t, f))
		}
	}
	if v := verdict(other); v != xdpprog.Redirect {
		t.Errorf("the backend pod's other traffic: verdict %d, want the fast path's", v)
	}
	// What the program passed on, the workers translate.
	l.one(t, "pod1", "pod2", pkt(t, pod1MAC, pod1v4, 40000, vip4, 80, "S"))
	if got := l.one(t, "pod2", "pod1", reply4); got.src != vip4 || got.sport != 80 {
		t.Errorf("the reply through the workers: %+v", got)
	}
	svcs := webServices()
	svcs[0].Ports[0].Endpoints = nil
	if err := l.sw.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	if fp.Punted(netip.AddrPortFrom(pod2v4, 8080), 6) || !fp.Punted(netip.AddrPortFrom(pod2v4, 5353), 17) {
		t.Errorf("after pod2:8080 left: punted %v, pod2:5353 %v", fp.Punted(netip.AddrPortFrom(pod2v4, 8080), 6), fp.Punted(netip.AddrPortFrom(pod2v4, 5353), 17))
	}
	if v := verdict(reply4); v != xdpprog.Redirect {
		t.Errorf("a former backend: verdict %d, want the fast path's", v)
	}
}

// TestServiceNodePort: from outside to a node address's NodePort: a
// local backend sees the client's address; a remote one the node's (SNAT,
// so that its reply comes back here); ExternalLocal keeps to local ones.
func TestServiceNodePort(t *testing.T) {
	l := newNATLab(t, 0)
	remote := netip.MustParseAddr("198.18.0.50")
	remoteMAC := [6]byte{0x02, 0xbb, 0, 0, 0, 50}
	l.sw.nbr.update(neighUpdate(l.sw.byName["up"].ifindex, remote, remoteMAC))
	np := func(eps ...spec.Endpoint) []spec.Service {
		return []spec.Service{{Name: "default/np", ClusterIPs: []netip.Addr{vip4}, Ports: []spec.ServicePort{
			{Protocol: spec.ProtoTCP, Port: 80, NodePort: 30080, Endpoints: eps}}}}
	}
	if err := l.sw.SetServices(np(ep(pod2v4, 8080))); err != nil {
		t.Fatal(err)
	}
	got := l.one(t, "up", "pod2", pkt(t, routerM, far4, 5000, node4, 30080, "S"))
	if want := (flowView{far4, pod2v4, 5000, 8080}); got != want {
		t.Fatalf("to a local backend: %+v, want %+v", got, want)
	}
	got = l.one(t, "pod2", "up", pkt(t, pod2MAC, pod2v4, 8080, far4, 5000, "SA"))
	if want := (flowView{node4, far4, 30080, 5000}); got != want {
		t.Fatalf("its reply: %+v, want %+v", got, want)
	}
	remoteEP := spec.Endpoint{Addr: remote, Port: 8080, Ready: true, Serving: true}
	if err := l.sw.SetServices(np(remoteEP)); err != nil {
		t.Fatal(err)
	}
	got = l.one(t, "up", "up", pkt(t, routerM, far4, 5001, node4, 30080, "S"))
	if got.src != node4 || got.dst != remote || got.dport != 8080 || got.sport < DefaultSNATPortMin {
		t.Fatalf("to a remote backend: %+v, want from the node, a port in the SNAT range", got)
	}
	back := l.one(t, "up", "up", pkt(t, remoteMAC, remote, 8080, node4, got.sport, "SA"))
	if want := (flowView{node4, far4, 30080, 5001}); back != want {
		t.Fatalf("the remote backend's reply: %+v, want %+v", back, want)
	}
	svcs := np(remoteEP)
	svcs[0].ExternalLocal = true
	if err := l.sw.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	l.runVector(t, "up", pkt(t, routerM, far4, 5002, node4, 30080, "S"))
	if n := l.drops(dataplane.DropNATNoEndpoint); n != 1 {
		t.Errorf("ExternalLocal without a local endpoint: nat-no-endpoint %d, want 1", n)
	}
}
