package memif

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawPeer speaks the control protocol message by message, so a test can
// say anything a broken or hostile client might.
type rawPeer struct {
	t     *testing.T
	c     *net.UnixConn
	hello Hello
	fd    int // a region memfd, when made
	mem   []byte
}

func rawDial(t *testing.T, sock string) *rawPeer {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, listenAddr(sock))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	p := &rawPeer{t: t, c: c, fd: -1}
	t.Cleanup(func() {
		c.Close()
		closeFD(p.fd)
		if p.mem != nil {
			unix.Munmap(p.mem)
		}
	})
	m := p.recv()
	if m.Type != MsgHello {
		t.Fatalf("first message %s, want hello", m.Type)
	}
	p.hello = m.Hello
	return p
}

func (p *rawPeer) recv() Msg {
	p.t.Helper()
	var b [MsgSize]byte
	m, fd, err := recvMsg(p.c, b[:], make([]byte, oobSize))
	closeFD(fd)
	if err != nil {
		p.t.Fatalf("recv: %v", err)
	}
	return m
}

func (p *rawPeer) send(m Msg, fd int) {
	p.t.Helper()
	if err := sendMsg(p.c, &m, fd); err != nil {
		p.t.Fatalf("send %s: %v", m.Type, err)
	}
}

// ack sends m and expects an ACK.
func (p *rawPeer) ack(m Msg, fd int) {
	p.t.Helper()
	p.send(m, fd)
	if r := p.recv(); r.Type != MsgAck {
		p.t.Fatalf("%s answered with %s %q, want ack", m.Type, r.Type, r.Disconnect.Reason)
	}
}

// refused expects a DISCONNECT whose reason contains want, then EOF.
func (p *rawPeer) refused(want string) {
	p.t.Helper()
	r := p.recv()
	if r.Type != MsgDisconnect || !strings.Contains(r.Disconnect.Reason, want) {
		p.t.Fatalf("got %s %q, want disconnect containing %q", r.Type, r.Disconnect.Reason, want)
	}
	var b [MsgSize]byte
	if _, _, err := recvMsg(p.c, b[:], make([]byte, oobSize)); err != errPeerClosed {
		p.t.Fatalf("after disconnect: %v, want the connection closed", err)
	}
}

func (p *rawPeer) init(id uint32) {
	p.t.Helper()
	p.ack(Msg{Type: MsgInit, Init: Init{Version: Version, ID: id, Name: "raw"}}, -1)
}

// region makes a sealed memfd of size bytes with one valid ring of 2^log2
// slots at offset 0 (S2M) and one after it (M2S).
func (p *rawPeer) region(size uint64, log2 uint8, seal bool) {
	p.t.Helper()
	var err error
	if seal {
		p.fd, p.mem, err = newRegion("raw", size)
	} else {
		p.fd, err = unix.MemfdCreate("raw", unix.MFD_CLOEXEC)
		if err == nil {
			err = unix.Ftruncate(p.fd, int64(size))
		}
		if err == nil {
			p.mem, err = unix.Mmap(p.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		}
	}
	if err != nil {
		p.t.Fatalf("region: %v", err)
	}
	for i := range uint64(2) {
		if end := (i + 1) * ringBytes(log2); end <= size {
			r := newRing(p.mem, i*ringBytes(log2), log2)
			r.setCookie(Cookie)
		}
	}
}

func eventfd(t *testing.T) int {
	fd, err := newEventFD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func addRing(s2m bool, index uint16, off uint32, log2 uint8) Msg {
	ar := AddRing{Index: index, Offset: off, Log2RingSize: log2}
	if s2m {
		ar.Flags = addRingFlagS2M
	}
	return Msg{Type: MsgAddRing, AddRing: ar}
}

// TestRefusals sends each malformed or forbidden control sequence and
// expects a DISCONNECT with the reason, a count, no leak, and a server that
// still serves a good client afterwards.
func TestRefusals(t *testing.T) {
	const log2 = 4
	rsz := uint32(ringBytes(log2))
	good := func(p *rawPeer) { // a valid region and rings, up to CONNECT
		p.init(1)
		p.region(1<<16, log2, true)
		p.ack(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 1 << 16}}, p.fd)
		p.ack(addRing(true, 0, 0, log2), eventfd(p.t))
		p.ack(addRing(false, 0, rsz, log2), eventfd(p.t))
	}
	for _, tc := range []struct {
		name   string
		play   func(p *rawPeer)
		reason string
		perIf  bool // counted on the interface, not as a refused connection
	}{
		{"short message", func(p *rawPeer) { p.c.Write(make([]byte, 64)) }, "64 bytes, want 128", false},
		{"long message", func(p *rawPeer) { p.c.Write(make([]byte, 200)) }, "truncated", false},
		{"unknown type", func(p *rawPeer) { b := make([]byte, 128); b[0] = 99; p.c.Write(b) }, "unknown type 99", false},
		{"type none", func(p *rawPeer) { p.c.Write(make([]byte, 128)) }, "type none", false},
		{"connect before init", func(p *rawPeer) { p.send(Msg{Type: MsgConnect}, -1) }, "connect before init", false},
		{"version", func(p *rawPeer) {
			p.send(Msg{Type: MsgInit, Init: Init{Version: 1 << 8, ID: 1}}, -1)
		}, "unsupported version 1.0", false},
		{"unmatched id", func(p *rawPeer) { p.send(Msg{Type: MsgInit, Init: Init{Version: Version, ID: 99}}, -1) }, "unmatched interface id 99", false},
		{"mode mismatch", func(p *rawPeer) {
			p.send(Msg{Type: MsgInit, Init: Init{Version: Version, ID: 1, Mode: ModeIP}}, -1)
		}, "mode mismatch", false},
		{"secret missing", func(p *rawPeer) { p.send(Msg{Type: MsgInit, Init: Init{Version: Version, ID: 2}}, -1) }, "secret required", false},
		{"secret wrong", func(p *rawPeer) {
			p.send(Msg{Type: MsgInit, Init: Init{Version: Version, ID: 2, Secret: "nope"}}, -1)
		}, "incorrect secret", false},
		{"second init", func(p *rawPeer) { p.init(1); p.send(Msg{Type: MsgInit, Init: Init{Version: Version, ID: 1}}, -1) }, "second init", true},
		{"fd on ack", func(p *rawPeer) { p.init(1); p.send(Msg{Type: MsgAck}, eventfd(p.t)) }, "ack carries a file descriptor", true},
		{"region without fd", func(p *rawPeer) {
			p.init(1)
			p.send(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 4096}}, -1)
		}, "add_region without a file descriptor", true},
		{"region index", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, true)
			p.send(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Index: 1, Size: 4096}}, p.fd)
		}, "unexpected region index 1, want 0", true},
		{"too many regions", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, true)
			p.ack(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Index: 0, Size: 4096}}, p.fd)
			p.ack(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Index: 1, Size: 4096}}, p.fd)
			p.send(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Index: 2, Size: 4096}}, p.fd)
		}, "too many regions: index 2, at most 2", true},
		{"region not sealed", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, false)
			p.send(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 4096}}, p.fd)
		}, "not sealed against shrinking", true},
		{"region above its file", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, true)
			p.send(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 8192}}, p.fd)
		}, "region size 8192 above its file's 4096 bytes", true},
		{"region above the limit", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, true)
			p.send(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 1 << 40}}, p.fd)
		}, "above the limit", true},
		{"region fd not a file", func(p *rawPeer) {
			p.init(1)
			p.send(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 4096}}, eventfd(p.t))
		}, "not a regular file", true},
		{"ring without fd", func(p *rawPeer) { p.init(1); p.send(addRing(true, 0, 0, log2), -1) }, "add_ring without a file descriptor", true},
		{"ring index", func(p *rawPeer) { p.init(1); p.send(addRing(true, 1, 0, log2), eventfd(p.t)) }, "unexpected s2m ring index 1, want 0", true},
		{"too many rings", func(p *rawPeer) {
			p.init(1)
			p.ack(addRing(true, 0, 0, log2), eventfd(p.t))
			p.ack(addRing(true, 1, rsz, log2), eventfd(p.t))
			p.send(addRing(true, 2, 2*rsz, log2), eventfd(p.t))
		}, "too many s2m rings: index 2, at most 2", true},
		{"ring too big", func(p *rawPeer) { p.init(1); p.send(addRing(false, 0, 0, 11), eventfd(p.t)) }, "m2s ring 0 size 2^11 above the 2^10 allowed", true},
		{"private header", func(p *rawPeer) {
			p.init(1)
			m := addRing(true, 0, 0, log2)
			m.AddRing.PrivateHdrSize = 8
			p.send(m, eventfd(p.t))
		}, "private headers not supported", true},
		{"ring flags", func(p *rawPeer) {
			p.init(1)
			m := addRing(true, 0, 0, log2)
			m.AddRing.Flags |= 0x80
			p.send(m, eventfd(p.t))
		}, "ring flags 0x81", true},
		{"connect without rings", func(p *rawPeer) { p.init(1); p.send(Msg{Type: MsgConnect}, -1) }, "connect with 0 s2m and 0 m2s rings", true},
		{"ring in a missing region", func(p *rawPeer) {
			p.init(1)
			p.ack(addRing(true, 0, 0, log2), eventfd(p.t))
			p.ack(addRing(false, 0, rsz, log2), eventfd(p.t))
			p.send(Msg{Type: MsgConnect}, -1)
		}, "s2m ring 0 in region 0 of 0", true},
		{"region smaller than its rings", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, true)
			p.ack(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 4096}}, p.fd)
			p.ack(addRing(true, 0, 0, 10), eventfd(p.t))
			p.ack(addRing(false, 0, 4096-128, log2), eventfd(p.t))
			p.send(Msg{Type: MsgConnect}, -1)
		}, "s2m ring 0 ends at 16512, past region 0's 4096 bytes", true},
		{"ring offset past the region", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, true)
			p.ack(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 4096}}, p.fd)
			p.ack(addRing(true, 0, 0, log2), eventfd(p.t))
			p.ack(addRing(false, 0, 0xfffffff8, log2), eventfd(p.t))
			p.send(Msg{Type: MsgConnect}, -1)
		}, "m2s ring 0 ends at 4294967672, past region 0's 4096 bytes", true},
		{"ring misaligned", func(p *rawPeer) {
			p.init(1)
			p.region(4096, log2, true)
			p.ack(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 4096}}, p.fd)
			p.ack(addRing(true, 0, 2, log2), eventfd(p.t))
			p.ack(addRing(false, 0, rsz, log2), eventfd(p.t))
			p.send(Msg{Type: MsgConnect}, -1)
		}, "s2m ring 0 offset 2 not 8-byte aligned", true},
		{"wrong cookie", func(p *rawPeer) {
			p.init(1)
			p.region(1<<16, log2, true)
			p.ack(Msg{Type: MsgAddRegion, AddRegion: AddRegion{Size: 1 << 16}}, p.fd)
			p.ack(addRing(true, 0, 0, log2), eventfd(p.t))
			p.ack(addRing(false, 0, 4*rsz, log2), eventfd(p.t)) // no cookie there
			p.send(Msg{Type: MsgConnect}, -1)
		}, "wrong cookie 0x0 on m2s ring 0", true},
		{"add after connect", func(p *rawPeer) {
			good(p)
			p.send(Msg{Type: MsgConnect}, -1)
			if r := p.recv(); r.Type != MsgConnected {
				p.t.Fatalf("connect answered with %s", r.Type)
			}
			p.send(addRing(true, 1, 2*rsz, log2), eventfd(p.t))
		}, "add_ring after connect", true},
		{"handshake timeout", func(p *rawPeer) { p.init(1) }, "handshake timed out", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoFDLeak(t)
			sock := sockName(t, true)
			s := listen(t, Config{Socket: sock, MaxRegions: 2, HandshakeTimeout: 300 * time.Millisecond})
			ifc, states := addIface(t, s, InterfaceConfig{ID: 1, Queues: 2})
			secret, _ := addIface(t, s, InterfaceConfig{ID: 2, Secret: "sesame"})
			p := rawDial(t, sock)
			if h := p.hello; h.MaxS2MRing != 1 || h.MaxM2SRing != 1 || h.MaxRegion != 1 || h.MaxLog2RingSize != 10 || h.Name != "xvs" {
				t.Errorf("hello %+v", h)
			}
			tc.play(p)
			p.refused(tc.reason)
			got := ifc.Status().ProtoErrors + secret.Status().ProtoErrors
			if tc.perIf && got != 1 || !tc.perIf && s.refused.Load() != 1 {
				t.Errorf("counted: %d on the interfaces, %d refused connections", got, s.refused.Load())
			}
			if tc.name == "add after connect" {
				waitState(t, states, true)
				waitState(t, states, false)
			}
			if ifc.Connected() {
				t.Error("interface up after a refusal")
			}
			cl := dial(t, ClientConfig{Socket: sock, ID: 1})
			cl.Transmit(0, [][]byte{frame(64, 1)})
			sameFrames(t, "after the refusal", [][]byte{frame(64, 1)}, serverRecv(t, ifc, 0, 1, 0))
		})
	}
}

// TestSecondPeer: an interface takes one peer; a second asking for the same
// id is refused while the first stays up. Two ids share one socket.
func TestSecondPeer(t *testing.T) {
	sock := sockName(t, false)
	s := listen(t, Config{Socket: sock})
	a, sa := addIface(t, s, InterfaceConfig{ID: 1})
	b, sb := addIface(t, s, InterfaceConfig{ID: 2, Mode: ModeIP})
	cla := dial(t, ClientConfig{Socket: sock, ID: 1})
	waitState(t, sa, true)
	if _, err := Dial(ClientConfig{Socket: sock, ID: 1}); err == nil || !strings.Contains(err.Error(), "already connected") {
		t.Fatalf("second peer on id 1: %v", err)
	}
	clb := dial(t, ClientConfig{Socket: sock, ID: 2, Mode: ModeIP})
	waitState(t, sb, true)
	cla.Transmit(0, [][]byte{frame(64, 1)})
	clb.Transmit(0, [][]byte{frame(80, 2)})
	sameFrames(t, "id 1", [][]byte{frame(64, 1)}, serverRecv(t, a, 0, 1, 0))
	sameFrames(t, "id 2", [][]byte{frame(80, 2)}, serverRecv(t, b, 0, 1, 0))
	if st := b.Status(); st.Mode != "ip" || !st.Connected {
		t.Errorf("id 2 status %+v", st)
	}
	if _, err := s.Add(InterfaceConfig{ID: 2}); err == nil {
		t.Error("Add of a used id succeeded")
	}
	b.Close()
	if got := waitDown(t, clb); got != "interface deleted" {
		t.Errorf("reason %q", got)
	}
	if _, err := s.Add(InterfaceConfig{ID: 2}); err != nil {
		t.Errorf("Add after Close: %v", err)
	}
	if !a.Connected() {
		t.Error("id 1 went down with id 2")
	}
}

// TestQueuePairs: several queue pairs, each carrying its own traffic; a
// client asking for more gets what the interface offers.
func TestQueuePairs(t *testing.T) {
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1, Queues: 4})
	cl := dial(t, ClientConfig{Socket: sock, ID: 1, Queues: 8})
	waitState(t, states, true)
	if s2m, m2s := cl.Queues(); s2m != 4 || m2s != 4 {
		t.Fatalf("client got %d/%d queues, want 4/4", s2m, m2s)
	}
	for q := range 4 {
		f := [][]byte{frame(100+q, byte(q))}
		cl.Transmit(q, f)
		sameFrames(t, "rx", f, serverRecv(t, ifc, q, 1, 0))
		ifc.Tx(q).Transmit(f)
		sameFrames(t, "tx", f, clientRecv(t, cl, q, 1))
	}
	if st := ifc.Status(); st.RxQueues != 4 || st.TxQueues != 4 || st.Rx.Packets != 4 {
		t.Errorf("status %+v", st)
	}
}

// TestConfigErrors: bad configuration names the field and the value.
func TestConfigErrors(t *testing.T) {
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	for _, tc := range []struct {
		cfg  InterfaceConfig
		want string
	}{
		{InterfaceConfig{Queues: 300}, "queues 300"},
		{InterfaceConfig{Log2RingSize: 15}, "log2 ring size 15"},
		{InterfaceConfig{MaxFrame: 10}, "max frame 10"},
		{InterfaceConfig{Mode: ModePuntInject}, "mode punt/inject"},
		{InterfaceConfig{Secret: strings.Repeat("x", 25)}, "secret: 25 bytes"},
	} {
		if _, err := s.Add(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, `socket "": empty`},
		{Config{Socket: "@x", MaxRegions: 300}, "max regions 300"},
		{Config{Socket: "/proc/self/nope/memif.sock"}, "listen on memif socket"},
	} {
		if _, err := Listen(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := Listen(Config{Socket: sock}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("second Listen on %s: %v", sock, err)
	}
	// A filesystem path: a live socket stays, a stale one is replaced, a
	// file that is not a socket is an error.
	path := sockName(t, false)
	live, err := Listen(Config{Socket: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Config{Socket: path}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen on a live socket: %v", err)
	}
	stream, err := net.Listen("unix", path+"2")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if _, err := Listen(Config{Socket: path + "2"}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen on another program's stream socket: %v", err)
	}
	live.ln.SetUnlinkOnClose(false)
	live.Close() // leaves a stale socket file behind, as a crashed xvsd would
	again, err := Listen(Config{Socket: path})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	again.Close()
	os.WriteFile(path, nil, 0o600)
	if _, err := Listen(Config{Socket: path}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

// TestLocalDisconnect: Disconnect and Server.Close end connections with a
// DISCONNECT the peer can read; neither counts as a protocol error.
func TestLocalDisconnect(t *testing.T) {
	checkNoFDLeak(t)
	sock := sockName(t, false)
	s, err := Listen(Config{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1})
	cl := dial(t, ClientConfig{Socket: sock, ID: 1})
	waitState(t, states, true)
	ifc.Disconnect("maintenance")
	if got := waitDown(t, cl); got != "maintenance" {
		t.Errorf("reason %q", got)
	}
	waitState(t, states, false)
	if st := ifc.Status(); st.ProtoErrors != 0 || st.LastReason != "maintenance" || st.Disconnects != 1 {
		t.Errorf("status %+v", st)
	}
	cl2 := dial(t, ClientConfig{Socket: sock, ID: 1})
	waitState(t, states, true)
	s.Close()
	if got := waitDown(t, cl2); got != "memif server closing" {
		t.Errorf("reason %q", got)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
	if _, err := Dial(ClientConfig{Socket: sock, ID: 1}); err == nil {
		t.Error("Dial after Close succeeded")
	}
}
