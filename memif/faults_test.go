package memif

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents)
}

// checkNoFDLeak fails the test if it ends with more open descriptors
// (region memfds, eventfds, sockets) or goroutines than it started with.
func checkNoFDLeak(t *testing.T) {
	before, gBefore := openFDs(t), runtime.NumGoroutine()
	t.Cleanup(func() {
		var now, g int
		for range 200 {
			if now, g = openFDs(t), runtime.NumGoroutine(); now <= before && g <= gBefore {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("open file descriptors: %d before, %d after; goroutines %d before, %d after", before, now, gBefore, g)
	})
}

func waitDown(t *testing.T, cl *Client) string {
	t.Helper()
	select {
	case <-cl.Down():
		return cl.Reason()
	case <-time.After(5 * time.Second):
		t.Fatal("server did not disconnect the client")
		return ""
	}
}

// TestRingFaults plays a peer that breaks the ring protocol in each way the
// server must survive: it must not read or write outside the region, must
// drop and count, and must close the connection with a DISCONNECT naming
// the fault. The same interface then takes a well-behaved peer again.
func TestRingFaults(t *testing.T) {
	badDesc := func(d Desc) func(*Client) {
		return func(cl *Client) {
			r := &cl.s2m[0]
			r.putDesc(r.head, d)
			r.head++
			r.storeHead(r.head)
		}
	}
	for _, tc := range []struct {
		name   string
		break_ func(cl *Client)
		tx     bool // the server notices on transmit, not receive
		reason string
	}{
		{"s2m head backwards", func(cl *Client) { cl.s2m[0].storeHead(cl.s2m[0].head - 2) }, false, "s2m ring 0: head moved by 65534"},
		{"s2m head jumps", func(cl *Client) { cl.s2m[0].storeHead(cl.s2m[0].head + 1025) }, false, "s2m ring 0: head moved by 1025"},
		{"desc outside region", func(cl *Client) {
			badDesc(Desc{Length: 100, Offset: uint32(len(cl.mem) - 10)})(cl)
		}, false, "descriptor outside region"},
		{"desc offset wraps", badDesc(Desc{Length: 0x100, Offset: 0xffffff80}), false, "descriptor outside region"},
		{"desc bad region", badDesc(Desc{Region: 3, Length: 60}), false, "descriptor bad region"},
		{"desc zero length", badDesc(Desc{Length: 0, Offset: 4096}), false, "descriptor zero length"},
		{"desc absurd length", badDesc(Desc{Length: 1 << 20, Offset: 0}), false, "descriptor too long"},
		{"chain longer than ring", func(cl *Client) {
			r := &cl.s2m[0]
			for range r.size {
				r.putDesc(r.head, Desc{Flags: descFlagNext, Length: 60, Offset: r.bufBase})
				r.head++
			}
			r.storeHead(r.head)
		}, false, "buffer chain longer than the ring"},
		{"m2s head jumps", func(cl *Client) { cl.m2s[0].storeHead(cl.m2s[0].lastTail + 2000) }, true, "m2s ring 0: head moved by 2000"},
		{"m2s head behind tail", func(cl *Client) { cl.m2s[0].storeHead(cl.m2s[0].lastTail - 1) }, true, "m2s ring 0: head moved by 65535"},
		{"m2s desc outside region", func(cl *Client) {
			r := &cl.m2s[0]
			r.putDesc(r.lastTail, Desc{Length: 2048, Offset: uint32(len(cl.mem) - 100)})
		}, true, "m2s ring 0 slot 0: descriptor outside region"},
		{"m2s desc bad region", func(cl *Client) {
			r := &cl.m2s[0]
			r.putDesc(r.lastTail, Desc{Region: 1, Length: 2048})
		}, true, "descriptor bad region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoFDLeak(t)
			sock := sockName(t, true)
			s := listen(t, Config{Socket: sock})
			ifc, states := addIface(t, s, InterfaceConfig{ID: 1})
			cl := dial(t, ClientConfig{Socket: sock, ID: 1})
			waitState(t, states, true)
			// Some good traffic first, so the indices are not at zero.
			good := [][]byte{frame(100, 1), frame(200, 2), frame(300, 3)}
			cl.Transmit(0, good)
			sameFrames(t, "before", good, serverRecv(t, ifc, 0, 3, 0))

			tc.break_(cl)
			bb, sizes := bufs(8, 2048), make([]int, 8)
			if tc.tx {
				if n := ifc.Tx(0).Transmit(good); n != 0 {
					t.Errorf("Transmit to a broken ring = %d, want 0", n)
				}
			} else if n := ifc.Rx(0).Receive(bb, 0, sizes); n != 0 {
				t.Errorf("Receive from a broken ring = %d, want 0", n)
			}
			// Once faulted the queue stays quiet until the peer reconnects.
			if n := ifc.Rx(0).Receive(bb, 0, sizes); n != 0 {
				t.Errorf("Receive after the fault = %d", n)
			}
			if got := waitDown(t, cl); !strings.Contains(got, tc.reason) {
				t.Errorf("DISCONNECT reason %q, want it to contain %q", got, tc.reason)
			}
			waitState(t, states, false)
			st := ifc.Status()
			if st.Connected || st.ProtoErrors != 1 || st.Disconnects != 1 || !strings.Contains(st.LastReason, tc.reason) {
				t.Errorf("status after the fault: %+v", st)
			}
			if strings.HasPrefix(tc.name, "desc") && st.Rx.DropBadDesc != 1 {
				t.Errorf("DropBadDesc = %d, want 1", st.Rx.DropBadDesc)
			}
			cl.Close()

			cl2 := dial(t, ClientConfig{Socket: sock, ID: 1})
			waitState(t, states, true)
			cl2.Transmit(0, good)
			sameFrames(t, "after reconnect", good, serverRecv(t, ifc, 0, 3, 0))
			if n := ifc.Tx(0).Transmit(good); n != 3 {
				t.Fatalf("Transmit after reconnect = %d", n)
			}
			sameFrames(t, "after reconnect, to the client", good, clientRecv(t, cl2, 0, 3))
		})
	}
}

// TestWrapAround runs more than 65536 frames each way through 8-slot
// rings, in bursts of random size, so both the slot mask and the u16
// indices wrap many times.
func TestWrapAround(t *testing.T) {
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1, Log2RingSize: 3})
	cl := dial(t, ClientConfig{Socket: sock, ID: 1, BufferSize: 128})
	waitState(t, states, true)
	if st := ifc.Status(); st.RingSize != 8 {
		t.Fatalf("ring size %d, want 8", st.RingSize)
	}
	const total = 70000
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(seq int) []byte {
		n := 8 + (seq*37)%300 // up to 3 chained 128-byte buffers
		f := frame(n, byte(seq))
		binary.LittleEndian.PutUint32(f, uint32(seq))
		return f
	}
	bb, sizes := bufs(8, 512), make([]int, 8)
	batch := make([][]byte, 8)
	for dir, name := range []string{"client to server", "server to client"} {
		sent, got := 0, 0
		for got < total {
			k := min(1+rng.IntN(8), total-sent)
			for i := range k {
				batch[i] = mk(sent + i)
			}
			if dir == 0 {
				sent += cl.Transmit(0, batch[:k])
			} else {
				sent += ifc.Tx(0).Transmit(batch[:k])
			}
			var n int
			if dir == 0 {
				n = ifc.Rx(0).Receive(bb[:1+rng.IntN(8)], 0, sizes)
			} else {
				n = cl.Receive(0, bb[:1+rng.IntN(8)], sizes)
			}
			for i := range n {
				if want := mk(got); string(bb[i][:sizes[i]]) != string(want) {
					t.Fatalf("%s: frame %d: got %d bytes, want %d (seq %d)", name, got, sizes[i], len(want),
						binary.LittleEndian.Uint32(bb[i]))
				}
				got++
			}
			if sent-got > 8*3 {
				t.Fatalf("%s: %d frames in an 8-slot ring", name, sent-got)
			}
		}
	}
	st := ifc.Status()
	if st.Rx.Packets != total || st.Tx.Packets != total || !st.Connected {
		t.Errorf("status: %+v", st)
	}
}

// TestFullRing fills both rings: the producer stops at the ring size, the
// server counts the full burst, and both go on once the consumer drains.
func TestFullRing(t *testing.T) {
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1, Log2RingSize: 3})
	cl := dial(t, ClientConfig{Socket: sock, ID: 1, BufferSize: 1024})
	waitState(t, states, true)
	frames := make([][]byte, 20)
	for i := range frames {
		frames[i] = frame(64+i, byte(i))
	}
	if n := cl.Transmit(0, frames); n != 8 {
		t.Fatalf("client Transmit into an 8-slot ring = %d", n)
	}
	sameFrames(t, "first 8", frames[:8], serverRecv(t, ifc, 0, 8, 0))
	if n := ifc.Tx(0).Transmit(frames); n != 8 {
		t.Fatalf("server Transmit into an 8-slot ring = %d", n)
	}
	if n := ifc.Tx(0).Transmit(frames[8:]); n != 0 {
		t.Fatalf("server Transmit into a full ring = %d", n)
	}
	if c := ifc.Tx(0).Counters(); c.Full != 2 || c.Packets != 8 {
		t.Errorf("tx counters %+v, want 2 full bursts and 8 packets", c)
	}
	sameFrames(t, "server to client", frames[:8], clientRecv(t, cl, 0, 8))
	if n := ifc.Tx(0).Transmit(frames[8:16]); n != 8 {
		t.Fatalf("server Transmit after the drain = %d", n)
	}
	// A chained frame that does not fit whole is not started.
	cl.Receive(0, bufs(8, 2048), make([]int, 8))
	if n := ifc.Tx(0).Transmit([][]byte{frame(7*1024, 0), frame(5*1024, 1)}); n != 1 {
		t.Fatalf("Transmit of a 7-buffer then a 5-buffer frame into 8 slots = %d, want 1", n)
	}
	sameFrames(t, "chained", [][]byte{frame(7*1024, 0)}, clientRecv(t, cl, 0, 1))
	if n := ifc.Tx(0).Transmit([][]byte{frame(5*1024, 1)}); n != 1 {
		t.Fatalf("Transmit of the 5-buffer frame after the drain = %d", n)
	}
	sameFrames(t, "chained, second", [][]byte{frame(5*1024, 1)}, clientRecv(t, cl, 0, 1))
}

// TestDrops: frames the caller cannot hold, or that break MaxFrame, are
// dropped and counted, and the frames behind them still arrive.
func TestDrops(t *testing.T) {
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1, MaxFrame: 1600})
	cl := dial(t, ClientConfig{Socket: sock, ID: 1, BufferSize: 1024})
	waitState(t, states, true)
	cl.Transmit(0, [][]byte{frame(1500, 1), frame(100, 2), frame(1700, 3), frame(60, 4)})
	bb, sizes := bufs(8, 600), make([]int, 8)
	bb[1] = make([]byte, 2000)
	n := ifc.Rx(0).Receive(bb, 100, sizes)
	// 1500 B does not fit 600-100; 100 B lands in the 2000-byte buffer;
	// 1700 B is above MaxFrame even chained; 60 B fits.
	if n != 2 || sizes[0] != 100 || sizes[1] != 60 {
		t.Fatalf("Receive = %d frames, sizes %v", n, sizes[:n])
	}
	if c := ifc.Rx(0).Counters(); c.DropTooBig != 2 || c.Packets != 2 {
		t.Errorf("rx counters %+v", c)
	}
	if n := ifc.Tx(0).Transmit([][]byte{nil, frame(2000, 0), frame(64, 1)}); n != 3 {
		t.Fatalf("Transmit = %d, want all 3 consumed", n)
	}
	if c := ifc.Tx(0).Counters(); c.DropBadFrame != 2 || c.Packets != 1 {
		t.Errorf("tx counters %+v", c)
	}
	if !ifc.Connected() {
		t.Error("drops must not disconnect")
	}
}

// TestInterrupts: in interrupt mode each side signals the other's eventfd;
// a side that polls masks its rings and is not signalled.
func TestInterrupts(t *testing.T) {
	readable := func(fd int) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(p, 1000)
		return n == 1
	}
	for _, tc := range []struct {
		name                   string
		serverPoll, clientPoll bool
	}{{"both interrupt", false, false}, {"server polls", true, false}, {"client polls", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			sock := sockName(t, true)
			s := listen(t, Config{Socket: sock})
			ifc, states := addIface(t, s, InterfaceConfig{ID: 1, Polling: tc.serverPoll})
			cl := dial(t, ClientConfig{Socket: sock, ID: 1, Polling: tc.clientPoll})
			waitState(t, states, true)
			if masked := cl.s2m[0].flags()&ringFlagMask != 0; masked != tc.serverPoll {
				t.Errorf("s2m interrupt mask %v, want %v", masked, tc.serverPoll)
			}
			cl.Transmit(0, [][]byte{frame(64, 0)})
			if !tc.serverPoll {
				if !readable(ifc.Rx(0).EventFD()) || !ifc.Rx(0).ClearInterrupt() {
					t.Error("server eventfd not signalled in interrupt mode")
				}
			}
			if ifc.Rx(0).ClearInterrupt() {
				t.Error("eventfd signalled again after ClearInterrupt, or while polling")
			}
			ifc.Tx(0).Transmit([][]byte{frame(64, 0)})
			if kicked := ifc.Tx(0).Kick(); kicked == tc.clientPoll {
				t.Errorf("Kick = %v with client polling %v", kicked, tc.clientPoll)
			}
			if !tc.clientPoll && !readable(cl.RxEventFD(0)) {
				t.Error("client eventfd not signalled by Kick")
			}
		})
	}
}

// TestDisconnectUnderLoad connects and drops peers (cleanly and by killing
// the connection) while a worker goroutine keeps bursting on the queues:
// teardown must never unmap memory a burst is using.
func TestDisconnectUnderLoad(t *testing.T) {
	checkNoFDLeak(t)
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1, Queues: 2})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for q := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bb, sizes := bufs(32, 2048), make([]int, 32)
			out := [][]byte{frame(60, 0), frame(1500, 1)}
			for {
				select {
				case <-stop:
					return
				default:
				}
				ifc.Rx(q).Receive(bb, 0, sizes)
				ifc.Tx(q).Transmit(out)
				ifc.Tx(q).Kick()
				runtime.Gosched() // two spinning workers on a 2-core box starve the control side otherwise
			}
		}()
	}
	for i := range 20 {
		cl := dial(t, ClientConfig{Socket: sock, ID: 1, Queues: 2})
		waitState(t, states, true)
		for range 50 {
			cl.Transmit(i%2, [][]byte{frame(100, 1), frame(3000, 2)})
			cl.Receive(i%2, bufs(4, 2048), make([]int, 4))
		}
		if i%2 == 0 {
			cl.Close()
		} else {
			cl.Kill()
		}
		waitState(t, states, false)
	}
	close(stop)
	wg.Wait()
	st := ifc.Status()
	if st.Connects != 20 || st.Disconnects != 20 || st.ProtoErrors != 0 || st.Rx.Packets == 0 {
		t.Errorf("status: %+v", st)
	}
}

// TestAllocs holds the data path to zero allocations per burst.
func TestAllocs(t *testing.T) {
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1})
	cl := dial(t, ClientConfig{Socket: sock, ID: 1, BufferSize: 1024})
	waitState(t, states, true)
	frames := make([][]byte, 32)
	for i := range frames {
		frames[i] = frame(64+i*90, byte(i)) // some chained
	}
	bb, sizes := bufs(32, 4096), make([]int, 32)
	rx, tx := ifc.Rx(0), ifc.Tx(0)
	allocs := testing.AllocsPerRun(200, func() {
		cl.Transmit(0, frames)
		if n := rx.Receive(bb, 128, sizes); n != 32 {
			t.Fatalf("Receive = %d", n)
		}
		rx.ClearInterrupt()
		if n := tx.Transmit(frames); n != 32 {
			t.Fatalf("Transmit = %d", n)
		}
		tx.Kick()
		cl.Receive(0, bb, sizes)
		_ = rx.Counters()
		_ = tx.Counters()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per burst, want 0", allocs)
	}
}

// TestTeardownWaitsForBurst holds a Receive burst open while the peer
// dies: teardown must wait for it before unmapping (the burst then reads
// the ring and finds the frames), and only then report the interface down.
func TestTeardownWaitsForBurst(t *testing.T) {
	sock := sockName(t, true)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 1})
	cl := dial(t, ClientConfig{Socket: sock, ID: 1})
	waitState(t, states, true)
	cl.Transmit(0, [][]byte{frame(100, 1), frame(200, 2)})

	inBurst, release := make(chan struct{}), make(chan struct{})
	testHookBurst = func() { close(inBurst); <-release }
	defer func() { testHookBurst = nil }()
	got := make(chan int)
	go func() {
		n := ifc.Rx(0).Receive(bufs(4, 2048), 0, make([]int, 4))
		got <- n
	}()
	<-inBurst
	cl.Kill()
	select {
	case up := <-states:
		t.Fatalf("interface went %v while a burst was in progress", up)
	case <-time.After(100 * time.Millisecond):
	}
	testHookBurst = nil
	close(release)
	if n := <-got; n != 2 {
		t.Errorf("held burst received %d frames, want 2", n)
	}
	waitState(t, states, false)
}
