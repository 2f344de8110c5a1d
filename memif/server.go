package memif

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config is one listening socket of the server (master) side.
type Config struct {
	// Socket is a filesystem path, or an abstract name spelt "@name".
	Socket string
	// AppName goes into HELLO; peers show it as the remote name. Default "xvs".
	AppName string
	// MaxRegions bounds the regions a peer may add (1..256, default 16).
	MaxRegions int
	// MaxRegionSize bounds one region in bytes (default 1 GiB).
	MaxRegionSize uint64
	// HandshakeTimeout bounds HELLO to CONNECTED (default 5s).
	HandshakeTimeout time.Duration
	Logger           *slog.Logger
}

// InterfaceConfig is one memif interface on a socket, matched by ID.
type InterfaceConfig struct {
	ID uint32
	// Name goes into CONNECTED; the peer shows it as the remote interface.
	Name   string
	Mode   Mode   // ModeEthernet or ModeIP; the peer must ask for the same
	Secret string // optional, at most 24 bytes; the peer must present it
	// Queues is how many queue pairs the server offers (1..256, default 1);
	// the peer may use fewer, and fewer in one direction than the other.
	Queues int
	// Log2RingSize is the largest ring the server accepts (1..14, default 10).
	Log2RingSize uint8
	// MaxFrame bounds a frame and any one descriptor (64..65535, default 9216).
	MaxFrame int
	// Polling sets the interrupt mask on the rings the server reads, so the
	// peer never signals their eventfds; otherwise the peer signals after
	// every burst and EventFD is worth polling.
	Polling bool
	// OnState, when set, is called from the control goroutine after the
	// interface comes up (true) or goes down (false).
	OnState func(up bool)
}

// Server listens on one socket and serves the interfaces added to it.
type Server struct {
	cfg Config
	log *slog.Logger
	ln  *net.UnixListener
	wg  sync.WaitGroup

	mu     sync.Mutex // guards ifaces, conns, closed
	ifaces map[uint32]*Interface
	conns  map[*net.UnixConn]struct{}
	closed bool

	refused atomic.Uint64 // connections refused before they matched an interface
}

// ErrClosed is returned by calls on a closed server.
var ErrClosed = errors.New("memif server closed")

func (c *Config) setDefaults() error {
	if c.Socket == "" || c.Socket == "@" {
		return fmt.Errorf("memif socket %q: empty", c.Socket)
	}
	if c.AppName == "" {
		c.AppName = "xvs"
	}
	if c.MaxRegions == 0 {
		c.MaxRegions = 16
	}
	if c.MaxRegions < 1 || c.MaxRegions > 256 {
		return fmt.Errorf("memif max regions %d: want 1..256", c.MaxRegions)
	}
	if c.MaxRegionSize == 0 {
		c.MaxRegionSize = 1 << 30
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Listen opens the socket. A stale socket file left at the path by a
// process that died is replaced; any other file there is an error.
func Listen(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Socket[0] != '@' {
		if fi, err := os.Lstat(cfg.Socket); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("memif socket %q: exists and is not a socket", cfg.Socket)
			}
			// Only a socket nobody listens on is stale; anything else
			// (a live memif server, another program's stream socket)
			// stays.
			c, err := net.Dial("unixpacket", cfg.Socket)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, unix.ECONNREFUSED) {
				return nil, fmt.Errorf("memif socket %q: in use", cfg.Socket)
			}
			os.Remove(cfg.Socket)
		}
	}
	ln, err := net.ListenUnix("unixpacket", listenAddr(cfg.Socket))
	if err != nil {
		return nil, fmt.Errorf("listen on memif socket %q: %w", cfg.Socket, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("memif_socket", cfg.Socket), ln: ln,
		ifaces: map[uint32]*Interface{}, conns: map[*net.UnixConn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Socket is the socket's name as configured.
func (s *Server) Socket() string { return s.cfg.Socket }

func (c *InterfaceConfig) setDefaults() error {
	if c.Queues == 0 {
		c.Queues = 1
	}
	if c.Queues < 1 || c.Queues > 256 {
		return fmt.Errorf("memif interface %d queues %d: want 1..256", c.ID, c.Queues)
	}
	if c.Log2RingSize == 0 {
		c.Log2RingSize = 10
	}
	if c.Log2RingSize > 14 {
		return fmt.Errorf("memif interface %d log2 ring size %d: want 1..14", c.ID, c.Log2RingSize)
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = 9216
	}
	if c.MaxFrame < 64 || c.MaxFrame > 65535 {
		return fmt.Errorf("memif interface %d max frame %d: want 64..65535", c.ID, c.MaxFrame)
	}
	if c.Mode != ModeEthernet && c.Mode != ModeIP {
		return fmt.Errorf("memif interface %d mode %s: want ethernet or ip", c.ID, c.Mode)
	}
	if len(c.Secret) > secretLen {
		return fmt.Errorf("memif interface %d secret: %d bytes, at most %d", c.ID, len(c.Secret), secretLen)
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("memif%d", c.ID)
	}
	return nil
}

// Add creates the interface with cfg.ID on this socket. Its queues exist
// from now on and stay empty until a peer connects.
func (s *Server) Add(cfg InterfaceConfig) (*Interface, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.ifaces[cfg.ID]; ok {
		return nil, fmt.Errorf("memif interface id %d: already on socket %q", cfg.ID, s.cfg.Socket)
	}
	ifc := &Interface{srv: s, cfg: cfg, faultc: make(chan struct{}, 1),
		rx: make([]RxQueue, cfg.Queues), tx: make([]TxQueue, cfg.Queues)}
	for i := range ifc.rx {
		ifc.rx[i].index, ifc.rx[i].iface = i, ifc
		ifc.tx[i].index, ifc.tx[i].iface = i, ifc
	}
	s.ifaces[cfg.ID] = ifc
	return ifc, nil
}

// Close stops listening, disconnects every peer (with a DISCONNECT) and
// waits until all connections are torn down.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*net.UnixConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		sendBye(c, "memif server closing")
		c.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("memif accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// bye sends a DISCONNECT; errors are moot, the connection closes anyway.
func sendBye(c *net.UnixConn, reason string) {
	m := Msg{Type: MsgDisconnect, Disconnect: Disconnect{Code: 1, Reason: reason}}
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	sendMsg(c, &m, -1)
}

// protoError is a refusal: its text goes to the peer in DISCONNECT.
type protoError struct{ reason string }

func (e *protoError) Error() string { return e.reason }

func refuse(format string, args ...any) error {
	return &protoError{reason: fmt.Sprintf(format, args...)}
}

// session is one peer's connection, from accept to teardown; only its
// serve goroutine touches it.
type session struct {
	c        *net.UnixConn
	ifc      *Interface
	peerName string
	regions  [][]byte
	rings    [2][]AddRing // [0] S2M, [1] M2S
	ringFDs  [2][]int
	up       bool
	done     chan struct{} // closed by teardown
	fault    string        // under ifc.mu: a worker saw the peer break a ring
	stop     string        // under ifc.mu: Disconnect or Close asked to end
}

func (s *Server) serve(c *net.UnixConn) {
	defer s.wg.Done()
	ss := &session{c: c, done: make(chan struct{})}
	reason := s.run(ss)
	var pe *protoError
	var ls *localStop
	bye := ""
	switch {
	case errors.As(reason, &pe):
		bye = pe.reason
		if ss.ifc != nil {
			ss.ifc.protoErrors.Add(1)
		} else {
			s.refused.Add(1)
		}
		s.log.Warn("memif peer refused", "id", idOf(ss), "peer", ss.peerName, "reason", pe.reason)
	case errors.As(reason, &ls):
		bye = ls.reason
	}
	// Tear down before the peer hears why: once it sees DISCONNECT or EOF
	// the interface is free for its next attempt.
	ss.teardown(reason)
	if bye != "" {
		sendBye(c, bye)
	}
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// localStop ends a connection for a local reason (Disconnect, Close).
type localStop struct{ reason string }

func (e *localStop) Error() string { return e.reason }

// wake makes the session's serve goroutine look at ss.fault and ss.stop.
func (ss *session) wake() { ss.c.SetReadDeadline(time.Unix(1, 0)) }

// ended reports a fault or stop posted by another goroutine.
func (ss *session) ended() error {
	if ss.ifc == nil {
		return nil
	}
	ss.ifc.mu.Lock()
	defer ss.ifc.mu.Unlock()
	if ss.fault != "" {
		return refuse("%s", ss.fault)
	}
	if ss.stop != "" {
		return &localStop{ss.stop}
	}
	return nil
}

func idOf(ss *session) any {
	if ss.ifc == nil {
		return "none"
	}
	return ss.ifc.cfg.ID
}

// run is the server's side of the handshake, then waits for the end. It
// returns why the connection ends.
func (s *Server) run(ss *session) error {
	c := ss.c
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	// HELLO goes out before the peer says which interface it wants, so it
	// offers the most any interface on the socket takes (exact for the
	// usual one interface per socket); ADD_RING refuses what the chosen
	// interface cannot serve.
	queues, log2 := 1, uint8(1)
	s.mu.Lock()
	for _, ifc := range s.ifaces {
		queues = max(queues, ifc.cfg.Queues)
		log2 = max(log2, ifc.cfg.Log2RingSize)
	}
	s.mu.Unlock()
	hello := Msg{Type: MsgHello, Hello: Hello{
		Name: s.cfg.AppName, MinVersion: Version, MaxVersion: Version,
		MaxRegion: uint16(s.cfg.MaxRegions - 1), MaxLog2RingSize: log2,
		MaxM2SRing: uint16(queues - 1), MaxS2MRing: uint16(queues - 1),
	}}
	if err := sendMsg(c, &hello, -1); err != nil {
		return err
	}
	var b [MsgSize]byte
	oob := make([]byte, oobSize)
	for {
		if e := ss.ended(); e != nil {
			return e // posted while this goroutine was not yet reading
		}
		m, fd, err := recvMsg(c, b[:], oob)
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				return refuse("%v", err)
			}
			if isTimeout(err) {
				if e := ss.ended(); e != nil {
					return e
				}
				if ss.up {
					continue
				}
				return refuse("handshake timed out")
			}
			return err
		}
		if err := s.handle(ss, m, fd); err != nil {
			return err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle applies one message to the session; fd, if any, is consumed.
func (s *Server) handle(ss *session, m Msg, fd int) error {
	wantFD := m.Type == MsgAddRegion || m.Type == MsgAddRing
	if fd >= 0 && !wantFD {
		unix.Close(fd)
		return refuse("%s carries a file descriptor", m.Type)
	}
	if wantFD && fd < 0 {
		return refuse("%s without a file descriptor", m.Type)
	}
	if ss.ifc == nil && m.Type != MsgInit {
		closeFD(fd)
		return refuse("%s before init", m.Type)
	}
	if ss.up && m.Type != MsgDisconnect && m.Type != MsgAck {
		closeFD(fd)
		return refuse("%s after connect", m.Type)
	}
	switch m.Type {
	case MsgAck:
		return nil
	case MsgInit:
		if ss.ifc != nil {
			return refuse("second init")
		}
		if err := s.claim(ss, m.Init); err != nil {
			return err
		}
		return sendMsg(ss.c, &Msg{Type: MsgAck}, -1)
	case MsgAddRegion:
		if err := ss.addRegion(m.AddRegion, fd, s.cfg); err != nil {
			return err
		}
		return sendMsg(ss.c, &Msg{Type: MsgAck}, -1)
	case MsgAddRing:
		if err := ss.addRing(m.AddRing, fd); err != nil {
			return err
		}
		return sendMsg(ss.c, &Msg{Type: MsgAck}, -1)
	case MsgConnect:
		// Clear the handshake deadline before the queues go live: from
		// then on Disconnect or a worker's fault may wake this goroutine
		// with a deadline of their own, which must not be overwritten.
		ss.c.SetDeadline(time.Time{})
		if err := ss.connect(m.IfName); err != nil {
			return err
		}
		if err := sendMsg(ss.c, &Msg{Type: MsgConnected, IfName: ss.ifc.cfg.Name}, -1); err != nil {
			return err
		}
		s.wg.Add(1)
		go s.watch(ss)
		return nil
	case MsgDisconnect:
		return fmt.Errorf("peer disconnected: %q", m.Disconnect.Reason)
	default:
		return refuse("unexpected %s", m.Type)
	}
}

// claim binds the session to the interface INIT names.
func (s *Server) claim(ss *session, in Init) error {
	ss.peerName = in.Name
	if in.Version != Version {
		return refuse("unsupported version %d.%d", in.Version>>8, in.Version&0xff)
	}
	s.mu.Lock()
	ifc := s.ifaces[in.ID]
	s.mu.Unlock()
	if ifc == nil {
		return refuse("unmatched interface id %d", in.ID)
	}
	if in.Mode != ifc.cfg.Mode {
		return refuse("mode mismatch: %s, interface is %s", in.Mode, ifc.cfg.Mode)
	}
	if ifc.cfg.Secret != "" && in.Secret != ifc.cfg.Secret {
		if in.Secret == "" {
			return refuse("secret required")
		}
		return refuse("incorrect secret")
	}
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	if ifc.sess != nil {
		return refuse("interface id %d already connected", in.ID)
	}
	if ifc.closed {
		return refuse("interface id %d removed", in.ID)
	}
	ifc.sess = ss
	ifc.peerName = in.Name
	ss.ifc = ifc
	return nil
}

func (ss *session) addRegion(ar AddRegion, fd int, cfg Config) error {
	if int(ar.Index) != len(ss.regions) {
		unix.Close(fd)
		return refuse("unexpected region index %d, want %d", ar.Index, len(ss.regions))
	}
	if int(ar.Index) >= cfg.MaxRegions {
		unix.Close(fd)
		return refuse("too many regions: index %d, at most %d regions", ar.Index, cfg.MaxRegions)
	}
	mem, err := mapRegion(fd, ar.Size, cfg.MaxRegionSize)
	unix.Close(fd) // the mapping keeps the memory
	if err != nil {
		return refuse("region %d: %v", ar.Index, err)
	}
	ss.regions = append(ss.regions, mem)
	return nil
}

func (ss *session) addRing(ar AddRing, fd int) error {
	dir := 1
	if ar.S2M() {
		dir = 0
	}
	cfg := &ss.ifc.cfg
	switch {
	case ar.Flags&^addRingFlagS2M != 0:
		unix.Close(fd)
		return refuse("ring flags %#x", ar.Flags)
	case int(ar.Index) != len(ss.rings[dir]):
		unix.Close(fd)
		return refuse("unexpected %s ring index %d, want %d", dirName(dir), ar.Index, len(ss.rings[dir]))
	case int(ar.Index) >= cfg.Queues:
		unix.Close(fd)
		return refuse("too many %s rings: index %d, at most %d", dirName(dir), ar.Index, cfg.Queues)
	case ar.PrivateHdrSize != 0:
		unix.Close(fd)
		return refuse("private headers not supported")
	case ar.Log2RingSize > cfg.Log2RingSize:
		unix.Close(fd)
		return refuse("%s ring %d size 2^%d above the 2^%d allowed", dirName(dir), ar.Index, ar.Log2RingSize, cfg.Log2RingSize)
	}
	// The eventfd is read or written with 8-byte values only; make sure
	// neither side's call can block us.
	unix.SetNonblock(fd, true)
	ss.rings[dir] = append(ss.rings[dir], ar)
	ss.ringFDs[dir] = append(ss.ringFDs[dir], fd)
	return nil
}

func dirName(dir int) string {
	if dir == 0 {
		return "s2m"
	}
	return "m2s"
}

// checkRing validates a ring against the regions before anything touches it.
func (ss *session) checkRing(dir int, ar AddRing) (ring, error) {
	if int(ar.Region) >= len(ss.regions) {
		return ring{}, refuse("%s ring %d in region %d of %d", dirName(dir), ar.Index, ar.Region, len(ss.regions))
	}
	if ar.Offset%ringAlign != 0 {
		return ring{}, refuse("%s ring %d offset %d not %d-byte aligned", dirName(dir), ar.Index, ar.Offset, ringAlign)
	}
	reg := ss.regions[ar.Region]
	if end := uint64(ar.Offset) + ringBytes(ar.Log2RingSize); end > uint64(len(reg)) {
		return ring{}, refuse("%s ring %d ends at %d, past region %d's %d bytes", dirName(dir), ar.Index, end, ar.Region, len(reg))
	}
	r := newRing(reg, uint64(ar.Offset), ar.Log2RingSize)
	if c := r.cookie(); c != Cookie {
		return ring{}, refuse("wrong cookie %#x on %s ring %d", c, dirName(dir), ar.Index)
	}
	return r, nil
}

// connect checks every ring and publishes the queues to the workers.
func (ss *session) connect(peerIf string) error {
	ifc := ss.ifc
	if len(ss.rings[0]) == 0 || len(ss.rings[1]) == 0 {
		return refuse("connect with %d s2m and %d m2s rings", len(ss.rings[0]), len(ss.rings[1]))
	}
	var rings [2][]ring
	for dir := range 2 {
		for _, ar := range ss.rings[dir] {
			r, err := ss.checkRing(dir, ar)
			if err != nil {
				return err
			}
			rings[dir] = append(rings[dir], r)
		}
	}
	maxLen := uint32(ifc.cfg.MaxFrame)
	for i, r := range rings[0] {
		// The server owns tail on both rings; it starts where the peer's
		// head does, which a fresh peer left at zero.
		if ifc.cfg.Polling {
			r.setFlags(ringFlagMask, 0)
		} else {
			r.setFlags(0, ringFlagMask)
		}
		q := &ifc.rx[i]
		q.fault.Store(faultNone)
		q.st.Store(&queueState{ring: r, regions: ss.regions, efd: ss.ringFDs[0][i], cursor: r.tail(), maxLen: maxLen})
	}
	for i, r := range rings[1] {
		q := &ifc.tx[i]
		q.fault.Store(faultNone)
		q.bufSize.Store(0)
		if r.head() != r.tail() {
			q.bufSize.Store(r.desc(r.tail()).Length)
		}
		q.st.Store(&queueState{ring: r, regions: ss.regions, efd: ss.ringFDs[1][i], cursor: r.tail(), maxLen: maxLen})
	}
	ifc.mu.Lock()
	ifc.peerIf = peerIf
	ifc.up = true
	ifc.connectedAt = time.Now()
	ifc.numRx, ifc.numTx = len(rings[0]), len(rings[1])
	ifc.log2Ring = ss.rings[0][0].Log2RingSize
	ifc.mu.Unlock()
	ifc.connects.Add(1)
	ss.up = true
	ifc.srv.log.Info("memif connected", "id", ifc.cfg.ID, "peer", ss.peerName, "peer_if", peerIf,
		"s2m", len(rings[0]), "m2s", len(rings[1]), "log2_ring", ifc.log2Ring)
	if ifc.cfg.OnState != nil {
		ifc.cfg.OnState(true)
	}
	return nil
}

// watch turns a fault a worker reported into a DISCONNECT; closing the
// connection makes serve tear down.
func (s *Server) watch(ss *session) {
	defer s.wg.Done()
	ifc := ss.ifc
	select {
	case <-ifc.faultc:
	case <-ss.done:
		return
	}
	reason := ifc.faultReason()
	ifc.mu.Lock()
	ss.fault = reason
	ifc.mu.Unlock()
	ss.wake()
}

// teardown withdraws the queues from the workers, then unmaps and closes
// what the peer gave. It runs once per session, on the serve goroutine.
func (ss *session) teardown(reason error) {
	ifc := ss.ifc
	if ifc != nil {
		for i := range ifc.rx {
			ifc.rx[i].withdraw()
			ifc.tx[i].withdraw()
		}
	}
	close(ss.done)
	for _, m := range ss.regions {
		unix.Munmap(m)
	}
	ss.regions = nil
	for dir := range 2 {
		for _, fd := range ss.ringFDs[dir] {
			unix.Close(fd)
		}
		ss.ringFDs[dir] = nil
	}
	if ifc == nil {
		return
	}
	ifc.mu.Lock()
	wasUp := ifc.up
	ifc.up = false
	ifc.sess = nil
	ifc.lastReason = reasonText(reason)
	last := ifc.lastReason
	// Drop a fault report that raced with the end, so the next session
	// starts clean.
	select {
	case <-ifc.faultc:
	default:
	}
	ifc.mu.Unlock()
	if wasUp {
		ifc.disconnects.Add(1)
		ifc.srv.log.Info("memif disconnected", "id", ifc.cfg.ID, "reason", last)
		if ifc.cfg.OnState != nil {
			ifc.cfg.OnState(false)
		}
	}
}

func reasonText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
