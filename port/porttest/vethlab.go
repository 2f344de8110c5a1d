package porttest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/xsk"
	"github.com/xvs-project/xvs/xsk/xsktest"
	"golang.org/x/sys/unix"
)

// VethLab is two namespaces joined by a veth: the switch side "sw" (where the
// port under test opens) and the peer side "peer" that sends and receives
// plain frames.
type VethLab struct {
	SW, Peer         *xsktest.NS
	SWIf, PeerIf     string
	SWMAC, PeerMAC   net.HardwareAddr
	SWAddr4, SWAddr6 netip.Addr // the switch side's addresses (198.18.0.1/24, fd00::1/64)
	Umem             *xsk.Umem  // 4096 frames of 4096 bytes, closed by the test's cleanup
}

// Marker is the ethertype of MarkedFrame (IEEE local experimental).
const Marker = 0x88b5

// NewVethLab makes the two namespaces and the veth between them, removed
// when the test ends; it skips when not root.
func NewVethLab(t *testing.T) *VethLab {
	t.Helper()
	xsktest.RequireRoot(t)
	xsktest.CheckGoroutines(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		SkipIfNotSupported(t, "memlock", err)
	}
	l := &VethLab{SW: xsktest.NewNS(t), Peer: xsktest.NewNS(t),
		SWAddr4: netip.MustParseAddr("198.18.0.1"), SWAddr6: netip.MustParseAddr("fd00::1")}
	l.SWIf, l.PeerIf = xsktest.Veth(t, l.SW, l.Peer,
		[]netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("fd00::1/64")},
		[]netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("fd00::2/64")})
	for _, x := range []struct {
		ns   *xsktest.NS
		name string
		mac  *net.HardwareAddr
	}{{l.SW, l.SWIf, &l.SWMAC}, {l.Peer, l.PeerIf, &l.PeerMAC}} {
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
	l.Umem = u
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("umem: %v", err)
		}
	})
	return l
}

// RawSocket opens an AF_PACKET socket on the peer end, for crafted frames.
func (l *VethLab) RawSocket(t *testing.T) int {
	t.Helper()
	var fd int
	err := l.Peer.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(Htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(l.PeerIf)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: Htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", l.Peer.Name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.Timeval{Usec: 50000}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd
}

// MarkedFrame is a 64-byte frame of type Marker carrying seq.
func MarkedFrame(dst, src net.HardwareAddr, seq int) []byte {
	b := make([]byte, 64)
	copy(b[0:], dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], Marker)
	binary.BigEndian.PutUint32(b[14:], uint32(seq))
	return b
}

// CheckRxTx sends n marked frames from the peer and checks the port
// receives them, then sends n frames through the port and checks the peer
// gets them, then closes the port and checks every Umem frame came back.
func CheckRxTx(t *testing.T, l *VethLab, p port.Port) {
	t.Helper()
	const n = 64
	fd := l.RawSocket(t)
	for i := range n {
		if _, err := unix.Write(fd, MarkedFrame(l.SWMAC, l.PeerMAC, i)); err != nil {
			t.Fatalf("send from peer: %v", err)
		}
	}
	pkts := make([]port.Packet, 64)
	seen := map[uint32]bool{}
	deadline := time.Now().Add(3 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		k := p.Receive(pkts)
		for _, pk := range pkts[:k] {
			if base := l.Umem.Base(pk.Addr); pk.Addr-base < port.Headroom {
				t.Fatalf("frame at %#x keeps %d bytes of headroom, want %d", pk.Addr, pk.Addr-base, port.Headroom)
			}
			b := l.Umem.Bytes(pk.Addr, int(pk.Len))
			if len(b) >= 18 && binary.BigEndian.Uint16(b[12:]) == Marker {
				seen[binary.BigEndian.Uint32(b[14:])] = true
			}
			l.Umem.Free(pk.Addr)
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
	out := make([]port.Packet, 0, n)
	for i := range n {
		a, ok := l.Umem.Alloc()
		if !ok {
			t.Fatal("umem empty")
		}
		copy(l.Umem.Frame(a)[port.Headroom:], MarkedFrame(l.PeerMAC, l.SWMAC, 1000+i))
		out = append(out, port.Packet{Addr: a + port.Headroom, Len: 64})
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
		if m >= 18 && binary.BigEndian.Uint16(buf[12:]) == Marker {
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
	if f := l.Umem.FreeCount(); f != l.Umem.Frames() {
		t.Errorf("after close %d of %d umem frames are free", f, l.Umem.Frames())
	}
}

// Htons is the network-order form of a 16-bit protocol number.
func Htons(v uint16) uint16 { return v<<8 | v>>8 }

// SkipIfNotSupported skips t when err is the kernel saying it cannot
// (ebpf.ErrNotSupported, ENOSYS, EOPNOTSUPP, or EPERM without root) and
// fails it on any other error.
func SkipIfNotSupported(t testing.TB, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		return
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP),
		errors.Is(err, unix.EPERM) && os.Geteuid() != 0:
		t.Skipf("%s: %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}
