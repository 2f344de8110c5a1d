package encap

// VXLANLen is the length of the VXLAN header.
const VXLANLen = 8

// VXLANPort is the IANA-assigned VXLAN UDP destination port.
const VXLANPort = 4789

// VXLANFlagVNI is the I flag: the VNI field is valid.
const VXLANFlagVNI uint8 = 0x08

// VXLAN source ports are drawn from the dynamic range (RFC 7348 section 5).
const (
	VXLANSrcPortMin = 49152
	VXLANSrcPortMax = 65535
)

const (
	vxlanFlags = 0
	vxlanVNI   = 4
)

// VXLAN is a view of a VXLAN header (RFC 7348):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|            Reserved                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                VXLAN Network Identifier (VNI) |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Accessors need len(b) >= VXLANLen.
type VXLAN []byte

// IsValid reports whether b holds a VXLAN header with the I flag set.
// Reserved bits are ignored on receipt, as RFC 7348 asks.
func (b VXLAN) IsValid() bool { return len(b) >= VXLANLen && b[vxlanFlags]&VXLANFlagVNI != 0 }

// Flags returns the flags byte.
func (b VXLAN) Flags() uint8 { return b[vxlanFlags] }

// VNI returns the 24-bit VXLAN network identifier.
func (b VXLAN) VNI() uint32 {
	return uint32(b[vxlanVNI])<<16 | uint32(b[vxlanVNI+1])<<8 | uint32(b[vxlanVNI+2])
}

// SetVNI sets the VNI (low 24 bits of vni).
func (b VXLAN) SetVNI(vni uint32) {
	b[vxlanVNI] = uint8(vni >> 16)
	b[vxlanVNI+1] = uint8(vni >> 8)
	b[vxlanVNI+2] = uint8(vni)
}

// Payload returns the inner Ethernet frame.
func (b VXLAN) Payload() []byte { return b[VXLANLen:] }

// Encode writes a whole header: flags 0x08, reserved fields zero.
func (b VXLAN) Encode(vni uint32) {
	_ = b[VXLANLen-1]
	b[0], b[1], b[2], b[3] = VXLANFlagVNI, 0, 0, 0
	b.SetVNI(vni)
	b[7] = 0
}

// VXLANSourcePort maps a flow hash (FlowHash4, FlowHash6) to a UDP source
// port in 49152-65535, so the underlay's ECMP spreads tunnelled flows.
func VXLANSourcePort(hash uint32) uint16 {
	return VXLANSrcPortMin | uint16(hash>>18)
}
