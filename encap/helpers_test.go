package encap

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// refChecksum is the obviously-correct RFC 1071 sum: 16-bit words, end
// around carry after every addition.
func refChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		s += w
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}

var (
	src4 = [4]byte{10, 0, 0, 1}
	dst4 = [4]byte{192, 168, 7, 9}
	src6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	dst6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 15: 0x42}
	mac1 = [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	mac2 = [6]byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
)

// serialize runs gopacket's serializer with checksums and lengths fixed.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	return buf.Bytes()
}

// gpICMPv4Checksum computes msg's checksum with gopacket.
func gpICMPv4Checksum(t testing.TB, msg []byte) uint16 {
	ic := &layers.ICMPv4{
		TypeCode: layers.CreateICMPv4TypeCode(msg[0], msg[1]),
		Id:       binary.BigEndian.Uint16(msg[4:]),
		Seq:      binary.BigEndian.Uint16(msg[6:]),
	}
	out := serialize(t, ic, gopacket.Payload(msg[8:]))
	return binary.BigEndian.Uint16(out[2:])
}

// gpICMPv6Checksum computes msg's checksum, pseudo-header included, with
// gopacket.
func gpICMPv6Checksum(t testing.TB, src, dst [16]byte, msg []byte) uint16 {
	ip := &layers.IPv6{Version: 6, SrcIP: net.IP(src[:]), DstIP: net.IP(dst[:]), NextHeader: layers.IPProtocolICMPv6}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(msg[0], msg[1])}
	if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	out := serialize(t, ic, gopacket.Payload(msg[4:]))
	return binary.BigEndian.Uint16(out[2:])
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func ip4(b [4]byte) net.IP          { return net.IP(b[:]) }
func ip6(b [16]byte) net.IP         { return net.IP(b[:]) }
func hw(b [6]byte) net.HardwareAddr { return net.HardwareAddr(b[:]) }
