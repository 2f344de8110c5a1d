package memif

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// sockName is a fresh socket per test: a path in the test's temp dir, or
// an abstract name with a random part so parallel runs never meet.
func sockName(t *testing.T, abstract bool) string {
	t.Helper()
	if abstract {
		return fmt.Sprintf("@xvs-memif-test-%d", rand.Uint64())
	}
	return filepath.Join(t.TempDir(), "memif.sock")
}

func listen(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addIface(t *testing.T, s *Server, cfg InterfaceConfig) (*Interface, chan bool) {
	t.Helper()
	states := make(chan bool, 64)
	cfg.OnState = func(up bool) { states <- up }
	ifc, err := s.Add(cfg)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return ifc, states
}

func dial(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	cl, err := Dial(cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func waitState(t *testing.T, states chan bool, want bool) {
	t.Helper()
	select {
	case got := <-states:
		if got != want {
			t.Fatalf("interface state %v, want %v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("interface did not go %v", want)
	}
}

func frame(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func bufs(n, size int) [][]byte {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, size)
	}
	return b
}

// serverRecv polls rx queue q until want frames arrived or a second passed.
func serverRecv(t *testing.T, ifc *Interface, q, want, offset int) [][]byte {
	t.Helper()
	var got [][]byte
	bb := bufs(32, 10000)
	sizes := make([]int, 32)
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		n := ifc.Rx(q).Receive(bb, offset, sizes)
		for i := range n {
			got = append(got, bytes.Clone(bb[i][offset:offset+sizes[i]]))
		}
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

func clientRecv(t *testing.T, cl *Client, q, want int) [][]byte {
	t.Helper()
	var got [][]byte
	bb := bufs(32, 10000)
	sizes := make([]int, 32)
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		n := cl.Receive(q, bb, sizes)
		for i := range n {
			got = append(got, bytes.Clone(bb[i][:sizes[i]]))
		}
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

func sameFrames(t *testing.T, what string, want, got [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d frames, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			t.Fatalf("%s: frame %d differs: len %d, want %d", what, i, len(got[i]), len(want[i]))
		}
	}
}

// TestTrafficBothWays connects the in-process client over a filesystem and
// an abstract socket and moves single-buffer and chained frames both ways.
func TestTrafficBothWays(t *testing.T) {
	for _, tc := range []struct {
		name     string
		abstract bool
		bufSize  uint32
		sizes    []int
		polling  bool
	}{
		{"path/single", false, 2048, []int{60, 64, 1500, 2048}, false},
		{"abstract/single", true, 2048, []int{60, 1514}, true},
		{"path/chained", false, 256, []int{257, 1500, 9000, 256, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := sockName(t, tc.abstract)
			s := listen(t, Config{Socket: sock, AppName: "xvs-test"})
			ifc, states := addIface(t, s, InterfaceConfig{ID: 7, Name: "pod-a", Polling: tc.polling})
			cl := dial(t, ClientConfig{Socket: sock, ID: 7, Name: "eth1", AppName: "test-pod", BufferSize: tc.bufSize})
			waitState(t, states, true)

			var frames [][]byte
			for i, n := range tc.sizes {
				frames = append(frames, frame(n, byte(i)))
			}
			if n := cl.Transmit(0, frames); n != len(frames) {
				t.Fatalf("client Transmit = %d, want %d", n, len(frames))
			}
			sameFrames(t, "client to server", frames, serverRecv(t, ifc, 0, len(frames), 64))
			if n := ifc.Tx(0).Transmit(frames); n != len(frames) {
				t.Fatalf("server Transmit = %d, want %d", n, len(frames))
			}
			ifc.Tx(0).Kick()
			sameFrames(t, "server to client", frames, clientRecv(t, cl, 0, len(frames)))

			st := ifc.Status()
			var total uint64
			for _, n := range tc.sizes {
				total += uint64(n)
			}
			want := Status{Role: "server", Socket: sock, ID: 7, Name: "pod-a", Mode: "ethernet", Polling: tc.polling,
				Connected: true, PeerName: "test-pod", PeerIf: "eth1", RxQueues: 1, TxQueues: 1, RingSize: 1024,
				BufferSize: int(tc.bufSize), Connects: 1,
				Rx: RxCounters{Packets: uint64(len(frames)), Bytes: total},
				Tx: TxCounters{Packets: uint64(len(frames)), Bytes: total, Kicks: st.Tx.Kicks}}
			st.Since = time.Time{}
			st.Rx.Interrupts = 0
			if st != want {
				t.Errorf("Status:\n got %+v\nwant %+v", st, want)
			}
			if cl.ServerName() != "xvs-test" || cl.ServerIf() != "pod-a" {
				t.Errorf("client sees server %q interface %q", cl.ServerName(), cl.ServerIf())
			}
		})
	}
}
