package xdpprog

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// uplinkTC runs an UplinkIngress's two programs on a frame.
type uplinkTC struct{ u *UplinkIngress }

func newUplinkTC(t *testing.T, f *FastPath) uplinkTC {
	t.Helper()
	requireBPF(t)
	u, err := NewUplinkIngress(Options{FastPath: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	steerSetup(t, u)
	return uplinkTC{u}
}

// run returns the tc verdict (tcUnrunnable for frames a test run
// refuses), the frame as tc left it, and whether the socket filter takes
// the frame.
func (x uplinkTC) run(t *testing.T, f []byte, gso uint32) (uint32, []byte, bool) {
	t.Helper()
	took, err := x.u.Filter().Run(&ebpf.RunOptions{Data: append(make([]byte, 14), f...), Context: withGSO(gso)})
	if err != nil {
		t.Fatalf("filter run on %x: %v", f, err)
	}
	if short(f) {
		return tcUnrunnable, f, took != 0
	}
	out := make([]byte, len(f)+256)
	ro := &ebpf.RunOptions{Data: f, DataOut: out, Context: withGSO(gso)}
	got, err := x.u.Prog().Run(ro)
	if err != nil {
		t.Fatalf("tc run on %x: %v", f, err)
	}
	return got, out[:len(ro.DataOut)], took != 0
}

// TestUplinkIngressSteering: the AF_PACKET uplink's tc program and socket
// filter steer every case of the XDP uplink's table as it does: what XDP
// steers, tc drops (the socket has it) and the filter takes; what XDP
// passes, tc passes and the filter refuses. Frames untouched.
func TestUplinkIngressSteering(t *testing.T) {
	x := newUplinkTC(t, nil)
	for _, c := range steeringCases() {
		got, out, took := x.run(t, c.frame, 0)
		want := uint32(tcActOK)
		if c.want == steer {
			want = tcActShot
		}
		if got != tcUnrunnable && (got != want || !bytes.Equal(out, c.frame)) {
			t.Errorf("%s: tc verdict %d, changed %v; want %d untouched", c.name, got, !bytes.Equal(out, c.frame), want)
		}
		if took != (c.want == steer) {
			t.Errorf("%s: socket filter takes it %v, want %v", c.name, took, c.want == steer)
		}
	}
	// A truncated UDP header to the VXLAN port stays with the host, as
	// in XDP.
	f := ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 4789, 0))[:14+20+6]
	if got, _, took := x.run(t, f, 0); got != tcActOK || took {
		t.Errorf("truncated UDP to the VTEP: tc %d, filter %v; want pass", got, took)
	}
}

// TestUplinkIngressAgrees runs random frames through the XDP uplink
// program and the tc program and filter with the same maps' contents:
// they must steer alike, and the filter must take exactly what tc drops.
func TestUplinkIngressAgrees(t *testing.T) {
	x := newUplinkTC(t, nil)
	p, err := New(Uplink, Options{MissAction: Drop})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	steerSetup(t, p)
	rng := rand.New(rand.NewPCG(7, 8))
	dsts4 := []string{"198.19.1.5", "198.19.2.7", "198.18.0.1", "198.18.0.9"}
	dsts6 := []string{"fd00:1:2::3", "fd00::1", "fd00::9"}
	steered := 0
	for i := 0; i < 3000; i++ {
		var f []byte
		switch rng.IntN(4) {
		case 0:
			f = ipv4([]byte{6, 17, 1}[rng.IntN(3)], "198.18.0.2", dsts4[rng.IntN(4)], 5+rng.IntN(3), uint16(rng.IntN(2))*0x2000, udp(40000, []uint16{4789, 53}[rng.IntN(2)], rng.IntN(60)))
		case 1:
			f = ipv6([]byte{6, 17, 58}[rng.IntN(3)], "fd00::2", dsts6[rng.IntN(3)], udp(40000, []uint16{4789, 53}[rng.IntN(2)], rng.IntN(60)))
		default:
			f = make([]byte, 14+rng.IntN(120))
			for j := range f {
				f[j] = byte(rng.Uint32())
			}
			binary.BigEndian.PutUint16(f[12:], []uint16{0x0800, 0x86dd, 0x0806}[rng.IntN(3)])
		}
		if rng.IntN(3) == 0 {
			f = f[:14+rng.IntN(len(f)-13)] // a test run takes 14 bytes at least
		}
		xdp, err := p.Prog().Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatalf("xdp run on %x: %v", f, err)
		}
		got, _, took := x.run(t, f, 0)
		if xdp == steer {
			steered++
		}
		if took != (xdp == steer) || (got != tcUnrunnable && got != map[bool]uint32{true: tcActShot, false: tcActOK}[xdp == steer]) {
			t.Fatalf("frame %x: xdp %d, tc %d, filter takes %v", f, xdp, got, took)
		}
	}
	if steered < 300 {
		t.Errorf("only %d of 3000 frames steered: the test exercises too little", steered)
	}
}

// TestUplinkIngressFast: with a FastPath, frames from the network to the
// node's pods are forwarded by tc (super-frames whole) and kept from the
// socket; the rest is steered as without it.
func TestUplinkIngressFast(t *testing.T) {
	fp := testFastPath(t, []fastDest{{"198.19.1.2", 1500, false}, {"fd00:1:2::2", 1500, true}})
	x := newUplinkTC(t, fp)

	in4 := withChecksum(ipv4(17, "198.18.0.2", "198.19.1.2", 5, 0, udp(1, 2, 100)))
	got, out, took := x.run(t, in4, 0)
	if got != tcActRedirect || took {
		t.Fatalf("IPv4 to a fast-path pod: tc %d, filter %v; want redirect only", got, took)
	}
	if out[14+8] != 63 || sum16(out[14:34]) != 0xffff || !bytes.Equal(out[0:6], testDstMAC[:]) {
		t.Errorf("IPv4: TTL %d, header sum %#x, destination %x", out[14+8], sum16(out[14:34]), out[0:6])
	}
	in6 := ipv6(6, "fd00::2", "fd00:1:2::2", tcpSeg(5, 2900))
	if got, out, took := x.run(t, in6, 1440); got != tcActRedirect || took || out[14+7] != 63 {
		t.Errorf("IPv6 TCP super-frame to a fast-path pod: tc %d, filter %v, hop limit %d", got, took, out[14+7])
	}
	if got, _, took := x.run(t, in6, 1441); got != tcActShot || !took {
		t.Errorf("IPv6 super-frame of too big segments: tc %d, filter %v; want it steered to the switch", got, took)
	}
	for name, f := range map[string][]byte{
		"pod without fast path": withChecksum(ipv4(17, "198.18.0.2", "198.19.1.5", 5, 0, udp(1, 2, 100))),
		"TTL 1":                 func() []byte { f := append([]byte(nil), in4...); f[14+8] = 1; return withChecksum(f) }(),
		"VXLAN":                 vxlan4(4096, eth(0x0800, nil)),
	} {
		if got, out, took := x.run(t, f, 0); got != tcActShot || !took || !bytes.Equal(out, f) {
			t.Errorf("%s: tc %d, filter %v, changed %v; want steered untouched", name, got, took, !bytes.Equal(out, f))
		}
	}
	host := ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)
	if got, _, took := x.run(t, host, 0); got != tcActOK || took {
		t.Errorf("host traffic: tc %d, filter %v; want passed to the host only", got, took)
	}
	if c, err := fp.Counts(); err != nil || c.TC4 != 1 || c.TC6 != 1 {
		t.Errorf("counts %+v %v; want one of each family in tc", c, err)
	}
	if err := x.u.Attach(0); err == nil {
		t.Error("attach to ifindex 0 succeeded")
	}
}

// TestUplinkIngressKernelVXLAN: with the kernel's VXLAN device in use,
// VXLAN (over IPv4 or IPv6) whose inner frame goes to a fast-path pod is
// left to the kernel, and kept from the socket, GSO super-frames too; any
// other VXLAN is the switch's, as before, and so is a single frame too
// big for its pod or bound for another tunnel.
func TestUplinkIngressKernelVXLAN(t *testing.T) {
	fp := testFastPath(t, []fastDest{{"198.19.1.2", 1500, false}, {"fd00:19:1::2", 1500, false}, {"198.19.1.3", 80, false}})
	if err := fp.AddTunnel(netip.MustParseAddr("198.19.2.2"), 1, 1450, testDstMAC, testSrcMAC, 4096, netip.MustParseAddr("198.18.2.1"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	x := newUplinkTC(t, fp)
	vtepMAC := [6]byte{2, 0x58, 3, 0, 0, 1}
	if err := x.u.SetDecap(4096, vtepMAC); err != nil {
		t.Fatal(err)
	}
	inner := func(to string, ttl byte) []byte {
		var f []byte
		if netip.MustParseAddr(to).Is4() {
			f = withChecksum(ipv4(17, "198.19.0.2", to, 5, 0, udp(1, 2, 64)))
			f[14+8] = ttl
		} else {
			f = ipv6(17, "fd00:19::2", to, udp(1, 2, 64))
			f[14+7] = ttl
		}
		copy(f[0:6], vtepMAC[:])
		return f
	}
	vxlan6 := func(vni uint32, in []byte) []byte {
		u := udp(51000, 4789, 8+len(in))
		u[8] = 0x08
		u[8+4], u[8+5], u[8+6] = byte(vni>>16), byte(vni>>8), byte(vni)
		copy(u[16:], in)
		return ipv6(17, "fd00::2", "fd00::1", u)
	}
	kernel := map[string][]byte{
		"v4 in v4": vxlan4(4096, inner("198.19.1.2", 64)),
		"v6 in v4": vxlan4(4096, inner("fd00:19:1::2", 64)),
		"v4 in v6": vxlan6(4096, inner("198.19.1.2", 64)),
		"v6 in v6": vxlan6(4096, inner("fd00:19:1::2", 64)),
	}
	switchs := map[string][]byte{
		"inner to no fast-path pod": vxlan4(4096, inner("198.19.1.9", 64)),
		"inner TTL 1":               vxlan4(4096, inner("198.19.1.2", 1)),
		"inner too big for the pod": vxlan4(4096, inner("198.19.1.3", 64)),
		"inner to a tunnel":         vxlan4(4096, inner("198.19.2.2", 64)),
		"other VNI":                 vxlan6(7, inner("198.19.1.2", 64)),
		"inner MAC not the node's": func() []byte {
			f := inner("198.19.1.2", 64)
			f[5] ^= 1
			return vxlan4(4096, f)
		}(),
	}
	check := func(on bool) {
		for name, f := range kernel {
			for _, gso := range []uint32{0, 1400} {
				got, out, took := x.run(t, f, gso)
				if on && (got != tcActOK || took || !bytes.Equal(out, f)) {
					t.Errorf("%s (gso %d): tc %d, filter %v; want the kernel's, whole", name, gso, got, took)
				}
				if !on && (got != tcActShot || !took) {
					t.Errorf("%s (gso %d), kernel VXLAN off: tc %d, filter %v; want the switch's", name, gso, got, took)
				}
			}
		}
		for name, f := range switchs {
			if got, _, took := x.run(t, f, 0); got != tcActShot || !took {
				t.Errorf("%s (kernel VXLAN %v): tc %d, filter %v; want the switch's", name, on, got, took)
			}
		}
		// A super-frame is the kernel's whatever its length: the
		// device's program checks its segments' size.
		big := switchs["inner too big for the pod"]
		if got, _, took := x.run(t, big, 40); on && (got != tcActOK || took) {
			t.Errorf("super-frame for the small pod: tc %d, filter %v; want the kernel's", got, took)
		}
	}
	check(false)
	if err := x.u.SetKernelVXLAN(true); err != nil {
		t.Fatal(err)
	}
	check(true)
}
