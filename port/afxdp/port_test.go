package afxdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/porttest"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
	"github.com/xvs-project/xvs/xsk"
	"github.com/xvs-project/xvs/xsk/xsktest"
	"golang.org/x/sys/unix"
)

// Addresses of the frames the tests send: a pod's to another's, through
// the Calico gateway MAC.
var (
	pod1MAC = [6]byte{0x02, 0, 0, 0, 0, 1}
	gwMAC   = [6]byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}
	pod1v4  = netip.MustParseAddr("198.18.10.1")
	pod2v4  = netip.MustParseAddr("198.18.10.2")
)

func openXDP(t *testing.T, l *porttest.VethLab, kind spec.PortKind, mode spec.Mode, opts Options) (*Port, error) {
	t.Helper()
	var p *Port
	err := l.SW.Do(func() error {
		var err error
		p, err = Open(l.SWIf, 0, kind, mode, l.Umem, opts)
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
			l := porttest.NewVethLab(t)
			p, err := openXDP(t, l, spec.PortPod, tc.mode, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode() != tc.want {
				t.Errorf("mode %s, want %s", p.Mode(), tc.want)
			}
			if !l.SW.XDPAttached(t, l.SWIf) {
				t.Error("no XDP program on the interface")
			}
			porttest.CheckRxTx(t, l, p)
			if l.SW.XDPAttached(t, l.SWIf) {
				t.Error("XDP program left attached after Close")
			}
		})
	}
}

func TestXDPPortZeroCopyUnavailable(t *testing.T) {
	l := porttest.NewVethLab(t)
	_, err := openXDP(t, l, spec.PortPod, spec.ModeXDPZC, Options{})
	if !errors.Is(err, port.ErrModeUnavailable) {
		t.Fatalf("forced zero-copy on veth: %v, want port.ErrModeUnavailable", err)
	}
	if l.SW.XDPAttached(t, l.SWIf) {
		t.Error("failed open left an XDP program attached")
	}
	if f := l.Umem.FreeCount(); f != l.Umem.Frames() {
		t.Errorf("failed open kept %d frames", l.Umem.Frames()-f)
	}
}

// TestXDPJumboRefused: a veth whose MTU is more than an XDP program may
// see whole is refused by the kernel in native mode (ERANGE), and by the
// port in generic mode, where the kernel would drop each frame longer
// than a Umem frame holds on its way to the socket; nothing is left
// attached. At the Umem's limit generic mode is taken.
func TestXDPJumboRefused(t *testing.T) {
	l := porttest.NewVethLab(t)
	setMTU := func(mtu int) {
		t.Helper()
		for _, x := range []struct {
			ns   *xsktest.NS
			name string
		}{{l.SW, l.SWIf}, {l.Peer, l.PeerIf}} {
			lk, err := x.ns.NL.LinkByName(x.name)
			if err == nil {
				err = x.ns.NL.LinkSetMTU(lk, mtu)
			}
			if err != nil {
				t.Fatalf("mtu %d on %s: %v", mtu, x.name, err)
			}
		}
	}
	setMTU(9000)
	for _, mode := range []spec.Mode{spec.ModeAuto, spec.ModeXDPDrv, spec.ModeXDPSKB} {
		_, err := openXDP(t, l, spec.PortPod, mode, Options{})
		switch {
		case err == nil:
			t.Fatalf("mode %s at mtu 9000: opened", mode)
		case mode != spec.ModeXDPDrv && !errors.Is(err, ErrFrameTooSmall):
			t.Errorf("mode %s at mtu 9000: %v, want ErrFrameTooSmall", mode, err)
		case mode == spec.ModeXDPDrv && !errors.Is(err, unix.ERANGE):
			t.Errorf("mode %s at mtu 9000: %v, want the kernel's ERANGE", mode, err)
		case mode != spec.ModeAuto && !errors.Is(err, port.ErrModeUnavailable):
			t.Errorf("forced mode %s at mtu 9000: %v, want port.ErrModeUnavailable", mode, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("mode %s: error on several lines: %q", mode, err)
		}
		if l.SW.XDPAttached(t, l.SWIf) {
			t.Fatalf("mode %s: failed open left an XDP program attached", mode)
		}
	}
	// The largest MTU a 4096-byte frame holds (with the kernel's headroom,
	// an Ethernet header and a VLAN tag) opens generic.
	setMTU(l.Umem.FrameSize() - xdpPacketHeadroom - 18)
	p, err := openXDP(t, l, spec.PortPod, spec.ModeAuto, Options{})
	if err != nil {
		t.Fatalf("at the Umem frame's mtu: %v", err)
	}
	if p.Mode() != spec.ModeXDPSKB {
		t.Errorf("at the Umem frame's mtu: mode %s, want %s (the driver refuses it)", p.Mode(), spec.ModeXDPSKB)
	}
}

// TestXDPAttachDetachRepeat proves detach never hangs, in either mode.
func TestXDPAttachDetachRepeat(t *testing.T) {
	for _, mode := range []spec.Mode{spec.ModeXDPDrv, spec.ModeXDPSKB} {
		t.Run(mode.String(), func(t *testing.T) {
			l := porttest.NewVethLab(t)
			for i := range 10 {
				done := make(chan error, 1)
				go func() {
					var p *Port
					err := l.SW.Do(func() error {
						var err error
						p, err = Open(l.SWIf, 0, spec.PortPod, mode, l.Umem, Options{})
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
				if l.SW.XDPAttached(t, l.SWIf) {
					t.Fatalf("round %d: program still attached", i)
				}
			}
		})
	}
}

// TestXDPSharedUmem opens two ports on one Umem (two veth pairs) and checks
// both move traffic and that the second shares the first's registration.
func TestXDPSharedUmem(t *testing.T) {
	l := porttest.NewVethLab(t)
	p1, err := openXDP(t, l, spec.PortPod, spec.ModeXDPDrv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A second pair between the same namespaces.
	l2 := *l
	l2.SWIf, l2.PeerIf = xsktest.Veth(t, l.SW, l.Peer, nil, nil)
	for _, x := range []struct {
		ns   *xsktest.NS
		name string
		mac  *net.HardwareAddr
	}{{l.SW, l2.SWIf, &l2.SWMAC}, {l.Peer, l2.PeerIf, &l2.PeerMAC}} {
		lk, err := x.ns.NL.LinkByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		*x.mac = lk.Attrs().HardwareAddr
	}
	p2, err := openXDP(t, &l2, spec.PortPod, spec.ModeXDPDrv, Options{})
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
	porttest.CheckRxTx(t, &l2, p2)
}

// TestXDPUplinkSteering: host TCP to the node address keeps working through
// the kernel while pod-prefix and VXLAN packets arrive on the socket.
func TestXDPUplinkSteering(t *testing.T) {
	for _, mode := range []spec.Mode{spec.ModeXDPDrv, spec.ModeXDPSKB} {
		t.Run(mode.String(), func(t *testing.T) {
			l := porttest.NewVethLab(t)
			p, err := openXDP(t, l, spec.PortUplink, mode, Options{VTEP4: l.SWAddr4, VTEP6: l.SWAddr6})
			if err != nil {
				t.Fatal(err)
			}
			pod4, pod6 := netip.MustParsePrefix("198.19.5.0/24"), netip.MustParsePrefix("fd00:5::/64")
			for _, pfx := range []netip.Prefix{pod4, pod6} {
				if err := p.AddPrefix(pfx); err != nil {
					t.Fatal(err)
				}
			}
			lk, err := l.Peer.NL.LinkByName(l.PeerIf)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				dst netip.Prefix
				gw  netip.Addr
			}{{pod4, l.SWAddr4}, {pod6, l.SWAddr6}} {
				_, ipn, _ := net.ParseCIDR(r.dst.String())
				if err := l.Peer.NL.RouteAdd(&netlink.Route{LinkIndex: lk.Attrs().Index, Dst: ipn, Gw: net.IP(r.gw.AsSlice())}); err != nil {
					t.Fatal(err)
				}
			}

			// Host TCP over both families, through XDP_PASS.
			for _, addr := range []string{"198.18.0.1:7000", "[fd00::1]:7001"} {
				var ln net.Listener
				if err := l.SW.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
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
				err := l.Peer.Do(func() (err error) {
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
				if err := l.SW.Do(func() (err error) { hostUDP[i], err = net.ListenPacket("udp", a); return }); err != nil {
					t.Fatal(err)
				}
				defer hostUDP[i].Close()
			}
			var conns []net.Conn
			err = l.Peer.Do(func() error {
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
			pkts := make([]port.Packet, 64)
			deadline := time.Now().Add(3 * time.Second)
			for len(got) < len(want) && time.Now().Before(deadline) {
				k := p.Receive(pkts)
				for _, pk := range pkts[:k] {
					b := l.Umem.Bytes(pk.Addr, int(pk.Len))
					if m := xrUDPPayload(b); m != "" {
						got[m] = true
					}
					l.Umem.Free(pk.Addr)
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
	l := porttest.NewVethLab(t)
	p, err := openXDP(t, l, spec.PortPod, spec.ModeXDPDrv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fd := l.RawSocket(t)
	for i := range 1000 {
		unix.Write(fd, porttest.MarkedFrame(l.SWMAC, l.PeerMAC, i))
	}
	pkts := make([]port.Packet, 8)
	out := make([]port.Packet, 1)
	received := 0
	allocs := testing.AllocsPerRun(200, func() {
		k := p.Receive(pkts)
		received += k
		for _, pk := range pkts[:k] {
			l.Umem.Free(pk.Addr)
		}
		if a, ok := l.Umem.Alloc(); ok {
			out[0] = port.Packet{Addr: a + port.Headroom, Len: 60}
			if p.Transmit(out) == 0 {
				l.Umem.Free(a)
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
	l := porttest.NewVethLab(t)
	prog, err := xdpprog.New(xdpprog.Uplink, xdpprog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := l.SW.Do(func() error {
		_, err := prog.Attach(l.SW.Ifindex(t, l.SWIf), xdpprog.AttachGeneric)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p, err := openXDP(t, l, spec.PortUplink, spec.ModeAuto, Options{Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode() != spec.ModeXDPSKB {
		t.Errorf("mode %s, want %s (from the shared program)", p.Mode(), spec.ModeXDPSKB)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !l.SW.XDPAttached(t, l.SWIf) {
		t.Error("closing a queue port detached the shared program")
	}
}

// TestXDPPortLinkGone: the interface disappears under an open port; the
// port keeps answering and closes cleanly with every frame back.
func TestXDPPortLinkGone(t *testing.T) {
	for _, mode := range []spec.Mode{spec.ModeXDPDrv, spec.ModeXDPSKB} {
		t.Run(mode.String(), func(t *testing.T) {
			l := porttest.NewVethLab(t)
			p, err := openXDP(t, l, spec.PortPod, mode, Options{})
			if err != nil {
				t.Fatal(err)
			}
			lk, err := l.SW.NL.LinkByName(l.SWIf)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SW.NL.LinkDel(lk); err != nil {
				t.Fatal(err)
			}
			pkts := make([]port.Packet, 8)
			a, _ := l.Umem.Alloc()
			// What the kernel put in the ring before the link went (an
			// MLD report or router solicitation of the peer's, now and
			// then) may still come out; it must come back like any frame.
			n := p.Receive(pkts)
			for i := 0; i < n; i++ {
				l.Umem.Free(pkts[i].Addr)
			}
			if p.Transmit([]port.Packet{{Addr: a + port.Headroom, Len: 60}}) == 0 {
				l.Umem.Free(a)
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
			if f := l.Umem.FreeCount(); f != l.Umem.Frames() {
				t.Errorf("%d of %d frames free", f, l.Umem.Frames())
			}
		})
	}
}

// TestXDPPortLargeTx: with LargeTx an AF_XDP port sends a GSO super-frame
// whole through its AF_PACKET sender (the peer's packet socket sees one
// frame with its offload header); without, TransmitLarge refuses.
func TestXDPPortLargeTx(t *testing.T) {
	l := porttest.NewVethLab(t)
	plain, err := openXDP(t, l, spec.PortUplink, spec.ModeAuto, Options{})
	if err != nil {
		t.Fatal(err)
	}
	super := porttest.TCPSuper(t, porttest.Flow{SrcMAC: pod1MAC, DstMAC: gwMAC, Src: pod1v4, Dst: pod2v4, TTL: 64}, 30000, 1460)
	hdr, frame := encap.VirtioNetHdr(super[:encap.VirtioNetHdrLen]), super[encap.VirtioNetHdrLen:]
	if _, ok := plain.AsPort().(port.LargePort); ok {
		t.Errorf("a port without LargeTx takes super-frames")
	}
	plain.Close()

	p, err := openXDP(t, l, spec.PortUplink, spec.ModeAuto, Options{LargeTx: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LargeTxErr(); err != nil {
		t.Fatal(err)
	}
	fd := l.RawSocket(t)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		t.Fatal(err)
	}
	lp, ok := p.AsPort().(port.LargePort)
	if !ok {
		t.Fatal("a port with LargeTx takes no super-frames")
	}
	if err := lp.TransmitLarge(frame, hdr); err != nil {
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

// TestXDPDriverFrameBudget: a port whose fill ring the worker's Umem
// cannot stock is refused before anything is attached, with
// xsk.ErrNoFrames, rather than opened with an empty ring.
func TestXDPDriverFrameBudget(t *testing.T) {
	l := porttest.NewVethLab(t)
	fill := DefaultFillTarget(spec.PortPod, l.Umem.Frames()) // the lab's Umem may hold less than PodFill×8
	req := port.OpenRequest{Config: spec.PortConfig{Name: l.SWIf, Kind: spec.PortPod, Mode: spec.ModeXDPDrv}, Umem: l.Umem, FrameBudget: fill - 1}
	err := l.SW.Do(func() error {
		op, err := Driver{}.Open(req)
		if err == nil {
			op.Port.Close()
		}
		return err
	})
	if !errors.Is(err, xsk.ErrNoFrames) {
		t.Fatalf("open with %d frames left: %v, want xsk.ErrNoFrames", fill-1, err)
	}
	if l.SW.XDPAttached(t, l.SWIf) {
		t.Error("XDP program attached by a refused port")
	}
	req.FrameBudget = fill
	var got int
	err = l.SW.Do(func() error {
		op, err := Driver{}.Open(req)
		if err == nil {
			got = op.Frames
			op.Port.Close()
		}
		return err
	})
	if err != nil || got != fill {
		t.Fatalf("open with %d frames left: frames %d, %v; want %d", fill, got, err, fill)
	}
}
