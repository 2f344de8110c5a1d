package boltstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/ipam/boltstore"
	"github.com/xvs-project/xvs/ipam/memstore"
)

// envBenchChild makes this test binary a one-shot IPAM "plugin" for
// BenchmarkExec: CNI_COMMAND ADD or DEL, CNI_CONTAINERID, on the store
// file named by the variable: the same kind of call as exec'ing host-local.
const envBenchChild = "XVS_IPAM_BENCH_CHILD"

func benchChild(path string) error {
	ctx := context.Background()
	s, err := boltstore.Open(path, boltstore.Options{Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer s.Close()
	a, err := ipam.New(s, ipam.Options{Node: "n1"})
	if err != nil {
		return err
	}
	hd := ipam.Handle{ContainerID: os.Getenv("CNI_CONTAINERID"), IfName: os.Getenv("CNI_IFNAME")}
	switch os.Getenv("CNI_COMMAND") {
	case "ADD":
		got, err := a.Assign(ctx, ipam.AssignRequest{Handle: hd, IPv4: true, IPv6: true})
		if err != nil {
			return err
		}
		fmt.Println(got[0].Addr, got[1].Addr)
	case "DEL":
		_, err := a.Release(ctx, hd)
		return err
	}
	return nil
}

const benchPods = 100

var benchPools = []ipam.Pool{
	{Name: "v4", CIDR: netipPrefix("198.18.0.0/16")},
	{Name: "v6", CIDR: netipPrefix("fd00:18::/64")},
}

// latencies collects per-call durations and reports their percentiles.
type latencies map[string][]time.Duration

func (l latencies) report(b *testing.B) {
	for name, ds := range l {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), name+"-p50-ns")
		b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), name+"-p99-ns")
	}
}

func timed(l latencies, name string, f func() error) error {
	t0 := time.Now()
	err := f()
	l[name] = append(l[name], time.Since(t0))
	return err
}

// BenchmarkAssignRelease: one op is 100 dual-stack pods assigned, then
// released, through the allocator in this process (as xvsd's CNI server
// calls it), on the bbolt store and, for the cost of the store, in memory.
func BenchmarkAssignRelease(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(b *testing.B) ipam.Store
	}{
		{"boltstore", func(b *testing.B) ipam.Store {
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "ipam.db"), boltstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"memstore", func(*testing.B) ipam.Store { return memstore.New() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			a := must(ipam.New(tc.open(b), ipam.Options{Node: "n1"}))
			for _, p := range benchPools {
				if err := a.AddPool(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			lat := latencies{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for p := 0; p < benchPods; p++ {
					hd := ipam.Handle{ContainerID: fmt.Sprintf("c%d", p), IfName: "eth0"}
					if err := timed(lat, "assign", func() error {
						_, err := a.Assign(ctx, ipam.AssignRequest{Handle: hd, IPv4: true, IPv6: true})
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
				for p := 0; p < benchPods; p++ {
					hd := ipam.Handle{ContainerID: fmt.Sprintf("c%d", p), IfName: "eth0"}
					if err := timed(lat, "release", func() error { _, err := a.Release(ctx, hd); return err }); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			lat.report(b)
		})
	}
}

// BenchmarkExec: one op is 100 dual-stack pods ADDed, then DELeted, by
// exec'ing a plugin per call as a container runtime does: the reference
// host-local IPAM plugin (Debian containernetworking-plugins) with a temp
// data dir, against this test binary run as a plugin on a bbolt file.
func BenchmarkExec(b *testing.B) {
	const hostLocal = "/usr/lib/cni/host-local"
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cmd  func(dir string) (string, []string, []byte)
	}{
		{"host-local", func(dir string) (string, []string, []byte) {
			conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench","ipam":{"type":"host-local","dataDir":%q,`+
				`"ranges":[[{"subnet":"198.18.0.0/16"}],[{"subnet":"fd00:18::/64"}]]}}`, dir)
			return hostLocal, nil, []byte(conf)
		}},
		{"xvs-boltstore", func(dir string) (string, []string, []byte) {
			return self, []string{envBenchChild + "=" + filepath.Join(dir, "ipam.db")}, nil
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if _, err := os.Stat(hostLocal); tc.name == "host-local" && err != nil {
				b.Skipf("%s: %v (Debian containernetworking-plugins)", hostLocal, err)
			}
			dir := b.TempDir()
			path, env, stdin := tc.cmd(dir)
			if tc.name == "xvs-boltstore" {
				s, err := boltstore.Open(filepath.Join(dir, "ipam.db"), boltstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				a := must(ipam.New(s, ipam.Options{Node: "n1"}))
				for _, p := range benchPools {
					if err := a.AddPool(context.Background(), p); err != nil {
						b.Fatal(err)
					}
				}
				s.Close()
			}
			run := func(command string, p int) error {
				c := exec.Command(path, "-test.run=^$")
				c.Env = append(append(os.Environ(), env...), "CNI_COMMAND="+command, fmt.Sprintf("CNI_CONTAINERID=c%d", p),
					"CNI_NETNS=/proc/self/ns/net", "CNI_IFNAME=eth0", "CNI_PATH=/usr/lib/cni")
				c.Stdin = bytes.NewReader(stdin)
				out, err := c.CombinedOutput()
				if err != nil {
					return fmt.Errorf("%s %s: %v: %s", path, command, err, out)
				}
				return nil
			}
			lat := latencies{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for p := 0; p < benchPods; p++ {
					if err := timed(lat, "add", func() error { return run("ADD", p) }); err != nil {
						b.Fatal(err)
					}
				}
				for p := 0; p < benchPods; p++ {
					if err := timed(lat, "del", func() error { return run("DEL", p) }); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			lat.report(b)
		})
	}
}

// BenchmarkConcurrentAssign: 10 goroutines assign 10 dual-stack pods each
// on one node's allocator, then release them; pods/s is assigned pods per
// second of wall clock. The allocator serializes one node's writes, so
// this is the store's commit rate, which a CNI server under 10 concurrent
// ADDs gets.
func BenchmarkConcurrentAssign(b *testing.B) {
	ctx := context.Background()
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "ipam.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := must(ipam.New(s, ipam.Options{Node: "n1"}))
	for _, p := range benchPools {
		if err := a.AddPool(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	const workers, each = 10, 10
	var assignTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			go func(w int) {
				for p := 0; p < each; p++ {
					hd := ipam.Handle{ContainerID: fmt.Sprintf("w%d-%d", w, p), IfName: "eth0"}
					if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: hd, IPv4: true, IPv6: true}); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}(w)
		}
		for w := 0; w < workers; w++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		assignTime += time.Since(t0)
		if _, err := a.GC(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*workers*each)/assignTime.Seconds(), "pods/s")
}
