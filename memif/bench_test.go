package memif

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkQueuePair moves frames through one queue pair in one process:
// the in-process client puts a burst on the S2M ring, the server receives
// it into caller buffers (with 128 bytes of headroom, as a driver passing
// UMEM frames would) and transmits it back on the M2S ring, the client
// drains it. One op is one frame each way; frames/s counts frames through
// the server per second in each direction.
func BenchmarkQueuePair(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			sock := fmt.Sprintf("@xvs-memif-bench-%d-%d", size, time.Now().UnixNano())
			s, err := Listen(Config{Socket: sock})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ifc, err := s.Add(InterfaceConfig{ID: 1, Polling: true})
			if err != nil {
				b.Fatal(err)
			}
			cl, err := Dial(ClientConfig{Socket: sock, ID: 1, Polling: true})
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			for !ifc.Connected() {
				time.Sleep(time.Millisecond)
			}
			const burst = 64
			frames := make([][]byte, burst)
			for i := range frames {
				frames[i] = frame(size, byte(i))
			}
			bb, sizes := bufs(burst, 2048+128), make([]int, burst)
			cbb, csizes := bufs(burst, 2048), make([]int, burst)
			rx, tx := ifc.Rx(0), ifc.Tx(0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(burst, b.N-done)
				cl.Transmit(0, frames[:k])
				n := rx.Receive(bb, 128, sizes)
				for i := range n {
					bb[i] = bb[i][:128+sizes[i]]
					frames[i] = bb[i][128:]
				}
				tx.Transmit(frames[:n])
				cl.Receive(0, cbb, csizes)
				for i := range n {
					bb[i] = bb[i][:cap(bb[i])]
				}
				done += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkServerRx and BenchmarkServerTx time the server's side alone
// (the client's work stays outside the timer).
func BenchmarkServerRx(b *testing.B) { benchServer(b, false) }
func BenchmarkServerTx(b *testing.B) { benchServer(b, true) }

func benchServer(b *testing.B, tx bool) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			sock := fmt.Sprintf("@xvs-memif-bench-%d-%d", size, time.Now().UnixNano())
			s, err := Listen(Config{Socket: sock})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ifc, _ := s.Add(InterfaceConfig{ID: 1, Polling: true})
			cl, err := Dial(ClientConfig{Socket: sock, ID: 1, Polling: true})
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			for !ifc.Connected() {
				time.Sleep(time.Millisecond)
			}
			const burst = 64
			frames := make([][]byte, burst)
			for i := range frames {
				frames[i] = frame(size, byte(i))
			}
			bb, sizes := bufs(burst, 2048+128), make([]int, burst)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(burst, b.N-done)
				var n int
				if tx {
					n = ifc.Tx(0).Transmit(frames[:k])
					b.StopTimer()
					cl.Receive(0, bb, sizes)
					b.StartTimer()
				} else {
					b.StopTimer()
					cl.Transmit(0, frames[:k])
					b.StartTimer()
					n = ifc.Rx(0).Receive(bb, 128, sizes)
				}
				done += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
