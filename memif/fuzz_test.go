package memif

import (
	"encoding/binary"
	"fmt"
	"testing"

	"reflect"
)

// diff is "" when want and got are equal, else both, as -want +got.
func diff(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return "-" + sprint(want) + "\n+" + sprint(got)
}

func encoded(m Msg) []byte {
	b := make([]byte, MsgSize)
	m.Encode(b)
	return b
}

// TestMsgRoundTrip encodes each message type and parses it back.
func TestMsgRoundTrip(t *testing.T) {
	for _, m := range []Msg{
		{Type: MsgAck},
		{Type: MsgHello, Hello: Hello{Name: "VPP 25.10", MinVersion: Version, MaxVersion: Version, MaxRegion: 255, MaxM2SRing: 3, MaxS2MRing: 7, MaxLog2RingSize: 14}},
		{Type: MsgInit, Init: Init{Version: Version, ID: 0xdeadbeef, Mode: ModeIP, Secret: "sesame", Name: "DPDK 22.11.11"}},
		{Type: MsgAddRegion, AddRegion: AddRegion{Index: 3, Size: 1<<40 + 5}},
		{Type: MsgAddRing, AddRing: AddRing{Flags: addRingFlagS2M, Index: 2, Region: 1, Offset: 0x12345678, Log2RingSize: 10, PrivateHdrSize: 0}},
		{Type: MsgConnect, IfName: "net_memif0"},
		{Type: MsgConnected, IfName: "memif1/0"},
		{Type: MsgDisconnect, Disconnect: Disconnect{Code: 7, Reason: "incorrect secret"}},
	} {
		got, err := ParseMsg(encoded(m))
		if err != nil {
			t.Errorf("%s: %v", m.Type, err)
			continue
		}
		if d := diff(m, got); d != "" {
			t.Errorf("%s round trip (-want +got):\n%s", m.Type, d)
		}
	}
	// Offsets as libmemif lays them out (packed, after a 2-byte type).
	b := encoded(Msg{Type: MsgAddRing, AddRing: AddRing{Flags: 1, Index: 2, Region: 3, Offset: 4, Log2RingSize: 5, PrivateHdrSize: 6}})
	want := []byte{5, 0, 1, 0, 2, 0, 3, 0, 4, 0, 0, 0, 5, 6, 0}
	if d := diff(want, b[:15]); d != "" {
		t.Errorf("add_ring bytes (-want +got):\n%s", d)
	}
}

// FuzzParseMsg: any datagram parses or fails cleanly, and what parses
// re-encodes to a message that parses the same.
func FuzzParseMsg(f *testing.F) {
	f.Add(encoded(Msg{Type: MsgHello, Hello: Hello{Name: "x", MinVersion: Version, MaxVersion: Version}}))
	f.Add(encoded(Msg{Type: MsgInit, Init: Init{Version: Version, ID: 1, Name: "n"}}))
	f.Add(encoded(Msg{Type: MsgAddRing, AddRing: AddRing{Flags: 1, Log2RingSize: 10}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMsg(b)
		if err != nil {
			return
		}
		m2, err := ParseMsg(encoded(m))
		if err != nil {
			t.Fatalf("re-encoded %s does not parse: %v", m.Type, err)
		}
		m3, _ := ParseMsg(encoded(m2))
		if d := diff(m2, m3); d != "" {
			t.Fatalf("not stable (-first +second):\n%s", d)
		}
	})
}

// FuzzCheckDesc: a descriptor CheckDesc passes always slices inside its
// region; one it refuses is refused for a true reason.
func FuzzCheckDesc(f *testing.F) {
	f.Add(uint16(0), uint32(100), uint32(0), uint32(9216))
	f.Add(uint16(1), uint32(0xffffffff), uint32(0xffffff00), uint32(9216))
	f.Add(uint16(0), uint32(10), uint32(4090), uint32(9216))
	f.Add(uint16(0), uint32(0x200), uint32(0xffffff00), uint32(0xffffffff)) // offset+length wraps in 32 bits
	regions := [][]byte{make([]byte, 4096), make([]byte, 100)}
	f.Fuzz(func(t *testing.T, region uint16, length, offset, maxLen uint32) {
		d := Desc{Region: region, Length: length, Offset: offset}
		switch e := CheckDesc(d, regions, maxLen); e {
		case DescOK:
			b := descBytes(d, regions)
			if len(b) != int(length) || cap(b) != int(length) {
				t.Fatalf("slice of %d bytes (cap %d) for length %d", len(b), cap(b), length)
			}
		case DescBadRegion:
			if int(region) < len(regions) {
				t.Fatalf("region %d refused", region)
			}
		case DescOutOfRegion:
			if uint64(offset)+uint64(length) <= uint64(len(regions[region])) {
				t.Fatalf("%+v refused as outside", d)
			}
		case DescZeroLength, DescTooLong:
			if length != 0 && length <= maxLen {
				t.Fatalf("%+v refused as %s", d, e)
			}
		}
	})
}

// fuzzQueue builds a queue on a 16-slot ring at the start of a heap region
// whose descriptors and head come from the fuzzer.
func fuzzQueue(data []byte, head uint16) (*Interface, *queueState, []byte) {
	region := make([]byte, 1<<16)
	r := newRing(region, 0, 4)
	r.setCookie(Cookie)
	copy(region[ringHdrSize:ringHdrSize+16*descSize], data)
	r.storeHead(head)
	ifc := &Interface{faultc: make(chan struct{}, 1), rx: make([]RxQueue, 1), tx: make([]TxQueue, 1)}
	ifc.rx[0].iface, ifc.tx[0].iface = ifc, ifc
	st := &queueState{ring: r, regions: [][]byte{region, region[:1000]}, maxLen: 9216}
	return ifc, st, region
}

// FuzzReceive feeds arbitrary descriptors and head values to Receive: it
// must not panic or read outside the regions, every frame it returns fits
// its buffer, and a refused ring stays refused.
func FuzzReceive(f *testing.F) {
	var seed [16 * descSize]byte
	for i := range 16 {
		binary.LittleEndian.PutUint32(seed[i*descSize+4:], 60)
		binary.LittleEndian.PutUint32(seed[i*descSize+8:], uint32(4096+i*2048))
	}
	f.Add(seed[:], uint16(5), 0)
	seed[0] = descFlagNext
	f.Add(seed[:], uint16(16), 64)
	f.Add(seed[:], uint16(17), 0)
	f.Add([]byte{}, uint16(0xffff), 3000)
	binary.LittleEndian.PutUint32(seed[4:], 0x100)
	binary.LittleEndian.PutUint32(seed[8:], 0xffffff80) // offset+length wraps in 32 bits
	f.Add(seed[:], uint16(1), 0)
	f.Fuzz(func(t *testing.T, data []byte, head uint16, offset int) {
		ifc, st, _ := fuzzQueue(data, head)
		q := &ifc.rx[0]
		q.st.Store(st)
		offset = int(uint(offset) % 4096)
		bb, sizes := bufs(8, 2048), make([]int, 8)
		for range 3 {
			n := q.Receive(bb, offset, sizes)
			for i := range n {
				if sizes[i] <= 0 || offset+sizes[i] > len(bb[i]) {
					t.Fatalf("frame %d of %d bytes at offset %d in a %d-byte buffer", i, sizes[i], offset, len(bb[i]))
				}
			}
			if st.faulted && q.Receive(bb, offset, sizes) != 0 {
				t.Fatal("faulted queue still receives")
			}
		}
	})
}

// FuzzTransmit does the same for the peer's M2S descriptors.
func FuzzTransmit(f *testing.F) {
	var seed [16 * descSize]byte
	for i := range 16 {
		binary.LittleEndian.PutUint32(seed[i*descSize+4:], 2048)
		binary.LittleEndian.PutUint32(seed[i*descSize+8:], uint32(4096+i*2048))
	}
	f.Add(seed[:], uint16(16), 1500)
	f.Add(seed[:], uint16(3), 9000)
	f.Add([]byte{1, 0, 1}, uint16(40), 64)
	f.Fuzz(func(t *testing.T, data []byte, head uint16, size int) {
		ifc, st, _ := fuzzQueue(data, head)
		q := &ifc.tx[0]
		q.st.Store(st)
		size = int(uint(size) % 10000)
		frames := [][]byte{make([]byte, size), make([]byte, 64), make([]byte, size/2)}
		for range 3 {
			if n := q.Transmit(frames); n < 0 || n > len(frames) {
				t.Fatalf("Transmit = %d", n)
			}
		}
	})
}

func sprint(v any) string { return fmt.Sprintf("%+v", v) }
