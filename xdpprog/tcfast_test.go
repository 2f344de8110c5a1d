package xdpprog

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// skbCtx is struct __sk_buff as BPF_PROG_TEST_RUN takes it; only the
// fields the kernel lets a test set may be non-zero.
type skbCtx [48]uint32

func withGSO(size uint32) *skbCtx {
	var c skbCtx
	c[skbGSOSize/4] = size
	if size > 0 {
		c[164/4] = 2 // gso_segs
	}
	return &c
}

func tcpSeg(doff int, payload int) []byte {
	b := make([]byte, doff*4+payload)
	binary.BigEndian.PutUint16(b[0:], 40000)
	binary.BigEndian.PutUint16(b[2:], 5201)
	b[12] = byte(doff) << 4
	return b
}

// tcFixture is a FastPath with its tc program and socket filter loaded,
// and two runners: the tc verdict with the frame it leaves, and whether
// the socket filter takes the frame.
type tcFixture struct {
	fp       *FastPath
	tc       *ebpf.Program
	filter   *ebpf.Program
	dst, src [6]byte
}

func newTCFixture(t *testing.T) *tcFixture {
	t.Helper()
	requireBPF(t)
	fp, err := NewFastPath(16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	addTestPunts(t, fp)
	x := &tcFixture{fp: fp, dst: [6]byte{2, 0, 0, 0, 0, 0x22}, src: [6]byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}}
	for _, d := range []struct {
		a   string
		mtu int
		xdp bool
	}{{"198.18.10.2", 1500, false}, {"fd00:10::2", 1500, true}, {"198.18.10.3", 100, false}} {
		if err := fp.Add(netip.MustParseAddr(d.a), 1, d.mtu, x.dst, x.src, d.xdp); err != nil {
			t.Fatal(err)
		}
	}
	if x.tc, err = loadIngressFast(fp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.tc.Close() })
	if x.filter, err = fp.SocketFilter(); err != nil {
		t.Fatal(err)
	}
	return x
}

// runTC returns the tc verdict and the frame as the program left it. A
// test run refuses IP frames shorter than their IP header (the program
// would drop them): those get tcUnrunnable.
func (x *tcFixture) runTC(t *testing.T, f []byte, gso uint32) (uint32, []byte) {
	t.Helper()
	if short(f) {
		return tcUnrunnable, f
	}
	out := make([]byte, len(f)+256)
	ro := &ebpf.RunOptions{Data: f, DataOut: out, Context: withGSO(gso)}
	got, err := x.tc.Run(ro)
	if err != nil {
		t.Fatalf("tc run on %x gso %d: %v", f, gso, err)
	}
	return got, out[:len(ro.DataOut)]
}

// takes reports whether the socket filter lets f through to the socket.
// A test run gives a socket filter the frame after its Ethernet header
// (packet_rcv gives it the whole frame), so f goes behind 14 spare bytes.
func (x *tcFixture) takes(t *testing.T, f []byte, gso uint32) bool {
	t.Helper()
	in := append(make([]byte, 14), f...)
	got, err := x.filter.Run(&ebpf.RunOptions{Data: in, Context: withGSO(gso)})
	if err != nil {
		t.Fatalf("filter run: %v", err)
	}
	return got != 0
}

const tcUnrunnable = 1 << 31

func short(f []byte) bool {
	if len(f) < 14 {
		return true
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		return len(f) < 14+20
	case 0x86dd:
		return len(f) < 14+40
	}
	return false
}

func TestIngressFast(t *testing.T) {
	x := newTCFixture(t)

	in4 := withChecksum(ipv4(17, "198.18.10.1", "198.18.10.2", 5, 0, udp(1, 2, 100)))
	got, out := x.runTC(t, in4, 0)
	if got != tcActRedirect {
		t.Fatalf("IPv4 to a fast-path pod: verdict %d, want redirect", got)
	}
	if out[14+8] != 63 || sum16(out[14:34]) != 0xffff {
		t.Errorf("IPv4: TTL %d, header sum %#x; want 63 and a valid checksum", out[14+8], sum16(out[14:34]))
	}
	if !bytes.Equal(out[0:6], x.dst[:]) || !bytes.Equal(out[6:12], x.src[:]) || !bytes.Equal(out[12:14+8], in4[12:14+8]) || !bytes.Equal(out[34:], in4[34:]) {
		t.Errorf("IPv4: rewrite %x, rest changed", out[:34])
	}
	if x.takes(t, in4, 0) {
		t.Error("IPv4 to a fast-path pod: the socket filter takes it too")
	}
	for ttl := 2; ttl < 256; ttl += 37 {
		f := append([]byte(nil), in4...)
		f[14+8] = byte(ttl)
		withChecksum(f)
		if _, o := x.runTC(t, f, 0); sum16(o[14:34]) != 0xffff || o[14+8] != byte(ttl-1) {
			t.Errorf("TTL %d: checksum invalid after decrement", ttl)
		}
	}
	in6 := ipv6(17, "fd00:10::1", "fd00:10::2", udp(1, 2, 100))
	got, out = x.runTC(t, in6, 0)
	if got != tcActRedirect || out[14+7] != 63 || !bytes.Equal(out[0:12], append(x.dst[:], x.src[:]...)) || !bytes.Equal(out[14+8:], in6[14+8:]) {
		t.Errorf("IPv6 to a fast-path pod: verdict %d, hop limit %d, addresses %x", got, out[14+7], out[0:12])
	}

	// GSO super-frames: the segment (IP + L4 header + gso_size) must fit.
	big4 := func(proto byte, l4 []byte) []byte {
		return withChecksum(ipv4(proto, "198.18.10.1", "198.18.10.2", 5, 0, l4))
	}
	big6 := func(proto byte, l4 []byte) []byte { return ipv6(proto, "fd00:10::1", "fd00:10::2", l4) }
	for _, c := range []struct {
		name string
		f    []byte
		gso  uint32
		fast bool
	}{
		{"TCP segment of 1500", big4(6, tcpSeg(5, 2900)), 1460, true},
		{"TCP with options, segment of 1500", big4(6, tcpSeg(8, 2900)), 1448, true},
		{"TCP segment of 1512", big4(6, tcpSeg(8, 2900)), 1460, false},
		{"UDP segment of 1500", big4(17, udp(1, 2, 2900)), 1472, true},
		{"UDP segment of 1501", big4(17, udp(1, 2, 2900)), 1473, false},
		{"GSO of another protocol", big4(1, make([]byte, 2900)), 1400, false},
		{"not GSO and bigger than the MTU", big4(6, tcpSeg(5, 2900)), 0, false},
		{"IPv6 TCP segment of 1500", big6(6, tcpSeg(5, 2900)), 1440, true},
		{"IPv6 TCP segment of 1501", big6(6, tcpSeg(5, 2900)), 1441, false},
		{"IPv6 UDP segment of 1500", big6(17, udp(1, 2, 2900)), 1452, true},
		{"IPv6 not GSO and bigger than the MTU", big6(6, tcpSeg(5, 2900)), 0, false},
	} {
		got, _ := x.runTC(t, c.f, c.gso)
		if fast := got == tcActRedirect; fast != c.fast {
			t.Errorf("%s: tc verdict %d, want fast %v", c.name, got, c.fast)
		}
		if x.takes(t, c.f, c.gso) == c.fast {
			t.Errorf("%s: the socket filter takes it %v, want %v", c.name, !c.fast, !c.fast)
		}
	}

	// Everything else is dropped by tc, untouched, and taken by the socket.
	for name, f := range notFast() {
		got, out := x.runTC(t, f, 0)
		if (got != tcActShot && got != tcUnrunnable) || !bytes.Equal(out, f) {
			t.Errorf("%s: tc verdict %d, changed %v; want dropped untouched", name, got, !bytes.Equal(out, f))
		}
		if !x.takes(t, f, 0) {
			t.Errorf("%s: the socket filter refuses it", name)
		}
	}
	c, err := x.fp.Counts()
	if err != nil || c.XDP4 != 0 || c.XDP6 != 0 || c.TC4 != 1+7+3 || c.TC6 != 1+2 {
		t.Errorf("counts %+v %v; want 11 IPv4 and 3 IPv6 in tc", c, err)
	}
}

// TestIngressFastAgrees checks, on random frames, that the socket filter
// refuses exactly the frames the tc program forwards: a frame both take
// would be forwarded twice, one neither takes would be lost.
func TestIngressFastAgrees(t *testing.T) {
	x := newTCFixture(t)
	rng := rand.New(rand.NewPCG(5, 6))
	dsts4 := []string{"198.18.10.2", "198.18.10.3", "198.18.10.9"}
	dsts6 := []string{"fd00:10::2", "fd00:10::9"}
	var forwarded int
	for i := 0; i < 3000; i++ {
		n := rng.IntN(120)
		if rng.IntN(4) == 0 {
			n = 1400 + rng.IntN(1600)
		}
		var f []byte
		switch rng.IntN(5) {
		case 0, 1:
			f = withChecksum(ipv4([]byte{6, 17, 1}[rng.IntN(3)], "198.18.10.1", dsts4[rng.IntN(3)], 5, 0, tcpSeg(5+rng.IntN(11), n)))
			f[14] = []byte{0x45, 0x45, 0x46, 0x65}[rng.IntN(4)]
			f[14+8] = byte(rng.IntN(4))
		case 2, 3:
			f = ipv6([]byte{6, 17, 58}[rng.IntN(3)], "fd00:10::1", dsts6[rng.IntN(2)], tcpSeg(5+rng.IntN(11), n))
			f[14+7] = byte(rng.IntN(4))
		default:
			f = make([]byte, 14+n)
			for j := range f {
				f[j] = byte(rng.Uint32())
			}
		}
		if rng.IntN(3) == 0 {
			f = f[:rng.IntN(len(f))+1]
		}
		var gso uint32
		if rng.IntN(3) == 0 {
			gso = uint32(1 + rng.IntN(2000))
		}
		got, out := x.runTC(t, f, gso)
		switch got {
		case tcActRedirect:
			forwarded++
		case tcActShot, tcUnrunnable:
			if !bytes.Equal(out, f) {
				t.Fatalf("frame %x gso %d: dropped but changed", f, gso)
			}
		default:
			t.Fatalf("frame %x gso %d: tc verdict %d", f, gso, got)
		}
		if takes := x.takes(t, f, gso); takes == (got == tcActRedirect) {
			t.Fatalf("frame %x gso %d: tc verdict %d and the socket filter takes it: %v", f, gso, got, takes)
		}
	}
	if forwarded < 100 {
		t.Errorf("only %d of 3000 random frames forwarded: the test exercises too little of the fast path", forwarded)
	}
}

// TestIngressFastTunnel: a destination behind a VXLAN tunnel (AddTunnel)
// is forwarded by tc like any other, with the remote VTEP's and the
// node's VTEP MACs, within the tunnel's MTU (the tunnel key, source
// address included, is the kernel's to check: it refuses a key it
// cannot take, and the e2e test sees the packets cross).
func TestIngressFastTunnel(t *testing.T) {
	x := newTCFixture(t)
	vtepDst, vtepSrc := [6]byte{2, 0x58, 3, 0, 1, 1}, [6]byte{2, 0x58, 3, 0, 0, 1}
	for _, c := range []struct{ dst, remote, local string }{{"198.19.1.2", "198.18.1.1", "198.18.0.1"}, {"fd00:19:1::2", "fd00:18:1::1", "fd00:18::1"}} {
		if err := x.fp.AddTunnel(netip.MustParseAddr(c.dst), 1, 1450, vtepDst, vtepSrc, 4096, netip.MustParseAddr(c.remote), netip.MustParseAddr(c.local)); err != nil {
			t.Fatal(err)
		}
	}
	in4 := withChecksum(ipv4(17, "198.19.0.1", "198.19.1.2", 5, 0, udp(1, 2, 100)))
	got, out := x.runTC(t, in4, 0)
	if got != tcActRedirect || out[14+8] != 63 || !bytes.Equal(out[0:12], append(vtepDst[:], vtepSrc[:]...)) || sum16(out[14:34]) != 0xffff {
		t.Errorf("IPv4 into the tunnel: verdict %d, TTL %d, MACs %x", got, out[14+8], out[0:12])
	}
	if x.takes(t, in4, 0) {
		t.Error("IPv4 into the tunnel: the socket filter takes it too")
	}
	in6 := ipv6(6, "fd00:19::1", "fd00:19:1::2", tcpSeg(5, 2900))
	if got, out := x.runTC(t, in6, 1390); got != tcActRedirect || out[14+7] != 63 {
		t.Errorf("IPv6 super-frame into the tunnel: verdict %d, hop limit %d", got, out[14+7])
	}
	if got, _ := x.runTC(t, in6, 1391); got != tcActShot || !x.takes(t, in6, 1391) {
		t.Errorf("segments too big for the tunnel: verdict %d; want them left to the switch", got)
	}
	if err := x.fp.AddTunnel(netip.MustParseAddr("198.19.1.3"), 1, 1450, vtepDst, vtepSrc, 1<<24, netip.MustParseAddr("198.18.1.1"), netip.Addr{}); err == nil {
		t.Error("a VNI of 25 bits was taken")
	}
	if err := x.fp.AddTunnel(netip.MustParseAddr("198.19.1.3"), 1, 1450, vtepDst, vtepSrc, 4096, netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("fd00:18::1")); err == nil {
		t.Error("an IPv6 source for an IPv4 remote was taken")
	}
}

// TestTunnelIngressLoads: the tunnel device's program loads, and drops a
// frame that came with no tunnel key.
func TestTunnelIngressLoads(t *testing.T) {
	x := newTCFixture(t)
	p, err := loadTunnelIngress(x.fp, 4096, [6]byte{2, 0x58, 3, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f := withChecksum(ipv4(17, "198.19.1.1", "198.18.10.2", 5, 0, udp(1, 2, 100)))
	if got, err := p.Run(&ebpf.RunOptions{Data: f}); err != nil || got != tcActShot {
		t.Errorf("verdict %d, %v; want dropped", got, err)
	}
}
