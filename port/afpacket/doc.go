// Package afpacket is the AF_PACKET port driver: a raw packet socket with
// PACKET_VNET_HDR that receives with recvmmsg straight into the worker's
// Umem frames and sends with sendmmsg from them, where XDP cannot attach
// or must not (XDP on a veth takes the peer's TSO away). Every frame
// carries a virtio_net_hdr: partial checksums are completed on receive,
// GSO super-frames come out of Large and go out whole through
// TransmitLarge, so a Port is a port.LargePort.
//
// A pod or host port attaches a tc ingress drop behind its tap (the
// kernel sees none of its frames), with the fast path its tc program
// forwards pod-to-pod (port.FastPathPort); an uplink is steered by a tc
// program on the XDP steering's maps (port.PrefixSteerer,
// port.VTEPSteerer, port.SteeredUplink). Sender, the one-frame sendmsg
// with its offload header, is shared with the AF_XDP driver.
//
// # Concurrency
//
// As package port: one worker calls a port; Close after the worker
// stopped.
//
// # Allocation
//
// Receive, Transmit and TransmitLarge allocate nothing
// (TestAFPacketPortAllocs).
package afpacket
