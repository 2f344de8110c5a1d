package vswitch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
)

// The VXLAN test node: an uplink on 198.18.0.0/24 and fd00:18::/64 (the
// VTEP addresses are its own), pod1 behind it, and the other node's VTEP
// on the same subnets, its pod blocks routed into the tunnel: IPv4 over
// IPv4, IPv6 over IPv6, and one IPv6 block over IPv4 (IPv6 pods on an
// IPv4 underlay).
// vxlanTTL is the outer TTL and hop limit the switch must send: Linux's
// for a vxlan device.
const vxlanTTL = 64

var (
	vtepMAC    = [6]byte{0x02, 0x58, 0x03, 0, 0, 1}
	upMAC      = [6]byte{0x02, 0xaa, 0, 0, 0, 1}
	peerMAC    = [6]byte{0x02, 0xbb, 0, 0, 0, 2} // the other node's uplink
	peerVTEP   = [6]byte{0x02, 0x58, 0x03, 0, 1, 1}
	local4     = netip.MustParseAddr("198.18.0.1")
	local6     = netip.MustParseAddr("fd00:18::1")
	remote4    = netip.MustParseAddr("198.18.0.12")
	remote6    = netip.MustParseAddr("fd00:18::12")
	remotePod4 = netip.MustParseAddr("198.19.1.5")
	remotePod6 = netip.MustParseAddr("fd00:19:1::5")
	remoteV6v4 = netip.MustParseAddr("fd00:19:2::5") // routed over the IPv4 underlay
)

type vxlanLab struct {
	*fakeLab
	up *portState
}

func newVXLANLab(t testing.TB, offload map[string]bool) *vxlanLab {
	t.Helper()
	return newVXLANLabOn(t, offload, []netip.Prefix{netip.PrefixFrom(local4, 24), netip.PrefixFrom(local6, 64)})
}

// nodeOpener opens fake ports as a node's: the uplink with upMAC and
// ifindex 1 (lo, which the fast path's devmap takes as a device that
// exists), pods with 02:ff:0:0:0:n; those named in offload take
// super-frames.
func (l *fakeLab) nodeOpener(offload map[string]bool) porttest.Driver {
	return func(req port.OpenRequest) (port.Opened, error) {
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
		mac, idx := [6]byte{0x02, 0xff, 0, 0, 0, byte(len(l.ports))}, 10+len(l.ports)
		if pc.Kind == spec.PortUplink {
			mac, idx = upMAC, 1
		}
		return port.Opened{Port: p, MAC: mac, MTU: 1500, Ifindex: idx}, nil
	}
}

// newVXLANLabOn is newVXLANLab with the uplink's addresses given; the
// IPv6 routes need an IPv6 one.
func newVXLANLabOn(t testing.TB, offload map[string]bool, upAddrs []netip.Prefix) *vxlanLab {
	t.Helper()
	return newVXLANLabWith(t, offload, upAddrs, nil)
}

// newVXLANLabFast is newVXLANLab with the fast path on, forwarding with
// fast.
func newVXLANLabFast(t testing.TB, fast *xdpprog.FastPath) *vxlanLab {
	t.Helper()
	return newVXLANLabWith(t, nil, []netip.Prefix{netip.PrefixFrom(local4, 24), netip.PrefixFrom(local6, 64)}, fast)
}

func newVXLANLabWith(t testing.TB, offload map[string]bool, upAddrs []netip.Prefix, fast *xdpprog.FastPath) *vxlanLab {
	t.Helper()
	l := &fakeLab{ports: map[string]*porttest.FakePort{}, offload: map[string]*porttest.FakeOffloadPort{}}
	opener := l.nodeOpener(offload)
	cfg := Config{
		VXLAN: &VXLANConfig{MAC: vtepMAC},
		Ports: []spec.PortConfig{
			{Name: "up", Kind: spec.PortUplink, Addrs: upAddrs},
			{Name: "pod1", Kind: spec.PortPod, PeerMAC: pod1MAC, Addrs: []netip.Prefix{netip.PrefixFrom(pod1v4, 32), netip.PrefixFrom(pod1v6, 128)}},
		},
		Routes: []spec.Route{
			{Prefix: netip.MustParsePrefix("198.19.1.0/24"), VXLAN: &spec.VXLANRoute{Remote: remote4, MAC: peerVTEP}},
			{Prefix: netip.MustParsePrefix("fd00:19:2::/64"), VXLAN: &spec.VXLANRoute{Remote: remote4, MAC: peerVTEP}},
		},
	}
	for _, a := range upAddrs {
		if a.Addr().Is6() {
			cfg.Routes = append(cfg.Routes, spec.Route{Prefix: netip.MustParsePrefix("fd00:19:1::/64"), VXLAN: &spec.VXLANRoute{Remote: remote6, MAC: peerVTEP}})
			break
		}
	}
	opts := []Option{WithDrivers(porttest.Registry(opener))}
	if fast != nil {
		cfg.XDPFastPath = true
		opts = append(opts, WithFastPath(fast))
	}
	return &vxlanLab{fakeLab: l, up: l.startNode(t, cfg, opts...)}
}

// startNode starts l's switch with cfg (and opts, after withoutKernel) and
// resolves the other node's uplink (remote4, remote6) on "up", as the
// neighbour monitor would; it returns "up".
func (l *fakeLab) startNode(t testing.TB, cfg Config, opts ...Option) *portState {
	t.Helper()
	sw, err := New(cfg, nil, append([]Option{withoutKernel()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	l.sw = sw
	up := sw.byName["up"]
	sw.nbr.update(neighUpdate(up.ifindex, remote4, peerMAC))
	sw.nbr.update(neighUpdate(up.ifindex, remote6, peerMAC))
	return up
}

// vxlanFrame wraps inner in the headers the other node's kernel would
// write: its uplink to ours, its VTEP to ours, with a UDP checksum over
// IPv6 (and none over IPv4, as Linux sends by default).
func vxlanFrame(t testing.TB, inner []byte, v6 bool, vni uint32) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: peerMAC[:], DstMAC: upMAC[:], EthernetType: layers.EthernetTypeIPv4}
	u := &layers.UDP{SrcPort: 51000, DstPort: 4789}
	vx := &layers.VXLAN{ValidIDFlag: true, VNI: vni}
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: remote6.AsSlice(), DstIP: local6.AsSlice()}
		u.SetNetworkLayerForChecksum(ip)
		return serialize(t, eth, ip, u, vx, gopacket.Payload(inner))
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: remote4.AsSlice(), DstIP: local4.AsSlice()}
	u.SetNetworkLayerForChecksum(ip)
	b := serialize(t, eth, ip, u, vx, gopacket.Payload(inner))
	b[encap.EthernetLen+encap.IPv4MinLen+6], b[encap.EthernetLen+encap.IPv4MinLen+7] = 0, 0 // no checksum
	return b
}

// innerTo is a frame from a pod on the other node to dst, as its node's
// VTEP sends it into the tunnel.
func innerTo(t testing.TB, src, dst netip.Addr, ttl uint8) []byte {
	var f []byte
	if dst.Is4() {
		f = udp4(t, peerVTEP, src, dst, ttl, 100)
	} else {
		f = udp6(t, peerVTEP, src, dst, ttl, 100)
	}
	copy(f[0:6], vtepMAC[:])
	return f
}

// checkEncap checks that frame is a VXLAN packet from this node's VTEP to
// remote, carrying an inner frame addressed VTEP to VTEP, and returns the
// inner frame.
func checkEncap(t *testing.T, frame []byte, remote netip.Addr) gopacket.Packet {
	t.Helper()
	pkt := decode(frame)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if [6]byte(eth.DstMAC) != peerMAC || [6]byte(eth.SrcMAC) != upMAC {
		t.Errorf("outer MACs %s -> %s, want %x -> %x", eth.SrcMAC, eth.DstMAC, upMAC, peerMAC)
	}
	var src, dst net.IP
	if remote.Is4() {
		ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("no outer IPv4: %v", pkt)
		}
		src, dst = ip.SrcIP, ip.DstIP
		if ip.TTL != vxlanTTL || ip.Flags&layers.IPv4DontFragment == 0 {
			t.Errorf("outer TTL %d flags %v, want %d DF", ip.TTL, ip.Flags, vxlanTTL)
		}
		if encap.IPv4(frame[encap.EthernetLen:]).CalculateChecksum() != 0xffff {
			t.Errorf("outer IPv4 header checksum wrong")
		}
	} else {
		ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok {
			t.Fatalf("no outer IPv6: %v", pkt)
		}
		src, dst = ip.SrcIP, ip.DstIP
		if ip.HopLimit != vxlanTTL {
			t.Errorf("outer hop limit %d", ip.HopLimit)
		}
	}
	wantSrc := local4
	if remote.Is6() {
		wantSrc = local6
	}
	if s, _ := netip.AddrFromSlice(src); s.Unmap() != wantSrc {
		t.Errorf("outer source %s, want %s", src, wantSrc)
	}
	if d, _ := netip.AddrFromSlice(dst); d.Unmap() != remote {
		t.Errorf("outer destination %s, want %s", dst, remote)
	}
	u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if u.DstPort != 4789 || u.SrcPort < encap.VXLANSrcPortMin {
		t.Errorf("outer UDP %d -> %d", u.SrcPort, u.DstPort)
	}
	l4 := encap.EthernetLen + encap.IPv4MinLen
	if remote.Is6() {
		l4 = encap.EthernetLen + encap.IPv6Len
		o := encap.IPv6(frame[encap.EthernetLen:])
		if got := encap.UDPChecksum6(o.Src(), o.Dst(), frame[l4:]); got != u.Checksum {
			t.Errorf("outer UDP checksum %#04x, want %#04x", u.Checksum, got)
		}
	} else if u.Checksum != 0 {
		t.Errorf("outer UDP checksum %#04x over IPv4, want 0", u.Checksum)
	}
	vx, ok := pkt.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if !ok || !vx.ValidIDFlag || vx.VNI != DefaultVNI {
		t.Fatalf("VXLAN header %+v, want VNI %d", vx, DefaultVNI)
	}
	inner := decode(vx.Payload)
	ie := inner.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if [6]byte(ie.DstMAC) != peerVTEP || [6]byte(ie.SrcMAC) != vtepMAC {
		t.Errorf("inner MACs %s -> %s, want %x -> %x", ie.SrcMAC, ie.DstMAC, vtepMAC, peerVTEP)
	}
	return inner
}

func TestVXLANEncap(t *testing.T) {
	l := newVXLANLab(t, nil)
	for _, tc := range []struct {
		dst, remote netip.Addr
	}{
		{remotePod4, remote4},
		{remotePod6, remote6},
		{remoteV6v4, remote4},
	} {
		var f []byte
		if tc.dst.Is4() {
			f = udp4(t, pod1MAC, pod1v4, tc.dst, 64, 100)
		} else {
			f = udp6(t, pod1MAC, pod1v6, tc.dst, 64, 100)
		}
		out := l.runVector(t, "pod1", f)
		if len(out["up"]) != 1 {
			t.Fatalf("%s: %d frames on the uplink, want 1 (counters %+v)", tc.dst, len(out["up"]), l.sw.Counters())
		}
		inner := checkEncap(t, out["up"][0], tc.remote)
		if tc.dst.Is4() {
			ip := inner.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if ip.TTL != 63 || !bytes.Equal(ip.DstIP.To4(), tc.dst.AsSlice()) {
				t.Errorf("inner TTL %d dst %s", ip.TTL, ip.DstIP)
			}
		} else {
			ip := inner.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if ip.HopLimit != 63 || !bytes.Equal(ip.DstIP, tc.dst.AsSlice()) {
				t.Errorf("inner hop limit %d dst %s", ip.HopLimit, ip.DstIP)
			}
		}
		if el := inner.ErrorLayer(); el != nil {
			t.Errorf("inner frame: %v", el.Error())
		}
		if udp, ok := inner.Layer(layers.LayerTypeUDP).(*layers.UDP); !ok || len(udp.Payload) != 100 {
			t.Errorf("inner payload lost")
		}
	}
	if c := l.sw.Counters(); c.Events[dataplane.EvVXLANEncap] != 3 {
		t.Errorf("vxlan-encap %d, want 3", c.Events[dataplane.EvVXLANEncap])
	}
}

func TestVXLANDecap(t *testing.T) {
	l := newVXLANLab(t, nil)
	for _, tc := range []struct {
		name      string
		src, dst  netip.Addr
		outerIPv6 bool
	}{
		{"v4 in v4", remotePod4, pod1v4, false},
		{"v6 in v6", remotePod6, pod1v6, true},
		{"v6 in v4", remoteV6v4, pod1v6, false},
	} {
		out := l.runVector(t, "up", vxlanFrame(t, innerTo(t, tc.src, tc.dst, 64), tc.outerIPv6, DefaultVNI))
		if len(out["pod1"]) != 1 {
			t.Fatalf("%s: %d frames to pod1, want 1 (counters %+v)", tc.name, len(out["pod1"]), l.sw.Counters())
		}
		pkt := decode(out["pod1"][0])
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("%s: %v", tc.name, el.Error())
		}
		eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if [6]byte(eth.DstMAC) != pod1MAC || [6]byte(eth.SrcMAC) != gwMAC {
			t.Errorf("%s: MACs %s -> %s", tc.name, eth.SrcMAC, eth.DstMAC)
		}
		if n := len(out["pod1"][0]); n != encap.EthernetLen+map[bool]int{false: 20, true: 40}[tc.dst.Is6()]+8+100 {
			t.Errorf("%s: %d bytes to the pod", tc.name, n)
		}
	}
	c := l.sw.Counters()
	if c.Events[dataplane.EvVXLANDecap] != 3 || c.Events[dataplane.EvForwarded4] != 1 || c.Events[dataplane.EvForwarded6] != 2 {
		t.Errorf("decap %d forwarded %d/%d, want 3, 1/2", c.Events[dataplane.EvVXLANDecap], c.Events[dataplane.EvForwarded4], c.Events[dataplane.EvForwarded6])
	}
}

// TestVXLANBadInput: what is wrong is dropped and counted by reason;
// UDP to another port of the node is not VXLAN's business.
func TestVXLANBadInput(t *testing.T) {
	l := newVXLANLab(t, nil)
	good := func() []byte { return vxlanFrame(t, innerTo(t, remotePod4, pod1v4, 64), false, DefaultVNI) }
	good6 := func() []byte { return vxlanFrame(t, innerTo(t, remotePod6, pod1v6, 64), true, DefaultVNI) }
	l4 := encap.EthernetLen + encap.IPv4MinLen
	l6 := encap.EthernetLen + encap.IPv6Len
	cases := []struct {
		name  string
		frame func() []byte
		drop  dataplane.Drop
	}{
		{"other VNI", func() []byte { return vxlanFrame(t, innerTo(t, remotePod4, pod1v4, 64), false, 7) }, dataplane.DropVXLANVNI},
		{"inner MAC not ours", func() []byte {
			b := good()
			b[l4+16] ^= 0x10
			return b
		}, dataplane.DropVXLANMAC},
		{"no I flag", func() []byte {
			b := good()
			b[l4+8] = 0
			return b
		}, dataplane.DropBadVXLAN},
		{"bad IPv4 UDP checksum", func() []byte {
			b := good()
			b[l4+6], b[l4+7] = 0x12, 0x34
			return b
		}, dataplane.DropBadVXLAN},
		{"zero IPv6 UDP checksum", func() []byte {
			b := good6()
			b[l6+6], b[l6+7] = 0, 0
			return b
		}, dataplane.DropBadVXLAN},
		{"bad IPv6 UDP checksum", func() []byte {
			b := good6()
			b[l6+6] ^= 1
			return b
		}, dataplane.DropBadVXLAN},
		{"UDP length past the packet", func() []byte {
			b := good()
			b[l4+4], b[l4+5] = 0xff, 0xff
			return b
		}, dataplane.DropBadVXLAN},
		{"no inner frame", func() []byte {
			b := vxlanFrame(t, []byte{1, 2, 3}, false, DefaultVNI)
			return b
		}, dataplane.DropBadVXLAN},
		{"fragment", func() []byte {
			b := good()
			ip := encap.IPv4(b[encap.EthernetLen:])
			b[encap.EthernetLen+6] |= 0x20 // more fragments
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
			return b
		}, dataplane.DropBadVXLAN},
		{"inner TTL 1", func() []byte { return vxlanFrame(t, innerTo(t, remotePod4, pod1v4, 1), false, DefaultVNI) }, dataplane.DropTTL},
		{"inner garbage", func() []byte {
			in := innerTo(t, remotePod4, pod1v4, 64)
			in[encap.EthernetLen] = 0x45 + 0x10 // version 5
			return vxlanFrame(t, in, false, DefaultVNI)
		}, dataplane.DropBadL3},
	}
	for _, tc := range cases {
		before := l.sw.Counters()
		free := l.sw.workers[0].Umem().FreeCount()
		out := l.runVector(t, "up", tc.frame())
		after := l.sw.Counters()
		if len(out["pod1"]) != 0 {
			t.Errorf("%s: forwarded to the pod", tc.name)
		}
		if got := after.Drops[tc.drop] - before.Drops[tc.drop]; got != 1 {
			t.Errorf("%s: %s counted %d times, want 1 (drops %v)", tc.name, tc.drop, got, after.Drops)
		}
		// Sent frames are freed by the fake port; nothing may leak.
		if got := l.sw.workers[0].Umem().FreeCount(); got != free {
			t.Errorf("%s: %d free frames after, %d before", tc.name, got, free)
		}
	}
	// UDP to the node on another port goes where the node's address
	// routes (the host; no host port here: punt-no-host), not to VXLAN.
	other := vxlanFrame(t, innerTo(t, remotePod4, pod1v4, 64), false, DefaultVNI)
	other[l4+2], other[l4+3] = 0x12, 0x34
	before := l.sw.Counters()
	l.runVector(t, "up", other)
	after := l.sw.Counters()
	if after.Drops[dataplane.DropPunt]-before.Drops[dataplane.DropPunt] != 1 || after.Events[dataplane.EvVXLANDecap] != before.Events[dataplane.EvVXLANDecap] {
		t.Errorf("UDP to another port: punt %d decap %d", after.Drops[dataplane.DropPunt]-before.Drops[dataplane.DropPunt], after.Events[dataplane.EvVXLANDecap]-before.Events[dataplane.EvVXLANDecap])
	}
}

// TestVXLANErrorsGoBackThroughTheTunnel: an ICMP error about a packet
// that came out of the tunnel is routed back into it.
func TestVXLANErrorsGoBackThroughTheTunnel(t *testing.T) {
	l := newVXLANLab(t, nil)
	out := l.runVector(t, "up", vxlanFrame(t, innerTo(t, remotePod4, pod1v4, 1), false, DefaultVNI))
	if len(out["up"]) != 1 || len(out["pod1"]) != 0 {
		t.Fatalf("%d frames back on the uplink, %d to the pod; want 1, 0", len(out["up"]), len(out["pod1"]))
	}
	inner := checkEncap(t, out["up"][0], remote4)
	ic, ok := inner.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || ic.TypeCode.Type() != layers.ICMPv4TypeTimeExceeded {
		t.Fatalf("inner %v, want ICMP time exceeded", inner)
	}
	ip := inner.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !bytes.Equal(ip.SrcIP.To4(), local4.AsSlice()) || !bytes.Equal(ip.DstIP.To4(), remotePod4.AsSlice()) {
		t.Errorf("error %s -> %s, want %s -> %s", ip.SrcIP, ip.DstIP, local4, remotePod4)
	}
	// The same for IPv6, over the IPv6 underlay.
	out = l.runVector(t, "up", vxlanFrame(t, innerTo(t, remotePod6, pod1v6, 1), true, DefaultVNI))
	if len(out["up"]) != 1 {
		t.Fatalf("v6: %d frames back on the uplink, want 1", len(out["up"]))
	}
	inner = checkEncap(t, out["up"][0], remote6)
	if ic, ok := inner.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); !ok || ic.TypeCode.Type() != layers.ICMPv6TypeTimeExceeded {
		t.Fatalf("v6 inner %v, want ICMPv6 time exceeded", inner)
	}
}

// TestVXLANErrorSourceWithoutVTEP6: on a node with no IPv6 address, IPv6
// pods ride IPv4 VXLAN, and an ICMPv6 error about a packet out of the
// tunnel comes from the pods' gateway, back through the tunnel.
func TestVXLANErrorSourceWithoutVTEP6(t *testing.T) {
	l := newVXLANLabOn(t, nil, []netip.Prefix{netip.PrefixFrom(local4, 24)})
	out := l.runVector(t, "up", vxlanFrame(t, innerTo(t, remoteV6v4, pod1v6, 1), false, DefaultVNI))
	if len(out["up"]) != 1 {
		t.Fatalf("%d frames back on the uplink, want 1 (counters %+v)", len(out["up"]), l.sw.Counters())
	}
	inner := checkEncap(t, out["up"][0], remote4)
	ip, ok := inner.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if !ok || !bytes.Equal(ip.SrcIP, DefaultGatewayV6.AsSlice()) || !bytes.Equal(ip.DstIP, remoteV6v4.AsSlice()) {
		t.Fatalf("error %v, want from %s to %s", inner, DefaultGatewayV6, remoteV6v4)
	}
	if ic, ok := inner.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); !ok || ic.TypeCode.Type() != layers.ICMPv6TypeTimeExceeded {
		t.Fatalf("inner %v, want ICMPv6 time exceeded", inner)
	}
}

// TestVXLANMTU: the tunnel's MTU is the uplink's less the overhead, and
// a packet over it gets the error that says so.
func TestVXLANMTU(t *testing.T) {
	l := newVXLANLab(t, nil)
	for _, tc := range []struct {
		dst netip.Addr
		mtu int
	}{{remotePod4, 1450}, {remotePod6, 1430}, {remoteV6v4, 1450}} {
		mk := func(size int) []byte {
			if tc.dst.Is4() {
				return udp4(t, pod1MAC, pod1v4, tc.dst, 64, size-28)
			}
			return udp6(t, pod1MAC, pod1v6, tc.dst, 64, size-48)
		}
		out := l.runVector(t, "pod1", mk(tc.mtu))
		if len(out["up"]) != 1 {
			t.Fatalf("%s: a %d-byte packet did not fit", tc.dst, tc.mtu)
		}
		if n := len(out["up"][0]); n != encap.EthernetLen+1500 {
			t.Errorf("%s: outer frame %d bytes, want %d", tc.dst, n, encap.EthernetLen+1500)
		}
		out = l.runVector(t, "pod1", mk(tc.mtu+1))
		if len(out["up"]) != 0 || len(out["pod1"]) != 1 {
			t.Fatalf("%s: %d bytes: %d out, %d errors; want 0, 1", tc.dst, tc.mtu+1, len(out["up"]), len(out["pod1"]))
		}
		pkt := decode(out["pod1"][0])
		if tc.dst.Is4() {
			ic := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || int(ic.Seq) != tc.mtu {
				t.Errorf("%s: %v mtu %d, want frag needed %d", tc.dst, ic.TypeCode, ic.Seq, tc.mtu)
			}
		} else {
			ic := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			mtu := int(ic.Payload[0])<<24 | int(ic.Payload[1])<<16 | int(ic.Payload[2])<<8 | int(ic.Payload[3])
			if ic.TypeCode.Type() != layers.ICMPv6TypePacketTooBig || mtu != tc.mtu {
				t.Errorf("%s: %v mtu %d, want packet too big %d", tc.dst, ic.TypeCode, mtu, tc.mtu)
			}
		}
	}
}

// TestVXLANUnderlayUnresolved: until the remote VTEP's neighbour is known
// the switch asks for it and drops, and the route needs no change after.
func TestVXLANUnderlayUnresolved(t *testing.T) {
	l := newVXLANLab(t, nil)
	other := netip.MustParseAddr("198.18.0.13")
	if err := l.sw.AddRoute(spec.Route{Prefix: netip.MustParsePrefix("198.19.3.0/24"), VXLAN: &spec.VXLANRoute{Remote: other, MAC: peerVTEP}}); err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddr("198.19.3.1")
	out := l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, dst, 64, 10))
	if len(out["up"]) != 0 || l.sw.Counters().Drops[dataplane.DropNoNeighbor] != 1 {
		t.Fatalf("sent %d before resolution; no-neighbor %d", len(out["up"]), l.sw.Counters().Drops[dataplane.DropNoNeighbor])
	}
	select {
	case ev := <-l.sw.events:
		if ev.Addr != other {
			t.Fatalf("asked to resolve %s, want %s", ev.Addr, other)
		}
	default:
		t.Fatal("no resolution asked for the remote VTEP")
	}
	l.sw.nbr.update(neighUpdate(l.up.ifindex, other, peerMAC))
	out = l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, dst, 64, 10))
	if len(out["up"]) != 1 {
		t.Fatalf("sent %d after resolution, want 1", len(out["up"]))
	}
	checkEncap(t, out["up"][0], other)
}

func TestVXLANRouteRefused(t *testing.T) {
	l := newVXLANLab(t, nil)
	for _, r := range []spec.Route{
		{Prefix: netip.MustParsePrefix("198.18.0.0/16"), VXLAN: &spec.VXLANRoute{Remote: remote4, MAC: peerVTEP}},                          // remote inside
		{Prefix: netip.MustParsePrefix("198.19.9.0/24"), VXLAN: &spec.VXLANRoute{Remote: remote4}},                                         // no MAC
		{Prefix: netip.MustParsePrefix("198.19.9.0/24"), VXLAN: &spec.VXLANRoute{Remote: netip.MustParseAddr("224.0.0.1"), MAC: peerVTEP}}, // multicast
		{Prefix: netip.MustParsePrefix("198.19.9.0/24"), Via: remote4, VXLAN: &spec.VXLANRoute{Remote: remote4, MAC: peerVTEP}},            // both
		{Prefix: netip.MustParsePrefix("198.19.9.0/24"), VXLAN: &spec.VXLANRoute{Remote: remote4, MAC: [6]byte{0x01, 0, 0x5e, 0, 0, 1}}},   // multicast MAC
		{Prefix: netip.MustParsePrefix("198.19.9.0/24"), VXLAN: &spec.VXLANRoute{Remote: netip.MustParseAddr("fe80::1"), MAC: peerVTEP}},   // link-local
	} {
		if err := l.sw.AddRoute(r); !errors.Is(err, ErrRouteInvalid) {
			t.Errorf("%+v: %v, want ErrRouteInvalid", r.VXLAN, err)
		}
	}
	// Without a vxlan section there is no VTEP to send from.
	plain := newFakeLab(t, dataplane.PollBusy)
	err := plain.sw.AddRoute(spec.Route{Prefix: netip.MustParsePrefix("198.19.9.0/24"), VXLAN: &spec.VXLANRoute{Remote: remote4, MAC: peerVTEP}})
	if !errors.Is(err, ErrRouteInvalid) || !bytes.Contains([]byte(err.Error()), []byte("vxlan is off")) {
		t.Errorf("vxlan route without vxlan: %v", err)
	}
	if _, err := New(Config{VXLAN: &VXLANConfig{VNI: 1 << 24}}, nil, withoutKernel()); !errors.Is(err, ErrConfig) {
		t.Errorf("VNI 2^24: %v, want ErrConfig", err)
	}
}

// TestVXLANLargeSegmented: a TCP super-frame from an offloading pod port
// bound for the tunnel is cut into segments, each encapsulated.
func TestVXLANLargeSegmented(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		l := newVXLANLab(t, map[string]bool{"pod1": true})
		src, dst, remote, mss := pod1v4, remotePod4, remote4, 1450-40
		if v6 {
			src, dst, remote, mss = pod1v6, remotePod6, remote6, 1430-60
		}
		out := l.runVector(t, "pod1", tcpSuper(t, v6, src, dst, 64, 10*mss, mss))
		if len(out["up"]) != 10 {
			t.Fatalf("v6=%v: %d frames on the uplink, want 10 (counters %+v)", v6, len(out["up"]), l.sw.Counters())
		}
		for i, f := range out["up"] {
			inner := checkEncap(t, f, remote)
			tcp, ok := inner.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !ok {
				t.Fatalf("segment %d: no TCP", i)
			}
			if want := uint32(1000 + i*mss); tcp.Seq != want || len(tcp.Payload) != mss {
				t.Errorf("segment %d: seq %d len %d, want %d %d", i, tcp.Seq, len(tcp.Payload), want, mss)
			}
			if !l4Valid(f[len(f)-len(inner.Data()):], v6) {
				t.Errorf("v6=%v segment %d: bad inner TCP checksum", v6, i)
			}
			if len(f) != encap.EthernetLen+1500 {
				t.Errorf("segment %d: %d bytes on the wire, want %d", i, len(f), encap.EthernetLen+1500)
			}
		}
	}
}

// processDiscard runs a vector of copies of f, received on in, through
// w's pipeline, and frees what it queued instead of flushing it (the
// fake ports' copies would be what a benchmark measured).
func processDiscard(w *dataplane.Worker, vec []port.Packet, in *portState, f []byte) {
	for i := range vec {
		a, _ := w.Umem().Alloc()
		copy(w.Umem().Frame(a)[port.Headroom:], f)
		vec[i] = port.Packet{Addr: a + port.Headroom, Len: uint32(len(f))}
	}
	w.Process(vec, in.Port)
	w.DiscardQueued()
}

func TestVXLANZeroAlloc(t *testing.T) {
	l := newVXLANLab(t, nil)
	w := l.sw.workers[0]
	vec := make([]port.Packet, 64)
	run := func(in *portState, f []byte) func() {
		return func() { processDiscard(w, vec, in, f) }
	}
	pod := l.sw.byName["pod1"]
	for _, tc := range []struct {
		name string
		in   *portState
		f    []byte
		ev   dataplane.Event
	}{
		{"encap v4", pod, udp4(t, pod1MAC, pod1v4, remotePod4, 64, 18), dataplane.EvVXLANEncap},
		{"encap v6", pod, udp6(t, pod1MAC, pod1v6, remotePod6, 64, 18), dataplane.EvVXLANEncap},
		{"decap v4", l.up, vxlanFrame(t, innerTo(t, remotePod4, pod1v4, 64), false, DefaultVNI), dataplane.EvVXLANDecap},
		{"decap v6", l.up, vxlanFrame(t, innerTo(t, remotePod6, pod1v6, 64), true, DefaultVNI), dataplane.EvVXLANDecap},
	} {
		// Counters are cumulative: only what this case adds says it worked.
		w.PublishCounters()
		before := l.sw.Counters()
		f := run(tc.in, tc.f)
		f()
		const runs = 50
		if a := testing.AllocsPerRun(runs, f); a != 0 {
			t.Errorf("%s: %v allocations per vector, want 0", tc.name, a)
		}
		w.PublishCounters()
		after := l.sw.Counters()
		// AllocsPerRun runs f once more to warm up.
		want := uint64((runs + 2) * len(vec))
		if got := after.Events[tc.ev] - before.Events[tc.ev]; got != want {
			t.Errorf("%s: %v counted %d times, want %d (drops %v)", tc.name, tc.ev, got, want, dropDelta(before, after))
		}
		if d := dropDelta(before, after); len(d) != 0 {
			t.Errorf("%s: drops %v, want none", tc.name, d)
		}
	}
}

// BenchmarkVXLAN: a vector of 64 frames encapsulated (pod to tunnel) or
// decapsulated (tunnel to pod), against BenchmarkPipelineIPv4's plain
// forwarding.
func BenchmarkVXLAN(b *testing.B) {
	for _, tc := range []struct {
		name string
		up   bool
		v6   bool
	}{{"encap-ipv4", false, false}, {"encap-ipv6", false, true}, {"decap-ipv4", true, false}, {"decap-ipv6", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			l := newVXLANLab(b, nil)
			w := l.sw.workers[0]
			in := l.sw.byName["pod1"]
			var f []byte
			switch {
			case tc.up && tc.v6:
				f = vxlanFrame(b, innerTo(b, remotePod6, pod1v6, 64), true, DefaultVNI)
			case tc.up:
				f = vxlanFrame(b, innerTo(b, remotePod4, pod1v4, 64), false, DefaultVNI)
			case tc.v6:
				f = udp6(b, pod1MAC, pod1v6, remotePod6, 64, 10)
			default:
				f = udp4(b, pod1MAC, pod1v4, remotePod4, 64, 18)
			}
			if tc.up {
				in = l.up
			}
			vec := make([]port.Packet, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				processDiscard(w, vec, in, f)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vec)), "ns/packet")
		})
	}
}

// TestVXLANUnderlayFollowsFIB: the outer header follows the FIB's route to
// the remote VTEP as it changes (the per-View cache must not hold on).
func TestVXLANUnderlayFollowsFIB(t *testing.T) {
	l := newVXLANLab(t, nil)
	send := func() []byte {
		out := l.runVector(t, "pod1", udp4(t, pod1MAC, pod1v4, remotePod4, 64, 10))
		if len(out["up"]) != 1 {
			t.Fatalf("%d frames on the uplink, want 1 (drops %v, routes %v)", len(out["up"]), l.sw.Counters().Drops, l.sw.Routes())
		}
		return out["up"][0]
	}
	if f := send(); [6]byte(f[0:6]) != peerMAC {
		t.Fatalf("outer dst %x, want the VTEP's own %x", f[0:6], peerMAC)
	}
	gw, gwMAC := netip.MustParseAddr("198.18.0.254"), [6]byte{0x02, 0xcc, 0, 0, 0, 1}
	l.sw.nbr.update(neighUpdate(l.up.ifindex, gw, gwMAC))
	if err := l.sw.AddRoute(spec.Route{Prefix: netip.PrefixFrom(remote4, 32), Via: gw}); err != nil {
		t.Fatal(err)
	}
	if f := send(); [6]byte(f[0:6]) != gwMAC {
		t.Fatalf("outer dst %x after the route change, want the gateway's %x", f[0:6], gwMAC)
	}
	// The static route replaced the neighbour's host route; when it goes,
	// the neighbour's comes back.
	if err := l.sw.DelRoute(netip.PrefixFrom(remote4, 32)); err != nil {
		t.Fatal(err)
	}
	if f := send(); [6]byte(f[0:6]) != peerMAC {
		t.Fatalf("outer dst %x after the route went back, want %x", f[0:6], peerMAC)
	}
}

// FuzzVXLANDecap: whatever follows a VXLAN header for the node is dropped
// and counted or forwarded, never panicked on, and no frame leaks. The
// fuzzer mutates the whole datagram after the outer IPv4 header (UDP
// header, VXLAN header and inner frame) and the outer family.
func FuzzVXLANDecap(f *testing.F) {
	f.Add(vxlanFrame(f, innerTo(f, remotePod4, pod1v4, 64), false, DefaultVNI)[encap.EthernetLen+encap.IPv4MinLen:], false)
	f.Add(vxlanFrame(f, innerTo(f, remotePod6, pod1v6, 1), true, DefaultVNI)[encap.EthernetLen+encap.IPv6Len:], true)
	f.Add(vxlanFrame(f, []byte{1, 2, 3}, false, 7)[encap.EthernetLen+encap.IPv4MinLen:], false)
	l := newVXLANLab(f, nil)
	w := l.sw.workers[0]
	u := w.Umem()
	vec := make([]port.Packet, 1)
	f.Fuzz(func(t *testing.T, udp []byte, v6 bool) {
		// The outer headers as the other node writes them, with udp
		// behind them whatever it says.
		frame := vxlanFrame(t, nil, v6, DefaultVNI)
		l3 := encap.EthernetLen + encap.IPv4MinLen
		if v6 {
			l3 = encap.EthernetLen + encap.IPv6Len
		}
		frame = append(frame[:l3], udp...)
		if len(frame) > u.FrameSize()-port.Headroom {
			frame = frame[:u.FrameSize()-port.Headroom]
		}
		if v6 {
			encap.IPv6(frame[encap.EthernetLen:]).SetPayloadLength(uint16(len(frame) - l3))
		} else {
			ip := encap.IPv4(frame[encap.EthernetLen:])
			ip.SetTotalLength(uint16(len(frame) - encap.EthernetLen))
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
		}
		before := u.FreeCount()
		a, _ := u.Alloc()
		copy(u.Frame(a)[port.Headroom:], frame)
		vec[0] = port.Packet{Addr: a + port.Headroom, Len: uint32(len(frame))}
		w.Tick()
		w.Process(vec, l.up.Port)
		w.DiscardQueued()
		if got := u.FreeCount(); got != before {
			t.Fatalf("frame leak: %d free before, %d after", before, got)
		}
	})
}

// TestVXLANMergedForUplink: toward an uplink that takes super-frames, the
// encapsulated segments of a TCP super-frame leave as one UDP GSO
// super-frame, which cut as the kernel cuts it gives the VXLAN packets
// that would have gone one by one.
func TestVXLANMergedForUplink(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		l := newVXLANLab(t, map[string]bool{"pod1": true, "up": true})
		src, dst, remote, mss := pod1v4, remotePod4, remote4, 1450-40
		if v6 {
			src, dst, remote, mss = pod1v6, remotePod6, remote6, 1430-60
		}
		out := l.runVector(t, "pod1", tcpSuper(t, v6, src, dst, 64, 10*mss+7, mss))
		if len(out["up"]) != 1 {
			t.Fatalf("v6=%v: %d frames on the uplink, want 1 super-frame (counters %+v)", v6, len(out["up"]), l.sw.Counters())
		}
		hdr := encap.VirtioNetHdr(out["up"][0][:encap.VirtioNetHdrLen])
		frame := out["up"][0][encap.VirtioNetHdrLen:]
		g, err := encap.ParseGSO(frame, hdr)
		if err != nil || g.Type != encap.GSOUDPL4 {
			t.Fatalf("v6=%v: %v, type %d", v6, err, g.Type)
		}
		if n := g.Segments(frame); n != 11 {
			t.Fatalf("v6=%v: %d datagrams, want 11", v6, n)
		}
		seg := make([]byte, 2048)
		for i := 0; i < 11; i++ {
			n := g.Segment(seg, frame, i)
			inner := checkEncapSum(t, seg[:n], remote)
			tcp := inner.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if want := uint32(1000 + i*mss); tcp.Seq != want {
				t.Errorf("v6=%v datagram %d: inner seq %d, want %d", v6, i, tcp.Seq, want)
			}
		}
		c := l.sw.Counters()
		if c.Events[dataplane.EvUDPGROMerged] != 1 || c.Events[dataplane.EvUDPGROSegments] != 11 {
			t.Errorf("v6=%v: udp-gro-merged %d segments %d", v6, c.Events[dataplane.EvUDPGROMerged], c.Events[dataplane.EvUDPGROSegments])
		}
	}
}

// checkEncapSum is checkEncap for a datagram cut from a UDP GSO
// super-frame: its outer UDP checksum is computed over IPv4 too.
func checkEncapSum(t *testing.T, frame []byte, remote netip.Addr) gopacket.Packet {
	t.Helper()
	if remote.Is4() {
		l4 := encap.EthernetLen + encap.IPv4MinLen
		o := encap.IPv4(frame[encap.EthernetLen:])
		if c := encap.UDP(frame[l4:]).Checksum(); c != encap.UDPChecksum4(o.Src(), o.Dst(), frame[l4:]) {
			t.Errorf("outer UDP checksum %#04x wrong", c)
		}
		frame = append([]byte(nil), frame...)
		frame[l4+6], frame[l4+7] = 0, 0
	}
	return checkEncap(t, frame, remote)
}

// TestVXLANLargeDecap: a UDP GSO super-frame of VXLAN datagrams for the
// node, as a steered AF_PACKET uplink receives another node's merged
// datagrams whole, is cut into its datagrams and each is decapsulated to
// its pod, each checked as any datagram is; a super-frame of UDP to
// another port of the node is not VXLAN, and is the host's.
func TestVXLANLargeDecap(t *testing.T) {
	// merged is a UDP GSO super-frame of 5 VXLAN datagrams to the node
	// (VNI vni, UDP port port), behind its offload header.
	merged := func(v6 bool, vni uint32, port uint16) []byte {
		src, dst := remotePod4, pod1v4
		if v6 {
			src, dst = remotePod6, pod1v6
		}
		g := encap.NewUDPGRO()
		for i := range 5 {
			f := vxlanFrame(t, innerTo(t, src, dst, 64), v6, vni)
			l4 := encap.EthernetLen + encap.IPv4MinLen
			if v6 {
				l4 = encap.EthernetLen + encap.IPv6Len
			}
			if port != 4789 {
				u := encap.UDP(f[l4:])
				u.SetDstPort(port)
				u.SetChecksum(0)
				if v6 {
					ip := encap.IPv6(f[encap.EthernetLen:])
					u.SetChecksum(encap.UDPChecksum6(ip.Src(), ip.Dst(), u))
				}
			}
			if !v6 { // DF, as the switch sends it: UDP GRO wants it
				ip := encap.IPv4(f[encap.EthernetLen:])
				f[encap.EthernetLen+6] = 0x40
				ip.SetChecksum(0)
				ip.SetChecksum(^ip.CalculateChecksum())
			}
			if ok := (i == 0 && g.Start(f)) || (i > 0 && g.Add(f)); !ok {
				t.Fatalf("v6=%v: datagram %d does not merge", v6, i)
			}
		}
		hdr := make([]byte, encap.VirtioNetHdrLen)
		return append(hdr, g.Finish(encap.VirtioNetHdr(hdr))...)
	}
	for _, v6 := range []bool{false, true} {
		l := newVXLANLab(t, map[string]bool{"up": true})
		out := l.runVector(t, "up", merged(v6, DefaultVNI, 4789))
		if len(out["pod1"]) != 5 {
			t.Fatalf("v6=%v: %d frames to pod1, want 5 (counters %+v)", v6, len(out["pod1"]), l.sw.Counters())
		}
		for i, f := range out["pod1"] {
			if el := decode(f).ErrorLayer(); el != nil {
				t.Errorf("v6=%v frame %d: %v", v6, i, el.Error())
			}
		}
		c := l.sw.Counters()
		if c.Events[dataplane.EvVXLANDecap] != 5 || c.Events[dataplane.EvGSOSegmented] != 1 || c.Drops[dataplane.DropBadVXLAN] != 0 {
			t.Errorf("v6=%v: vxlan-decap %d gso-segmented %d bad-vxlan %d; want 5, 1, 0", v6, c.Events[dataplane.EvVXLANDecap], c.Events[dataplane.EvGSOSegmented], c.Drops[dataplane.DropBadVXLAN])
		}

		// Each datagram is checked as any: another VNI is dropped and
		// counted five times; UDP to another port of the node is not
		// VXLAN: it is the host's, and with no host port it is dropped
		// whole (punt-no-host).
		out = l.runVector(t, "up", merged(v6, 7, 4789), merged(v6, DefaultVNI, 4790))
		c = l.sw.Counters()
		if len(out["pod1"]) != 0 || c.Drops[dataplane.DropVXLANVNI] != 5 || c.Drops[dataplane.DropPunt] != 1 {
			t.Errorf("v6=%v: %d frames to pod1, vxlan-vni %d, punt-no-host %d; want 0, 5, 1", v6, len(out["pod1"]), c.Drops[dataplane.DropVXLANVNI], c.Drops[dataplane.DropPunt])
		}

		// No allocation.
		w := l.sw.workers[0]
		b := merged(v6, DefaultVNI, 4789)
		lf := port.LargeFrame{Frame: b[encap.VirtioNetHdrLen:], Hdr: encap.VirtioNetHdr(b[:encap.VirtioNetHdrLen])}
		run := func() {
			w.ForwardLarge(&lf, l.up.Port)
			w.DiscardQueued()
		}
		run()
		if a := testing.AllocsPerRun(20, run); a != 0 {
			t.Errorf("v6=%v: %v allocations per super-frame, want 0", v6, a)
		}
	}
}

// TestVXLANLargeTCPDecap: TCP in VXLAN that the kernel's GRO merged (an
// uplink that runs GRO, a VXLAN socket on the node's port) reaches the
// socket as one TCP GSO super-frame with its outer headers. The worker
// takes the inner super-frame out, offload header moved with it, and
// routes it as if it came out of the tunnel: whole to a pod that takes
// super-frames, cut for one that does not. A wrong VNI, inner MAC, UDP
// length or checksum start is dropped and counted; nothing is allocated.
func TestVXLANLargeTCPDecap(t *testing.T) {
	// merged is the super-frame behind its offload header, as the
	// kernel hands it over: the inner frame's offsets moved by the outer
	// headers.
	merged := func(v6 bool, vni uint32, mac [6]byte) []byte {
		src, dst := remotePod4, pod1v4
		if v6 {
			src, dst = remotePod6, pod1v6
		}
		in := tcpSuper(t, v6, src, dst, 64, 5*(mssFor(v6)-50), mssFor(v6)-50)
		h, inner := encap.VirtioNetHdr(in[:encap.VirtioNetHdrLen]), in[encap.VirtioNetHdrLen:]
		copy(inner[0:6], mac[:])
		copy(inner[6:12], peerVTEP[:])
		f := vxlanFrame(t, inner, v6, vni)
		off := len(f) - len(inner)
		hdr := make([]byte, encap.VirtioNetHdrLen)
		encap.VirtioNetHdr(hdr).Set(h.Flags(), h.GSOType(), h.HdrLen()+uint16(off), h.GSOSize(), h.CsumStart()+uint16(off), h.CsumOffset())
		return append(hdr, f...)
	}
	for _, v6 := range []bool{false, true} {
		for _, whole := range []bool{true, false} {
			l := newVXLANLab(t, map[string]bool{"up": true, "pod1": whole})
			in := merged(v6, DefaultVNI, vtepMAC)
			out := l.runVector(t, "up", in)
			c := l.sw.Counters()
			if whole {
				if len(out["pod1"]) != 1 || c.Events[dataplane.EvGSOWhole] != 1 {
					t.Fatalf("v6=%v: %d frames to pod1, gso-whole %d; want the inner super-frame whole (counters %+v)", v6, len(out["pod1"]), c.Events[dataplane.EvGSOWhole], c)
				}
				f := out["pod1"][0][encap.VirtioNetHdrLen:]
				inner := in[len(in)-len(f):]
				if !bytes.Equal(f[60:], inner[60:]) || [6]byte(f[0:6]) != pod1MAC {
					t.Errorf("v6=%v: inner frame changed beyond its L2 header and TTL, or not to pod1: %x", v6, f[:14])
				}
			} else if len(out["pod1"]) != 5 || c.Events[dataplane.EvGSOSegmented] != 1 {
				t.Fatalf("v6=%v: %d frames to pod1, gso-segmented %d; want 5 segments", v6, len(out["pod1"]), c.Events[dataplane.EvGSOSegmented])
			} else {
				for i, f := range out["pod1"] {
					if el := decode(f).ErrorLayer(); el != nil || !l4Valid(f, v6) {
						t.Errorf("v6=%v segment %d: %v, checksum valid %v", v6, i, el, l4Valid(f, v6))
					}
				}
			}
			if c.Events[dataplane.EvVXLANDecap] != 1 || c.Drops[dataplane.DropBadOffload] != 0 {
				t.Errorf("v6=%v: vxlan-decap %d bad-offload %d; want 1, 0", v6, c.Events[dataplane.EvVXLANDecap], c.Drops[dataplane.DropBadOffload])
			}
		}

		// Bad input: another VNI, another inner MAC, a UDP length that
		// is not the datagram's, a checksum start inside the outer
		// headers. Each is dropped and counted, nothing reaches pod1.
		l4 := encap.VirtioNetHdrLen + encap.EthernetLen + encap.IPv4MinLen
		if v6 {
			l4 = encap.VirtioNetHdrLen + encap.EthernetLen + encap.IPv6Len
		}
		badLen := merged(v6, DefaultVNI, vtepMAC)
		binary.BigEndian.PutUint16(badLen[l4+4:], 100)
		badStart := merged(v6, DefaultVNI, vtepMAC)
		h := encap.VirtioNetHdr(badStart[:encap.VirtioNetHdrLen])
		h.Set(h.Flags(), h.GSOType(), h.HdrLen(), h.GSOSize(), 20, h.CsumOffset())
		l := newVXLANLab(t, map[string]bool{"up": true, "pod1": true})
		out := l.runVector(t, "up", merged(v6, 7, vtepMAC), merged(v6, DefaultVNI, [6]byte{2, 0, 0, 0, 0, 9}), badLen, badStart)
		c := l.sw.Counters()
		if len(out["pod1"]) != 0 || c.Drops[dataplane.DropVXLANVNI] != 1 || c.Drops[dataplane.DropVXLANMAC] != 1 || c.Drops[dataplane.DropBadVXLAN] != 1 || c.Drops[dataplane.DropBadOffload] != 1 {
			t.Errorf("v6=%v: %d frames to pod1, vxlan-vni %d, vxlan-mac %d, bad-vxlan %d, bad-offload %d; want 0 and 1 each",
				v6, len(out["pod1"]), c.Drops[dataplane.DropVXLANVNI], c.Drops[dataplane.DropVXLANMAC], c.Drops[dataplane.DropBadVXLAN], c.Drops[dataplane.DropBadOffload])
		}

		w := l.sw.workers[0]
		b := merged(v6, DefaultVNI, vtepMAC)
		lf := port.LargeFrame{Frame: b[encap.VirtioNetHdrLen:], Hdr: encap.VirtioNetHdr(b[:encap.VirtioNetHdrLen])}
		run := func() {
			w.ForwardLarge(&lf, l.up.Port)
			for len(l.ports["pod1"].Out) > 0 {
				<-l.ports["pod1"].Out
			}
		}
		run()
		if a := testing.AllocsPerRun(20, run); a != 0 {
			t.Errorf("v6=%v: %v allocations per super-frame, want 0", v6, a)
		}
	}
}

// dropDelta is what was dropped between two counter snapshots, by reason.
func dropDelta(before, after dataplane.Counters) map[dataplane.Drop]uint64 {
	d := map[dataplane.Drop]uint64{}
	for i := range after.Drops {
		if n := after.Drops[i] - before.Drops[i]; n != 0 {
			d[dataplane.Drop(i)] = n
		}
	}
	return d
}
