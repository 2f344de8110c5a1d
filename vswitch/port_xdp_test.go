package vswitch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
	"github.com/xvs-project/xvs/xsk/xsktest"
	"golang.org/x/sys/unix"
)

// xrLab is two namespaces joined by a veth: the switch side "sw" (where the
// port under test opens) and the peer side "peer" that sends and receives
// plain frames.
type xrLab struct {
	sw, peer         *xsktest.NS
	swIf, peerIf     string
	swMAC, peerMAC   net.HardwareAddr
	swAddr4, swAddr6 netip.Addr
	umem             *xsk.Umem
}

const xrMarker = 0x88b5 // IEEE local experimental ethertype

func newXRLab(t *testing.T) *xrLab {
	t.Helper()
	xsktest.RequireRoot(t)
	xsktest.CheckGoroutines(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skipf("memlock: %v", err)
	}
	l := &xrLab{sw: xsktest.NewNS(t), peer: xsktest.NewNS(t),
		swAddr4: netip.MustParseAddr("198.18.0.1"), swAddr6: netip.MustParseAddr("fd00::1")}
	l.swIf, l.peerIf = xsktest.Veth(t, l.sw, l.peer,
		[]netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("fd00::1/64")},
		[]netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("fd00::2/64")})
	for _, x := range []struct {
		ns   *xsktest.NS
		name string
		mac  *net.HardwareAddr
	}{{l.sw, l.swIf, &l.swMAC}, {l.peer, l.peerIf, &l.peerMAC}} {
		lk, err := x.ns.NL.LinkByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		*x.mac = lk.Attrs().HardwareAddr
	}
	u, err := xsk.NewUmem(4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	l.umem = u
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("umem: %v", err)
		}
	})
	return l
}

// rawSocket opens an AF_PACKET socket on the peer end, for crafted frames.
func (l *xrLab) rawSocket(t *testing.T) int {
	t.Helper()
	var fd int
	err := l.peer.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(l.peerIf)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", l.peer.Name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.Timeval{Usec: 50000}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd
}

func xrFrame(dst, src net.HardwareAddr, seq int) []byte {
	b := make([]byte, 64)
	copy(b[0:], dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], xrMarker)
	binary.BigEndian.PutUint32(b[14:], uint32(seq))
	return b
}

// testPortRxTx sends n marked frames from the peer and checks the port
// receives them, then sends n frames through the port and checks the peer
// gets them, then closes the port and checks every Umem frame came back.
func testPortRxTx(t *testing.T, l *xrLab, p Port) {
	t.Helper()
	const n = 64
	fd := l.rawSocket(t)
	for i := range n {
		if _, err := unix.Write(fd, xrFrame(l.swMAC, l.peerMAC, i)); err != nil {
			t.Fatalf("send from peer: %v", err)
		}
	}
	pkts := make([]Packet, 64)
	seen := map[uint32]bool{}
	deadline := time.Now().Add(3 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		k := p.Receive(pkts)
		for _, pk := range pkts[:k] {
			if base := l.umem.Base(pk.Addr); pk.Addr-base < Headroom {
				t.Fatalf("frame at %#x keeps %d bytes of headroom, want %d", pk.Addr, pk.Addr-base, Headroom)
			}
			b := l.umem.Bytes(pk.Addr, int(pk.Len))
			if len(b) >= 18 && binary.BigEndian.Uint16(b[12:]) == xrMarker {
				seen[binary.BigEndian.Uint32(b[14:])] = true
			}
			l.umem.Free(pk.Addr)
		}
		if k == 0 {
			p.Flush()
			time.Sleep(time.Millisecond)
		}
	}
	if len(seen) != n {
		t.Errorf("port received %d of %d frames", len(seen), n)
	}

	// Transmit.
	out := make([]Packet, 0, n)
	for i := range n {
		a, ok := l.umem.Alloc()
		if !ok {
			t.Fatal("umem empty")
		}
		copy(l.umem.Frame(a)[Headroom:], xrFrame(l.peerMAC, l.swMAC, 1000+i))
		out = append(out, Packet{Addr: a + Headroom, Len: 64})
	}
	for sent := 0; sent < n && time.Now().Before(deadline.Add(2*time.Second)); {
		sent += p.Transmit(out[sent:])
		p.Flush()
	}
	got := map[uint32]bool{}
	buf := make([]byte, 2048)
	deadline = time.Now().Add(3 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		m, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		if m >= 18 && binary.BigEndian.Uint16(buf[12:]) == xrMarker {
			if s := binary.BigEndian.Uint32(buf[14:]); s >= 1000 {
				got[s] = true
			}
		}
	}
	if len(got) != n {
		t.Errorf("peer received %d of %d frames sent through the port", len(got), n)
	}
	for range 100 { // let completions arrive
		p.Flush()
		time.Sleep(time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if f := l.umem.FreeCount(); f != l.umem.Frames() {
		t.Errorf("after close %d of %d umem frames are free", f, l.umem.Frames())
	}
}

func (l *xrLab) openXDP(t *testing.T, kind spec.PortKind, mode spec.Mode, opts XDPPortOptions) (*xdpPort, error) {
	t.Helper()
	var p *xdpPort
	err := l.sw.Do(func() error {
		var err error
		p, err = openXDPPort(l.swIf, 0, kind, mode, l.umem, opts)
		return err
	})
	if err == nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

func TestXDPPortRxTx(t *testing.T) {
	for _, tc := range []struct {
		mode, want spec.Mode
	}{
		{spec.ModeAuto, spec.ModeXDPDrv}, // veth has no zero-copy
		{spec.ModeXDPDrv, spec.ModeXDPDrv},
		{spec.ModeXDPSKB, spec.ModeXDPSKB},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			l := newXRLab(t)
			p, err := l.openXDP(t, spec.PortPod, tc.mode, XDPPortOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode() != tc.want {
				t.Errorf("mode %s, want %s", p.Mode(), tc.want)
			}
			if !l.sw.XDPAttached(t, l.swIf) {
				t.Error("no XDP program on the interface")
			}
			testPortRxTx(t, l, p)
			if l.sw.XDPAttached(t, l.swIf) {
				t.Error("XDP program left attached after Close")
			}
		})
	}
}

func TestXDPPortZeroCopyUnavailable(t *testing.T) {
	l := newXRLab(t)
	_, err := l.openXDP(t, spec.PortPod, spec.ModeXDPZC, XDPPortOptions{})
	if !errors.Is(err, ErrModeUnavailable) {
		t.Fatalf("forced zero-copy on veth: %v, want ErrModeUnavailable", err)
	}
	if l.sw.XDPAttached(t, l.swIf) {
		t.Error("failed open left an XDP program attached")
	}
	if f := l.umem.FreeCount(); f != l.umem.Frames() {
		t.Errorf("failed open kept %d frames", l.umem.Frames()-f)
	}
}

// TestXDPAttachDetachRepeat proves detach never hangs, in either mode.
func TestXDPAttachDetachRepeat(t *testing.T) {
	for _, mode := range []spec.Mode{spec.ModeXDPDrv, spec.ModeXDPSKB} {
		t.Run(mode.String(), func(t *testing.T) {
			l := newXRLab(t)
			for i := range 10 {
				done := make(chan error, 1)
				go func() {
					var p *xdpPort
					err := l.sw.Do(func() error {
						var err error
						p, err = openXDPPort(l.swIf, 0, spec.PortPod, mode, l.umem, XDPPortOptions{})
						return err
					})
					if err == nil {
						err = p.Close()
					}
					done <- err
				}()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("round %d: %v", i, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("round %d: attach/detach hung", i)
				}
				if l.sw.XDPAttached(t, l.swIf) {
					t.Fatalf("round %d: program still attached", i)
				}
			}
		})
	}
}

// TestXDPSharedUmem opens two ports on one Umem (two veth pairs) and checks
// both move traffic and that the second shares the first's registration.
func TestXDPSharedUmem(t *testing.T) {
	l := newXRLab(t)
	p1, err := l.openXDP(t, spec.PortPod, spec.ModeXDPDrv, XDPPortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A second pair between the same namespaces.
	l2 := *l
	l2.swIf, l2.peerIf = xsktest.Veth(t, l.sw, l.peer, nil, nil)
	for _, x := range []struct {
		ns   *xsktest.NS
		name string
		mac  *net.HardwareAddr
	}{{l.sw, l2.swIf, &l2.swMAC}, {l.peer, l2.peerIf, &l2.peerMAC}} {
		lk, err := x.ns.NL.LinkByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		*x.mac = lk.Attrs().HardwareAddr
	}
	p2, err := l2.openXDP(t, spec.PortPod, spec.ModeXDPDrv, XDPPortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !p2.sock.Shared() {
		t.Error("second socket did not share the Umem registration")
	}
	// Close the first: the second keeps working on the shared registration.
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	testPortRxTx(t, &l2, p2)
}

// TestXDPUplinkSteering: host TCP to the node address keeps working through
// the kernel while pod-prefix and VXLAN packets arrive on the socket.
func TestXDPUplinkSteering(t *testing.T) {
	for _, mode := range []spec.Mode{spec.ModeXDPDrv, spec.ModeXDPSKB} {
		t.Run(mode.String(), func(t *testing.T) {
			l := newXRLab(t)
			p, err := l.openXDP(t, spec.PortUplink, mode, XDPPortOptions{VTEP4: l.swAddr4, VTEP6: l.swAddr6})
			if err != nil {
				t.Fatal(err)
			}
			pod4, pod6 := netip.MustParsePrefix("198.19.5.0/24"), netip.MustParsePrefix("fd00:5::/64")
			for _, pfx := range []netip.Prefix{pod4, pod6} {
				if err := p.AddPrefix(pfx); err != nil {
					t.Fatal(err)
				}
			}
			lk, err := l.peer.NL.LinkByName(l.peerIf)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				dst netip.Prefix
				gw  netip.Addr
			}{{pod4, l.swAddr4}, {pod6, l.swAddr6}} {
				_, ipn, _ := net.ParseCIDR(r.dst.String())
				if err := l.peer.NL.RouteAdd(&netlink.Route{LinkIndex: lk.Attrs().Index, Dst: ipn, Gw: net.IP(r.gw.AsSlice())}); err != nil {
					t.Fatal(err)
				}
			}

			// Host TCP over both families, through XDP_PASS.
			for _, addr := range []string{"198.18.0.1:7000", "[fd00::1]:7001"} {
				var ln net.Listener
				if err := l.sw.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
					t.Fatal(err)
				}
				echoed := make(chan error, 1)
				go func() {
					c, err := ln.Accept()
					if err == nil {
						c.SetDeadline(time.Now().Add(5 * time.Second))
						_, err = io.CopyN(c, c, 5)
						c.Close()
					}
					echoed <- err
				}()
				var c net.Conn
				err := l.peer.Do(func() (err error) {
					c, err = (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", addr)
					return
				})
				if err == nil {
					c.SetDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 5)
					if _, err = c.Write([]byte("hello")); err == nil {
						_, err = io.ReadFull(c, buf)
					}
					c.Close()
				}
				ln.Close()
				if err != nil {
					t.Errorf("host tcp to %s: %v", addr, err)
				}
				if err := <-echoed; err != nil {
					t.Errorf("host tcp server %s: %v", addr, err)
				}
			}

			// Steered: pod prefixes and VXLAN to the node. Not steered: UDP
			// to the node on another port.
			targets := []struct {
				addr  string
				steer bool
			}{
				{"198.19.5.7:9999", true},
				{"[fd00:5::7]:9999", true},
				{"198.18.0.1:4789", true},
				{"[fd00::1]:4789", true},
				{"198.18.0.1:9998", false},
				{"[fd00::1]:9998", false},
			}
			var hostUDP [2]net.PacketConn
			for i, a := range []string{"198.18.0.1:9998", "[fd00::1]:9998"} {
				if err := l.sw.Do(func() (err error) { hostUDP[i], err = net.ListenPacket("udp", a); return }); err != nil {
					t.Fatal(err)
				}
				defer hostUDP[i].Close()
			}
			var conns []net.Conn
			err = l.peer.Do(func() error {
				for _, tg := range targets {
					c, err := net.Dial("udp", tg.addr)
					if err != nil {
						return err
					}
					conns = append(conns, c)
				}
				return nil
			})
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for i, tg := range targets {
				msg := fmt.Sprintf("xr-%d", i)
				if tg.steer {
					want[msg] = true
				}
				conns[i].Write([]byte(msg))
			}
			got := map[string]bool{}
			pkts := make([]Packet, 64)
			deadline := time.Now().Add(3 * time.Second)
			for len(got) < len(want) && time.Now().Before(deadline) {
				k := p.Receive(pkts)
				for _, pk := range pkts[:k] {
					b := l.umem.Bytes(pk.Addr, int(pk.Len))
					if m := xrUDPPayload(b); m != "" {
						got[m] = true
					}
					l.umem.Free(pk.Addr)
				}
				if k == 0 {
					p.Flush()
					time.Sleep(time.Millisecond)
				}
			}
			for m := range want {
				if !got[m] {
					t.Errorf("%s did not arrive on the socket", m)
				}
			}
			for m := range got {
				if !want[m] {
					t.Errorf("%s was steered, should have gone to the host", m)
				}
			}
			buf := make([]byte, 64)
			for i, c := range hostUDP {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, _, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != fmt.Sprintf("xr-%d", 4+i) {
					t.Errorf("host udp %d: %q, %v", i, buf[:n], err)
				}
			}
		})
	}
}

// xrUDPPayload returns the payload of an IPv4/IPv6 UDP frame starting "xr-".
func xrUDPPayload(b []byte) string {
	if len(b) < 14 {
		return ""
	}
	var l4 []byte
	switch binary.BigEndian.Uint16(b[12:]) {
	case 0x0800:
		if len(b) < 34 || b[23] != 17 {
			return ""
		}
		l4 = b[14+int(b[14]&0xf)*4:]
	case 0x86dd:
		if len(b) < 54 || b[20] != 17 {
			return ""
		}
		l4 = b[54:]
	default:
		return ""
	}
	if len(l4) < 11 || string(l4[8:11]) != "xr-" {
		return ""
	}
	return string(l4[8:])
}

func TestXDPPortReceiveAllocs(t *testing.T) {
	l := newXRLab(t)
	p, err := l.openXDP(t, spec.PortPod, spec.ModeXDPDrv, XDPPortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fd := l.rawSocket(t)
	for i := range 1000 {
		unix.Write(fd, xrFrame(l.swMAC, l.peerMAC, i))
	}
	pkts := make([]Packet, 8)
	out := make([]Packet, 1)
	received := 0
	allocs := testing.AllocsPerRun(200, func() {
		k := p.Receive(pkts)
		received += k
		for _, pk := range pkts[:k] {
			l.umem.Free(pk.Addr)
		}
		if a, ok := l.umem.Alloc(); ok {
			out[0] = Packet{Addr: a + Headroom, Len: 60}
			if p.Transmit(out) == 0 {
				l.umem.Free(a)
			}
		}
		p.Flush()
	})
	if allocs != 0 {
		t.Errorf("Receive/Transmit/Flush allocate %v times per call", allocs)
	}
	if received == 0 {
		t.Error("no frame received during the measurement")
	}
}

// TestXDPPortSharedProgram: a caller-owned uplink program shared by queue
// ports; the port registers its socket and leaves the attachment alone.
func TestXDPPortSharedProgram(t *testing.T) {
	l := newXRLab(t)
	prog, err := xdpprog.New(xdpprog.Uplink, xdpprog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := l.sw.Do(func() error {
		_, err := prog.Attach(l.sw.Ifindex(t, l.swIf), xdpprog.AttachGeneric)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p, err := l.openXDP(t, spec.PortUplink, spec.ModeAuto, XDPPortOptions{Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode() != spec.ModeXDPSKB {
		t.Errorf("mode %s, want %s (from the shared program)", p.Mode(), spec.ModeXDPSKB)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !l.sw.XDPAttached(t, l.swIf) {
		t.Error("closing a queue port detached the shared program")
	}
}

// TestXDPPortLinkGone: the interface disappears under an open port; the
// port keeps answering and closes cleanly with every frame back.
func TestXDPPortLinkGone(t *testing.T) {
	for _, mode := range []spec.Mode{spec.ModeXDPDrv, spec.ModeXDPSKB} {
		t.Run(mode.String(), func(t *testing.T) {
			l := newXRLab(t)
			p, err := l.openXDP(t, spec.PortPod, mode, XDPPortOptions{})
			if err != nil {
				t.Fatal(err)
			}
			lk, err := l.sw.NL.LinkByName(l.swIf)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.sw.NL.LinkDel(lk); err != nil {
				t.Fatal(err)
			}
			pkts := make([]Packet, 8)
			a, _ := l.umem.Alloc()
			// What the kernel put in the ring before the link went (an
			// MLD report or router solicitation of the peer's, now and
			// then) may still come out; it must come back like any frame.
			n := p.Receive(pkts)
			for i := 0; i < n; i++ {
				l.umem.Free(pkts[i].Addr)
			}
			if p.Transmit([]Packet{{Addr: a + Headroom, Len: 60}}) == 0 {
				l.umem.Free(a)
			}
			p.Flush()
			done := make(chan error, 1)
			go func() { done <- p.Close() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("close hung")
			}
			if f := l.umem.FreeCount(); f != l.umem.Frames() {
				t.Errorf("%d of %d frames free", f, l.umem.Frames())
			}
		})
	}
}

// TestXDPPortLargeTx: with LargeTx an AF_XDP port sends a GSO super-frame
// whole through its AF_PACKET sender (the peer's packet socket sees one
// frame with its offload header); without, TransmitLarge refuses.
func TestXDPPortLargeTx(t *testing.T) {
	l := newXRLab(t)
	plain, err := l.openXDP(t, spec.PortUplink, spec.ModeAuto, XDPPortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	super := tcpSuper(t, false, pod1v4, pod2v4, 64, 30000, 1460)
	hdr, frame := encap.VirtioNetHdr(super[:encap.VirtioNetHdrLen]), super[encap.VirtioNetHdrLen:]
	if err := plain.TransmitLarge(frame, hdr); !errors.Is(err, errNoOffload) {
		t.Errorf("TransmitLarge without LargeTx: %v, want errNoOffload", err)
	}
	plain.Close()

	p, err := l.openXDP(t, spec.PortUplink, spec.ModeAuto, XDPPortOptions{LargeTx: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LargeTxErr(); err != nil {
		t.Fatal(err)
	}
	fd := l.rawSocket(t)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := p.TransmitLarge(frame, hdr); err != nil {
		t.Fatalf("TransmitLarge: %v", err)
	}
	buf := make([]byte, 70000)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		m, err := unix.Read(fd, buf)
		if err != nil || m <= encap.VirtioNetHdrLen+60 {
			continue
		}
		if bytes.Equal(buf[encap.VirtioNetHdrLen:m], frame) {
			if h := encap.VirtioNetHdr(buf[:encap.VirtioNetHdrLen]); h.GSOType() != encap.GSOTCPv4 || h.GSOSize() != 1460 {
				t.Errorf("peer's offload header: gso type %d size %d", h.GSOType(), h.GSOSize())
			}
			return
		}
	}
	t.Error("the peer did not get the super-frame whole")
}
