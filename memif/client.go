package memif

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ClientConfig is the slave (client) side of one interface. xvs serves
// memif; the client exists so the server can be tested and benchmarked
// against a peer in the same process, and for tools that feed a memif port.
type ClientConfig struct {
	Socket       string // path, or "@name" for an abstract socket
	ID           uint32
	Name         string // the client's interface name, sent in CONNECT
	AppName      string // sent in INIT (default "xvs-client")
	Mode         Mode
	Secret       string
	Queues       int    // queue pairs wanted (default 1; the server may grant fewer)
	Log2RingSize uint8  // default 10 (the server may grant less)
	BufferSize   uint32 // per buffer (default 2048)
	// Polling masks interrupts on the rings the client reads (M2S).
	Polling bool
	Timeout time.Duration // handshake (default 5s)
}

// Client is a connected memif slave. One goroutine per queue may call
// Transmit and Receive for that queue.
type Client struct {
	cfg     ClientConfig
	c       *net.UnixConn
	fd      int
	mem     []byte
	regions [][]byte     // {mem}, for CheckDesc
	s2m     []clientRing // the client produces frames here
	m2s     []clientRing // and consumes here
	server  string       // the server's application name, from HELLO
	peerIf  string       // the server's interface name, from CONNECTED
	closeMu sync.Once
	down    chan struct{}
	reason  string // why the server ended the connection; set before down closes
}

type clientRing struct {
	ring
	efd     int
	bufBase uint32 // offset of this ring's first buffer
	// s2m: head is ours, lastTail what the server released;
	// m2s: lastTail is what we consumed, head ours.
	head, lastTail uint16
	efdBuf         [8]byte
}

// ErrRefused wraps the reason of a server's DISCONNECT during the handshake.
var ErrRefused = errors.New("memif connection refused")

// Dial connects to a server and runs the handshake; the client it returns
// is connected.
func Dial(cfg ClientConfig) (*Client, error) {
	if cfg.Queues == 0 {
		cfg.Queues = 1
	}
	if cfg.Log2RingSize == 0 {
		cfg.Log2RingSize = 10
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = 2048
	}
	if cfg.AppName == "" {
		cfg.AppName = "xvs-client"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("memif%d", cfg.ID)
	}
	c, err := net.DialUnix("unixpacket", nil, listenAddr(cfg.Socket))
	if err != nil {
		return nil, fmt.Errorf("dial memif socket %q: %w", cfg.Socket, err)
	}
	cl := &Client{cfg: cfg, c: c, fd: -1, down: make(chan struct{})}
	if err := cl.handshake(); err != nil {
		cl.release()
		c.Close()
		return nil, err
	}
	go cl.watch()
	return cl, nil
}

func (cl *Client) expect(b, oob []byte, want MsgType) (Msg, error) {
	m, fd, err := recvMsg(cl.c, b, oob)
	closeFD(fd)
	if err != nil {
		return m, fmt.Errorf("wait for %s: %w", want, err)
	}
	if m.Type == MsgDisconnect {
		return m, fmt.Errorf("%w: %s", ErrRefused, m.Disconnect.Reason)
	}
	if m.Type != want {
		return m, fmt.Errorf("got %s, want %s", m.Type, want)
	}
	return m, nil
}

func (cl *Client) handshake() error {
	cfg := &cl.cfg
	cl.c.SetDeadline(time.Now().Add(cfg.Timeout))
	var b [MsgSize]byte
	oob := make([]byte, oobSize)
	m, err := cl.expect(b[:], oob, MsgHello)
	if err != nil {
		return err
	}
	h := m.Hello
	if h.MinVersion > Version || h.MaxVersion < Version {
		return fmt.Errorf("server speaks memif %#x..%#x, not %#x", h.MinVersion, h.MaxVersion, Version)
	}
	cl.server = h.Name
	nS2M := min(cfg.Queues, int(h.MaxS2MRing)+1)
	nM2S := min(cfg.Queues, int(h.MaxM2SRing)+1)
	log2 := min(cfg.Log2RingSize, h.MaxLog2RingSize)

	// One region: S2M rings, M2S rings, then a buffer per descriptor.
	rsz := ringBytes(log2)
	nRings := uint64(nS2M + nM2S)
	bufOff := nRings * rsz
	size := bufOff + nRings*uint64(cfg.BufferSize)<<log2
	cl.fd, cl.mem, err = newRegion("memif_region_0", size)
	if err != nil {
		return err
	}
	cl.regions = [][]byte{cl.mem}
	mk := func(i int) (clientRing, error) {
		r := newRing(cl.mem, uint64(i)*rsz, log2)
		r.setCookie(Cookie)
		efd, err := newEventFD()
		return clientRing{ring: r, efd: efd, bufBase: uint32(bufOff + uint64(i)*uint64(cfg.BufferSize)<<log2)}, err
	}
	for i := range nS2M + nM2S {
		cr, err := mk(i)
		if err != nil {
			return err
		}
		if i < nS2M {
			cl.s2m = append(cl.s2m, cr)
		} else {
			if cfg.Polling {
				cr.setFlags(ringFlagMask, 0)
			}
			cl.m2s = append(cl.m2s, cr)
		}
	}
	for i := range cl.m2s {
		cl.m2s[i].refill(cfg.BufferSize)
	}

	send := func(m *Msg, fd int) error {
		if err := sendMsg(cl.c, m, fd); err != nil {
			return err
		}
		_, err := cl.expect(b[:], oob, MsgAck)
		return err
	}
	if err := send(&Msg{Type: MsgInit, Init: Init{Version: Version, ID: cfg.ID, Mode: cfg.Mode, Secret: cfg.Secret, Name: cfg.AppName}}, -1); err != nil {
		return err
	}
	if err := send(&Msg{Type: MsgAddRegion, AddRegion: AddRegion{Index: 0, Size: size}}, cl.fd); err != nil {
		return err
	}
	for i := range cl.s2m {
		ar := AddRing{Flags: addRingFlagS2M, Index: uint16(i), Offset: uint32(uint64(i) * rsz), Log2RingSize: log2}
		if err := send(&Msg{Type: MsgAddRing, AddRing: ar}, cl.s2m[i].efd); err != nil {
			return err
		}
	}
	for i := range cl.m2s {
		ar := AddRing{Index: uint16(i), Offset: uint32(uint64(nS2M+i) * rsz), Log2RingSize: log2}
		if err := send(&Msg{Type: MsgAddRing, AddRing: ar}, cl.m2s[i].efd); err != nil {
			return err
		}
	}
	if err := sendMsg(cl.c, &Msg{Type: MsgConnect, IfName: cfg.Name}, -1); err != nil {
		return err
	}
	m, err = cl.expect(b[:], oob, MsgConnected)
	if err != nil {
		return err
	}
	cl.peerIf = m.IfName
	cl.c.SetDeadline(time.Time{})
	return nil
}

// refill offers every consumed M2S slot back to the server.
func (r *clientRing) refill(bufSize uint32) {
	for r.head != r.lastTail+r.size {
		s := r.head & r.mask
		r.putDesc(s, Desc{Region: 0, Length: bufSize, Offset: r.bufBase + uint32(s)*bufSize})
		r.head++
	}
	r.storeHead(r.head)
}

func (cl *Client) watch() {
	var b [MsgSize]byte
	oob := make([]byte, oobSize)
	for {
		m, fd, err := recvMsg(cl.c, b[:], oob)
		closeFD(fd)
		if err != nil {
			cl.reason = err.Error()
			break
		}
		if m.Type == MsgDisconnect {
			cl.reason = m.Disconnect.Reason
			break
		}
	}
	close(cl.down)
}

// Down is closed when the server ends the connection (or Close does);
// Reason then says why.
func (cl *Client) Down() <-chan struct{} { return cl.down }

// Reason is the server's DISCONNECT reason, valid once Down is closed.
func (cl *Client) Reason() string {
	<-cl.down
	return cl.reason
}

// Queues reports the rings granted: S2M (client transmits) and M2S.
func (cl *Client) Queues() (s2m, m2s int) { return len(cl.s2m), len(cl.m2s) }

// ServerName and ServerIf are what the server said in HELLO and CONNECTED.
func (cl *Client) ServerName() string { return cl.server }
func (cl *Client) ServerIf() string   { return cl.peerIf }

// Transmit puts frames on S2M ring q, chaining buffers for long frames,
// and signals the server unless it polls. It returns how many frames went.
func (cl *Client) Transmit(q int, frames [][]byte) int {
	r := &cl.s2m[q]
	bs := cl.cfg.BufferSize
	tail := r.tail()
	free := r.size - (r.head - tail)
	n := 0
	for ; n < len(frames); n++ {
		f := frames[n]
		if len(f) == 0 {
			continue
		}
		need := (uint32(len(f)) + bs - 1) / bs
		if need > uint32(free) {
			break
		}
		for off := 0; ; {
			s := r.head & r.mask
			c := copy(cl.mem[r.bufBase+uint32(s)*bs:][:bs], f[off:])
			off += c
			d := Desc{Length: uint32(c), Offset: r.bufBase + uint32(s)*bs}
			if off < len(f) {
				d.Flags = descFlagNext
			}
			r.putDesc(s, d)
			r.head++
			free--
			if off >= len(f) {
				break
			}
		}
	}
	if n > 0 {
		r.storeHead(r.head)
		if r.flags()&ringFlagMask == 0 {
			r.efdBuf = [8]byte{1}
			unix.Write(r.efd, r.efdBuf[:])
		}
	}
	return n
}

// Receive copies frames off M2S ring q into bufs (chained frames joined),
// sets sizes, and gives the buffers back to the server.
func (cl *Client) Receive(q int, bufs [][]byte, sizes []int) int {
	r := &cl.m2s[q]
	tail := r.tail()
	n := 0
	for n < len(bufs) && r.lastTail != tail {
		total := 0
		s := r.lastTail
		for s != tail {
			d := r.desc(s)
			s++
			if CheckDesc(d, cl.regions, cl.cfg.BufferSize) == DescOK {
				total += copy(bufs[n][total:], descBytes(d, cl.regions))
			}
			if d.Flags&descFlagNext == 0 {
				break
			}
		}
		r.lastTail = s
		sizes[n] = total
		n++
	}
	if n > 0 {
		r.refill(cl.cfg.BufferSize)
	}
	return n
}

// WaitRx blocks until the server signals M2S ring q or timeout passes (for
// interrupt mode; in polling mode it just sleeps).
func (cl *Client) WaitRx(q int, timeout time.Duration) {
	fds := []unix.PollFd{{Fd: int32(cl.m2s[q].efd), Events: unix.POLLIN}}
	unix.Poll(fds, int(timeout/time.Millisecond))
	unix.Read(cl.m2s[q].efd, cl.m2s[q].efdBuf[:])
}

// RxEventFD is the eventfd the server signals for S2M ring q (a test reads
// it to see interrupts).
func (cl *Client) RxEventFD(q int) int { return cl.m2s[q].efd }

// Close sends DISCONNECT and releases the memory; the server sees the
// interface go down.
func (cl *Client) Close() {
	cl.closeMu.Do(func() {
		sendBye(cl.c, "client closing")
		cl.c.Close()
		<-cl.down
		cl.release()
	})
}

// Kill drops the connection without a DISCONNECT, as a crashed peer would.
func (cl *Client) Kill() {
	cl.closeMu.Do(func() {
		cl.c.Close()
		<-cl.down
		cl.release()
	})
}

func (cl *Client) release() {
	for _, r := range append(cl.s2m, cl.m2s...) {
		unix.Close(r.efd)
	}
	cl.s2m, cl.m2s = nil, nil
	if cl.mem != nil {
		unix.Munmap(cl.mem)
		cl.mem = nil
	}
	closeFD(cl.fd)
	cl.fd = -1
}
