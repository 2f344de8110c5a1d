package memif

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol constants of memif version 2 (libmemif's memif.h).
const (
	Cookie       = 0x3E31F20
	VersionMajor = 2
	VersionMinor = 0
	Version      = VersionMajor<<8 | VersionMinor

	// MsgSize is the size of every control message; a datagram of any
	// other size is malformed.
	MsgSize = 128

	nameLen       = 32
	secretLen     = 24
	disconnectLen = 96
)

// MsgType is the first field of a control message.
type MsgType uint16

const (
	MsgNone MsgType = iota
	MsgAck
	MsgHello
	MsgInit
	MsgAddRegion
	MsgAddRing
	MsgConnect
	MsgConnected
	MsgDisconnect
)

var msgTypeNames = [...]string{"none", "ack", "hello", "init", "add_region", "add_ring", "connect", "connected", "disconnect"}

func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint16(t))
}

// Mode is the interface mode both sides must agree on.
type Mode uint8

const (
	ModeEthernet Mode = iota
	ModeIP
	ModePuntInject
)

func (m Mode) String() string {
	switch m {
	case ModeEthernet:
		return "ethernet"
	case ModeIP:
		return "ip"
	case ModePuntInject:
		return "punt/inject"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// addRingFlagS2M marks an ADD_RING for a slave-to-master ring.
const addRingFlagS2M = 1

// ErrMalformed is wrapped by every parse error of a control message.
var ErrMalformed = errors.New("malformed memif message")

// Hello is the server's first message.
type Hello struct {
	Name            string
	MinVersion      uint16
	MaxVersion      uint16
	MaxRegion       uint16 // highest region index the sender accepts
	MaxM2SRing      uint16 // highest M2S ring index
	MaxS2MRing      uint16 // highest S2M ring index
	MaxLog2RingSize uint8
}

// Init is the client's answer to Hello: which interface it wants.
type Init struct {
	Version uint16
	ID      uint32
	Mode    Mode
	Secret  string
	Name    string
}

// AddRegion announces a shared memory region (its fd rides along).
type AddRegion struct {
	Index uint16
	Size  uint64
}

// AddRing announces a ring inside a region (its eventfd rides along).
type AddRing struct {
	Flags          uint16
	Index          uint16
	Region         uint16
	Offset         uint32
	Log2RingSize   uint8
	PrivateHdrSize uint16
}

// S2M reports whether the ring carries slave-to-master traffic.
func (r AddRing) S2M() bool { return r.Flags&addRingFlagS2M != 0 }

// Disconnect carries the reason a side gives up.
type Disconnect struct {
	Code   uint32
	Reason string
}

// Msg is one decoded control message; the field matching Type is set.
type Msg struct {
	Type       MsgType
	Hello      Hello
	Init       Init
	AddRegion  AddRegion
	AddRing    AddRing
	IfName     string // CONNECT and CONNECTED
	Disconnect Disconnect
}

// Field offsets inside the 128-byte message: the type (2 bytes), then the
// packed body of the union.
const bodyOff = 2

// cstring returns the bytes of b up to the first NUL. A peer that fills the
// field without a NUL gets the whole field, never more.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func putString(b []byte, s string) {
	n := copy(b[:len(b)-1], s) // keep a NUL, as libmemif's strlcpy does
	clear(b[n:])
}

// ParseMsg decodes one control message. It accepts exactly MsgSize bytes
// and known types; bytes past a message's body are ignored, as the C
// implementations leave them unspecified.
func ParseMsg(b []byte) (Msg, error) {
	var m Msg
	if len(b) != MsgSize {
		return m, fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(b), MsgSize)
	}
	le := binary.LittleEndian
	m.Type = MsgType(le.Uint16(b))
	p := b[bodyOff:]
	switch m.Type {
	case MsgAck, MsgNone:
		if m.Type == MsgNone {
			return m, fmt.Errorf("%w: type none", ErrMalformed)
		}
	case MsgHello:
		m.Hello = Hello{
			Name:            cstring(p[0:32]),
			MinVersion:      le.Uint16(p[32:]),
			MaxVersion:      le.Uint16(p[34:]),
			MaxRegion:       le.Uint16(p[36:]),
			MaxM2SRing:      le.Uint16(p[38:]),
			MaxS2MRing:      le.Uint16(p[40:]),
			MaxLog2RingSize: p[42],
		}
	case MsgInit:
		m.Init = Init{
			Version: le.Uint16(p[0:]),
			ID:      le.Uint32(p[2:]),
			Mode:    Mode(p[6]),
			Secret:  cstring(p[7 : 7+secretLen]),
			Name:    cstring(p[31 : 31+nameLen]),
		}
	case MsgAddRegion:
		m.AddRegion = AddRegion{Index: le.Uint16(p[0:]), Size: le.Uint64(p[2:])}
	case MsgAddRing:
		m.AddRing = AddRing{
			Flags:          le.Uint16(p[0:]),
			Index:          le.Uint16(p[2:]),
			Region:         le.Uint16(p[4:]),
			Offset:         le.Uint32(p[6:]),
			Log2RingSize:   p[10],
			PrivateHdrSize: le.Uint16(p[11:]),
		}
	case MsgConnect, MsgConnected:
		m.IfName = cstring(p[0:nameLen])
	case MsgDisconnect:
		m.Disconnect = Disconnect{Code: le.Uint32(p[0:]), Reason: cstring(p[4 : 4+disconnectLen])}
	default:
		return m, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint16(m.Type))
	}
	return m, nil
}

// Encode writes m into b, which must hold MsgSize bytes; unused bytes are
// zeroed.
func (m *Msg) Encode(b []byte) {
	b = b[:MsgSize]
	clear(b)
	le := binary.LittleEndian
	le.PutUint16(b, uint16(m.Type))
	p := b[bodyOff:]
	switch m.Type {
	case MsgHello:
		h := &m.Hello
		putString(p[0:32], h.Name)
		le.PutUint16(p[32:], h.MinVersion)
		le.PutUint16(p[34:], h.MaxVersion)
		le.PutUint16(p[36:], h.MaxRegion)
		le.PutUint16(p[38:], h.MaxM2SRing)
		le.PutUint16(p[40:], h.MaxS2MRing)
		p[42] = h.MaxLog2RingSize
	case MsgInit:
		i := &m.Init
		le.PutUint16(p[0:], i.Version)
		le.PutUint32(p[2:], i.ID)
		p[6] = byte(i.Mode)
		// The secret is compared as a C string: a full 24-byte field has
		// no NUL in libmemif either, so copy without reserving one.
		copy(p[7:7+secretLen], i.Secret)
		putString(p[31:31+nameLen], i.Name)
	case MsgAddRegion:
		le.PutUint16(p[0:], m.AddRegion.Index)
		le.PutUint64(p[2:], m.AddRegion.Size)
	case MsgAddRing:
		r := &m.AddRing
		le.PutUint16(p[0:], r.Flags)
		le.PutUint16(p[2:], r.Index)
		le.PutUint16(p[4:], r.Region)
		le.PutUint32(p[6:], r.Offset)
		p[10] = r.Log2RingSize
		le.PutUint16(p[11:], r.PrivateHdrSize)
	case MsgConnect, MsgConnected:
		putString(p[0:nameLen], m.IfName)
	case MsgDisconnect:
		le.PutUint32(p[0:], m.Disconnect.Code)
		putString(p[4:4+disconnectLen], m.Disconnect.Reason)
	}
}
