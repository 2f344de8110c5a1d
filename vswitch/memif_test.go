package vswitch

import (
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/memif"
	"github.com/xvs-project/xvs/spec"
)

// memifPod is one memif pod of a memif test switch: its port's config and
// the socket its application dials.
type memifPod struct {
	name   string
	sock   string
	mac    [6]byte
	v4, v6 netip.Addr
}

func memifPods(t testing.TB, n int) []memifPod {
	dir := t.TempDir()
	var pods []memifPod
	for i := range n {
		b := byte(10 + i)
		pods = append(pods, memifPod{
			name: "mp" + string(rune('a'+i)), sock: filepath.Join(dir, "m"+string(rune('a'+i))+".sock"),
			mac: [6]byte{2, 0xfe, 0, 0, 0, b},
			v4:  netip.AddrFrom4([4]byte{198, 19, 9, b}),
			v6:  netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x19, 0, 9, 14: 0, 15: b}),
		})
	}
	return pods
}

func (p memifPod) config(polling bool) spec.PortConfig {
	return spec.PortConfig{Name: p.name, Kind: spec.PortPod, Mode: spec.ModeMemif, PeerMAC: p.mac,
		Addrs: []netip.Prefix{netip.PrefixFrom(p.v4, 32), netip.PrefixFrom(p.v6, 128)},
		Memif: &spec.MemifConfig{Socket: p.sock, Polling: polling}}
}

func newMemifSwitch(t testing.TB, poll dataplane.PollMode, pods []memifPod, polling bool) *Switch {
	t.Helper()
	cfg := Config{Workers: 1, Poll: poll, IdleSpin: NoIdleSpin}
	for _, p := range pods {
		cfg.Ports = append(cfg.Ports, p.config(polling))
	}
	s, err := New(cfg, nil, withoutKernel())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func dialMemif(t testing.TB, sock string, polling bool) *memif.Client {
	t.Helper()
	cl, err := memif.Dial(memif.ClientConfig{Socket: sock, Polling: polling})
	if err != nil {
		t.Fatalf("Dial %s: %v", sock, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func waitPort(t testing.TB, s *Switch, name string, up bool) spec.PortStatus {
	t.Helper()
	var st spec.PortStatus
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, p := range s.Ports() {
			if p.Name == name {
				st = p
			}
		}
		if st.Up == up {
			return st
		}
	}
	t.Fatalf("port %s up %v (%s), want %v", name, st.Up, st.Reason, up)
	return st
}

func hasPodRoute(s *Switch, a netip.Addr) bool {
	r, ok := s.FIB().Get(0, netip.PrefixFrom(a, a.BitLen()))
	return ok && r.Origin == fib.OriginPod
}

// TestMemifPods: two memif pods through a running switch. A memif port
// without a peer is down with a reason and its pod routes are not in the
// FIB; connected, IPv4 and IPv6 from one pod reach the other routed (TTL
// and hop limit one less, MACs the gateway's and the pod's); the peer
// going away takes the routes out again and a new peer brings them back.
func TestMemifPods(t *testing.T) {
	pods := memifPods(t, 2)
	a, b := pods[0], pods[1]
	s := newMemifSwitch(t, dataplane.PollAdaptive, pods, false)
	st := waitPort(t, s, a.name, false)
	if st.Mode != spec.ModeMemif || st.Memif == nil || st.Memif.Role != "server" || st.Memif.Socket != a.sock {
		t.Fatalf("status before a peer: %+v memif %+v", st, st.Memif)
	}
	if hasPodRoute(s, a.v4) {
		t.Fatalf("route to %s installed without a peer", a.v4)
	}
	ca, cb := dialMemif(t, a.sock, false), dialMemif(t, b.sock, false)
	waitPort(t, s, a.name, true)
	waitPort(t, s, b.name, true)
	if !hasPodRoute(s, a.v4) || !hasPodRoute(s, b.v6) {
		t.Fatalf("pod routes missing once connected")
	}
	send := func(v6 bool) {
		t.Helper()
		f := udp4(t, a.mac, a.v4, b.v4, 64, 100)
		if v6 {
			f = udp6(t, a.mac, a.v6, b.v6, 64, 100)
		}
		if n := ca.Transmit(0, [][]byte{f}); n != 1 {
			t.Fatalf("client sent %d", n)
		}
		buf, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			if cb.Receive(0, buf, sizes) == 1 {
				p := decode(buf[0][:sizes[0]])
				eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
				if [6]byte(eth.DstMAC) != b.mac || [6]byte(eth.SrcMAC) != gwMAC {
					t.Errorf("MACs %s -> %s", eth.SrcMAC, eth.DstMAC)
				}
				if v6 {
					if ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ip.HopLimit != 63 {
						t.Errorf("hop limit %d, want 63", ip.HopLimit)
					}
				} else if ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ip.TTL != 63 {
					t.Errorf("ttl %d, want 63", ip.TTL)
				}
				return
			}
			cb.WaitRx(0, 10*time.Millisecond)
		}
		t.Fatalf("v6 %v: nothing reached pod b", v6)
	}
	send(false)
	send(true)
	cb.Kill()
	st = waitPort(t, s, b.name, false)
	if st.Memif.Connected || st.Reason == "" {
		t.Errorf("after the peer died: %+v memif %+v", st, st.Memif)
	}
	if hasPodRoute(s, b.v4) || hasPodRoute(s, b.v6) {
		t.Errorf("routes to pod b stayed with its peer gone")
	}
	cb = dialMemif(t, b.sock, false)
	waitPort(t, s, b.name, true)
	if !hasPodRoute(s, b.v4) {
		t.Fatalf("routes not back after reconnecting")
	}
	send(false)
	if st := waitPort(t, s, a.name, true); st.Stats.RxPackets != 3 || st.Memif.Connects != 1 {
		t.Errorf("pod a: rx %d connects %d, want 3 and 1", st.Stats.RxPackets, st.Memif.Connects)
	}
}

// BenchmarkMemifPodToPod: memif pod a -> the switch (one busy worker) ->
// memif pod b, UDP over IPv4, polling on both sides. The sender keeps a's
// ring full; the rate is what b receives; allocs/op counts every goroutine,
// the worker's included.
func BenchmarkMemifPodToPod(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(byteSize(size), func(b *testing.B) {
			pods := memifPods(b, 2)
			pa, pb := pods[0], pods[1]
			s := newMemifSwitch(b, dataplane.PollBusy, pods, true)
			ca, cb := dialMemif(b, pa.sock, true), dialMemif(b, pb.sock, true)
			waitPort(b, s, pa.name, true)
			waitPort(b, s, pb.name, true)
			f := udp4(b, pa.mac, pa.v4, pb.v4, 64, size-42)
			burst := make([][]byte, 64)
			for i := range burst {
				burst[i] = f
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if ca.Transmit(0, burst) == 0 {
						time.Sleep(time.Microsecond)
					}
				}
			}()
			bufs, sizes := make([][]byte, 256), make([]int, 256)
			for i := range bufs {
				bufs[i] = make([]byte, 2048)
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			for got := 0; got < b.N; {
				got += cb.Receive(0, bufs, sizes)
			}
			el := time.Since(start)
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mpps")
		})
	}
}

func byteSize(n int) string {
	if n == 64 {
		return "64B"
	}
	return "1500B"
}
