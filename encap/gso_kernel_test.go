//go:build linux

package encap

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestGSOKernel cross-checks Segment against the kernel's own software GSO.
// It writes each super-frame of gsoCases, with its virtio_net_hdr, to a
// PACKET_VNET_HDR socket on veth end A whose TSO, USO and TX checksum
// offloads are off, so validate_xmit_skb segments it and completes the
// checksums in software; end B (GRO off, so nothing is merged again)
// receives the segments on a packet socket, and they must equal Segment's
// byte for byte. Both ends live in namespaces "xg-…" the test creates and
// deletes.
func TestGSOKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and veths")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("needs ethtool")
	}
	suffix := gsoSuffix()
	na, nb := gsoNewNS(t, "xg-a"+suffix), gsoNewNS(t, "xg-b"+suffix)
	a, b := "xg-"+suffix+"a", "xg-"+suffix+"b"
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, MTU: 1500}, PeerName: b, PeerNamespace: netlink.NsFd(nb.h)}
	if err := na.nl.LinkAdd(v); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, x := range []struct {
		ns      *gsoNS
		name    string
		ethtool []string
	}{
		{na, a, []string{"tx", "off", "tso", "off", "gso", "off", "tx-udp-segmentation", "off"}},
		{nb, b, []string{"gro", "off"}},
	} {
		l, err := x.ns.nl.LinkByName(x.name)
		if err == nil {
			err = x.ns.nl.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("up %s: %v", x.name, err)
		}
		args := append([]string{"netns", "exec", x.ns.name, "ethtool", "-K", x.name}, x.ethtool...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ethtool -K %s: %v\n%s", x.name, err, out)
		}
		// No IPv6 autoconfiguration chatter on the pair.
		args = []string{"netns", "exec", x.ns.name, "sysctl", "-qw", "net.ipv6.conf." + x.name + ".disable_ipv6=1"}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Logf("disable IPv6 on %s: %v %s", x.name, err, out)
		}
	}

	var tx, rx int
	var txIdx, rxIdx int
	err := na.do(func() (err error) {
		ifc, err := net.InterfaceByName(a)
		if err != nil {
			return err
		}
		txIdx = ifc.Index
		if tx, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.SetsockoptInt(tx, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1)
	})
	if tx > 0 {
		t.Cleanup(func() { unix.Close(tx) })
	}
	if err != nil {
		t.Fatalf("sender socket: %v", err)
	}
	err = nb.do(func() (err error) {
		ifc, err := net.InterfaceByName(b)
		if err != nil {
			return err
		}
		rxIdx = ifc.Index
		if rx, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(gsoHtons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		return unix.Bind(rx, &unix.SockaddrLinklayer{Protocol: gsoHtons(unix.ETH_P_ALL), Ifindex: rxIdx})
	})
	if rx > 0 {
		t.Cleanup(func() { unix.Close(rx) })
	}
	if err != nil {
		t.Fatalf("receiver socket: %v", err)
	}
	if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}); err != nil {
		t.Fatal(err)
	}

	buf := make([]byte, 65536)
	want := make([]byte, 65536)
	for _, c := range gsoCases {
		t.Run(c.name, func(t *testing.T) {
			frame, _, h := c.superFrame(t)
			// Every case uses its own ports, so a late segment of one case
			// cannot be taken for one of the next.
			l4, hdr := c.hdrLen()
			port := uint16(20000 + gsoCaseIndex(c))
			frame[l4], frame[l4+1] = byte(port>>8), byte(port)
			g, err := ParseGSO(frame, h)
			if err != nil {
				t.Fatal(err)
			}
			h.Set(h.Flags(), h.GSOType(), uint16(hdr), h.GSOSize(), h.CsumStart(), h.CsumOffset())
			etype := EtherTypeIPv4
			if c.v6 {
				etype = EtherTypeIPv6
			}
			msg := append(bytes.Clone(h), frame...)
			if err := unix.Sendto(tx, msg, 0, &unix.SockaddrLinklayer{Protocol: gsoHtons(etype), Ifindex: txIdx}); err != nil {
				t.Fatalf("sendto: %v", err)
			}
			n := g.Segments(frame)
			deadline := time.Now().Add(3 * time.Second)
			for i := 0; i < n; {
				if time.Now().After(deadline) {
					t.Fatalf("received %d of %d segments", i, n)
				}
				m, from, err := unix.Recvfrom(rx, buf, 0)
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil {
					t.Fatalf("recvfrom: %v", err)
				}
				ll, _ := from.(*unix.SockaddrLinklayer)
				got := buf[:m]
				if ll == nil || ll.Pkttype == unix.PACKET_OUTGOING || m < l4+2 || Ethernet(got).Type() != etype ||
					uint16(got[l4])<<8|uint16(got[l4+1]) != port {
					continue // not ours
				}
				w := g.Segment(want, frame, i)
				if !bytes.Equal(got, want[:w]) {
					t.Fatalf("segment %d: kernel and Segment differ (-kernel +Segment):\n-%x\n+%x", i, got, want[:w])
				}
				i++
			}
		})
	}
}

func gsoCaseIndex(c gsoCase) int {
	for i := range gsoCases {
		if gsoCases[i].name == c.name {
			return i
		}
	}
	return len(gsoCases)
}

func gsoHtons(v uint16) uint16 { return v<<8 | v>>8 }

func gsoSuffix() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// gsoNS is a named network namespace owned by one test.
type gsoNS struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle
}

// gsoNewNS creates the namespace name and deletes it (and the veth end in
// it) when the test ends, even if it fails.
func gsoNewNS(t *testing.T, name string) *gsoNS {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get netns: %v", err)
	}
	h, err := netns.NewNamed(name) // switches this thread into it
	if serr := netns.Set(orig); serr != nil {
		// Leave the thread locked: the runtime retires it with the goroutine.
		t.Fatalf("restore netns: %v", serr)
	}
	orig.Close()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("new netns %s: %v", name, err)
	}
	n := &gsoNS{name: name, h: h}
	t.Cleanup(func() {
		if n.nl != nil {
			n.nl.Close()
		}
		h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	if n.nl, err = netlink.NewHandleAt(h); err != nil {
		t.Fatalf("netlink in %s: %v", name, err)
	}
	return n
}

// do runs fn on a thread switched into the namespace; sockets fn creates
// stay in it.
func (n *gsoNS) do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(n.h); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", n.name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave %s: %w", n.name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}
