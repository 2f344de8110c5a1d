package memif

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Interface is one memif interface of a server socket. Its queues are
// fixed at Add; a connection fills as many of them as the peer asked for.
type Interface struct {
	srv    *Server
	cfg    InterfaceConfig
	rx     []RxQueue
	tx     []TxQueue
	faultc chan struct{} // a worker saw the peer break the ring protocol

	mu          sync.Mutex // guards the fields below
	sess        *session   // the peer bound by INIT, nil when none
	up          bool
	closed      bool
	peerName    string // the peer's application (INIT)
	peerIf      string // the peer's interface (CONNECT)
	lastReason  string // why the last connection ended
	connectedAt time.Time
	numRx       int
	numTx       int
	log2Ring    uint8

	connects, disconnects, protoErrors atomic.Uint64
}

// Rx is receive queue i (0 <= i < Config.Queues); it stays valid for the
// interface's life, connected or not.
func (ifc *Interface) Rx(i int) *RxQueue { return &ifc.rx[i] }

// Tx is transmit queue i.
func (ifc *Interface) Tx(i int) *TxQueue { return &ifc.tx[i] }

// Queues is the number of queue pairs configured.
func (ifc *Interface) Queues() int { return ifc.cfg.Queues }

// ID is the interface id peers ask for in INIT.
func (ifc *Interface) ID() uint32 { return ifc.cfg.ID }

// Connected reports whether a peer is connected now.
func (ifc *Interface) Connected() bool {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	return ifc.up
}

// Disconnect ends the current connection, if any, with a DISCONNECT
// carrying reason; the peer may connect again.
func (ifc *Interface) Disconnect(reason string) {
	ifc.mu.Lock()
	ss := ifc.sess
	if ss != nil {
		ss.stop = reason
	}
	ifc.mu.Unlock()
	if ss != nil {
		ss.wake()
		<-ss.done
	}
}

// Close disconnects the interface and removes it from its socket; its id is
// free for a new Add once Close returns.
func (ifc *Interface) Close() {
	ifc.mu.Lock()
	ifc.closed = true
	ifc.mu.Unlock()
	ifc.Disconnect("interface deleted")
	s := ifc.srv
	s.mu.Lock()
	if s.ifaces[ifc.cfg.ID] == ifc {
		delete(s.ifaces, ifc.cfg.ID)
	}
	s.mu.Unlock()
}

// faultReason formats the first fault the queues reported.
func (ifc *Interface) faultReason() string {
	for i := range ifc.rx {
		for _, q := range []*queue{&ifc.rx[i].queue, &ifc.tx[i].queue} {
			kind := q.fault.Load()
			v := q.faultValue.Load()
			dir := "s2m"
			if q == &ifc.tx[i].queue {
				dir = "m2s"
			}
			switch kind {
			case faultHeadJump:
				return fmt.Sprintf("%s ring %d: head moved by %d, more than the ring holds", dir, i, v)
			case faultBadDesc:
				return fmt.Sprintf("%s ring %d slot %d: descriptor %s", dir, i, uint16(v), DescError(v>>32))
			case faultChain:
				return fmt.Sprintf("%s ring %d slot %d: buffer chain longer than the ring", dir, i, uint16(v))
			}
		}
	}
	return "ring protocol violation"
}

// Status is what `xvsctl show ports` prints for a memif port.
type Status struct {
	Role        string // always "server" (memif master)
	Socket      string
	ID          uint32
	Name        string
	Mode        string
	Polling     bool
	Connected   bool
	Since       time.Time // when the current connection came up
	PeerName    string    // the peer's application, from INIT
	PeerIf      string    // the peer's interface name, from CONNECT
	RxQueues    int       // S2M rings in use (0 when down)
	TxQueues    int       // M2S rings in use
	RingSize    int       // descriptors per ring
	BufferSize  int       // the peer's buffer size, as its M2S descriptors offer it
	LastReason  string    // why the last connection ended
	Connects    uint64
	Disconnects uint64
	ProtoErrors uint64 // connections refused or closed for breaking the protocol
	Rx          RxCounters
	Tx          TxCounters
}

// Status reports the interface's state and its queues' summed counters.
func (ifc *Interface) Status() Status {
	ifc.mu.Lock()
	st := Status{
		Role: "server", Socket: ifc.srv.cfg.Socket, ID: ifc.cfg.ID, Name: ifc.cfg.Name,
		Mode: ifc.cfg.Mode.String(), Polling: ifc.cfg.Polling, Connected: ifc.up,
		PeerName: ifc.peerName, PeerIf: ifc.peerIf, LastReason: ifc.lastReason,
	}
	if ifc.up {
		st.Since = ifc.connectedAt
		st.RxQueues, st.TxQueues = ifc.numRx, ifc.numTx
		st.RingSize = 1 << ifc.log2Ring
	}
	ifc.mu.Unlock()
	st.Connects, st.Disconnects, st.ProtoErrors = ifc.connects.Load(), ifc.disconnects.Load(), ifc.protoErrors.Load()
	for i := range ifc.rx {
		c := ifc.rx[i].Counters()
		st.Rx.Packets += c.Packets
		st.Rx.Bytes += c.Bytes
		st.Rx.DropTooBig += c.DropTooBig
		st.Rx.DropBadDesc += c.DropBadDesc
		st.Rx.Interrupts += c.Interrupts
		t := ifc.tx[i].Counters()
		st.Tx.Packets += t.Packets
		st.Tx.Bytes += t.Bytes
		st.Tx.DropBadFrame += t.DropBadFrame
		st.Tx.Full += t.Full
		st.Tx.Kicks += t.Kicks
		if b := int(ifc.tx[i].bufSize.Load()); b > st.BufferSize {
			st.BufferSize = b
		}
	}
	return st
}
