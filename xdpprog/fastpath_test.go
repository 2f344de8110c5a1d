package xdpprog

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// sum16 is the one's-complement sum of b.
func sum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func withChecksum(f []byte) []byte {
	h := f[14:34]
	binary.BigEndian.PutUint16(h[10:], 0)
	binary.BigEndian.PutUint16(h[10:], ^sum16(h))
	return f
}

// notFast are frames no fast path may take (with the test's destinations:
// 198.18.10.2 and fd00:10::2 with an MTU of 1500, 198.18.10.3 with 100).
func notFast() map[string][]byte {
	ttl1 := withChecksum(ipv4(17, "198.18.10.1", "198.18.10.2", 5, 0, udp(1, 2, 10)))
	ttl1[14+8] = 1
	withChecksum(ttl1)
	hop1 := ipv6(17, "fd00:10::1", "fd00:10::2", udp(1, 2, 10))
	hop1[14+7] = 1
	return map[string][]byte{
		"unknown destination": withChecksum(ipv4(17, "198.18.10.1", "198.18.10.9", 5, 0, udp(1, 2, 10))),
		"TTL 1":               ttl1,
		"hop limit 1":         hop1,
		"bigger than the MTU": withChecksum(ipv4(17, "198.18.10.1", "198.18.10.3", 5, 0, udp(1, 2, 200))),
		"IPv4 options":        ipv4(17, "198.18.10.1", "198.18.10.2", 6, 0, udp(1, 2, 10)),
		"ARP":                 eth(0x0806, make([]byte, 28)),
		"IPv6 unknown":        ipv6(17, "fd00:10::1", "fd00:10::9", udp(1, 2, 10)),
		"truncated IPv4":      ipv4(17, "198.18.10.1", "198.18.10.2", 5, 0, nil)[:30],
		"truncated IPv6":      ipv6(17, "fd00:10::1", "fd00:10::2", nil)[:50],
		// A service backend's replies (testFastPath punts these
		// sources): the workers translate them back.
		"from a punted IPv4 backend": withChecksum(ipv4(17, "198.18.10.5", "198.18.10.2", 5, 0, udp(8080, 2, 10))),
		"from a punted IPv6 backend": ipv6(6, "fd00:10::5", "fd00:10::2", tcpSeg(5, 10)),
	}
}

// runXDP runs p on frame f (BPF_PROG_TEST_RUN) and returns the verdict
// and the frame as the program left it.
func runXDP(t *testing.T, p *Program, f []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(f)+64)
	ro := &ebpf.RunOptions{Data: f, DataOut: out}
	got, err := p.Prog().Run(ro)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return got, out[:len(ro.DataOut)]
}

// The MACs the test fast paths rewrite frames to.
var (
	testDstMAC = [6]byte{2, 0, 0, 0, 0, 0x22}
	testSrcMAC = [6]byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
)

// fastDest is a test fast-path destination: address, MTU, and whether XDP
// may redirect to it.
type fastDest struct {
	addr string
	mtu  int
	xdp  bool
}

// testFastPath returns a fast path with dests, closed with the test; it
// skips where BPF cannot load. Every destination is ifindex 1, lo, which
// exists in every namespace (the devmap wants a real device);
// BPF_PROG_TEST_RUN reports the verdict without sending.
func testFastPath(t testing.TB, dests []fastDest) *FastPath {
	t.Helper()
	requireBPF(t)
	fp, err := NewFastPath(16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	for _, d := range dests {
		if err := fp.Add(netip.MustParseAddr(d.addr), 1, d.mtu, testDstMAC, testSrcMAC, d.xdp); err != nil {
			t.Fatal(err)
		}
	}
	return fp
}

// addTestPunts punts the sources of notFast's backend frames.
func addTestPunts(t testing.TB, fp *FastPath) {
	t.Helper()
	for _, p := range []struct {
		src   string
		proto uint8
	}{{"198.18.10.5:8080", 17}, {"[fd00:10::5]:40000", 6}} {
		if err := fp.AddPunt(netip.MustParseAddrPort(p.src), p.proto); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFastPath(t *testing.T) {
	fp := testFastPath(t, []fastDest{
		{"198.18.10.2", 1500, true}, {"fd00:10::2", 1500, true}, {"198.18.10.3", 100, true},
		{"198.18.10.4", 1500, false}, // only the tc fast path may reach it (a pod without NAPI)
	})
	addTestPunts(t, fp)
	dst, src := testDstMAC, testSrcMAC
	p, err := New(Pod, Options{MissAction: Drop, FastPath: fp})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	run := func(f []byte) (uint32, []byte) { t.Helper(); return runXDP(t, p, f) }

	// Forwarded in XDP: TTL - 1, checksum still valid, addresses rewritten.
	in4 := withChecksum(ipv4(17, "198.18.10.1", "198.18.10.2", 5, 0, udp(1, 2, 100)))
	got, out := run(in4)
	if got != Redirect {
		t.Fatalf("IPv4 to a fast-path pod: verdict %d, want redirect", got)
	}
	if out[14+8] != 63 || sum16(out[14:34]) != 0xffff {
		t.Errorf("IPv4: TTL %d, header sum %#x; want 63 and a valid checksum", out[14+8], sum16(out[14:34]))
	}
	if !bytes.Equal(out[0:6], dst[:]) || !bytes.Equal(out[6:12], src[:]) || !bytes.Equal(out[34:], in4[34:]) {
		t.Errorf("IPv4: rewrite %x, payload changed %v", out[:12], !bytes.Equal(out[34:], in4[34:]))
	}
	// TTL at the checksum's carry edge still gives a valid checksum.
	for ttl := 2; ttl < 256; ttl += 37 {
		f := append([]byte(nil), in4...)
		f[14+8] = byte(ttl)
		withChecksum(f)
		if _, o := run(f); sum16(o[14:34]) != 0xffff || o[14+8] != byte(ttl-1) {
			t.Errorf("TTL %d: checksum invalid after decrement", ttl)
		}
	}
	in6 := ipv6(17, "fd00:10::1", "fd00:10::2", udp(1, 2, 100))
	got, out = run(in6)
	if got != Redirect || out[14+7] != 63 || !bytes.Equal(out[0:6], dst[:]) {
		t.Errorf("IPv6 to a fast-path pod: verdict %d, hop limit %d, dst %x", got, out[14+7], out[0:6])
	}

	// Everything else goes to the socket (here: the miss action, Drop)
	// untouched.
	slow := notFast()
	slow["tc-only destination"] = withChecksum(ipv4(17, "198.18.10.1", "198.18.10.4", 5, 0, udp(1, 2, 10)))
	for name, f := range slow {
		got, out := run(f)
		if got != Drop || !bytes.Equal(out, f) {
			t.Errorf("%s: verdict %d, changed %v; want the socket path, untouched", name, got, !bytes.Equal(out, f))
		}
	}
	if c, err := fp.Counts(); err != nil || c != (FastCounts{XDP4: 1 + 7, XDP6: 1}) {
		t.Errorf("counts %+v %v; want 8 IPv4 and 1 IPv6 in XDP", c, err)
	}

	// Random frames never abort.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		f := make([]byte, 14+rng.IntN(100))
		for j := range f {
			f[j] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint16(f[12:], []uint16{0x0800, 0x86dd, 0x0806}[rng.IntN(3)])
		if got, _ := run(f); got != Drop && got != Redirect {
			t.Fatalf("frame %x: verdict %d", f, got)
		}
	}

	if err := fp.Remove(netip.MustParseAddr("198.18.10.2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := run(withChecksum(ipv4(17, "198.18.10.1", "198.18.10.2", 5, 0, udp(1, 2, 100)))); got != Drop {
		t.Errorf("after Remove: verdict %d, want the socket path", got)
	}
}

// TestUplinkFastPath: an uplink program with the fast path forwards frames
// from the network to the node's fast-path pods itself, and steers the
// rest exactly as without it: other pod-prefix traffic and VXLAN to the
// socket, everything else to the kernel, untouched.
func TestUplinkFastPath(t *testing.T) {
	fp := testFastPath(t, []fastDest{{"198.19.1.2", 1500, true}, {"fd00:1:2::2", 1500, true}, {"198.19.1.4", 1500, false}})
	dst := testDstMAC
	p, err := New(Uplink, Options{MissAction: Drop, FastPath: fp})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, s := range []string{"198.19.1.0/26", "fd00:1:2::/122"} {
		if err := p.AddPrefix(netip.MustParsePrefix(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SetVTEP(4789, netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")); err != nil {
		t.Fatal(err)
	}
	run := func(f []byte) (uint32, []byte) { t.Helper(); return runXDP(t, p, f) }
	in4 := withChecksum(ipv4(17, "198.18.0.2", "198.19.1.2", 5, 0, udp(1, 2, 100)))
	if got, out := run(in4); got != Redirect || out[14+8] != 63 || sum16(out[14:34]) != 0xffff || !bytes.Equal(out[0:6], dst[:]) {
		t.Errorf("IPv4 to a fast-path pod: verdict %d, TTL %d", got, out[14+8])
	}
	in6 := ipv6(17, "fd00::2", "fd00:1:2::2", udp(1, 2, 100))
	if got, out := run(in6); got != Redirect || out[14+7] != 63 {
		t.Errorf("IPv6 to a fast-path pod: verdict %d, hop limit %d", got, out[14+7])
	}
	const steer = Drop // the socket's slot is empty: the miss action
	ttl1 := withChecksum(ipv4(17, "198.18.0.2", "198.19.1.2", 5, 0, udp(1, 2, 10)))
	ttl1[14+8] = 1
	withChecksum(ttl1)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"pod block, not a fast-path pod", withChecksum(ipv4(17, "198.18.0.2", "198.19.1.9", 5, 0, udp(1, 2, 10))), steer},
		{"tc-only pod", withChecksum(ipv4(17, "198.18.0.2", "198.19.1.4", 5, 0, udp(1, 2, 10))), steer},
		{"TTL 1 to a fast-path pod", ttl1, steer},
		{"VXLAN to the node", withChecksum(ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 4789, 50))), steer},
		{"the host's own", withChecksum(ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, udp(1, 22, 10))), Pass},
		{"IPv6 elsewhere", ipv6(6, "fd00::2", "fd00:9::1", udp(1, 2, 10)), Pass},
		{"ARP", eth(0x0806, make([]byte, 28)), Pass},
		{"IPv4 with no header", eth(0x0800, nil), Pass},
	} {
		got, out := run(tc.frame)
		if got != tc.want || !bytes.Equal(out, tc.frame) {
			t.Errorf("%s: verdict %d, changed %v; want %d, untouched", tc.name, got, !bytes.Equal(out, tc.frame), tc.want)
		}
	}
	if c, err := fp.Counts(); err != nil || c.XDP4 != 1 || c.XDP6 != 1 {
		t.Errorf("counts %+v %v", c, err)
	}
}

// vxlan4 wraps inner in VXLAN over IPv4 to the node (198.18.0.1), with a
// zero UDP checksum as Linux sends it.
func vxlan4(vni uint32, inner []byte) []byte {
	u := udp(51000, 4789, 8+len(inner))
	u[8] = 0x08
	u[8+4], u[8+5], u[8+6] = byte(vni>>16), byte(vni>>8), byte(vni)
	copy(u[16:], inner)
	return withChecksum(ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, u))
}

// TestUplinkFastPathDecap: with SetDecap, VXLAN over IPv4 for the node
// whose inner frame goes to a fast-path pod is decapsulated and forwarded
// in XDP; anything else about it leaves the frame whole, with its outer
// headers, for the socket.
func TestUplinkFastPathDecap(t *testing.T) {
	fp := testFastPath(t, []fastDest{{"198.19.1.2", 1500, true}, {"fd00:19:1::2", 1500, true}, {"198.19.1.3", 1500, false}, {"198.19.1.4", 80, false}})
	dst := testDstMAC
	p, err := New(Uplink, Options{MissAction: Drop, FastPath: fp})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	vtepMAC := [6]byte{2, 0x58, 3, 0, 0, 1}
	if err := p.SetVTEP(4789, netip.MustParseAddr("198.18.0.1"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetDecap(4096, vtepMAC); err != nil {
		t.Fatal(err)
	}
	// SetVTEP after SetDecap keeps it.
	if err := p.SetVTEP(4789, netip.MustParseAddr("198.18.0.1"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	run := func(f []byte) (uint32, []byte) { t.Helper(); return runXDP(t, p, f) }
	innerTo := func(to string, ttl byte) []byte {
		f := withChecksum(ipv4(17, "198.19.0.2", to, 5, 0, udp(1, 2, 64)))
		f[14+8] = ttl
		withChecksum(f)
		copy(f[0:6], vtepMAC[:])
		return f
	}
	in := innerTo("198.19.1.2", 64)
	got, out := run(vxlan4(4096, in))
	if got != Redirect || len(out) != len(in) {
		t.Fatalf("VXLAN to a fast-path pod: verdict %d, %d bytes out, want redirect of the %d-byte inner frame", got, len(out), len(in))
	}
	if out[14+8] != 63 || sum16(out[14:34]) != 0xffff || !bytes.Equal(out[0:6], dst[:]) || !bytes.Equal(out[34:], in[34:]) {
		t.Errorf("inner frame: TTL %d, dst %x", out[14+8], out[0:6])
	}
	// IPv6 pods over the IPv4 underlay too.
	in6 := ipv6(17, "fd00:19::2", "fd00:19:1::2", udp(1, 2, 64))
	copy(in6[0:6], vtepMAC[:])
	if got, out := run(vxlan4(4096, in6)); got != Redirect || len(out) != len(in6) || out[14+7] != 63 {
		t.Errorf("IPv6 in VXLAN over IPv4: verdict %d, %d bytes, hop limit %d", got, len(out), out[14+7])
	}
	const steer = Drop
	otherMAC := innerTo("198.19.1.2", 64)
	otherMAC[5] ^= 1
	// A UDP checksum (as the kernel's USO writes it) is not verified here.
	withSum := vxlan4(4096, in)
	withSum[14+20+6] = 0x12
	if got, out := run(withSum); got != Redirect || len(out) != len(in) {
		t.Errorf("VXLAN with a UDP checksum: verdict %d, %d bytes", got, len(out))
	}
	padded := append(vxlan4(4096, in), 0, 0, 0, 0)
	noI := vxlan4(4096, in)
	noI[14+28] = 0
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"inner to no fast-path pod", vxlan4(4096, innerTo("198.19.1.9", 64))},
		{"inner TTL 1", vxlan4(4096, innerTo("198.19.1.2", 1))},
		{"other VNI", vxlan4(7, in)},
		{"inner MAC not the node's", vxlan4(4096, otherMAC)},
		{"padding after the packet", padded},
		{"no I flag", noI},
	} {
		got, out := run(tc.frame)
		if got != steer || !bytes.Equal(out, tc.frame) {
			t.Errorf("%s: verdict %d, changed %v; want the socket, whole", tc.name, got, !bytes.Equal(out, tc.frame))
		}
	}
	// A destination only tc reaches (198.19.1.3, an af-packet pod): to
	// the socket, unless the kernel's VXLAN device takes such frames;
	// then to the kernel whole, outer headers and all.
	tcOnly := vxlan4(4096, innerTo("198.19.1.3", 64))
	if got, out := run(tcOnly); got != steer || !bytes.Equal(out, tcOnly) {
		t.Errorf("VXLAN to a tc-only pod: verdict %d; want the socket, whole", got)
	}
	if err := p.SetKernelVXLAN(true); err != nil {
		t.Fatal(err)
	}
	if err := p.SetVTEP(4789, netip.MustParseAddr("198.18.0.1"), netip.Addr{}); err != nil {
		t.Fatal(err) // keeps it
	}
	if got, out := run(tcOnly); got != Pass || !bytes.Equal(out, tcOnly) {
		t.Errorf("VXLAN to a tc-only pod, kernel VXLAN on: verdict %d, changed %v; want passed whole", got, !bytes.Equal(out, tcOnly))
	}
	for _, f := range [][]byte{vxlan4(4096, in), vxlan4(4096, innerTo("198.19.1.9", 64)), vxlan4(7, innerTo("198.19.1.3", 64))} {
		if got, _ := run(f); got == Pass {
			t.Errorf("kernel VXLAN on: %x passed to the kernel; only tc-only destinations go there", f[:16])
		}
	}
	// Too big for its tc-only destination: the switch's (which answers
	// it), not the kernel's (whose device would drop it).
	big := vxlan4(4096, innerTo("198.19.1.4", 64))
	if got, out := run(big); got != steer || !bytes.Equal(out, big) {
		t.Errorf("VXLAN too big for a tc-only pod: verdict %d, changed %v; want the socket, whole", got, !bytes.Equal(out, big))
	}
	if err := p.SetKernelVXLAN(false); err != nil {
		t.Fatal(err)
	}
	// Off again: the socket gets it all.
	if err := p.SetDecap(4096, [6]byte{}); err != nil {
		t.Fatal(err)
	}
	if got, out := run(vxlan4(4096, in)); got != steer || len(out) != len(in)+50 {
		t.Errorf("decap off: verdict %d, %d bytes", got, len(out))
	}
}
