package memif_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/memif"
	"github.com/xvs-project/xvs/port"
	memifport "github.com/xvs-project/xvs/port/memif"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xsk"
)

const frameSize = 4096

func newUmem(t *testing.T) *xsk.Umem {
	t.Helper()
	u, err := xsk.NewUmem(1024, frameSize)
	if err != nil {
		t.Fatalf("umem: %v", err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// open opens a memif port on a fresh socket; changes counts the port's
// link notifications.
func open(t *testing.T, d *memifport.Driver, u *xsk.Umem, mc spec.MemifConfig) (*memifport.Port, chan struct{}) {
	t.Helper()
	if mc.Socket == "" {
		mc.Socket = filepath.Join(t.TempDir(), "memif.sock")
	}
	op, err := d.Open(port.OpenRequest{Config: spec.PortConfig{Name: "m0", Kind: spec.PortPod, Mode: spec.ModeMemif, Memif: &mc}, Umem: u})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	p := op.Port.(*memifport.Port)
	changes := make(chan struct{}, 16)
	p.NotifyLink(func() { changes <- struct{}{} })
	return p, changes
}

func dial(t *testing.T, sock string, cfg memif.ClientConfig) *memif.Client {
	t.Helper()
	cfg.Socket = sock
	cl, err := memif.Dial(cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func waitLink(t *testing.T, p *memifport.Port, changes chan struct{}, want bool) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if up, reason := p.LinkUp(); up == want {
			return reason
		}
		select {
		case <-changes:
		case <-deadline:
			up, reason := p.LinkUp()
			t.Fatalf("link up %v (%s), want %v", up, reason, want)
		}
	}
}

func frame(n int, seq uint32) []byte {
	f := make([]byte, n)
	copy(f, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5})
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < n; i++ {
		f[i] = byte(i + int(seq))
	}
	return f
}

// receiveAll polls the port until want frames came or a deadline passed.
func receiveAll(p *memifport.Port, want int) []port.Packet {
	var got []port.Packet
	vec := make([]port.Packet, port.MaxBatch)
	for deadline := time.Now().Add(5 * time.Second); len(got) < want && time.Now().Before(deadline); {
		n := p.Receive(vec)
		got = append(got, vec[:n]...)
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

// TestPortRoundTrip: frames from the peer land in Umem frames at
// port.Headroom, unchanged (a chained 3000-byte frame joined); sent back,
// they reach the peer unchanged and their frames return to the Umem; in
// interrupt mode the poll descriptor is readable while frames wait.
func TestPortRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		polling bool
		queues  int
	}{
		{name: "interrupt", queues: 1},
		{name: "polling", polling: true, queues: 1},
		{name: "two queues", queues: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUmem(t)
			free0 := u.FreeCount()
			sock := filepath.Join(t.TempDir(), "memif.sock")
			var d memifport.Driver
			p, changes := open(t, &d, u, spec.MemifConfig{Socket: sock, Polling: tc.polling, Queues: tc.queues})
			if got := p.PollFD() >= 0; got == tc.polling {
				t.Fatalf("PollFD %d with polling %v", p.PollFD(), tc.polling)
			}
			if up, reason := p.LinkUp(); up || !strings.Contains(reason, "waiting for a peer") {
				t.Fatalf("before any peer: up %v reason %q", up, reason)
			}
			cl := dial(t, sock, memif.ClientConfig{Queues: tc.queues, BufferSize: 2048})
			waitLink(t, p, changes, true)
			var sent [][]byte
			for q := 0; q < tc.queues; q++ {
				fs := [][]byte{frame(64, uint32(q*10)), frame(1500, uint32(q*10+1)), frame(3000, uint32(q*10+2))}
				if n := cl.Transmit(q, fs); n != len(fs) {
					t.Fatalf("client sent %d of %d on queue %d", n, len(fs), q)
				}
				sent = append(sent, fs...)
			}
			if fd := p.PollFD(); fd >= 0 {
				if !readable(t, fd) {
					t.Fatalf("poll fd not readable with frames waiting")
				}
			}
			got := receiveAll(p, len(sent))
			if len(got) != len(sent) {
				t.Fatalf("received %d frames, want %d", len(got), len(sent))
			}
			mem := u.Mem()
			for _, pk := range got {
				if pk.Addr-u.Base(pk.Addr) != port.Headroom {
					t.Errorf("frame at offset %d in its Umem frame, want %d", pk.Addr-u.Base(pk.Addr), port.Headroom)
				}
				b := mem[pk.Addr : pk.Addr+uint64(pk.Len)]
				if !containsFrame(sent, b) {
					t.Errorf("received a %d-byte frame the peer did not send", len(b))
				}
			}
			if n := p.Transmit(got); n != len(got) {
				t.Fatalf("port sent %d of %d", n, len(got))
			}
			p.Flush()
			bufs := make([][]byte, 16)
			for i := range bufs {
				bufs[i] = make([]byte, 4096)
			}
			sizes := make([]int, 16)
			var back [][]byte
			for deadline := time.Now().Add(5 * time.Second); len(back) < len(sent) && time.Now().Before(deadline); {
				n := cl.Receive(0, bufs, sizes)
				for i := 0; i < n; i++ {
					back = append(back, append([]byte(nil), bufs[i][:sizes[i]]...))
				}
				if n == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			if len(back) != len(sent) {
				t.Fatalf("peer got %d frames back, want %d", len(back), len(sent))
			}
			for _, b := range back {
				if !containsFrame(sent, b) {
					t.Errorf("peer got a %d-byte frame it did not send", len(b))
				}
			}
			var st spec.PortStatus
			p.FillStatus(&st)
			want := spec.MemifStatus{Role: "server", Socket: sock, Polling: tc.polling, Connected: true, PeerName: "xvs-client",
				RxQueues: tc.queues, TxQueues: tc.queues, RingSize: 1024, BufferSize: 2048, Connects: 1}
			if st.Memif == nil {
				t.Fatalf("no memif status")
			}
			got1 := *st.Memif
			got1.PeerIf = ""
			if got1 != want {
				t.Errorf("status (-want +got):\n-%+v\n+%+v", want, got1)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if u.FreeCount() != free0 {
				t.Errorf("%d Umem frames free after close, want %d", u.FreeCount(), free0)
			}
		})
	}
}

func containsFrame(set [][]byte, b []byte) bool {
	for _, f := range set {
		if bytes.Equal(f, b) {
			return true
		}
	}
	return false
}

func readable(t *testing.T, fd int) bool {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if pollIn(fd, 100) {
			return true
		}
	}
	return false
}

// TestPortPeerDies: a peer killed mid-traffic takes the link down with a
// reason, every Umem frame is back (nothing was left in shared memory),
// sends are refused, and a new peer brings the link up again.
func TestPortPeerDies(t *testing.T) {
	u := newUmem(t)
	free0 := u.FreeCount()
	sock := filepath.Join(t.TempDir(), "memif.sock")
	var d memifport.Driver
	p, changes := open(t, &d, u, spec.MemifConfig{Socket: sock})
	t.Cleanup(func() { p.Close() })
	cl := dial(t, sock, memif.ClientConfig{})
	waitLink(t, p, changes, true)
	cl.Transmit(0, [][]byte{frame(100, 1), frame(100, 2)})
	got := receiveAll(p, 2)
	cl.Kill()
	reason := waitLink(t, p, changes, false)
	if !strings.Contains(reason, "memif peer disconnected") {
		t.Errorf("down reason %q", reason)
	}
	if n := p.Transmit(got); n != 0 {
		t.Errorf("a port without a peer took %d frames", n)
	}
	for _, pk := range got {
		u.Free(pk.Addr)
	}
	vec := make([]port.Packet, 64)
	if n := p.Receive(vec); n != 0 {
		t.Errorf("received %d frames without a peer", n)
	}
	cl2 := dial(t, sock, memif.ClientConfig{})
	waitLink(t, p, changes, true)
	cl2.Transmit(0, [][]byte{frame(100, 3)})
	if got := receiveAll(p, 1); len(got) != 1 {
		t.Fatalf("after reconnecting: %d frames, want 1", len(got))
	} else {
		u.Free(got[0].Addr)
	}
	var st spec.PortStatus
	p.FillStatus(&st)
	if st.Memif.Connects != 2 || st.Memif.Disconnects != 1 {
		t.Errorf("connects %d disconnects %d, want 2 and 1", st.Memif.Connects, st.Memif.Disconnects)
	}
	p.Close()
	if u.FreeCount() != free0 {
		t.Errorf("%d Umem frames free, want %d", u.FreeCount(), free0)
	}
}

// TestPortAllocs: a burst in, the same frames out, and the kick allocate
// nothing, connected or not.
func TestPortAllocs(t *testing.T) {
	u := newUmem(t)
	sock := filepath.Join(t.TempDir(), "memif.sock")
	var d memifport.Driver
	p, changes := open(t, &d, u, spec.MemifConfig{Socket: sock})
	t.Cleanup(func() { p.Close() })
	vec := make([]port.Packet, 64)
	if a := testing.AllocsPerRun(100, func() { p.Receive(vec); p.Flush() }); a != 0 {
		t.Errorf("idle receive: %v allocations", a)
	}
	cl := dial(t, sock, memif.ClientConfig{})
	waitLink(t, p, changes, true)
	burst := make([][]byte, 32)
	for i := range burst {
		burst[i] = frame(64, uint32(i))
	}
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, 64)
	moved := 0
	a := testing.AllocsPerRun(200, func() {
		cl.Transmit(0, burst)
		n := p.Receive(vec)
		k := p.Transmit(vec[:n])
		for _, pk := range vec[k:n] {
			u.Free(pk.Addr)
		}
		p.Flush()
		moved += k
		cl.Receive(0, bufs, sizes)
	})
	if a != 0 {
		t.Errorf("%v allocations per burst, want 0", a)
	}
	if moved < 100*32 {
		t.Errorf("only %d frames went through the port", moved)
	}
}

// TestValidate: a bad memif section is refused, naming the field and the
// value.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mc   *spec.MemifConfig
		want string
	}{
		{nil, "memif: missing"},
		{&spec.MemifConfig{}, `memif.socket: required: an absolute path or @name`},
		{&spec.MemifConfig{Socket: "rel/sock"}, `memif.socket: "rel/sock": must be an absolute path or @name`},
		{&spec.MemifConfig{Socket: "@" + strings.Repeat("x", 120)}, "longer than a unix socket address"},
		{&spec.MemifConfig{Socket: "@m", Queues: 65}, "memif.queues: 65: must be 1..64"},
		{&spec.MemifConfig{Socket: "@m", RingSize: 1000}, "memif.ring_size: 1000: must be a power of two"},
		{&spec.MemifConfig{Socket: "@m", Secret: strings.Repeat("s", 25)}, "memif.secret: 25: bytes: at most 24"},
		{&spec.MemifConfig{Socket: "@m", RingSize: 256, Queues: 4}, ""},
	} {
		err := memifport.Validate(tc.mc)
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, memifport.ErrConfig) {
				t.Errorf("%v: not ErrConfig", err)
			}
		}
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("Validate(%+v) = %q, want %q", tc.mc, got, tc.want)
		}
	}
}

// TestSharedSocket: two ports on one socket are told apart by id, and the
// socket stays until the last one closes.
func TestSharedSocket(t *testing.T) {
	u := newUmem(t)
	sock := filepath.Join(t.TempDir(), "memif.sock")
	var d memifport.Driver
	p0, ch0 := open(t, &d, u, spec.MemifConfig{Socket: sock, ID: 0})
	p1, ch1 := open(t, &d, u, spec.MemifConfig{Socket: sock, ID: 1})
	dial(t, sock, memif.ClientConfig{ID: 1})
	waitLink(t, p1, ch1, true)
	if up, _ := p0.LinkUp(); up {
		t.Errorf("id 0 up with only id 1 connected")
	}
	p1.Close()
	dial(t, sock, memif.ClientConfig{ID: 0})
	waitLink(t, p0, ch0, true)
	p0.Close()
	if _, err := memif.Dial(memif.ClientConfig{Socket: sock, Timeout: time.Second}); err == nil {
		t.Errorf("socket still served after its last port closed")
	}
}

// TestPodPort: the CNI server's port for memif i of a pod listens on
// @xvs-memif<i> in the pod's namespace and is named after its veth.
func TestPodPort(t *testing.T) {
	addrs := []netip.Prefix{netip.MustParsePrefix("198.19.0.200/32")}
	pc, sock, err := memifport.PodPort(memifport.Pod{HostIf: "xvs0123456789ab", Netns: "/proc/42/ns/net"}, 1, memifport.PodMemif{Addrs: addrs, Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := spec.PortConfig{Name: "xvs012345678-m1", Kind: spec.PortPod, Mode: spec.ModeMemif, Addrs: addrs,
		Memif: &spec.MemifConfig{Socket: "@xvs-memif1", Netns: "/proc/42/ns/net", Queues: 2}}
	if sock != "@xvs-memif1" || pc.Name != want.Name || *pc.Memif != *want.Memif || pc.Mode != want.Mode || pc.Kind != want.Kind {
		t.Errorf("PodPort (-want +got):\n-%+v %+v\n+%+v %+v (%s)", want, want.Memif, pc, pc.Memif, sock)
	}
	for _, tc := range []struct {
		pod  memifport.Pod
		i    int
		want string
	}{
		{memifport.Pod{Netns: "/proc/1/ns/net"}, 0, "host interface: empty"},
		{memifport.Pod{HostIf: "xvs1", Netns: "ns1"}, 0, `netns: "ns1": must be an absolute path`},
		{memifport.Pod{HostIf: "xvs1", Netns: "/proc/1/ns/net"}, 10, "index 10: must be 0..9"},
	} {
		if _, _, err := memifport.PodPort(tc.pod, tc.i, memifport.PodMemif{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PodPort(%+v, %d): %v, want %q", tc.pod, tc.i, err, tc.want)
		}
	}
}
