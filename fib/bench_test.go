package fib

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

// benchFixture is the full real table in the FIB and in both bart tables,
// with the same 1,024 (and 2^20) rotating random probes per family.
var benchFixture struct {
	mu     sync.Mutex
	fib    *FIB
	fast   *bart.Fast[uint32]
	table  *bart.Table[uint32]
	addrs  [2][]netip.Addr // [0] IPv4, [1] IPv6
	p4     [][4]byte
	p6     [][16]byte
	v4, v6 []netip.Prefix
	// A large probe set whose working set does not fit in cache.
	bigAddrs [2][]netip.Addr
	big4     [][4]byte
	big6     [][16]byte
}

const (
	benchProbes = 1024
	bigProbes   = 1 << 20
)

func fixture(b *testing.B) *FIB {
	v4, v6 := loadRealTable(b)
	fx := &benchFixture
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if fx.fib == nil {
		fx.v4, fx.v6 = v4, v6
		fx.fib = New()
		fx.fast = new(bart.Fast[uint32])
		fx.table = new(bart.Table[uint32])
		for _, ps := range [][]netip.Prefix{v4, v6} {
			if err := fx.fib.Apply(realRoutes(ps), nil); err != nil {
				b.Fatal(err)
			}
			for i, p := range ps {
				fx.fast.Insert(p, realLabel(i))
				fx.table.Insert(p, realLabel(i))
			}
		}
		r := rand.New(rand.NewPCG(42, 42))
		fx.addrs[0] = randomProbes(r, v4, benchProbes)
		fx.addrs[1] = randomProbes(r, v6, benchProbes)
		fx.bigAddrs[0] = randomProbes(r, v4, bigProbes)
		fx.bigAddrs[1] = randomProbes(r, v6, bigProbes)
		for _, a := range fx.bigAddrs[0] {
			fx.big4 = append(fx.big4, a.As4())
		}
		for _, a := range fx.bigAddrs[1] {
			fx.big6 = append(fx.big6, a.As16())
		}
		for _, a := range fx.addrs[0] {
			fx.p4 = append(fx.p4, a.As4())
		}
		for _, a := range fx.addrs[1] {
			fx.p6 = append(fx.p6, a.As16())
		}
	}
	return fx.fib
}

// releaseFixture drops the lookup benchmarks' tables and probe sets (bart's
// tables alone are a few hundred MiB of pointers) and collects them, so that
// the GCs the FIB's block reclamation waits for mark about what xvsd's heap
// holds rather than the benchmark's. The next fixture call rebuilds them.
func releaseFixture() {
	fx := &benchFixture
	fx.mu.Lock()
	fx.fib, fx.fast, fx.table = nil, nil, nil
	fx.addrs, fx.bigAddrs = [2][]netip.Addr{}, [2][]netip.Addr{}
	fx.p4, fx.p6, fx.big4, fx.big6 = nil, nil, nil, nil
	fx.mu.Unlock()
	runtime.GC()
}

var sink uint32

// BenchmarkLookup reports ns/lookup for the FIB and for bart.Fast and
// bart.Table on the same table and probes. Batches call View once per
// batch, as a worker does per vector; bart has no batch form, so its batch
// is a loop.
func BenchmarkLookup(b *testing.B) {
	f := fixture(b)
	fx := &benchFixture
	for _, fam := range []string{"v4", "v6"} {
		addrs := fx.addrs[0]
		if fam == "v6" {
			addrs = fx.addrs[1]
		}
		for _, batch := range []int{1, 32, 64} {
			name := "single"
			if batch > 1 {
				name = "batch" + itoa(batch)
			}
			b.Run(fam+"/"+name+"/xvs", func(b *testing.B) {
				b.ReportAllocs()
				out := make([]Index, batch)
				v := f.View()
				var s uint32
				n := 0
				for i := 0; i < b.N; i++ {
					off := n & (benchProbes - 1)
					n += batch
					if batch == 1 {
						if fam == "v4" {
							s += uint32(v.Lookup4(0, fx.p4[off]))
						} else {
							s += uint32(v.Lookup6(0, fx.p6[off]))
						}
						continue
					}
					v := f.View()
					if fam == "v4" {
						v.LookupBatch4(0, fx.p4[off:off+batch], out)
					} else {
						v.LookupBatch6(0, fx.p6[off:off+batch], out)
					}
					s += uint32(out[0])
				}
				sink += s
				perLookup(b, batch)
			})
			for _, peer := range []string{"bart.Fast", "bart.Table"} {
				b.Run(fam+"/"+name+"/"+peer, func(b *testing.B) {
					b.ReportAllocs()
					lookup := fx.fast.Lookup
					if peer == "bart.Table" {
						lookup = fx.table.Lookup
					}
					var s uint32
					n := 0
					for i := 0; i < b.N; i++ {
						off := n & (benchProbes - 1)
						n += batch
						for _, a := range addrs[off : off+batch] {
							x, _ := lookup(a)
							s += x
						}
					}
					sink += s
					perLookup(b, batch)
				})
			}
		}
	}
}

func perLookup(b *testing.B, batch int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(batch), "ns/lookup")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// heapAfter returns the live heap after build runs, minus what was live
// before, keeping build's result alive until measured.
func heapAfter(build func() any) (any, uint64) {
	var m0, m1 runtime.MemStats
	// A FIB from an earlier iteration stays reachable from its epochs'
	// pending cleanups until they have run: collect, let them run, collect.
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&m0)
	x := build()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	return x, m1.HeapAlloc - m0.HeapAlloc
}

// BenchmarkBuild inserts the whole real table and reports the heap it holds.
func BenchmarkBuild(b *testing.B) {
	v4, v6 := loadRealTable(b)
	r4, r6 := realRoutes(v4), realRoutes(v6)
	builds := []struct {
		name  string
		build func() any
	}{
		{"xvs", func() any {
			f := New()
			for _, rs := range [][]Route{r4, r6} {
				for i := 0; i < len(rs); i += 10_000 {
					if err := f.Apply(rs[i:min(len(rs), i+10_000)], nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			return f
		}},
		{"bart.Table", func() any {
			t := new(bart.Table[uint32])
			for _, ps := range [][]netip.Prefix{v4, v6} {
				for i, p := range ps {
					t.Insert(p, realLabel(i))
				}
			}
			return t
		}},
		{"bart.Fast", func() any {
			t := new(bart.Fast[uint32])
			for _, ps := range [][]netip.Prefix{v4, v6} {
				for i, p := range ps {
					t.Insert(p, realLabel(i))
				}
			}
			return t
		}},
	}
	for _, bb := range builds {
		b.Run(bb.name, func(b *testing.B) {
			var mem uint64
			for i := 0; i < b.N; i++ {
				var x any
				x, mem = heapAfter(bb.build)
				runtime.KeepAlive(x)
			}
			b.ReportMetric(float64(mem)/(1<<20), "MiB")
		})
	}
}

// BenchmarkUpdate replaces the next hop of random real prefixes in batches
// while a reader looks up batches of 64 without pause, and reports route
// changes applied per second: wall clock (routes/s), per CPU-second of the
// writer thread (routes/cpu-s, which includes drawing the random routes: a
// cache miss each on the 900k-prefix slice) and per CPU-second the writer
// spends inside Apply (apply-routes/cpu-s). bart.Table's persistent (copy-on-write)
// insert, the equivalent way to keep lock-free readers there, is measured
// alongside.
func BenchmarkUpdate(b *testing.B) {
	fixture(b)
	fx := &benchFixture
	v4, v6, p4 := fx.v4, fx.v6, fx.p4
	releaseFixture()
	// A FIB of its own: churn moves nodes around the arena, and the lookup
	// benchmarks must all see the same freshly built table.
	f := New()
	for _, ps := range [][]netip.Prefix{v4, v6} {
		if err := f.Apply(realRoutes(ps), nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, batch := range []int{1, 100, 1000, 10000} {
		b.Run("batch"+itoa(batch)+"/xvs", func(b *testing.B) {
			stop := make(chan struct{})
			var lookups atomic.Uint64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := make([]Index, 64)
				for n := 0; ; n += 64 {
					select {
					case <-stop:
						return
					default:
					}
					v := f.View()
					v.LookupBatch4(0, p4[n&(benchProbes-1):][:64], out)
					lookups.Add(64)
				}
			}()
			r := rand.New(rand.NewPCG(7, 7))
			rs := make([]Route, batch)
			for j := range rs {
				rs[j] = Route{NextHop: labelNH(1), Origin: OriginBGP}
			}
			// The writer's own CPU time, which other processes on a shared
			// machine do not inflate.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			b.ResetTimer()
			start := time.Now()
			changes := 0
			var applyCPU time.Duration
			for i := 0; i < b.N; i++ {
				for j := range rs {
					p := v4[r.IntN(len(v4))]
					if j%5 == 0 {
						p = v6[r.IntN(len(v6))]
					}
					// labelNH(1 + r.Uint32N(1000)), setting only what differs
					// (copying whole Routes, with their pointers' write
					// barriers, was a tenth of the writer's time).
					rs[j].Prefix = p
					rs[j].NextHop.VNI = 1 + r.Uint32N(1000)
				}
				a0 := threadCPU()
				if err := f.Apply(rs, nil); err != nil {
					b.Fatal(err)
				}
				applyCPU += threadCPU() - a0
				changes += batch
			}
			el := time.Since(start)
			cpu := threadCPU() - cpu0
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(changes)/el.Seconds(), "routes/s")
			b.ReportMetric(float64(changes)/cpu.Seconds(), "routes/cpu-s")
			b.ReportMetric(float64(changes)/applyCPU.Seconds(), "apply-routes/cpu-s")
			b.ReportMetric(float64(lookups.Load())/el.Seconds(), "lookups/s")
			b.ReportMetric(float64(f.Stats().MemoryBytes)/(1<<20), "fib-MiB")
		})
	}
	b.Run("batch1/bart.Table.InsertPersist", func(b *testing.B) {
		t := fx.table
		r := rand.New(rand.NewPCG(7, 7))
		start := time.Now()
		for i := 0; i < b.N; i++ {
			t = t.InsertPersist(fx.v4[r.IntN(len(fx.v4))], 1+r.Uint32N(1000))
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "routes/s")
	})
}

// BenchmarkLookupVs interleaves the FIB, bart.Fast and bart.Table pass by
// pass (each pass is all 1,024 probes) and reports each one's median pass
// in ns/lookup and the ratios of the medians, so that load from other
// processes on a shared machine hits all three alike and spikes drop out.
// The /1M-probes variants rotate over 2^20 addresses instead, so most
// lookups miss the caches, as they do on a switch with many flows. These
// are the figures docs/BENCHMARKS.md quotes.
func BenchmarkLookupVs(b *testing.B) {
	f := fixture(b)
	fx := &benchFixture
	for _, set := range []string{"", "/1M-probes"} {
		for _, fam := range []string{"v4", "v6"} {
			addrs, p4, p6 := fx.addrs[0], fx.p4, fx.p6
			if set != "" {
				addrs, p4, p6 = fx.bigAddrs[0], fx.big4, fx.big6
			}
			if fam == "v6" {
				addrs = fx.addrs[1]
				if set != "" {
					addrs = fx.bigAddrs[1]
				}
			}
			probes := len(addrs)
			for _, batch := range []int{1, 32, 64} {
				name := "single"
				if batch > 1 {
					name = "batch" + itoa(batch)
				}
				b.Run(fam+set+"/"+name, func(b *testing.B) {
					b.ReportAllocs()
					out := make([]Index, batch)
					tx := make([]time.Duration, b.N)
					tf := make([]time.Duration, b.N)
					tt := make([]time.Duration, b.N)
					var s uint32
					for i := 0; i < b.N; i++ {
						t0 := time.Now()
						if batch == 1 {
							v := f.View()
							if fam == "v4" {
								for _, a := range p4 {
									s += uint32(v.Lookup4(0, a))
								}
							} else {
								for _, a := range p6 {
									s += uint32(v.Lookup6(0, a))
								}
							}
						} else {
							for off := 0; off < probes; off += batch {
								v := f.View()
								if fam == "v4" {
									v.LookupBatch4(0, p4[off:off+batch], out)
								} else {
									v.LookupBatch6(0, p6[off:off+batch], out)
								}
								s += uint32(out[0])
							}
						}
						t1 := time.Now()
						for _, a := range addrs {
							x, _ := fx.fast.Lookup(a)
							s += x
						}
						t2 := time.Now()
						for _, a := range addrs {
							x, _ := fx.table.Lookup(a)
							s += x
						}
						t3 := time.Now()
						tx[i], tf[i], tt[i] = t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)
					}
					sink += s
					mx, mf, mt := median(tx), median(tf), median(tt)
					b.ReportMetric(mx/float64(probes), "xvs-ns/lookup")
					b.ReportMetric(mf/float64(probes), "fast-ns/lookup")
					b.ReportMetric(mt/float64(probes), "table-ns/lookup")
					b.ReportMetric(mf/mx, "fast/xvs")
					b.ReportMetric(mt/mx, "table/xvs")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

func median(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2].Nanoseconds())
}

// threadCPU returns the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
