package vswitch

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
	"golang.org/x/sys/unix"
)

var (
	pod3MAC = [6]byte{0x02, 0, 0, 0, 0, 3}
	pod3v4  = netip.MustParseAddr("198.18.10.3")
	pod3v6  = netip.MustParseAddr("fd00:10::3")
)

// newOffloadLab has pod1 and pod2 on offloading ports (AF_PACKET with
// PACKET_VNET_HDR, as fakes) and pod3 on a plain one (as AF_XDP is).
func newOffloadLab(t testing.TB) *fakeLab {
	pod := func(name string, mac [6]byte, a4, a6 netip.Addr) spec.PortConfig {
		return spec.PortConfig{Name: name, Kind: spec.PortPod, PeerMAC: mac, Addrs: []netip.Prefix{netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 128)}}
	}
	return newFakeLabWith(t, dataplane.PollBusy, []spec.PortConfig{
		pod("pod1", pod1MAC, pod1v4, pod1v6),
		pod("pod2", pod2MAC, pod2v4, pod2v6),
		pod("pod3", pod3MAC, pod3v4, pod3v6),
	}, map[string]bool{"pod1": true, "pod2": true})
}

// tcpSuper builds what a TSO sender hands its veth: one TCP super-frame of
// payload bytes with a partial checksum (the pseudo-header sum over the
// whole super-frame), behind its virtio_net_hdr.
func tcpSuper(t testing.TB, v6 bool, src, dst netip.Addr, ttl uint8, payload, mss int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: pod1MAC[:], DstMAC: gwMAC[:], EthernetType: layers.EthernetTypeIPv4}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: 1000, Ack: 7, ACK: true, PSH: true, Window: 512, DataOffset: 5}
	pl := make([]byte, payload)
	for i := range pl {
		pl[i] = byte(i * 7)
	}
	var frame []byte
	gsoType := uint8(encap.GSOTCPv4)
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip)
		frame = serialize(t, eth, ip, tcp, gopacket.Payload(pl))
		gsoType = encap.GSOTCPv6
	} else {
		ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment, Id: 100}
		tcp.SetNetworkLayerForChecksum(ip)
		frame = serialize(t, eth, ip, tcp, gopacket.Payload(pl))
	}
	l4 := 14 + 20
	if v6 {
		l4 = 14 + 40
	}
	// Replace the full checksum with the partial one a TSO sender leaves.
	binary.BigEndian.PutUint16(frame[l4+16:], pseudoSum(frame, v6, l4))
	hdr := make([]byte, encap.VirtioNetHdrLen)
	encap.VirtioNetHdr(hdr).Set(encap.VirtioNetHdrFNeedsCsum, gsoType, uint16(l4+20), uint16(mss), uint16(l4), 16)
	return append(hdr, frame...)
}

// mssFor is the MSS of a 1500-byte MTU without TCP options.
func mssFor(v6 bool) int {
	if v6 {
		return 1440
	}
	return 1460
}

// pseudoSum is the folded, non-inverted pseudo-header sum for the L4
// segment at l4 in frame.
func pseudoSum(frame []byte, v6 bool, l4 int) uint16 {
	n := len(frame) - l4
	var ph []byte
	if v6 {
		ph = append(ph, frame[14+8:14+40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(n))
		ph = append(ph, 0, 0, 0, 6)
	} else {
		ph = append(ph, frame[14+12:14+20]...)
		ph = append(ph, 0, 6)
		ph = binary.BigEndian.AppendUint16(ph, uint16(n))
	}
	return onesSum(ph)
}

// l4Valid checks the TCP/UDP checksum of a complete frame.
func l4Valid(frame []byte, v6 bool) bool {
	l4 := 14 + 20
	if v6 {
		l4 = 14 + 40
	}
	s := uint32(pseudoSum(frame, v6, l4)) + uint32(onesSum(frame[l4:]))
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s == 0xffff
}

func TestLargeWholeToOffloadPort(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		l := newOffloadLab(t)
		src, dst := pod1v4, pod2v4
		if v6 {
			src, dst = pod1v6, pod2v6
		}
		in := tcpSuper(t, v6, src, dst, 64, 40000, mssFor(v6))
		out := l.runVector(t, "pod1", in)
		if len(out["pod2"]) != 1 {
			t.Fatalf("v6=%v: %d frames on pod2, want the super-frame whole (counters %+v)", v6, len(out["pod2"]), l.sw.Counters())
		}
		got := out["pod2"][0]
		if !bytes.Equal(got[:encap.VirtioNetHdrLen], in[:encap.VirtioNetHdrLen]) {
			t.Errorf("v6=%v: offload header %x, want %x unchanged", v6, got[:10], in[:10])
		}
		f := got[encap.VirtioNetHdrLen:]
		if [6]byte(f[0:6]) != pod2MAC || [6]byte(f[6:12]) != gwMAC {
			t.Errorf("v6=%v: L2 rewrite %x", v6, f[:12])
		}
		if v6 {
			if f[14+7] != 63 {
				t.Errorf("hop limit %d, want 63", f[14+7])
			}
		} else {
			if f[14+8] != 63 {
				t.Errorf("TTL %d, want 63", f[14+8])
			}
			if onesSum(f[14:34]) != 0xffff {
				t.Error("IPv4 header checksum invalid")
			}
		}
		if !bytes.Equal(f[60:], in[encap.VirtioNetHdrLen+60:]) {
			t.Errorf("v6=%v: payload changed", v6)
		}
		c := l.sw.Counters()
		if c.Events[dataplane.EvGSOWhole] != 1 || c.Events[dataplane.EvGSOSegmented] != 0 {
			t.Errorf("v6=%v: gso-whole %d, gso-segmented %d; want 1, 0", v6, c.Events[dataplane.EvGSOWhole], c.Events[dataplane.EvGSOSegmented])
		}
	}
}

func TestLargeSegmentedToPlainPort(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		l := newOffloadLab(t)
		src, dst := pod1v4, pod3v4
		if v6 {
			src, dst = pod1v6, pod3v6
		}
		mss := mssFor(v6)
		payload := 3*mss + 100
		in := tcpSuper(t, v6, src, dst, 64, payload, mss)
		out := l.runVector(t, "pod1", in)
		segs := out["pod3"]
		if len(segs) != 4 {
			t.Fatalf("v6=%v: %d segments on pod3, want 4 (counters %+v)", v6, len(segs), l.sw.Counters())
		}
		var data []byte
		for i, s := range segs {
			pkt := decode(s)
			tl, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tl == nil {
				t.Fatalf("segment %d: no TCP layer", i)
			}
			if want := uint32(1000 + i*mss); tl.Seq != want {
				t.Errorf("segment %d: seq %d, want %d", i, tl.Seq, want)
			}
			if tl.PSH != (i == len(segs)-1) {
				t.Errorf("segment %d: PSH %v", i, tl.PSH)
			}
			if !l4Valid(s, v6) {
				t.Errorf("v6=%v segment %d: bad TCP checksum", v6, i)
			}
			if [6]byte(s[0:6]) != pod3MAC {
				t.Errorf("segment %d: dst MAC %x", i, s[0:6])
			}
			if !v6 && (s[14+8] != 63 || onesSum(s[14:34]) != 0xffff) {
				t.Errorf("segment %d: TTL %d or IPv4 checksum bad", i, s[14+8])
			}
			data = append(data, tl.Payload...)
		}
		if !bytes.Equal(data, in[encap.VirtioNetHdrLen+len(in)-encap.VirtioNetHdrLen-payload:]) {
			t.Errorf("v6=%v: segments' payloads do not add up to the super-frame's", v6)
		}
		if c := l.sw.Counters(); c.Events[dataplane.EvGSOSegmented] != 1 {
			t.Errorf("gso-segmented %d, want 1", c.Events[dataplane.EvGSOSegmented])
		}
	}
}

func TestLargeKeepsOrder(t *testing.T) {
	l := newOffloadLab(t)
	hdr := make([]byte, encap.VirtioNetHdrLen)
	small := func(n int) []byte {
		return append(append([]byte(nil), hdr...), udp4(t, pod1MAC, pod1v4, pod2v4, 64, n)...)
	}
	out := l.runVector(t, "pod1", small(10), tcpSuper(t, false, pod1v4, pod2v4, 64, 20000, 1448), small(11))
	got := out["pod2"]
	if len(got) != 3 {
		t.Fatalf("%d frames on pod2, want 3", len(got))
	}
	if len(got[0]) >= 100 || len(got[1]) < 20000 || len(got[2]) >= 100 {
		t.Errorf("order: sizes %d %d %d, want small, super-frame, small", len(got[0]), len(got[1]), len(got[2]))
	}
}

func TestLargeFaults(t *testing.T) {
	l := newOffloadLab(t)
	// TTL 1: time exceeded back to the sender, from the gateway.
	out := l.runVector(t, "pod1", tcpSuper(t, false, pod1v4, pod2v4, 1, 20000, 1448))
	if len(out["pod2"]) != 0 || len(out["pod1"]) != 1 {
		t.Fatalf("TTL 1: %d on pod2, %d on pod1; want 0, 1 (an ICMP error)", len(out["pod2"]), len(out["pod1"]))
	}
	icmp, _ := decode(out["pod1"][0][encap.VirtioNetHdrLen:]).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if icmp == nil || icmp.TypeCode.Type() != layers.ICMPv4TypeTimeExceeded {
		t.Errorf("TTL 1: reply is not time-exceeded: %v", icmp)
	}
	// Segments bigger than the output's MTU: frag-needed, DF being set.
	out = l.runVector(t, "pod1", tcpSuper(t, false, pod1v4, pod3v4, 64, 20000, 4000))
	if len(out["pod3"]) != 0 || len(out["pod1"]) != 1 {
		t.Errorf("gso_size 4000: %d on pod3, %d on pod1; want 0, 1", len(out["pod3"]), len(out["pod1"]))
	}
	// An IPv4 frame that says it is TCPv6 GSO.
	bad := tcpSuper(t, false, pod1v4, pod2v4, 64, 20000, 1448)
	bad[1] = encap.GSOTCPv6
	out = l.runVector(t, "pod1", bad)
	if len(out["pod2"]) != 0 {
		t.Error("a super-frame with a lying offload header was forwarded")
	}
	// Unrouted: unreachable, counted.
	out = l.runVector(t, "pod1", tcpSuper(t, false, pod1v4, netip.MustParseAddr("198.18.99.9"), 64, 20000, 1448))
	if len(out["pod2"])+len(out["pod3"]) != 0 {
		t.Error("an unrouted super-frame was forwarded")
	}
	c := l.sw.Counters()
	for d, want := range map[dataplane.Drop]uint64{dataplane.DropTTL: 1, dataplane.DropMTU: 1, dataplane.DropBadOffload: 1, dataplane.DropNoRoute: 1} {
		if c.Drops[d] != want {
			t.Errorf("drop %s = %d, want %d", d, c.Drops[d], want)
		}
	}
	if l.sw.workers[0].Umem().FreeCount() != l.sw.workers[0].Umem().Frames() {
		t.Errorf("frames leaked: %d of %d free", l.sw.workers[0].Umem().FreeCount(), l.sw.workers[0].Umem().Frames())
	}
}

func TestPartialChecksumCompleted(t *testing.T) {
	l := newOffloadLab(t)
	// A small TCP frame with a partial checksum, as a pod with TX checksum
	// offload on sends it, goes to a plain port completed.
	in := tcpSuper(t, false, pod1v4, pod3v4, 64, 200, 1448)
	encap.VirtioNetHdr(in[:encap.VirtioNetHdrLen]).Set(encap.VirtioNetHdrFNeedsCsum, encap.GSONone, 0, 0, 34, 16)
	out := l.runVector(t, "pod1", in)
	if len(out["pod3"]) != 1 {
		t.Fatalf("%d frames on pod3, want 1", len(out["pod3"]))
	}
	if !l4Valid(out["pod3"][0], false) {
		t.Error("TCP checksum not completed")
	}
}

func TestForwardLargeZeroAlloc(t *testing.T) {
	l := newOffloadLab(t)
	w := l.sw.workers[0]
	in := l.rxPort("pod1")
	for _, dst := range []netip.Addr{pod2v4, pod3v4} { // whole, then cut
		super := tcpSuper(t, false, pod1v4, dst, 64, 60000, 1460)
		frame := make([]byte, len(super)-encap.VirtioNetHdrLen)
		allocs := testing.AllocsPerRun(50, func() {
			copy(frame, super[encap.VirtioNetHdrLen:])
			lf := port.LargeFrame{Frame: frame, Hdr: encap.VirtioNetHdr(super[:encap.VirtioNetHdrLen])}
			w.ForwardLarge(&lf, in)
			l.discardOutput()
		})
		if dst == pod3v4 {
			// A lying offload header is dropped without allocating too.
			bad := append([]byte(nil), super...)
			bad[1] = encap.GSOTCPv6
			allocs += testing.AllocsPerRun(50, func() {
				lf := port.LargeFrame{Frame: bad[encap.VirtioNetHdrLen:], Hdr: encap.VirtioNetHdr(bad[:encap.VirtioNetHdrLen])}
				w.ForwardLarge(&lf, in)
			})
		}
		// The fake port's TransmitLarge copies the frame for its channel
		// (one allocation); the switch itself must add none.
		want := 0.0
		if dst == pod2v4 {
			want = 1
		}
		if allocs > want {
			t.Errorf("to %s: forwardLarge allocates %v times per frame, want %v", dst, allocs, want)
		}
	}
}

// BenchmarkForwardLarge routes one 64 KiB TCP super-frame: "whole" to an
// offloading port (which discards it: the sendmsg is the kernel's cost),
// "segmented" cut into 45 frames for a plain port.
func BenchmarkForwardLarge(b *testing.B) {
	for _, tc := range []struct {
		name string
		dst  netip.Addr
	}{{"whole", pod2v4}, {"segmented", pod3v4}} {
		b.Run(tc.name, func(b *testing.B) {
			l := newOffloadLab(b)
			l.offload["pod2"].Discard = true
			w := l.sw.workers[0]
			in := l.rxPort("pod1")
			super := tcpSuper(b, false, pod1v4, tc.dst, 64, 65000, 1460)
			frame := make([]byte, len(super)-encap.VirtioNetHdrLen)
			copy(frame, super[encap.VirtioNetHdrLen:])
			hdr := encap.VirtioNetHdr(super[:encap.VirtioNetHdrLen])
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				copy(frame[:34], super[encap.VirtioNetHdrLen:]) // MACs, TTL, checksum as sent
				lf := port.LargeFrame{Frame: frame, Hdr: hdr}
				w.ForwardLarge(&lf, in)
				l.discardOutput()
			}
			b.StopTimer()
			w.PublishCounters()
			if c := l.sw.Counters(); c.Events[dataplane.EvGSOWhole]+c.Events[dataplane.EvGSOSegmented] < uint64(b.N) {
				b.Fatalf("%d super-frames forwarded of %d (drops %v)", c.Events[dataplane.EvGSOWhole]+c.Events[dataplane.EvGSOSegmented], b.N, c.Drops)
			}
		})
	}
}

// rxPort returns the first worker's state for the port named name.
func (l *fakeLab) rxPort(name string) *dataplane.Port {
	for _, ps := range l.sw.workers[0].RxPorts() {
		if ps.Name == name {
			return ps
		}
	}
	return nil
}

// discardOutput frees what the first worker queued and empties pod2's
// channel: for calling forwardLarge in a loop without flushing.
func (l *fakeLab) discardOutput() {
	w := l.sw.workers[0]
	w.DiscardQueued()
	for len(l.ports["pod2"].Out) > 0 {
		<-l.ports["pod2"].Out
	}
}

// tcpSegments cuts a TSO super-frame from src to dst into the full-size
// segments a sender without TSO (an AF_XDP pod, the uplink) delivers.
func tcpSegments(t testing.TB, v6 bool, src, dst netip.Addr, payload int) (segs [][]byte) {
	t.Helper()
	b := tcpSuper(t, v6, src, dst, 64, payload, mssFor(v6))
	h, frame := encap.VirtioNetHdr(b[:encap.VirtioNetHdrLen]), b[encap.VirtioNetHdrLen:]
	g, err := encap.ParseGSO(frame, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Segments(frame) {
		dst := make([]byte, 2048)
		segs = append(segs, dst[:g.Segment(dst, frame, i)])
	}
	return segs
}

// TestGROToOffloadPort: TCP segments from a plain port to an offloading
// one leave as one super-frame (GRO), in order with the frames around
// them, and it is the super-frame the segments were cut from, routed.
func TestGROToOffloadPort(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		l := newOffloadLab(t)
		src, dst := pod3v4, pod1v4
		if v6 {
			src, dst = pod3v6, pod1v6
		}
		mss := mssFor(v6)
		segs := tcpSegments(t, v6, src, dst, 5*mss)
		for _, s := range segs {
			copy(s[6:12], pod3MAC[:])
		}
		// The frames around are of the same family: a vector's families
		// are looked up, and so sent, apart.
		udp := udp4(t, pod3MAC, pod3v4, pod1v4, 64, 10)
		if v6 {
			udp = udp6(t, pod3MAC, pod3v6, pod1v6, 64, 10)
		}
		in := append(append([][]byte{udp}, segs...), udp)
		out := l.runVector(t, "pod3", in...)["pod1"]
		if len(out) != 3 {
			t.Fatalf("v6=%v: %d frames on pod1, want small, super-frame, small (counters %+v)", v6, len(out), l.sw.Counters())
		}
		h, frame := encap.VirtioNetHdr(out[1][:encap.VirtioNetHdrLen]), out[1][encap.VirtioNetHdrLen:]
		if len(out[0]) > 100 || len(out[2]) > 100 || h.GSOType() == encap.GSONone || int(h.GSOSize()) != mss {
			t.Fatalf("v6=%v: sizes %d %d %d, gso type %d size %d", v6, len(out[0]), len(out[1]), len(out[2]), h.GSOType(), h.GSOSize())
		}
		g, err := encap.ParseGSO(frame, h)
		if err != nil {
			t.Fatalf("v6=%v: the super-frame: %v", v6, err)
		}
		if n := g.Segments(frame); n != len(segs) {
			t.Errorf("v6=%v: the super-frame cuts into %d segments, want %d", v6, n, len(segs))
		}
		// Routed once: addresses rewritten, TTL or hop limit down by one.
		if !bytes.Equal(frame[0:6], pod1MAC[:]) || (v6 && frame[14+7] != 63) || (!v6 && frame[14+8] != 63) {
			t.Errorf("v6=%v: not routed: %x", v6, frame[:24])
		}
		c := l.sw.Counters()
		if c.Events[dataplane.EvGROMerged] != 1 || c.Events[dataplane.EvGROSegments] != uint64(len(segs)) {
			t.Errorf("v6=%v: gro-merged %d, gro-segments %d", v6, c.Events[dataplane.EvGROMerged], c.Events[dataplane.EvGROSegments])
		}
	}
}

// TestGROZeroAlloc: merging segments at flush and sending the super-frame
// allocate nothing in the switch (the fake port's TransmitLarge copies the
// frame for its channel: one allocation).
func TestGROZeroAlloc(t *testing.T) {
	l := newOffloadLab(t)
	w := l.sw.workers[0]
	out := l.rxPort("pod1")
	segs := tcpSegments(t, false, pod3v4, pod1v4, 10*mssFor(false))
	allocs := testing.AllocsPerRun(50, func() {
		for _, s := range segs {
			a, ok := w.Umem().Alloc()
			if !ok {
				t.Fatal("no Umem frames")
			}
			n := copy(w.Umem().Frame(a)[port.Headroom:], s)
			w.Emit(&port.Packet{Addr: a + port.Headroom, Len: uint32(n)}, out)
		}
		w.Flush()
		l.discardOutput()
	})
	if allocs > 1 {
		t.Errorf("%v allocations per merged super-frame, want at most the fake port's 1", allocs)
	}
	w.PublishCounters()
	if l.sw.Counters().Events[dataplane.EvGROMerged] == 0 {
		t.Error("nothing was merged")
	}
}

// TestGROSocketFull: when the port refuses the merged super-frame (its
// socket is full), the segments go out as they came, in order; nothing is
// lost or counted as merged.
func TestGROSocketFull(t *testing.T) {
	l := newOffloadLab(t)
	l.offload["pod1"].LargeErr = unix.EAGAIN
	segs := tcpSegments(t, false, pod3v4, pod1v4, 4*mssFor(false))
	for _, s := range segs {
		copy(s[6:12], pod3MAC[:])
	}
	out := l.runVector(t, "pod3", segs...)["pod1"]
	if len(out) != len(segs) {
		t.Fatalf("%d frames on pod1, want the %d segments", len(out), len(segs))
	}
	for i, b := range out {
		f := b[encap.VirtioNetHdrLen:]
		if seq, want := binary.BigEndian.Uint32(f[14+20+4:]), binary.BigEndian.Uint32(segs[i][14+20+4:]); seq != want {
			t.Errorf("frame %d: seq %d, want %d (order)", i, seq, want)
		}
	}
	if c := l.sw.Counters(); c.Events[dataplane.EvGROMerged] != 0 || c.Drops[dataplane.DropRingFull] != 0 {
		t.Errorf("gro-merged %d, ring-full drops %d; want 0 and 0", c.Events[dataplane.EvGROMerged], c.Drops[dataplane.DropRingFull])
	}
}

// TestOneDecisionForAllFrames: a single frame and a GSO super-frame of the
// same flow get the same decision (forward, or drop for the same reason),
// since both go through the same classify checks and decide4/decide6.
func TestOneDecisionForAllFrames(t *testing.T) {
	const keep = dataplane.NumDrops // the pipeline's "no drop"
	unrouted4, unrouted6 := netip.MustParseAddr("198.18.99.9"), netip.MustParseAddr("fd00:99::9")
	for _, tc := range []struct {
		name     string
		v6       bool
		src, dst netip.Addr
		ttl      uint8
		want     dataplane.Drop // keep: forwarded
		out      string         // where a forwarded frame leaves
	}{
		{"v4 to a pod", false, pod1v4, pod2v4, 64, keep, "pod2"},
		{"v6 to a pod", true, pod1v6, pod2v6, 64, keep, "pod2"},
		{"v4 ttl 1", false, pod1v4, pod2v4, 1, dataplane.DropTTL, ""},
		{"v6 hop limit 1", true, pod1v6, pod2v6, 1, dataplane.DropTTL, ""},
		{"v4 no route", false, pod1v4, unrouted4, 64, dataplane.DropNoRoute, ""},
		{"v6 no route", true, pod1v6, unrouted6, 64, dataplane.DropNoRoute, ""},
		{"v4 martian", false, pod1v4, netip.MustParseAddr("127.0.0.9"), 64, dataplane.DropMartian, ""},
		{"v6 martian", true, pod1v6, netip.MustParseAddr("::1"), 64, dataplane.DropMartian, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newOffloadLab(t)
			single := tcpSuper(t, tc.v6, tc.src, tc.dst, tc.ttl, 200, mssFor(tc.v6))
			l4 := 14 + 20
			if tc.v6 {
				l4 = 14 + 40
			}
			encap.VirtioNetHdr(single[:encap.VirtioNetHdrLen]).Set(encap.VirtioNetHdrFNeedsCsum, encap.GSONone, 0, 0, uint16(l4), 16)
			for _, f := range []struct {
				kind  string
				frame []byte
			}{{"single frame", single}, {"super-frame", tcpSuper(t, tc.v6, tc.src, tc.dst, tc.ttl, 20000, mssFor(tc.v6))}} {
				before := l.sw.Counters()
				out := l.runVector(t, "pod1", f.frame)
				got := dropDelta(before, l.sw.Counters())
				want := map[dataplane.Drop]uint64{}
				if tc.want != keep {
					want[tc.want] = 1
				}
				if !reflect.DeepEqual(want, got) {
					t.Errorf("%s: drops (-want +got):\n-%v\n+%v", f.kind, want, got)
				}
				if tc.out != "" && len(out[tc.out]) == 0 {
					t.Errorf("%s: nothing on %s (out %d ports)", f.kind, tc.out, len(out))
				}
			}
		})
	}
}
