package memif

import (
	"bytes"
	"testing"
	"time"

	gomemif "go.fd.io/govpp/extras/gomemif/memif"
)

// TestGomemif connects go.fd.io/govpp/extras' gomemif (v0.1.0, the version
// the module proxy serves; a pure-Go memif xvs did not write) as the
// client: traffic both ways, then a disconnect and a reconnect.
//
// gomemif v0.1.0 reads HELLO's max ring fields as counts where libmemif and
// DPDK read them as the highest index, so against an interface of one queue
// it would ask for none; the interface offers two and gomemif takes one.
// Its chained write copies the frame's start into every buffer, so frames
// stay within one 2048-byte buffer here.
//
// No descriptor-leak check here: gomemif never closes its control socket.
func TestGomemif(t *testing.T) {
	sock := sockName(t, false)
	s := listen(t, Config{Socket: sock})
	ifc, states := addIface(t, s, InterfaceConfig{ID: 3, Name: "xvs-gm", Queues: 2})

	gsock, err := gomemif.NewSocket("gomemif-test", sock)
	if err != nil {
		t.Fatalf("gomemif NewSocket: %v", err)
	}
	up := make(chan bool, 8)
	gi, err := gsock.NewInterface(&gomemif.Arguments{
		Id: 3, Name: "gm0",
		MemoryConfig:     gomemif.MemoryConfig{NumQueuePairs: 1, Log2RingSize: 8, PacketBufferSize: 2048},
		ConnectedFunc:    func(*gomemif.Interface) error { up <- true; return nil },
		DisconnectedFunc: func(*gomemif.Interface) error { up <- false; return nil },
	})
	if err != nil {
		t.Fatalf("gomemif NewInterface: %v", err)
	}
	errc := make(chan error, 64)
	// gomemif reports "fd not found" for events on its own interrupt fds
	// when no InterruptFunc is set; log what it says, do not fail on it.
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		for {
			select {
			case err := <-errc:
				t.Logf("gomemif: %v", err)
			case <-logDone:
				return
			}
		}
	}()
	t.Cleanup(func() {
		gsock.Delete()
		logDone <- struct{}{}
	})
	// gomemif's poller and its API calls share state without locks, so the
	// test calls RequestConnection and Disconnect only while it is stopped.

	for round := 1; round <= 2; round++ {
		if err := gi.RequestConnection(); err != nil {
			t.Fatalf("round %d: gomemif RequestConnection: %v", round, err)
		}
		gsock.StartPolling(errc)
		select {
		case <-up:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: gomemif did not connect; server status %+v", round, ifc.Status())
		}
		waitState(t, states, true)
		if st := ifc.Status(); st.PeerName != "gomemif-test" || st.PeerIf != "gm0" || st.RingSize != 256 {
			t.Errorf("status %+v", st)
		}
		rxq, err := gi.GetRxQueue(0)
		if err != nil {
			t.Fatal(err)
		}
		txq, err := gi.GetTxQueue(0)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10000)
		rxq.ReadPacket(buf) // gomemif offers its M2S buffers on its first read

		var frames [][]byte
		for i, n := range []int{60, 64, 1000, 1514, 2048} {
			frames = append(frames, frame(n, byte(i+round)))
		}
		for _, f := range frames {
			if n := txq.WritePacket(f); n != len(f) {
				t.Fatalf("gomemif WritePacket = %d, want %d", n, len(f))
			}
		}
		sameFrames(t, "gomemif to xvs", frames, serverRecv(t, ifc, 0, len(frames), 128))

		if n := ifc.Tx(0).Transmit(frames); n != len(frames) {
			t.Fatalf("server Transmit = %d", n)
		}
		ifc.Tx(0).Kick()
		var got [][]byte
		for deadline := time.Now().Add(2 * time.Second); len(got) < len(frames) && time.Now().Before(deadline); {
			n, err := rxq.ReadPacket(buf)
			if err != nil {
				t.Fatalf("gomemif ReadPacket: %v", err)
			}
			if n == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			got = append(got, bytes.Clone(buf[:n]))
		}
		sameFrames(t, "xvs to gomemif", frames, got)

		gsock.StopPolling()
		if err := gi.Disconnect(); err != nil {
			t.Fatalf("gomemif Disconnect: %v", err)
		}
		waitState(t, states, false)
		if st := ifc.Status(); st.Connected || st.Disconnects != uint64(round) || st.ProtoErrors != 0 {
			t.Fatalf("after gomemif disconnected: %+v", st)
		}
		<-up
	}
}
