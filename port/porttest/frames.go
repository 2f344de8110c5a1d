package porttest

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/encap"
)

// Frames for driver tests, built with gopacket (an encoder independent of
// the switch's own).

// Serialize encodes ls with lengths and checksums filled in.
func Serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// Flow is where a test frame goes: its MACs, addresses and TTL (or hop
// limit).
type Flow struct {
	SrcMAC, DstMAC [6]byte
	Src, Dst       netip.Addr
	TTL            uint8
}

// UDP4 is an IPv4 UDP frame of f (DF set) with payload zero bytes.
func UDP4(t testing.TB, f Flow, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: f.SrcMAC[:], DstMAC: f.DstMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: f.TTL, Protocol: layers.IPProtocolUDP, SrcIP: f.Src.AsSlice(), DstIP: f.Dst.AsSlice(), Flags: layers.IPv4DontFragment}
	u := &layers.UDP{SrcPort: 1234, DstPort: 5678}
	u.SetNetworkLayerForChecksum(ip)
	return Serialize(t, eth, ip, u, gopacket.Payload(make([]byte, payload)))
}

// TCPSuper is a TCP GSO super-frame of f behind its virtio_net_hdr, as a
// TSO sender hands it over: payload bytes to be cut at mss, the TCP
// checksum left partial (the pseudo-header's sum).
// The family is f's addresses'.
func TCPSuper(t testing.TB, f Flow, payload, mss int) []byte {
	t.Helper()
	v6, src, dst, ttl := f.Src.Is6(), f.Src, f.Dst, f.TTL
	eth := &layers.Ethernet{SrcMAC: f.SrcMAC[:], DstMAC: f.DstMAC[:], EthernetType: layers.EthernetTypeIPv4}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: 1000, Ack: 7, ACK: true, PSH: true, Window: 512, DataOffset: 5}
	pl := make([]byte, payload)
	for i := range pl {
		pl[i] = byte(i * 7)
	}
	var frame []byte
	gsoType, l4 := uint8(encap.GSOTCPv4), encap.EthernetLen+20
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip)
		frame = Serialize(t, eth, ip, tcp, gopacket.Payload(pl))
		gsoType, l4 = encap.GSOTCPv6, encap.EthernetLen+40
	} else {
		ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment, Id: 100}
		tcp.SetNetworkLayerForChecksum(ip)
		frame = Serialize(t, eth, ip, tcp, gopacket.Payload(pl))
	}
	binary.BigEndian.PutUint16(frame[l4+16:], tcpPseudoSum(frame, v6, l4))
	hdr := make([]byte, encap.VirtioNetHdrLen)
	encap.VirtioNetHdr(hdr).Set(encap.VirtioNetHdrFNeedsCsum, gsoType, uint16(l4+20), uint16(mss), uint16(l4), 16)
	return append(hdr, frame...)
}

// tcpPseudoSum is the folded sum of the pseudo-header of the TCP segment
// at l4 (a TCP one: protocol 6).
func tcpPseudoSum(frame []byte, v6 bool, l4 int) uint16 {
	n := len(frame) - l4
	var ph []byte
	if v6 {
		ph = append(ph, frame[encap.EthernetLen+8:encap.EthernetLen+40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(n))
		ph = append(ph, 0, 0, 0, 6)
	} else {
		ph = append(ph, frame[encap.EthernetLen+12:encap.EthernetLen+20]...)
		ph = append(ph, 0, 6)
		ph = binary.BigEndian.AppendUint16(ph, uint16(n))
	}
	return onesSum(ph)
}

// L4ChecksumValid checks the TCP checksum of a complete frame
// without IP options.
func L4ChecksumValid(frame []byte, v6 bool) bool {
	l4 := encap.EthernetLen + 20
	if v6 {
		l4 = encap.EthernetLen + 40
	}
	s := uint32(tcpPseudoSum(frame, v6, l4)) + uint32(onesSum(frame[l4:]))
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s == 0xffff
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
