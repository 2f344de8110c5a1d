package xdpprog

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// abPair is one program as the C builds it and as the Go assembly
// (asm_legacy_test.go) did, on the same maps.
type abPair struct {
	name   string
	typ    ebpf.ProgramType
	c, asm *ebpf.Program
}

// abFixture holds every pair, with maps whose contents make each decision
// reachable: fast-path destinations of every kind, pod prefixes, the VTEP,
// decapsulation on.
type abFixture struct {
	fp    *FastPath
	pod   *Program // pod with the fast path
	up    *Program // uplink
	upf   *Program // uplink with the fast path
	tcu   *UplinkIngress
	tcuf  *UplinkIngress
	pairs []abPair
}

var abVTEPMAC = [6]byte{2, 0x58, 3, 0, 0, 1}

func newABFixture(t testing.TB) *abFixture {
	t.Helper()
	fp := testFastPath(t, []fastDest{
		{"198.19.1.2", 1500, true}, {"198.19.1.3", 1500, false}, {"198.19.1.4", 80, false},
		{"fd00:19:1::2", 1500, true}, {"fd00:19:1::3", 1500, false},
	})
	if err := fp.AddTunnel(netip.MustParseAddr("198.19.2.2"), 1, 1450, testDstMAC, testSrcMAC, 4096, netip.MustParseAddr("198.18.2.1"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if err := fp.AddTunnel(netip.MustParseAddr("fd00:19:2::2"), 1, 1430, testDstMAC, testSrcMAC, 4096, netip.MustParseAddr("fd00:18:2::1"), netip.MustParseAddr("fd00:18::1")); err != nil {
		t.Fatal(err)
	}
	x := &abFixture{fp: fp}
	var err error
	newProg := func(k Kind, f *FastPath) *Program {
		p, err := New(k, Options{MissAction: Drop, FastPath: f})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	x.pod, x.up, x.upf = newProg(Pod, fp), newProg(Uplink, nil), newProg(Uplink, fp)
	for _, pp := range []**UplinkIngress{&x.tcu, &x.tcuf} {
		var f *FastPath
		if pp == &x.tcuf {
			f = fp
		}
		if *pp, err = NewUplinkIngress(Options{FastPath: f}); err != nil {
			t.Fatal(err)
		}
		u := *pp
		t.Cleanup(func() { u.Close() })
	}
	type steerer interface {
		AddPrefix(netip.Prefix) error
		SetVTEP(uint16, netip.Addr, netip.Addr) error
		SetDecap(uint32, [6]byte) error
	}
	for _, s := range []steerer{x.up, x.upf, x.tcu, x.tcuf} {
		for _, p := range []string{"198.19.1.0/26", "198.19.2.7/32", "fd00:19:1::/120"} {
			if err := s.AddPrefix(netip.MustParsePrefix(p)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetVTEP(4789, netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDecap(4096, abVTEPMAC); err != nil {
			t.Fatal(err)
		}
	}
	filter, err := fp.SocketFilter()
	if err != nil {
		t.Fatal(err)
	}
	tcfast, err := loadIngressFast(fp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcfast.Close() })
	legacy := func(name string, typ ebpf.ProgramType, is asm.Instructions) *ebpf.Program {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "legacy", Type: typ, License: "GPL", Instructions: is})
		if err != nil {
			t.Fatalf("legacy %s: %v", name, err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	add := func(name string, typ ebpf.ProgramType, c *ebpf.Program, is asm.Instructions) {
		x.pairs = append(x.pairs, abPair{name, typ, c, legacy(name, typ, is)})
	}
	add("xdp_pod_fast", ebpf.XDP, x.pod.Prog(), fastPodProgram(x.pod.xsks, fp, Drop))
	add("xdp_uplink", ebpf.XDP, x.up.Prog(), uplinkProgram(x.up.xsks, x.up.st, Drop, nil))
	add("xdp_uplink_fast", ebpf.XDP, x.upf.Prog(), uplinkProgram(x.upf.xsks, x.upf.st, Drop, fp))
	add("tc_ingress_fast", ebpf.SchedCLS, tcfast, ingressFastProgram(fp))
	add("filter_fast", ebpf.SocketFilter, filter, socketFilterProgram(fp))
	add("tc_uplink", ebpf.SchedCLS, x.tcu.Prog(), uplinkIngressProgram(x.tcu.st, nil, false))
	add("filter_uplink", ebpf.SocketFilter, x.tcu.Filter(), uplinkIngressProgram(x.tcu.st, nil, true))
	add("tc_uplink_fast", ebpf.SchedCLS, x.tcuf.Prog(), uplinkIngressProgram(x.tcuf.st, fp, false))
	add("filter_uplink_fast", ebpf.SocketFilter, x.tcuf.Filter(), uplinkIngressProgram(x.tcuf.st, fp, true))
	return x
}

// setKernelVXLAN turns the kernel's VXLAN device on or off for every
// uplink of the fixture.
func (x *abFixture) setKernelVXLAN(t testing.TB, on bool) {
	t.Helper()
	for _, s := range []interface{ SetKernelVXLAN(bool) error }{x.up, x.upf, x.tcu, x.tcuf} {
		if err := s.SetKernelVXLAN(on); err != nil {
			t.Fatal(err)
		}
	}
}

// abRun runs p on f as BPF_PROG_TEST_RUN takes a frame for its type: a
// socket filter's frame behind 14 spare bytes, as the tc tests give it.
func abRun(p *ebpf.Program, typ ebpf.ProgramType, f []byte, gso uint32) (uint32, []byte, error) {
	in := f
	var ctx any
	if typ != ebpf.XDP {
		ctx = withGSO(gso)
	}
	if typ == ebpf.SocketFilter {
		in = append(make([]byte, 14), f...)
	}
	out := make([]byte, len(in)+256)
	ro := &ebpf.RunOptions{Data: in, DataOut: out, Context: ctx}
	got, err := p.Run(ro)
	return got, out[:len(ro.DataOut)], err
}

// abFrame is a random frame that reaches the fixture's decisions: IPv4
// and IPv6 to fast-path destinations, pod prefixes, the node and
// elsewhere, VXLAN over both with inner frames of every kind, random
// bytes, truncated or padded, and a GSO size or none.
func abFrame(rng *rand.Rand) ([]byte, uint32) {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	dst4 := func() string {
		return pick("198.19.1.2", "198.19.1.3", "198.19.1.4", "198.19.1.9", "198.19.2.2", "198.19.2.7", "198.18.0.1", "198.18.0.9")
	}
	dst6 := func() string {
		return pick("fd00:19:1::2", "fd00:19:1::3", "fd00:19:1::9", "fd00:19:2::2", "fd00::1", "fd00::9")
	}
	l4 := func(n int) []byte {
		if rng.IntN(2) == 0 {
			return tcpSeg(5+rng.IntN(11), n)
		}
		return udp(40000, []uint16{4789, 53, 2}[rng.IntN(3)], n)
	}
	size := func() int {
		if rng.IntN(4) == 0 {
			return 1400 + rng.IntN(1600)
		}
		return rng.IntN(120)
	}
	inner := func() []byte {
		var f []byte
		if rng.IntN(2) == 0 {
			f = withChecksum(ipv4([]byte{6, 17, 1}[rng.IntN(3)], "198.19.0.2", dst4(), 5, 0, l4(size())))
			f[14+8] = []byte{0, 1, 2, 64}[rng.IntN(4)]
			withChecksum(f)
		} else {
			f = ipv6([]byte{6, 17, 58}[rng.IntN(3)], "fd00:19::2", dst6(), l4(size()))
			f[14+7] = []byte{0, 1, 2, 64}[rng.IntN(4)]
		}
		if rng.IntN(5) != 0 {
			copy(f[0:6], abVTEPMAC[:])
		}
		return f
	}
	vx := func(in []byte) []byte {
		u := udp(51000, []uint16{4789, 4789, 4789, 53}[rng.IntN(4)], 8+len(in))
		u[8] = []byte{0x08, 0x08, 0x08, 0}[rng.IntN(4)]
		vni := []uint32{4096, 4096, 4096, 7}[rng.IntN(4)]
		u[8+4], u[8+5], u[8+6] = byte(vni>>16), byte(vni>>8), byte(vni)
		copy(u[16:], in)
		return u
	}
	var f []byte
	switch rng.IntN(8) {
	case 0, 1:
		f = withChecksum(ipv4([]byte{6, 17, 1}[rng.IntN(3)], "198.18.0.2", dst4(), 5+rng.IntN(3)/2, uint16(rng.IntN(4)/3)*0x2000, l4(size())))
		f[14+8] = []byte{0, 1, 2, 64, 255}[rng.IntN(5)]
	case 2, 3:
		f = ipv6([]byte{6, 17, 58}[rng.IntN(3)], "fd00::2", dst6(), l4(size()))
		f[14+7] = []byte{0, 1, 2, 64, 255}[rng.IntN(5)]
	case 4, 5:
		f = withChecksum(ipv4(17, "198.18.0.2", pick("198.18.0.1", "198.18.0.1", "198.18.0.9"), 5+rng.IntN(4)/3, 0, vx(inner())))
	case 6:
		f = ipv6(17, "fd00::2", pick("fd00::1", "fd00::1", "fd00::9"), vx(inner()))
	default:
		f = make([]byte, 14+rng.IntN(120))
		for j := range f {
			f[j] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint16(f[12:], []uint16{0x0800, 0x86dd, 0x0806}[rng.IntN(3)])
	}
	switch rng.IntN(6) {
	case 0:
		f = f[:14+rng.IntN(len(f)-13)]
	case 1:
		f = append(f, 0, 0, 0, 0)
	}
	var gso uint32
	if rng.IntN(3) == 0 {
		gso = uint32(1 + rng.IntN(2000))
	}
	return f, gso
}

// TestLegacyAgrees runs random frames through each C program and the Go
// assembly it replaced, on the same maps: same verdict, same frame out.
// Each pair must also decide more than one way, or the frames miss it.
func TestLegacyAgrees(t *testing.T) {
	x := newABFixture(t)
	rng := rand.New(rand.NewPCG(11, 12))
	// verdicts and, for VXLAN to the node, vxlan count each pair's
	// outcomes: VXLAN must meet both the kernel's and the switch's.
	verdicts := make([]map[uint32]int, len(x.pairs))
	vxlan := make([]map[uint32]int, len(x.pairs))
	for i := range verdicts {
		verdicts[i], vxlan[i] = map[uint32]int{}, map[uint32]int{}
	}
	for i := 0; i < 6000; i++ {
		if i == 3000 {
			x.setKernelVXLAN(t, true)
		}
		f, gso := abFrame(rng)
		for j, p := range x.pairs {
			if p.typ == ebpf.XDP {
				gso = 0
			}
			cv, cout, cerr := abRun(p.c, p.typ, f, gso)
			av, aout, aerr := abRun(p.asm, p.typ, f, gso)
			if (cerr != nil) != (aerr != nil) {
				t.Fatalf("%s on %x gso %d: C %v, asm %v", p.name, f, gso, cerr, aerr)
			}
			if cerr != nil {
				continue // a frame the test run refuses, for both
			}
			if cv != av || !bytes.Equal(cout, aout) {
				t.Fatalf("%s on %x gso %d: C verdict %d, asm %d; frames out equal %v\nC   %x\nasm %x", p.name, f, gso, cv, av, bytes.Equal(cout, aout), cout, aout)
			}
			verdicts[j][cv]++
			if i >= 3000 && vxlanToNode(f) {
				vxlan[j][cv]++
			}
		}
	}
	for j, p := range x.pairs {
		if len(verdicts[j]) < 2 {
			t.Errorf("%s: verdicts %v; the frames exercise one outcome only", p.name, verdicts[j])
		}
		if len(vxlan[j]) < 2 && p.name != "xdp_pod_fast" && p.name != "tc_ingress_fast" && p.name != "filter_fast" {
			t.Errorf("%s: VXLAN verdicts %v; the frames exercise one outcome only", p.name, vxlan[j])
		}
		t.Logf("%s: verdicts %v, VXLAN to the node with the kernel's device on %v", p.name, verdicts[j], vxlan[j])
	}
}

// vxlanToNode reports whether f is UDP to the fixture's VTEP address and
// port, behind an IPv4 header without options or an IPv6 one.
func vxlanToNode(f []byte) bool {
	switch {
	case len(f) >= 14+20+8 && binary.BigEndian.Uint16(f[12:]) == 0x0800:
		return f[14] == 0x45 && f[14+9] == 17 && bytes.Equal(f[14+16:14+20], []byte{198, 18, 0, 1}) && binary.BigEndian.Uint16(f[14+20+2:]) == 4789
	case len(f) >= 14+40+8 && binary.BigEndian.Uint16(f[12:]) == 0x86dd:
		a := netip.MustParseAddr("fd00::1").As16()
		return f[14+6] == 17 && bytes.Equal(f[14+24:14+40], a[:]) && binary.BigEndian.Uint16(f[14+40+2:]) == 4789
	}
	return false
}

// BenchmarkPrograms times each C program against the Go assembly it
// replaced on the same frames and maps, with BPF_PROG_TEST_RUN's own
// timing (the kernel's average over a call's repeats, no syscall).
// Frames the program rewrites carry TTL 255, so the repeats within one
// call (which reuse the frame) all take the same path.
func BenchmarkPrograms(b *testing.B) {
	x := newABFixture(b)
	x.setKernelVXLAN(b, true)
	ttl255 := func(f []byte) []byte {
		if binary.BigEndian.Uint16(f[12:]) == 0x86dd {
			f[14+7] = 255
			return f
		}
		f[14+8] = 255
		return withChecksum(f)
	}
	fwd4 := ttl255(withChecksum(ipv4(17, "198.18.0.2", "198.19.1.2", 5, 0, udp(1, 2, 100))))
	fwd4tc := ttl255(withChecksum(ipv4(17, "198.18.0.2", "198.19.1.3", 5, 0, udp(1, 2, 100))))
	fwd6 := ttl255(ipv6(17, "fd00::2", "fd00:19:1::2", udp(1, 2, 100)))
	inner := withChecksum(ipv4(17, "198.19.0.2", "198.19.1.3", 5, 0, udp(1, 2, 64)))
	copy(inner[0:6], abVTEPMAC[:])
	cases := map[string][]struct {
		name  string
		frame []byte
	}{
		"xdp_pod_fast": {{"fwd4", fwd4}, {"fwd6", fwd6}, {"socket", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
		"xdp_uplink": {
			{"pod4", ipv4(6, "198.18.0.2", "198.19.1.5", 5, 0, tcp)},
			{"vxlan6", ipv6(17, "fd00::2", "fd00::1", udp(40000, 4789, 50))},
			{"host4", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)},
		},
		"xdp_uplink_fast":    {{"fwd4", fwd4}, {"vxlan_kernel", vxlan4(4096, inner)}, {"host4", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
		"tc_ingress_fast":    {{"fwd4", fwd4tc}, {"fwd6", fwd6}, {"drop", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
		"filter_fast":        {{"fast4", fwd4tc}, {"slow", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
		"tc_uplink":          {{"vxlan4", vxlan4(4096, inner)}, {"host4", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
		"filter_uplink":      {{"vxlan4", vxlan4(4096, inner)}, {"host4", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
		"tc_uplink_fast":     {{"fwd4", fwd4tc}, {"vxlan_kernel", vxlan4(4096, inner)}, {"host4", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
		"filter_uplink_fast": {{"fwd4", fwd4tc}, {"vxlan_kernel", vxlan4(4096, inner)}, {"host4", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp)}},
	}
	for _, p := range x.pairs {
		for _, c := range cases[p.name] {
			in := c.frame
			if p.typ == ebpf.SocketFilter {
				in = append(make([]byte, 14), in...)
			}
			// vxlan_kernel in XDP decapsulates and puts the outer
			// headers back: each repeat sees the frame as it came.
			const repeat = 50
			b.Run(p.name+"/"+c.name, func(b *testing.B) {
				// asm and C alternate, so both see the same load; the
				// medians of the kernel's per-call averages keep a
				// preempted call from counting.
				var asmNs, cNs []float64
				for b.Loop() {
					for _, v := range []struct {
						prog *ebpf.Program
						ns   *[]float64
					}{{p.asm, &asmNs}, {p.c, &cNs}} {
						_, d, err := v.prog.Benchmark(in, repeat, nil)
						if err != nil {
							b.Fatal(err)
						}
						*v.ns = append(*v.ns, float64(d.Nanoseconds()))
					}
				}
				a, c := median(asmNs), median(cNs)
				b.ReportMetric(a, "asm-ns/run")
				b.ReportMetric(c, "c-ns/run")
				b.ReportMetric(c/a, "c/asm")
			})
		}
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}
