package xdpprog

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// requireBPF skips the test where the kernel will not load BPF for it:
// without root (EPERM) or without BPF (ENOSYS, ebpf.ErrNotSupported). As
// root any other error fails the test, here and in every load after it.
func requireBPF(t testing.TB) {
	t.Helper()
	if err := rlimit.RemoveMemlock(); err != nil {
		skipUnsupported(t, err)
		t.Fatalf("memlock: %v", err)
	}
	// A map and an XDP program: unprivileged BPF, where the kernel
	// allows it, creates maps but loads no XDP.
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		skipUnsupported(t, err)
		t.Fatalf("create a map: %v", err)
	}
	m.Close()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, Pass), asm.Return()}})
	if err != nil {
		skipUnsupported(t, err)
		t.Fatalf("load an XDP program: %v", err)
	}
	p.Close()
}

// skipUnsupported skips the test if err is the kernel's "not supported":
// EPERM without root, ENOSYS, EOPNOTSUPP or ebpf.ErrNotSupported.
func skipUnsupported(t testing.TB, err error) {
	t.Helper()
	switch {
	case errors.Is(err, unix.EPERM) && os.Geteuid() != 0:
		t.Skipf("needs root: %v", err)
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, ebpf.ErrNotSupported):
		t.Skipf("not supported here: %v", err)
	}
}

// frame builders: minimal but well-formed headers, checksums left zero (the
// program does not read them).
func eth(etype uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	copy(b[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(b[12:], etype)
	return append(b, payload...)
}

func ipv4(proto byte, src, dst string, ihl int, frag uint16, l4 []byte) []byte {
	h := make([]byte, ihl*4)
	h[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(l4)))
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return eth(0x0800, append(h, l4...))
}

func ipv6(next byte, src, dst string, l4 []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	h[6] = next
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return eth(0x86dd, append(h, l4...))
}

func udp(sport, dport uint16, payload int) []byte {
	b := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+payload))
	return b
}

var tcp = make([]byte, 20)

func TestUplinkSteering(t *testing.T) {
	requireBPF(t)
	// MissAction Drop makes "would redirect" visible without a socket in
	// the XSKMAP: redirect_map returns the miss action for an empty slot.
	p, err := New(Uplink, Options{MissAction: Drop})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	steerSetup(t, p)
	tests := steeringCases()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Prog().Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("verdict = %d, want %d", got, tc.want)
			}
		})
	}

	// Removing prefixes and the VTEP turns steering off.
	if err := p.RemovePrefix(netip.MustParsePrefix("198.19.1.0/26")); err != nil {
		t.Fatal(err)
	}
	if err := p.RemovePrefix(netip.MustParsePrefix("198.19.1.0/26")); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if err := p.SetVTEP(4789, netip.Addr{}, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][]byte{tests[0].frame, tests[5].frame, tests[14].frame} {
		if got, err := p.Prog().Run(&ebpf.RunOptions{Data: f}); err != nil || got != Pass {
			t.Errorf("after removal: verdict %d, %v; want pass", got, err)
		}
	}
}

func TestPodRedirectsAll(t *testing.T) {
	requireBPF(t)
	p, err := New(Pod, Options{MissAction: Drop})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, f := range [][]byte{eth(0x0806, make([]byte, 28)), ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp), eth(0x88cc, nil)} {
		if got, err := p.Prog().Run(&ebpf.RunOptions{Data: f}); err != nil || got != Drop {
			t.Errorf("verdict %d, %v; want the redirect's miss action", got, err)
		}
	}
	if err := p.AddPrefix(netip.MustParsePrefix("198.19.0.0/24")); !errors.Is(err, ErrNotUplink) {
		t.Errorf("AddPrefix on pod program: %v, want ErrNotUplink", err)
	}
}

// TestUplinkRandomFrames runs random bytes (with IPv4/IPv6 ethertypes and
// every length from 14 up) through the program: it must always decide
// pass or steer, never abort.
func TestUplinkRandomFrames(t *testing.T) {
	requireBPF(t)
	p, err := New(Uplink, Options{MissAction: Drop})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.AddPrefix(netip.MustParsePrefix("0.0.0.0/1"))
	p.AddPrefix(netip.MustParsePrefix("8000::/1"))
	p.SetVTEP(4789, netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1"))
	rng := rand.New(rand.NewPCG(1, 2))
	verdicts := map[uint32]int{}
	for i := 0; i < 3000; i++ {
		f := make([]byte, 14+rng.IntN(120))
		for j := range f {
			f[j] = byte(rng.Uint32())
		}
		switch rng.IntN(3) {
		case 0:
			binary.BigEndian.PutUint16(f[12:], 0x0800)
		case 1:
			binary.BigEndian.PutUint16(f[12:], 0x86dd)
		}
		got, err := p.Prog().Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatalf("frame %x: %v", f, err)
		}
		if got != Pass && got != Drop {
			t.Fatalf("frame %x: verdict %d", f, got)
		}
		verdicts[got]++
	}
	if verdicts[Pass] == 0 || verdicts[Drop] == 0 {
		t.Errorf("verdicts %v: want both pass and steer", verdicts)
	}
}

// steerCase is a frame and what the uplink's XDP steering does with it,
// given steerSetup's prefixes and VTEP: steer (Drop, with MissAction
// Drop and no socket) or Pass.
type steerCase struct {
	name  string
	frame []byte
	want  uint32
}

const steer = Drop

// steerSetup gives an uplink's steering the prefixes and VTEP the cases
// expect.
func steerSetup(t *testing.T, st interface {
	AddPrefix(netip.Prefix) error
	SetVTEP(uint16, netip.Addr, netip.Addr) error
}) {
	t.Helper()
	for _, s := range []string{"198.19.1.0/26", "198.19.2.7/32", "fd00:1:2::/122"} {
		if err := st.AddPrefix(netip.MustParsePrefix(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetVTEP(4789, netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")); err != nil {
		t.Fatal(err)
	}
}

func steeringCases() []steerCase {
	v4opts := ipv4(17, "198.18.0.2", "198.18.0.1", 6, 0, udp(40000, 4789, 50)) // IHL 6: options
	return []steerCase{
		{"v4 pod block", ipv4(6, "198.18.0.2", "198.19.1.5", 5, 0, tcp), steer},
		{"v4 pod host route", ipv4(6, "198.18.0.2", "198.19.2.7", 5, 0, tcp), steer},
		{"v4 beside pod host route", ipv4(6, "198.18.0.2", "198.19.2.8", 5, 0, tcp), Pass},
		{"v4 outside block", ipv4(6, "198.18.0.2", "198.19.1.64", 5, 0, tcp), Pass},
		{"v4 host tcp (ssh)", ipv4(6, "198.18.0.2", "198.18.0.1", 5, 0, tcp), Pass},
		{"v4 vxlan to node", ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 4789, 50)), steer},
		{"v4 vxlan with ip options", v4opts, steer},
		{"v4 vxlan other port", ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 4790, 50)), Pass},
		{"v4 vxlan not to node", ipv4(17, "198.18.0.2", "198.18.0.9", 5, 0, udp(40000, 4789, 50)), Pass},
		{"v4 non-first fragment", ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0x0010, udp(40000, 4789, 50)), Pass},
		{"v4 dns to node", ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 53, 20)), Pass},
		{"v6 pod block", ipv6(6, "fd00::2", "fd00:1:2::3f", tcp), steer},
		{"v6 outside block", ipv6(6, "fd00::2", "fd00:1:2::40", tcp), Pass},
		{"v6 host tcp", ipv6(6, "fd00::2", "fd00::1", tcp), Pass},
		{"v6 vxlan to node", ipv6(17, "fd00::2", "fd00::1", udp(40000, 4789, 50)), steer},
		{"v6 vxlan other port", ipv6(17, "fd00::2", "fd00::1", udp(40000, 4790, 50)), Pass},
		{"v6 vxlan not to node", ipv6(17, "fd00::2", "fd00::5", udp(40000, 4789, 50)), Pass},
		{"arp", eth(0x0806, make([]byte, 28)), Pass},
		{"vlan tagged", eth(0x8100, make([]byte, 60)), Pass},
		{"ethernet only, ipv4 type", eth(0x0800, nil), Pass},
		{"truncated ipv4", ipv4(6, "198.18.0.2", "198.19.1.5", 5, 0, tcp)[:14+19], Pass},
		{"truncated ipv6", ipv6(6, "fd00::2", "fd00:1:2::3", tcp)[:14+39], Pass},
		{"v4 vxlan truncated udp", ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 4789, 0))[:14+20+3], Pass},
		{"v4 bad ihl", func() []byte {
			f := ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 4789, 8))
			f[14] = 0x42
			return f
		}(), Pass},
		{"v4 ihl past end", func() []byte {
			f := ipv4(17, "198.18.0.2", "198.18.0.1", 5, 0, udp(40000, 4789, 0))
			f[14] = 0x4f
			return f
		}(), Pass},
		{"v6 vxlan truncated udp", ipv6(17, "fd00::2", "fd00::1", udp(40000, 4789, 0))[:14+40+5], Pass},
	}
}

// TestLoadFails: a program that cannot load (here: a FastPath without
// maps) is an error, and what was made before it is released, not a
// panic.
func TestLoadFails(t *testing.T) {
	requireBPF(t)
	empty := &FastPath{}
	for _, tc := range []struct {
		name string
		load func() error
	}{
		{"pod", func() error { _, err := New(Pod, Options{FastPath: empty}); return err }},
		{"uplink", func() error { _, err := New(Uplink, Options{FastPath: empty}); return err }},
		{"uplink ingress", func() error { _, err := NewUplinkIngress(Options{FastPath: empty}); return err }},
		{"ingress", func() error { _, err := AttachIngress(1, empty); return err }},
		{"tunnel ingress", func() error { _, err := AttachTunnelIngress(1, empty, 1, [6]byte{2}); return err }},
		{"socket filter", func() error { _, err := empty.SocketFilter(); return err }},
	} {
		if err := tc.load(); err == nil || !strings.Contains(err.Error(), "which it was not given") {
			t.Errorf("%s: %v, want the missing map named", tc.name, err)
		}
	}
}
