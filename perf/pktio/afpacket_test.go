package pktio

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xvs-project/xvs/perf/gen"
	"github.com/xvs-project/xvs/perf/internal/xpnet"
)

// pair builds two namespaces joined by a veth pair (a0 <-> b0).
func pair(t *testing.T) (nsA, nsB string, tp *gen.Template) {
	t.Helper()
	if err := xpnet.Check(); err != nil {
		t.Skip(err)
	}
	n := xpnet.New()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	var err error
	if nsA, err = n.NS("a"); err != nil {
		t.Fatal(err)
	}
	if nsB, err = n.NS("b"); err != nil {
		t.Fatal(err)
	}
	macA, macB, err := n.Veth(nsA, "a0", nsB, "b0")
	if err != nil {
		t.Fatal(err)
	}
	tp, err = gen.New(gen.Config{
		SrcMAC: macA, DstMAC: macB,
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"),
		SrcPort: 1024, DstPort: 9, Flows: 16, Sizes: []int{64, 1514}, Stream: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return nsA, nsB, tp
}

// TestAFPacketDropPattern sends sequence numbers with a known gap pattern
// across a veth pair and checks the sink's accounting of it.
func TestAFPacketDropPattern(t *testing.T) {
	nsA, nsB, tp := pair(t)
	var tx *AFPacketTx
	var rx *AFPacketRx
	if err := InNetns(nsA, func() (err error) { tx, err = NewAFPacketTx("a0", Options{}); return }); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := InNetns(nsB, func() (err error) { rx, err = NewAFPacketRx("b0", Options{}); return }); err != nil {
		t.Fatal(err)
	}
	sink := gen.NewSink(gen.Filter{Stream: 3, DstPort: 9})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer rx.Close()
		quiet := 0
		for quiet < 5 {
			fs, err := rx.Receive()
			if err != nil {
				t.Error(err)
				return
			}
			if len(fs) == 0 {
				quiet++
				continue
			}
			quiet = 0
			now := Now()
			for _, f := range fs {
				sink.Offer(f, now)
			}
		}
	}()

	const total = 20000
	pacer := NewPacer(100000, 64)
	seq := uint32(0)
	var sent, skipped uint64
	for seq < total {
		bufs := tx.Buffers(pacer.Take(64, time.Time{}))
		k := 0
		for k < len(bufs) && seq < total {
			if seq%10 == 3 || (seq >= 5000 && seq < 5100) { // the drop pattern
				seq++
				skipped++
				continue
			}
			bufs[k] = bufs[k][:tp.Fill(bufs[k], int(seq%2), int(seq%16), seq, Now())]
			k++
			seq++
		}
		n, err := tx.Send(bufs[:k])
		if err != nil {
			t.Fatal(err)
		}
		sent += uint64(n)
	}
	<-done
	st := sink.Stats(total)
	if drops := rx.Drops(); drops != 0 {
		t.Logf("socket drops %d", drops)
	}
	if st.Unique != sent || st.Lost != skipped || st.Dups != 0 || st.Reordered != 0 {
		t.Errorf("sent %d skipped %d: stats %+v", sent, skipped, st)
	}
	if st.Latency.Count == 0 || st.Latency.P50 <= 0 || st.Latency.P50 > int64(time.Second) {
		t.Errorf("latency %+v", st.Latency)
	}
	t.Logf("sent %d, latency p50 %d ns p99 %d ns", sent, st.Latency.P50, st.Latency.P99)
}

// TestXDPTx sends through the ring layer's AF_XDP socket across the veth
// pair and counts every frame at an AF_PACKET sink.
func TestXDPTx(t *testing.T) {
	nsA, nsB, tp := pair(t)
	var tx *XDPTx
	if err := InNetns(nsA, func() (err error) { tx, err = NewXDPTx("a0", Options{}); return }); err != nil {
		t.Skipf("af_xdp not available here: %v", err)
	}
	defer tx.Close()
	var rx *AFPacketRx
	if err := InNetns(nsB, func() (err error) { rx, err = NewAFPacketRx("b0", Options{}); return }); err != nil {
		t.Fatal(err)
	}
	sink := gen.NewSink(gen.Filter{Stream: 3, DstPort: 9})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer rx.Close()
		for quiet := 0; quiet < 5; {
			fs, err := rx.Receive()
			if err != nil {
				t.Error(err)
				return
			}
			if len(fs) == 0 {
				quiet++
			}
			now := Now()
			for _, f := range fs {
				quiet = 0
				sink.Offer(f, now)
			}
		}
	}()
	const total = 10000
	pacer := NewPacer(100000, 64)
	var seq uint32
	for seq < total {
		bufs := tx.Buffers(min(pacer.Take(64, time.Time{}), total-int(seq)))
		for k := range bufs {
			bufs[k] = bufs[k][:tp.Fill(bufs[k], int(seq%2), 0, seq, Now())]
			seq++
		}
		if _, err := tx.Send(bufs); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	st := sink.Stats(total)
	if st.Unique+rx.Drops() < total || st.Dups != 0 {
		t.Errorf("%s: stats %+v", tx.Name(), st)
	}
	t.Logf("%s: %d received, latency p50 %d ns", tx.Name(), st.Unique, st.Latency.P50)
}

// TestXDPRx receives through the ring layer and the pod steering program
// what an AF_PACKET sender sends across the veth pair.
func TestXDPRx(t *testing.T) {
	nsA, nsB, tp := pair(t)
	var rx *XDPRx
	if err := InNetns(nsB, func() (err error) { rx, err = NewXDPRx("b0", Options{}); return }); err != nil {
		t.Skipf("af_xdp receive not available here: %v", err)
	}
	var tx *AFPacketTx
	if err := InNetns(nsA, func() (err error) { tx, err = NewAFPacketTx("a0", Options{}); return }); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	sink := gen.NewSink(gen.Filter{Stream: 3, DstPort: 9})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if err := rx.Close(); err != nil {
				t.Error(err)
			}
		}()
		for quiet := 0; quiet < 5; {
			fs, err := rx.Receive()
			if err != nil {
				t.Error(err)
				return
			}
			if len(fs) == 0 {
				quiet++
			}
			now := Now()
			for _, f := range fs {
				quiet = 0
				sink.Offer(f, now)
			}
		}
	}()
	const total = 10000
	pacer := NewPacer(100000, 64)
	var seq uint32
	for seq < total {
		bufs := tx.Buffers(min(pacer.Take(64, time.Time{}), total-int(seq)))
		for k := range bufs {
			bufs[k] = bufs[k][:tp.Fill(bufs[k], int(seq%2), 0, seq, Now())]
			seq++
		}
		if _, err := tx.Send(bufs); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	st := sink.Stats(total)
	if st.Unique < total || st.Dups != 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("af_xdp sink: %d received, latency p50 %d ns", st.Unique, st.Latency.P50)
}
