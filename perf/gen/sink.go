package gen

import "encoding/binary"

// Filter says which received frames belong to the run.
type Filter struct {
	Stream  uint16 // generator stream to count
	DstPort uint16 // inner UDP destination port; 0 matches any
	VXLAN   bool   // frames arrive VXLAN-encapsulated (outer UDP to 4789)
}

// udp returns the UDP header and payload of an Ethernet frame carrying
// IPv4 (any options, first fragment only) or IPv6 (no extension headers)
// and UDP, or nil.
func udp(b []byte) []byte {
	if len(b) < ethLen {
		return nil
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[ethLen:]
	if et == 0x8100 && len(b) >= 4 {
		et = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	switch et {
	case 0x0800:
		if len(b) < ipv4Len || b[0]>>4 != 4 || b[9] != 17 || binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return nil
		}
		hl := int(b[0]&0xf) * 4
		tl := int(binary.BigEndian.Uint16(b[2:]))
		if hl < ipv4Len || tl < hl+udpLen || tl > len(b) {
			return nil
		}
		return b[hl:tl]
	case 0x86dd:
		if len(b) < ipv6Len+udpLen || b[0]>>4 != 6 || b[6] != 17 {
			return nil
		}
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if pl < udpLen || ipv6Len+pl > len(b) {
			return nil
		}
		return b[ipv6Len : ipv6Len+pl]
	}
	return nil
}

// Payload finds the generator header in an Ethernet frame and returns the
// payload from it, or nil when the frame is not traffic for f.
func (f *Filter) Payload(b []byte) []byte {
	u := udp(b)
	if u == nil {
		return nil
	}
	if f.VXLAN {
		if binary.BigEndian.Uint16(u[2:]) != VXLANPort || len(u) < udpLen+vxlanLen {
			return nil
		}
		if u = udp(u[udpLen+vxlanLen:]); u == nil {
			return nil
		}
	}
	if f.DstPort != 0 && binary.BigEndian.Uint16(u[2:]) != f.DstPort {
		return nil
	}
	p := u[udpLen:]
	if len(p) < HeaderLen || binary.BigEndian.Uint16(p) != Magic || binary.BigEndian.Uint16(p[hdrStream:]) != f.Stream {
		return nil
	}
	return p
}

// Window is how far back (in sequence numbers) the sink tells a late
// packet from a duplicate. Older arrivals are counted as Late.
const Window = 1 << 16

// Sink accounts for received generator packets of one stream: unique
// packets, duplicates, reordering and one-way latency. The zero value is
// not ready; use NewSink.
type Sink struct {
	f Filter

	frames, other uint64 // every frame offered; frames that were not ours
	bytes         uint64 // bytes of our frames
	got           uint64 // our frames, duplicates included
	unique        uint64
	dups          uint64
	reordered     uint64 // arrived after a higher sequence number
	late          uint64 // older than Window: duplicate or reordered, unknown
	first, top    uint64 // lowest and highest extended sequence number seen
	started       bool
	seen          [Window / 64]uint64 // bit s%Window: sequence s arrived, for s in (top-Window, top]
	lat           Histogram
}

// NewSink returns a sink counting traffic that matches f.
func NewSink(f Filter) *Sink { return &Sink{f: f} }

// Offer accounts for one received frame at time now (CLOCK_MONOTONIC ns). It
// reports whether the frame was generator traffic for the sink's filter.
func (s *Sink) Offer(b []byte, now int64) bool {
	s.frames++
	p := s.f.Payload(b)
	if p == nil {
		s.other++
		return false
	}
	s.bytes += uint64(len(b))
	s.Add(binary.BigEndian.Uint32(p[hdrSeq:]), int64(binary.BigEndian.Uint64(p[hdrTime:])), now)
	return true
}

// extend widens a 32-bit sequence number to 64 bits, picking the value
// nearest the highest one seen.
func (s *Sink) extend(seq uint32) uint64 {
	if !s.started {
		return uint64(seq)
	}
	d := int32(seq - uint32(s.top))
	x := int64(s.top) + int64(d)
	if x < 0 {
		x += 1 << 32
	}
	return uint64(x)
}

// Add accounts for one packet with sequence number seq sent at sent and
// received at now.
func (s *Sink) Add(seq32 uint32, sent, now int64) {
	s.got++
	s.lat.Record(now - sent)
	seq := s.extend(seq32)
	if !s.started {
		s.started = true
		s.first, s.top = seq, seq
		s.unique++
		s.set(seq)
		return
	}
	switch {
	case seq > s.top:
		// Clear the slots that now represent (top, seq].
		if seq-s.top >= Window {
			s.seen = [Window / 64]uint64{}
		} else {
			for x := s.top + 1; x <= seq; {
				if x%64 == 0 && seq-x >= 63 {
					s.seen[(x%Window)/64] = 0
					x += 64
					continue
				}
				s.seen[(x%Window)/64] &^= 1 << (x % 64)
				x++
			}
		}
		s.top = seq
		s.unique++
		s.set(seq)
	case s.top-seq >= Window:
		s.late++
	case s.isSet(seq):
		s.dups++
	default:
		s.reordered++
		s.unique++
		s.set(seq)
		if seq < s.first {
			s.first = seq
		}
	}
}

func (s *Sink) set(x uint64)        { s.seen[(x%Window)/64] |= 1 << (x % 64) }
func (s *Sink) isSet(x uint64) bool { return s.seen[(x%Window)/64]&(1<<(x%64)) != 0 }

// Stats is what a Sink counted.
type Stats struct {
	Frames    uint64  `json:"frames"`       // every frame offered
	Other     uint64  `json:"other_frames"` // not generator traffic of this stream
	Received  uint64  `json:"received"`     // ours, duplicates included
	Bytes     uint64  `json:"bytes"`
	Unique    uint64  `json:"unique"`
	Dups      uint64  `json:"duplicates"`
	Reordered uint64  `json:"reordered"`
	Late      uint64  `json:"late"`
	FirstSeq  uint64  `json:"first_seq"`
	LastSeq   uint64  `json:"last_seq"`
	Expected  uint64  `json:"expected"` // sent count when known, else last-first+1
	Lost      uint64  `json:"lost"`
	LossRatio float64 `json:"loss_ratio"`
	Latency   Latency `json:"latency"`
}

// Stats summarises the run. sent is how many packets the sender sent
// (sequence numbers 0..sent-1), or 0 when unknown; then the expectation is
// the span of sequence numbers seen, which cannot see loss at either end.
func (s *Sink) Stats(sent uint64) Stats {
	st := Stats{
		Frames: s.frames, Other: s.other, Received: s.got, Bytes: s.bytes,
		Unique: s.unique, Dups: s.dups, Reordered: s.reordered, Late: s.late,
		FirstSeq: s.first, LastSeq: s.top, Latency: s.lat.Summary(),
	}
	switch {
	case sent > 0:
		st.Expected = sent
	case s.started:
		st.Expected = s.top - s.first + 1
	}
	if st.Expected > st.Unique {
		st.Lost = st.Expected - st.Unique
	}
	if st.Expected > 0 {
		st.LossRatio = float64(st.Lost) / float64(st.Expected)
	}
	return st
}

// Histogram returns the latency histogram (for merging).
func (s *Sink) Histogram() *Histogram { return &s.lat }
