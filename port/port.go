package port

import (
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/spec"
)

// Headroom is the space every received frame keeps in front of its data for
// encapsulation (VXLAN over IPv6 needs 70 bytes). AF_XDP gives at least
// XDP_PACKET_HEADROOM (256); the other ports receive at this offset.
const Headroom = 256

// MaxBatch is the most frames one Receive or Transmit is asked to move.
const MaxBatch = 256

// Packet is one frame in a vector: Len bytes at UMEM address Addr. The frame
// that holds Addr is owned by whoever holds the Packet.
type Packet struct {
	Addr uint64
	Len  uint32
	Port uint16 // input port on receive; output port once classified
	_    uint16
}

// Port moves batches of frames between one interface queue and a worker.
// A port belongs to exactly one worker and is only ever called from that
// worker's goroutine, except Close, which is called after the worker stopped.
//
// Frames come from and go back to the worker's Umem: Receive fills pkts with
// frames it takes from the Umem (or from its own kernel ring over that Umem),
// Transmit takes ownership of the frames it accepts. Implementations do not
// allocate per call.
type Port interface {
	// Receive fills pkts[:n] with received frames and returns n. It never
	// blocks. Addr points at the frame's data; Base(Addr)..Addr is headroom.
	Receive(pkts []Packet) int
	// Transmit queues pkts for sending and returns how many it took. Frames
	// it did not take stay with the caller (who frees and counts them).
	Transmit(pkts []Packet) int
	// Flush kicks the kernel to send what Transmit queued and reclaims
	// completed frames to the Umem.
	Flush()
	// PollFD is the descriptor to wait on for receive readiness, or -1.
	PollFD() int
	// Mode reports how the port actually runs.
	Mode() spec.Mode
	// Close releases the port's sockets and detaches what it attached.
	Close() error
}

// LargeFrame is a received frame that does not travel as a Packet: a GSO
// super-frame (Hdr says how to cut it), or a frame bigger than a Umem frame.
// Frame is valid until the port's next Receive.
type LargeFrame struct {
	// At is where the frame sits in the order of arrival: after the first
	// At packets the same Receive returned.
	At    int
	Frame []byte
	Hdr   encap.VirtioNetHdr
}

// LargePort is a Port that also carries offloads: GSO super-frames and
// partial checksums (AF_PACKET with PACKET_VNET_HDR). Frames a peer sends
// with a partial checksum come out of Receive completed; GSO super-frames
// come out of Large, and go out whole through TransmitLarge to another
// LargePort, or cut into Packets (encap.GSO) for any other port.
type LargePort interface {
	Port
	// Large returns the large frames the last Receive took.
	Large() []LargeFrame
	// TransmitLarge sends one frame with its offload header now. It fails
	// when the socket is full or the kernel refuses the frame.
	TransmitLarge(frame []byte, hdr encap.VirtioNetHdr) error
}
