package gen

import "encoding/binary"

// Header is the generator's payload header, the first bytes of every UDP
// payload it sends:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Magic (0x5856)        |            Stream             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Send time, CLOCK_MONOTONIC nanoseconds             |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The sequence number is 32 bits on the wire; the sink extends it to 64 bits,
// so runs longer than 2^32 packets still account correctly as long as
// reordering stays within 2^31 packets.
type Header struct {
	Stream uint16
	Seq    uint32
	SentNS int64
}

const (
	// HeaderLen is the size of Header on the wire.
	HeaderLen = 16
	// Magic marks generator payloads ("XV").
	Magic = 0x5856

	hdrMagic  = 0
	hdrStream = 2
	hdrSeq    = 4
	hdrTime   = 8
)

// DecodeHeader reads a Header from the start of a UDP payload.
func DecodeHeader(b []byte) (Header, bool) {
	if len(b) < HeaderLen || binary.BigEndian.Uint16(b[hdrMagic:]) != Magic {
		return Header{}, false
	}
	return Header{
		Stream: binary.BigEndian.Uint16(b[hdrStream:]),
		Seq:    binary.BigEndian.Uint32(b[hdrSeq:]),
		SentNS: int64(binary.BigEndian.Uint64(b[hdrTime:])),
	}, true
}

func (h Header) put(b []byte) {
	binary.BigEndian.PutUint16(b[hdrMagic:], Magic)
	binary.BigEndian.PutUint16(b[hdrStream:], h.Stream)
	binary.BigEndian.PutUint32(b[hdrSeq:], h.Seq)
	binary.BigEndian.PutUint64(b[hdrTime:], uint64(h.SentNS))
}
