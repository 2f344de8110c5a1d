//go:build linux

package encap

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-project/xvs/xsk/xsktest"
)

// TestGSOKernel cross-checks Segment against the kernel's own software GSO.
// It writes each super-frame of gsoCases, with its virtio_net_hdr, to a
// PACKET_VNET_HDR socket on veth end A whose TSO, USO and TX checksum
// offloads are off, so validate_xmit_skb segments it and completes the
// checksums in software; end B (GRO off, so nothing is merged again)
// receives the segments on a packet socket, and they must equal Segment's
// byte for byte. Both ends live in namespaces "xr-…" that the test creates
// and deletes (package xsktest).
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
	na, nb := xsktest.NewNS(t), xsktest.NewNS(t)
	a, b := xsktest.Veth(t, na, nb, nil, nil)
	for _, x := range []struct {
		ns      *xsktest.NS
		name    string
		ethtool []string
	}{
		{na, a, []string{"tx", "off", "tso", "off", "gso", "off", "tx-udp-segmentation", "off"}},
		{nb, b, []string{"gro", "off"}},
	} {
		args := append([]string{"netns", "exec", x.ns.Name, "ethtool", "-K", x.name}, x.ethtool...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ethtool -K %s: %v\n%s", x.name, err, out)
		}
		// No IPv6 autoconfiguration chatter on the pair.
		args = []string{"netns", "exec", x.ns.Name, "sysctl", "-qw", "net.ipv6.conf." + x.name + ".disable_ipv6=1"}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Logf("disable IPv6 on %s: %v %s", x.name, err, out)
		}
	}

	var tx, rx int
	var txIdx, rxIdx int
	err := na.Do(func() (err error) {
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
	err = nb.Do(func() (err error) {
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
