package vswitch

import (
	"net/netip"
	"testing"

	"github.com/xvs-project/xvs/dataplane"
)

// TestMartiansDropped: a frame whose addresses may not be routed is
// dropped as DropMartian on the single-frame path, from a pod and out of
// the tunnel (the inner frame is judged, not the outer one to the node's
// VTEP), after the checks for what is the switch's own and before none of
// them; a broken header is DropBadL3 whatever its addresses.
func TestMartiansDropped(t *testing.T) {
	mp := netip.MustParseAddr
	for _, tc := range []struct {
		name   string
		tunnel bool
		frame  func(t *testing.T) []byte
		want   dataplane.Drop
	}{
		{"v4 loopback source", false, func(t *testing.T) []byte { return udp4(t, pod1MAC, mp("127.0.0.1"), pod2v4, 64, 10) }, dataplane.DropMartian},
		{"v4 multicast source", false, func(t *testing.T) []byte { return udp4(t, pod1MAC, mp("224.0.0.5"), pod2v4, 64, 10) }, dataplane.DropMartian},
		{"v4 this-network destination", false, func(t *testing.T) []byte { return udp4(t, pod1MAC, pod1v4, mp("0.1.2.3"), 64, 10) }, dataplane.DropMartian},
		{"v4 broadcast destination", false, func(t *testing.T) []byte { return udp4(t, pod1MAC, pod1v4, mp("255.255.255.255"), 64, 10) }, dataplane.DropMartian},
		{"v4 link-local destination not the gateway", false, func(t *testing.T) []byte { return udp4(t, pod1MAC, pod1v4, mp("169.254.7.7"), 64, 10) }, dataplane.DropMartian},
		{"v4 bad checksum and martian source", false, func(t *testing.T) []byte {
			f := udp4(t, pod1MAC, mp("127.0.0.1"), pod2v4, 64, 10)
			f[24] ^= 0xff
			return f
		}, dataplane.DropBadL3},
		{"v6 loopback destination", false, func(t *testing.T) []byte { return udp6(t, pod1MAC, pod1v6, mp("::1"), 64, 10) }, dataplane.DropMartian},
		{"v6 link-local destination", false, func(t *testing.T) []byte { return udp6(t, pod1MAC, pod1v6, mp("fe80::1"), 64, 10) }, dataplane.DropMartian},
		{"v6 mapped destination", false, func(t *testing.T) []byte { return udp6(t, pod1MAC, pod1v6, mp("::ffff:198.18.10.2"), 64, 10) }, dataplane.DropMartian},
		{"v6 link multicast destination", false, func(t *testing.T) []byte { return udp6(t, pod1MAC, pod1v6, mp("ff02::16"), 64, 10) }, dataplane.DropLocal},
		{"tunnel v4 inner loopback source", true, func(t *testing.T) []byte {
			return vxlanFrame(t, innerTo(t, mp("127.0.0.1"), pod1v4, 64), false, DefaultVNI)
		}, dataplane.DropMartian},
		{"tunnel v6 inner loopback destination", true, func(t *testing.T) []byte {
			return vxlanFrame(t, innerTo(t, remotePod6, mp("::1"), 64), true, DefaultVNI)
		}, dataplane.DropMartian},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l *fakeLab
			in := "pod1"
			if tc.tunnel {
				l, in = newVXLANLab(t, nil).fakeLab, "up"
			} else {
				l = newFakeLab(t, dataplane.PollBusy)
			}
			before := l.sw.Counters()
			out := l.runVector(t, in, tc.frame(t))
			for port, frames := range out {
				if len(frames) != 0 {
					t.Errorf("%d frames out of %s, want none", len(frames), port)
				}
			}
			after := l.sw.Counters()
			for d := dataplane.Drop(0); d < dataplane.NumDrops; d++ {
				want := uint64(0)
				if d == tc.want {
					want = 1
				}
				if got := after.Drops[d] - before.Drops[d]; got != want {
					t.Errorf("drop %v: (-want +got) -%d +%d", d, want, got)
				}
			}
		})
	}
}
