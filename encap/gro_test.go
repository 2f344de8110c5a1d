package encap

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// groSegments cuts c's super-frame with GSO, as the sender's kernel (or
// a NIC's TSO) would.
func groSegments(t testing.TB, c gsoCase) (super []byte, segs [][]byte) {
	frame, _, h := c.superFrame(t)
	g, err := ParseGSO(frame, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Segments(frame) {
		dst := make([]byte, 65536)
		segs = append(segs, dst[:g.Segment(dst, frame, i)])
	}
	return frame, segs
}

// groCases are the TCP cases whose every segment merges: no FIN (GSO puts
// it on the last), CWR (on the first) or ECE, no IP options, several
// segments.
func groCases() []gsoCase {
	var cs []gsoCase
	for _, c := range gsoCases {
		if !c.udp && !c.ipOpts && c.flags&(tcpFlagFIN|tcpFlagCWR|tcpFlagECE) == 0 && c.payload > c.size {
			cs = append(cs, c)
		}
	}
	return cs
}

// TestGROUndoesGSO: the segments GSO cuts from a super-frame merge back
// into that super-frame byte for byte (its checksum field holding the
// pseudo-header's sum, as a TSO sender leaves it), with a virtio header
// for their segment size.
func TestGROUndoesGSO(t *testing.T) {
	cs := groCases()
	if len(cs) < 3 {
		t.Fatalf("only %d cases", len(cs))
	}
	g := NewGRO()
	for _, c := range cs {
		t.Run(c.name, func(t *testing.T) {
			super, segs := groSegments(t, c)
			if !g.Start(segs[0]) {
				t.Fatal("Start refused the first segment")
			}
			for i, s := range segs[1:] {
				if !g.Add(s) {
					t.Fatalf("Add refused segment %d of %d", i+1, len(segs))
				}
			}
			if g.Segments() != len(segs) {
				t.Errorf("Segments() = %d, want %d", g.Segments(), len(segs))
			}
			hdr := make(VirtioNetHdr, VirtioNetHdrLen)
			got := g.Finish(hdr)
			if !bytes.Equal(got, super) {
				t.Fatalf("merged frame differs from the super-frame:\n got %x\nwant %x", got[:min(len(got), 80)], super[:min(len(super), 80)])
			}
			l4, hl := c.hdrLen()
			if hdr.Flags() != VirtioNetHdrFNeedsCsum || hdr.GSOType() != c.gsoType() || int(hdr.GSOSize()) != c.size ||
				int(hdr.HdrLen()) != hl || int(hdr.CsumStart()) != l4 || hdr.CsumOffset() != 16 {
				t.Errorf("virtio header %x", []byte(hdr))
			}
			// And GSO takes it back: the header is one the kernel takes.
			if _, err := ParseGSO(got, hdr); err != nil {
				t.Errorf("ParseGSO of the merged frame: %v", err)
			}
		})
	}
}

func TestGRORefuses(t *testing.T) {
	c := gsoCases[0] // tcp4, 1448-byte segments, PSH on the last
	_, segs := groSegments(t, c)
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	g := NewGRO()
	clone := func(b []byte, edit func([]byte)) []byte {
		b = bytes.Clone(b)
		edit(b)
		return b
	}
	l4 := EthernetLen + IPv4MinLen
	fixTCP := func(b []byte) { // recompute the TCP checksum after an edit
		binary.BigEndian.PutUint16(b[l4+16:], 0)
		ps := PseudoHeaderSum4([4]byte(b[EthernetLen+12:]), [4]byte(b[EthernetLen+16:]), 6, uint16(len(b)-l4))
		binary.BigEndian.PutUint16(b[l4+16:], ^Fold(Checksum(b[l4:], ps)))
	}
	fixIP := func(b []byte) {
		ip := IPv4(b[EthernetLen:])
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	for _, tc := range []struct {
		name string
		seg  []byte
	}{
		{"SYN", clone(segs[0], func(b []byte) { b[l4+13] |= tcpFlagSYN; fixTCP(b) })},
		{"FIN", clone(segs[0], func(b []byte) { b[l4+13] |= tcpFlagFIN; fixTCP(b) })},
		{"RST", clone(segs[0], func(b []byte) { b[l4+13] |= tcpFlagRST; fixTCP(b) })},
		{"URG", clone(segs[0], func(b []byte) { b[l4+13] |= tcpFlagURG; fixTCP(b) })},
		{"no ACK", clone(segs[0], func(b []byte) { b[l4+13] &^= tcpFlagACK; fixTCP(b) })},
		{"bad TCP checksum", clone(segs[0], func(b []byte) { b[len(b)-1] ^= 1 })},
		{"UDP", clone(segs[0], func(b []byte) { b[EthernetLen+9] = 17; fixIP(b) })},
		{"fragment", clone(segs[0], func(b []byte) { b[EthernetLen+6] |= 0x20; fixIP(b) })},
		{"no payload", clone(segs[0][:l4+32], func(b []byte) {
			binary.BigEndian.PutUint16(b[EthernetLen+2:], uint16(len(b)-EthernetLen))
			fixIP(b)
			fixTCP(b)
		})},
		{"ARP", clone(segs[0][:42], func(b []byte) { binary.BigEndian.PutUint16(b[12:], EtherTypeARP) })},
		{"truncated", segs[0][:40]},
		{"short of its IP length", segs[0][:200]},
	} {
		if g.Start(tc.seg) {
			t.Errorf("Start took a segment with %s", tc.name)
		}
	}

	for _, tc := range []struct {
		name string
		seg  []byte
	}{
		{"a gap in the sequence", segs[2]},
		{"another source port", clone(segs[1], func(b []byte) { b[l4+1]++; fixTCP(b) })},
		{"another ACK number", clone(segs[1], func(b []byte) { b[l4+11]++; fixTCP(b) })},
		{"other TCP options", clone(segs[1], func(b []byte) { b[l4+24]++; fixTCP(b) })},
		{"another TTL", clone(segs[1], func(b []byte) { b[EthernetLen+8]--; fixIP(b) })},
		{"another TOS", clone(segs[1], func(b []byte) { b[EthernetLen+1] = 0x10; fixIP(b) })},
		{"another destination", clone(segs[1], func(b []byte) { b[EthernetLen+19]++; fixIP(b); fixTCP(b) })},
		{"a bad checksum", clone(segs[1], func(b []byte) { b[len(b)-1] ^= 1 })},
		{"IPv6", func() []byte { _, s := groSegments(t, gsoCases[6]); return s[1] }()},
	} {
		if !g.Start(segs[0]) {
			t.Fatal("Start refused the first segment")
		}
		if g.Add(tc.seg) {
			t.Errorf("Add took %s", tc.name)
		}
		if g.Segments() != 1 {
			t.Errorf("%s: the frame changed", tc.name)
		}
	}

	// A short segment ends the frame; so does PSH.
	short := clone(segs[1][:len(segs[1])-100], func(b []byte) {
		binary.BigEndian.PutUint16(b[EthernetLen+2:], uint16(len(b)-EthernetLen))
		fixIP(b)
		fixTCP(b)
	})
	if !g.Start(segs[0]) || !g.Add(short) || g.Add(segs[2]) {
		t.Error("a segment after a short one was taken")
	}
	psh := clone(segs[1], func(b []byte) { b[l4+13] |= tcpFlagPSH; fixTCP(b) })
	if !g.Start(segs[0]) || !g.Add(psh) || g.Add(segs[2]) {
		t.Error("a segment after PSH was taken")
	}
	// Nothing is added without Start, and one segment comes back as it was.
	g2 := NewGRO()
	if g2.Add(segs[0]) {
		t.Error("Add without Start")
	}
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	if !g2.Start(segs[0]) || !bytes.Equal(g2.Finish(hdr), segs[0]) || hdr.GSOType() != GSONone || hdr.Flags() != 0 {
		t.Error("a single segment did not come back unchanged with an empty header")
	}
}

// TestGROLimit: a super-frame stops short of 64 KiB of IP packet.
func TestGROLimit(t *testing.T) {
	// Two bursts of one flow, the second going on where the first ends.
	_, segs := groSegments(t, gsoCase{name: "a", size: 1448, payload: 44 * 1448, flags: 0x10, id: 1, seq: 1})
	_, more := groSegments(t, gsoCase{name: "b", size: 1448, payload: 10 * 1448, flags: 0x10, id: 1, seq: 1 + 44*1448})
	segs = append(segs, more...)
	g := NewGRO()
	if !g.Start(segs[0]) {
		t.Fatal("Start")
	}
	n := 1
	for _, s := range segs[1:] {
		if !g.Add(s) {
			break
		}
		n++
	}
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	ipLen := int(IPv4(g.Finish(hdr)[EthernetLen:]).TotalLength())
	if n >= len(segs) || ipLen > 0xffff || ipLen+1448 <= 0xffff {
		t.Errorf("merged %d of %d segments, IP length %d", n, len(segs), ipLen)
	}
}

func TestGROZeroAllocs(t *testing.T) {
	_, segs := groSegments(t, gsoCases[0])
	g := NewGRO()
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	if n := testing.AllocsPerRun(100, func() {
		g.Start(segs[0])
		for _, s := range segs[1:] {
			g.Add(s)
		}
		g.Finish(hdr)
	}); n != 0 {
		t.Errorf("%v allocations per super-frame", n)
	}
}

func BenchmarkGRO(b *testing.B) {
	c := gsoCase{name: "tcp4", size: 1448, payload: 45 * 1448, flags: 0x10, id: 1, seq: 1}
	_, segs := groSegments(b, c)
	g := NewGRO()
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	b.SetBytes(int64(c.payload))
	for b.Loop() {
		g.Start(segs[0])
		for _, s := range segs[1:] {
			g.Add(s)
		}
		g.Finish(hdr)
	}
}

func FuzzGRO(f *testing.F) {
	_, segs := groSegments(f, gsoCases[0])
	f.Add(segs[0], segs[1])
	_, segs6 := groSegments(f, gsoCases[6])
	f.Add(segs6[0], segs6[1])
	g := NewGRO()
	hdr := make(VirtioNetHdr, VirtioNetHdrLen)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if g.Start(a) {
			g.Add(b)
			g.Add(a)
			out := g.Finish(hdr)
			if g.Segments() > 1 {
				if _, err := ParseGSO(out, hdr); err != nil {
					t.Fatalf("merged frame not a valid super-frame: %v", err)
				}
			}
		}
	})
}

func TestGROPair(t *testing.T) {
	_, segs := groSegments(t, gsoCases[0])
	_, segs6 := groSegments(t, gsoCases[6])
	other := bytes.Clone(segs[1])
	other[EthernetLen+20+1]++ // source port
	udp := bytes.Clone(segs[1])
	udp[EthernetLen+9] = 17
	for _, c := range []struct {
		name string
		a, b []byte
		want bool
	}{
		{"next segment", segs[0], segs[1], true},
		{"IPv6 next segment", segs6[0], segs6[1], true},
		{"another port", segs[0], other, false},
		{"UDP", segs[0], udp, false},
		{"IPv4 then IPv6", segs[0], segs6[1], false},
		{"short", segs[0], segs[1][:40], false},
	} {
		if got := GROPair(c.a, c.b); got != c.want {
			t.Errorf("%s: GROPair = %v, want %v", c.name, got, c.want)
		}
	}
}
