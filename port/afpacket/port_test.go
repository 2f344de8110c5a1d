package afpacket

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk/xsktest"
)

// Addresses of the frames the tests send: a pod's to another's, through
// the Calico gateway MAC.
var (
	pod1MAC = [6]byte{0x02, 0, 0, 0, 0, 1}
	gwMAC   = [6]byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
	pod1v4  = netip.MustParseAddr("198.18.10.1")
	pod2v4  = netip.MustParseAddr("198.18.10.2")
)

func openAFPacket(t *testing.T, l *porttest.VethLab, opts Options) *Port {
	t.Helper()
	var p *Port
	err := l.SW.Do(func() error {
		var err error
		p, err = Open(l.SWIf, l.Umem, opts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestAFPacketPortRxTx(t *testing.T) {
	l := porttest.NewVethLab(t)
	p := openAFPacket(t, l, Options{})
	if p.Mode() != spec.ModeAFPacket {
		t.Errorf("mode %s", p.Mode())
	}
	porttest.CheckRxTx(t, l, p)
}

func TestAFPacketPortAllocs(t *testing.T) {
	l := porttest.NewVethLab(t)
	p := openAFPacket(t, l, Options{})
	pkts := make([]port.Packet, 64)
	out := make([]port.Packet, 1)
	allocs := testing.AllocsPerRun(200, func() {
		for _, pk := range pkts[:p.Receive(pkts)] {
			l.Umem.Free(pk.Addr)
		}
		if a, ok := l.Umem.Alloc(); ok {
			copy(l.Umem.Frame(a)[port.Headroom:], porttest.MarkedFrame(l.PeerMAC, l.SWMAC, 1))
			out[0] = port.Packet{Addr: a + port.Headroom, Len: 64}
			if p.Transmit(out) == 0 {
				l.Umem.Free(a)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Receive/Transmit allocate %v times per call", allocs)
	}
}

// TestAFPacketPortOffload sends a TCP GSO super-frame and a small frame with
// a partial checksum from the peer through a PACKET_VNET_HDR socket, as a
// pod with TSO and checksum offload does, and checks the port hands the
// first out whole with its offload header (Large) and the second as a
// port.Packet with its checksum completed; then sends the super-frame back whole
// with TransmitLarge.
func TestAFPacketPortOffload(t *testing.T) {
	l := porttest.NewVethLab(t)
	p := openAFPacket(t, l, Options{})
	fd := l.RawSocket(t)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		t.Fatal(err)
	}
	super := porttest.TCPSuper(t, porttest.Flow{SrcMAC: pod1MAC, DstMAC: gwMAC, Src: pod1v4, Dst: pod2v4, TTL: 64}, 30000, 1460)
	small := porttest.TCPSuper(t, porttest.Flow{SrcMAC: pod1MAC, DstMAC: gwMAC, Src: pod1v4, Dst: pod2v4, TTL: 64}, 100, 1460)
	encap.VirtioNetHdr(small).Set(encap.VirtioNetHdrFNeedsCsum, encap.GSONone, 0, 0, 34, 16)
	for _, f := range [][]byte{small, super} {
		if _, err := unix.Write(fd, f); err != nil {
			t.Fatalf("send from peer: %v", err)
		}
	}
	pkts := make([]port.Packet, 8)
	var gotSmall, gotLarge []byte
	var hdr []byte
	deadline := time.Now().Add(3 * time.Second)
	for (gotSmall == nil || gotLarge == nil) && time.Now().Before(deadline) {
		k := p.Receive(pkts)
		for _, pk := range pkts[:k] {
			if b := l.Umem.Bytes(pk.Addr, int(pk.Len)); len(b) > 40 && b[14+9] == 6 {
				gotSmall = append([]byte(nil), b...)
			}
			l.Umem.Free(pk.Addr)
		}
		for _, lf := range p.Large() {
			gotLarge = append([]byte(nil), lf.Frame...)
			hdr = append([]byte(nil), lf.Hdr...)
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if gotSmall == nil || !porttest.L4ChecksumValid(gotSmall, false) {
		t.Errorf("small frame with a partial checksum: got %d bytes, checksum completed: %v", len(gotSmall), gotSmall != nil && porttest.L4ChecksumValid(gotSmall, false))
	}
	if !bytes.Equal(gotLarge, super[encap.VirtioNetHdrLen:]) {
		t.Fatalf("super-frame: got %d bytes, want the %d sent, unchanged", len(gotLarge), len(super)-encap.VirtioNetHdrLen)
	}
	if h := encap.VirtioNetHdr(hdr); h.GSOType() != encap.GSOTCPv4 || h.GSOSize() != 1460 {
		t.Errorf("offload header: gso type %d size %d, want %d 1460", h.GSOType(), h.GSOSize(), encap.GSOTCPv4)
	}
	if err := p.TransmitLarge(gotLarge, hdr); err != nil {
		t.Fatalf("TransmitLarge: %v", err)
	}
	buf := make([]byte, 70000)
	deadline = time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		m, err := unix.Read(fd, buf)
		if err != nil || m <= encap.VirtioNetHdrLen+60 {
			continue
		}
		if bytes.Equal(buf[encap.VirtioNetHdrLen:m], gotLarge) {
			return
		}
	}
	t.Error("the peer did not get the super-frame back whole")
}

// TestAFPacketPortDropIngress: with DropIngress the port still receives
// every frame, and the kernel's stack on that side sees none of them.
func TestAFPacketPortDropIngress(t *testing.T) {
	l := porttest.NewVethLab(t)
	p := openAFPacket(t, l, Options{DropIngress: true})
	if err := p.DropIngressErr(); err != nil {
		t.Fatalf("tc ingress drop: %v", err)
	}
	before := ipInReceives(t, l.SW)
	fd := l.RawSocket(t)
	const n = 20
	frame := porttest.UDP4(t, porttest.Flow{SrcMAC: [6]byte(l.PeerMAC), DstMAC: gwMAC, Src: netip.MustParseAddr("198.18.0.2"), Dst: l.SWAddr4, TTL: 64}, 20)
	copy(frame[0:6], l.SWMAC)
	for range n {
		if _, err := unix.Write(fd, frame); err != nil {
			t.Fatal(err)
		}
	}
	pkts := make([]port.Packet, 32)
	got := 0
	for deadline := time.Now().Add(3 * time.Second); got < n && time.Now().Before(deadline); {
		k := p.Receive(pkts)
		for _, pk := range pkts[:k] {
			// Ours only: the peer's stack sends its own (IPv6 ND, MLD).
			if b := l.Umem.Bytes(pk.Addr, int(pk.Len)); bytes.Equal(b, frame) {
				got++
			}
			l.Umem.Free(pk.Addr)
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if got != n {
		t.Errorf("port received %d of %d frames", got, n)
	}
	if after := ipInReceives(t, l.SW); after != before {
		t.Errorf("the kernel's IPv4 stack saw %d frames; want none", after-before)
	}
}

// TestAFPacketPortFastPath: with a FastPath the port's tc program forwards
// frames to fast-path destinations and its socket never sees them; it sees
// every other frame, and the kernel's stack sees none.
func TestAFPacketPortFastPath(t *testing.T) {
	l := porttest.NewVethLab(t)
	fp, err := xdpprog.NewFastPath(16)
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	// The destination is lo of the switch's namespace: it takes the
	// redirect, and its stack drops frames that are not for it.
	fast := netip.MustParseAddr("198.18.0.77")
	if err := fp.Add(fast, 1, 1500, [6]byte{2, 0, 0, 0, 0, 0x77}, [6]byte(l.SWMAC), false); err != nil {
		t.Fatal(err)
	}
	p := openAFPacket(t, l, Options{DropIngress: true, FastPath: fp})
	if err := errors.Join(p.FastPathErr(), p.DropIngressErr()); err != nil {
		t.Fatalf("tc fast path: %v", err)
	}
	before := ipInReceives(t, l.SW)
	fd := l.RawSocket(t)
	const n = 20
	slow := porttest.UDP4(t, porttest.Flow{SrcMAC: [6]byte(l.PeerMAC), DstMAC: gwMAC, Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.9"), TTL: 64}, 20)
	toFast := porttest.UDP4(t, porttest.Flow{SrcMAC: [6]byte(l.PeerMAC), DstMAC: gwMAC, Src: netip.MustParseAddr("198.18.0.2"), Dst: fast, TTL: 64}, 20)
	for _, f := range [][]byte{slow, toFast} {
		copy(f[0:6], l.SWMAC)
		for range n {
			if _, err := unix.Write(fd, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	pkts := make([]port.Packet, 32)
	var gotSlow, gotFast int
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		k := p.Receive(pkts)
		for _, pk := range pkts[:k] {
			switch b := l.Umem.Bytes(pk.Addr, int(pk.Len)); {
			case bytes.Equal(b, slow):
				gotSlow++
			case len(b) >= 34 && bytes.Equal(b[30:34], toFast[30:34]):
				gotFast++
			}
			l.Umem.Free(pk.Addr)
		}
		if k == 0 {
			if gotSlow >= n {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if gotSlow != n || gotFast != 0 {
		t.Errorf("socket got %d of %d frames for the switch and %d of the fast path's; want all and none", gotSlow, n, gotFast)
	}
	if c, err := fp.Counts(); err != nil || c.TC4 != n {
		t.Errorf("tc forwarded %+v (%v); want %d IPv4", c, err, n)
	}
	if after := ipInReceives(t, l.SW); after-before > n {
		t.Errorf("the kernel's IPv4 stack saw %d frames; want at most the %d sent to lo", after-before, n)
	}
}

// ipInReceives reads Ip InReceives in ns.
func ipInReceives(t *testing.T, ns *xsktest.NS) uint64 {
	t.Helper()
	var v uint64
	err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i++ {
			if !strings.HasPrefix(lines[i], "Ip: ") || !strings.HasPrefix(lines[i+1], "Ip: ") {
				continue
			}
			names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j, name := range names {
				if name == "InReceives" && j < len(vals) {
					v, err = strconv.ParseUint(vals[j], 10, 64)
					return err
				}
			}
		}
		return fmt.Errorf("no Ip InReceives in /proc/net/snmp")
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAFPacketUplinkSteered: an AF_PACKET uplink with its tc steering gets
// only the switch's frames (a pod prefix); the host keeps its own (ping to
// the node's address is answered, and the switch never sees it), and the
// host's stack never sees the switch's.
func TestAFPacketUplinkSteered(t *testing.T) {
	l := porttest.NewVethLab(t)
	p := openAFPacket(t, l, Options{Steer: true})
	if err := p.SteerErr(); err != nil || !p.Steered() {
		t.Fatalf("steering: %v", err)
	}
	pod := netip.MustParseAddr("198.18.5.9")
	if err := p.AddPrefix(netip.PrefixFrom(pod, 32)); err != nil {
		t.Fatal(err)
	}
	before := ipInReceives(t, l.SW)
	fd := l.RawSocket(t)
	const n = 20
	toPod := porttest.UDP4(t, porttest.Flow{SrcMAC: [6]byte(l.PeerMAC), DstMAC: gwMAC, Src: netip.MustParseAddr("198.18.0.2"), Dst: pod, TTL: 64}, 20)
	toHost := porttest.UDP4(t, porttest.Flow{SrcMAC: [6]byte(l.PeerMAC), DstMAC: gwMAC, Src: netip.MustParseAddr("198.18.0.2"), Dst: l.SWAddr4, TTL: 64}, 20)
	for _, f := range [][]byte{toPod, toHost} {
		copy(f[0:6], l.SWMAC)
		for range n {
			if _, err := unix.Write(fd, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	pkts := make([]port.Packet, 32)
	var gotPod, other int
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && gotPod < n; {
		k := p.Receive(pkts)
		for _, pk := range pkts[:k] {
			if bytes.Equal(l.Umem.Bytes(pk.Addr, int(pk.Len)), toPod) {
				gotPod++
			} else {
				other++
			}
			l.Umem.Free(pk.Addr)
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond)
	for k := p.Receive(pkts); k > 0; k = p.Receive(pkts) {
		for _, pk := range pkts[:k] {
			other++
			l.Umem.Free(pk.Addr)
		}
	}
	if gotPod != n || other != 0 {
		t.Errorf("socket got %d of %d frames for the pod and %d others; want all and none", gotPod, n, other)
	}
	if got := ipInReceives(t, l.SW) - before; got != n {
		t.Errorf("the host's IPv4 stack saw %d frames; want its own %d", got, n)
	}
	// The host still answers on its link.
	if out, err := exec.Command("ip", "netns", "exec", l.Peer.Name, "ping", "-c", "1", "-W", "2", l.SWAddr4.String()).CombinedOutput(); err != nil {
		t.Errorf("ping the host through a steered uplink: %v\n%s", err, out)
	}
}
