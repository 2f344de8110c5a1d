package conntrack

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

func key4(src, dst string, sp, dp uint16, proto uint8) Key {
	k := Key{SPort: sp, DPort: dp, Proto: proto, Family: IPv4}
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(k.Src[:], s[:])
	copy(k.Dst[:], d[:])
	return k
}

func key6(src, dst string, sp, dp uint16, proto uint8) Key {
	return Key{Src: netip.MustParseAddr(src).As16(), Dst: netip.MustParseAddr(dst).As16(),
		SPort: sp, DPort: dp, Proto: proto, Family: IPv6}
}

func newTable(t testing.TB, cfg Config) *Table {
	t.Helper()
	tb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "conntrack size 0: must be 1 to 16777216"},
		{Config{Size: 1 << 25}, "conntrack size 33554432: must be 1 to 16777216"},
		{Config{Size: 10, MaxEmbryonicPerSource: 11}, "conntrack maxEmbryonicPerSource 11: must be 0 to size (10)"},
		{Config{Size: 10, EvictScan: -2}, "conntrack evictScan -2: must be -1 to size (10)"},
	} {
		_, err := New(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestCreateLookup checks that a flow is found from both directions, with
// the key each packet must be translated to.
func TestCreateLookup(t *testing.T) {
	client, vip := key4("198.18.1.1", "198.19.128.10", 40000, 80, ProtoTCP), Key{}
	_ = vip
	backendReply := key4("198.18.2.7", "198.18.1.1", 8080, 40000, ProtoTCP) // DNAT to 198.18.2.7:8080
	pod := key6("fd00:19::1", "fd00:99::1", 5555, 53, ProtoUDP)
	snatReply := key6("fd00:99::1", "fd00:18::1", 53, 5555, ProtoUDP)
	echo := key4("198.18.1.1", "198.18.9.9", 77, 77, ProtoICMP)
	for _, tc := range []struct {
		name        string
		orig, reply Key
	}{
		{"untranslated", client, client.Reverse()},
		{"dnat", client, backendReply},
		{"snat6", pod, snatReply},
		{"echo", echo, echo.Reverse()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(t, Config{Size: 16})
			var f Flow
			if o := tb.Create(&tc.orig, &tc.reply, InitialState(tc.orig.Proto, FlagSYN, false), 42, 1, &f); o != Created {
				t.Fatalf("Create = %v", o)
			}
			if f.Target != tc.reply.Reverse() || f.Dir != DirOriginal || f.Mark != 42 {
				t.Errorf("created flow: target %v dir %d mark %d, want %v 0 42", f.Target, f.Dir, f.Mark, tc.reply.Reverse())
			}
			var g Flow
			if !tb.Lookup(&tc.orig, &g) || g.Dir != DirOriginal || g.Target != tc.reply.Reverse() {
				t.Errorf("lookup original: %+v", g)
			}
			if !tb.Lookup(&tc.reply, &g) || g.Dir != DirReply || g.Target != tc.orig.Reverse() {
				t.Errorf("lookup reply: %+v", g)
			}
			if o := tb.Create(&tc.orig, &tc.reply, SynSent, 0, 1, &g); o != Existed || g.idx != f.idx {
				t.Errorf("second Create = %v (%d), want existed (%d)", o, g.idx, f.idx)
			}
			other := tc.orig
			other.SPort++
			if tb.Lookup(&other, &g) {
				t.Errorf("lookup of %v hit", other)
			}
			if o := tb.Create(&other, &tc.reply, SynSent, 0, 1, &g); o != Conflict {
				t.Errorf("Create with a used reply key = %v, want conflict", o)
			}
		})
	}
}

// TestTCPStates drives flows through flag sequences, the direction of
// each packet given by the letter: o original, r reply.
func TestTCPStates(t *testing.T) {
	const S, A, F, R = FlagSYN, FlagACK, FlagFIN, FlagRST
	type pkt struct {
		dir   uint8
		flags uint8
	}
	o := func(f uint8) pkt { return pkt{DirOriginal, f} }
	r := func(f uint8) pkt { return pkt{DirReply, f} }
	for _, tc := range []struct {
		name string
		pkts []pkt
		want []State
	}{
		{"handshake", []pkt{r(S | A), o(A)}, []State{SynRecv, Established}},
		{"syn retransmit", []pkt{o(S), r(S | A), r(S | A), o(A)}, []State{SynSent, SynRecv, SynRecv, Established}},
		{"client closes", []pkt{r(S | A), o(A), o(F | A), r(A), r(F | A), o(A)},
			[]State{SynRecv, Established, FinWait, CloseWait, LastAck, TimeWait}},
		{"server closes", []pkt{r(S | A), o(A), r(F | A), o(A), o(F | A), r(A)},
			[]State{SynRecv, Established, FinWait, CloseWait, LastAck, TimeWait}},
		{"simultaneous close", []pkt{r(S | A), o(A), o(F | A), r(F | A), o(A)},
			[]State{SynRecv, Established, FinWait, LastAck, TimeWait}},
		{"own ack does not close", []pkt{r(S | A), o(A), o(F | A), o(A)}, []State{SynRecv, Established, FinWait, FinWait}},
		{"reset", []pkt{r(S | A), o(A), r(R)}, []State{SynRecv, Established, Close}},
		{"reset in handshake", []pkt{r(R)}, []State{Close}},
		{"reopen after time-wait", []pkt{r(S | A), o(A), o(F), r(F | A), o(A), o(S)},
			[]State{SynRecv, Established, FinWait, LastAck, TimeWait, SynSent}},
		{"ack-less reply ignored", []pkt{r(S)}, []State{SynSent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(t, Config{Size: 4})
			k := key4("198.18.0.1", "198.18.0.2", 1000, 80, ProtoTCP)
			rk := k.Reverse()
			var f Flow
			if o := tb.Create(&k, &rk, SynSent, 0, 1, &f); o != Created {
				t.Fatal(o)
			}
			for i, p := range tc.pkts {
				var g Flow
				lk := k
				if p.dir == DirReply {
					lk = rk
				}
				if !tb.Lookup(&lk, &g) || !tb.Update(&g, p.flags, 60, 1) {
					t.Fatalf("packet %d: lost the flow", i)
				}
				if g.State != tc.want[i] {
					t.Errorf("after packet %d (dir %d flags %#x): %v, want %v", i, p.dir, p.flags, g.State, tc.want[i])
				}
			}
		})
	}
}

func TestInitialState(t *testing.T) {
	for _, tc := range []struct {
		proto, flags uint8
		loose        bool
		want         State
	}{
		{ProtoTCP, FlagSYN, false, SynSent},
		{ProtoTCP, FlagSYN | FlagACK, true, StateNone},
		{ProtoTCP, FlagACK, false, StateNone},
		{ProtoTCP, FlagACK, true, Established},
		{ProtoTCP, FlagRST | FlagACK, true, StateNone},
		{ProtoTCP, FlagFIN | FlagACK, true, StateNone},
		{ProtoUDP, 0, false, Unreplied},
		{ProtoICMPv6, 0, false, Unreplied},
	} {
		if got := InitialState(tc.proto, tc.flags, tc.loose); got != tc.want {
			t.Errorf("InitialState(%d, %#x, %v) = %v, want %v", tc.proto, tc.flags, tc.loose, got, tc.want)
		}
	}
}

// TestSweepTimeouts checks each state's timeout: kept one second before,
// removed at it.
func TestSweepTimeouts(t *testing.T) {
	to := Timeouts{SynSent: 5, Established: 50, TimeWait: 7, UDPNew: 3, UDPReplied: 9, ICMP: 4}
	for _, tc := range []struct {
		name  string
		proto uint8
		st    State
		reply bool // a reply packet seen
		want  uint32
	}{
		{"syn-sent", ProtoTCP, SynSent, false, 5},
		{"established", ProtoTCP, Established, false, 50},
		{"udp unreplied", ProtoUDP, Unreplied, false, 3},
		{"udp replied", ProtoUDP, Unreplied, true, 9},
		{"icmp", ProtoICMP, Unreplied, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(t, Config{Size: 8, Timeouts: to})
			k := key4("198.18.0.1", "198.18.0.2", 1000, 80, tc.proto)
			rk := k.Reverse()
			var f Flow
			tb.Create(&k, &rk, tc.st, 0, 100, &f)
			if tc.reply {
				tb.Lookup(&rk, &f)
				tb.Update(&f, 0, 1, 100)
			}
			if n := tb.Sweep(100+tc.want-1, 8); n != 0 {
				t.Errorf("swept %d flows after %d s, want 0", n, tc.want-1)
			}
			if n := tb.Sweep(100+tc.want, 8); n != 1 {
				t.Errorf("swept %d flows after %d s, want 1", n, tc.want)
			}
			if tb.Lookup(&k, &f) || tb.Stats().Entries != 0 {
				t.Errorf("flow still there after its timeout")
			}
		})
	}
}

// TestSNATPorts: flows from many pods to one destination through one node
// address get distinct ports; a pod's own port is kept when free; the
// range runs out; a removed flow's port is free again.
func TestSNATPorts(t *testing.T) {
	const lo, hi = 20000, 20063
	tb := newTable(t, Config{Size: 1024, MaxEmbryonicPerSource: 1024})
	node := key4("198.18.0.1", "0.0.0.0", 0, 0, 0).Src
	used := map[uint16]bool{}
	var flows []Flow
	for i := range 64 {
		orig := key4(fmt.Sprintf("198.19.0.%d", i+1), "198.18.5.5", 20010, 443, ProtoTCP)
		reply := Key{Src: orig.Dst, Dst: node, SPort: 443, Proto: ProtoTCP, Family: IPv4}
		var f Flow
		if o := tb.CreateSNAT(&orig, &reply, lo, hi, SynSent, 0, 1, &f); o != Created {
			t.Fatalf("flow %d: %v", i, o)
		}
		p := f.Target.SPort
		if p < lo || p > hi || used[p] {
			t.Fatalf("flow %d got port %d (used before: %v)", i, p, used[p])
		}
		if i == 0 && p != 20010 {
			t.Errorf("first flow got port %d, want its own 20010", p)
		}
		if f.Target.Src != node || f.Target.Dst != orig.Dst || f.Target.DPort != 443 {
			t.Errorf("flow %d target %v", i, f.Target)
		}
		used[p] = true
		flows = append(flows, f)
	}
	orig := key4("198.19.1.1", "198.18.5.5", 1, 443, ProtoTCP)
	reply := Key{Src: orig.Dst, Dst: node, SPort: 443, Proto: ProtoTCP, Family: IPv4}
	var f Flow
	if o := tb.CreateSNAT(&orig, &reply, lo, hi, SynSent, 0, 1, &f); o != NoPort {
		t.Errorf("65th flow in a 64-port range: %v, want no-port", o)
	}
	// Another destination reuses the same ports.
	orig2 := key4("198.19.1.1", "198.18.5.6", 20010, 443, ProtoTCP)
	reply2 := Key{Src: orig2.Dst, Dst: node, SPort: 443, Proto: ProtoTCP, Family: IPv4}
	if o := tb.CreateSNAT(&orig2, &reply2, lo, hi, SynSent, 0, 1, &f); o != Created || f.Target.SPort != 20010 {
		t.Errorf("other destination: %v port %d, want created 20010", o, f.Target.SPort)
	}
	// Expire the flow holding 20005 and take it again.
	victim := uint16(20005)
	n := tb.DeleteFunc(1, func(e *Entry) bool { return e.Reply.DPort == victim && e.Reply.Src == orig.Dst })
	if n != 1 {
		t.Fatalf("deleted %d", n)
	}
	if o := tb.CreateSNAT(&orig, &reply, lo, hi, SynSent, 0, 1, &f); o != Created || f.Target.SPort != victim {
		t.Errorf("after release: %v port %d, want created %d", o, f.Target.SPort, victim)
	}
	// ICMP echo: the identifier is the port, in both fields.
	echo := key4("198.19.0.1", "198.18.5.5", 9, 9, ProtoICMP)
	er := Key{Src: echo.Dst, Dst: node, Proto: ProtoICMP, Family: IPv4}
	if o := tb.CreateSNAT(&echo, &er, lo, hi, Unreplied, 0, 1, &f); o != Created || f.Target.SPort != f.Target.DPort || f.Target.SPort < lo {
		t.Errorf("echo: %v target %v", o, f.Target)
	}
	if o := tb.CreateSNAT(&echo, &er, 0, 0, Unreplied, 0, 1, &f); o != NoPort {
		t.Errorf("empty range: %v", o)
	}
}

// TestSYNFlood floods a table with 10x its size of SYNs from one address
// with random source ports: the flood is capped by the per-source limit,
// established flows keep working, and a new client still gets an entry.
// Then a flood from as many sources as the table holds: early eviction
// of embryonic flows keeps room for new clients, established flows stay.
func TestSYNFlood(t *testing.T) {
	const size = 4096
	tb := newTable(t, Config{Size: size})
	var est []Key
	for i := range 100 {
		k := key4("198.18.3.3", "198.19.128.1", uint16(10000+i), 80, ProtoTCP)
		rk := k.Reverse()
		var f Flow
		tb.Create(&k, &rk, SynSent, 0, 1, &f)
		tb.Lookup(&rk, &f)
		tb.Update(&f, FlagSYN|FlagACK, 60, 1)
		tb.Lookup(&k, &f)
		tb.Update(&f, FlagACK, 60, 1)
		if f.State != Established {
			t.Fatalf("flow %d is %v", i, f.State)
		}
		est = append(est, k)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	created := 0
	for range 10 * size {
		k := key4("198.18.66.66", "198.19.128.1", uint16(rng.IntN(65535)+1), 80, ProtoTCP)
		rk := k.Reverse()
		var f Flow
		if tb.Create(&k, &rk, SynSent, 0, 2, &f) == Created {
			created++
		}
	}
	st := tb.Stats()
	t.Logf("one-source flood: %d SYNs, %d entries made, %d dropped by the per-source limit, table %d/%d",
		10*size, created, st.DropEmbryonic, st.Entries, size)
	if created > size/16 {
		t.Errorf("the flood got %d entries, more than the per-source limit %d", created, size/16)
	}
	checkEstablished(t, tb, est)
	k := key4("198.18.7.7", "198.19.128.1", 33333, 80, ProtoTCP)
	rk := k.Reverse()
	var f Flow
	if o := tb.Create(&k, &rk, SynSent, 0, 3, &f); o != Created {
		t.Errorf("new client during the flood: %v", o)
	}

	// Many sources: the table fills, then embryonic flows are evicted.
	for i := range 10 * size {
		k := key4(fmt.Sprintf("198.19.%d.%d", i/200, i%200+1), "198.19.128.1", 1, 80, ProtoTCP)
		rk := k.Reverse()
		tb.Create(&k, &rk, SynSent, 0, uint32(4+i/size), &f)
	}
	st = tb.Stats()
	t.Logf("many-source flood: %d SYNs, table %d/%d, evicted %d, dropped full %d", 10*size, st.Entries, size, st.Evicted, st.DropFull)
	if st.Evicted == 0 || st.Entries != size {
		t.Errorf("evicted %d, entries %d: want evictions and a full table", st.Evicted, st.Entries)
	}
	checkEstablished(t, tb, est)
	k = key4("198.18.8.8", "198.19.128.1", 4444, 80, ProtoTCP)
	rk = k.Reverse()
	if o := tb.Create(&k, &rk, SynSent, 0, 20, &f); o != Created {
		t.Errorf("new client after the many-source flood: %v", o)
	}
}

func checkEstablished(t *testing.T, tb *Table, est []Key) {
	t.Helper()
	for _, k := range est {
		var f Flow
		if !tb.Lookup(&k, &f) || f.State != Established {
			t.Errorf("established flow %v lost in the flood", k)
			return
		}
	}
}

// TestFullDrops: without early eviction a full table drops new flows and
// counts them; existing flows keep working.
func TestFullDrops(t *testing.T) {
	tb := newTable(t, Config{Size: 64, EvictScan: -1, MaxEmbryonicPerSource: 64})
	var f Flow
	for i := range 64 {
		k := key4("198.18.0.1", "198.18.0.2", uint16(i+1), 53, ProtoUDP)
		rk := k.Reverse()
		if o := tb.Create(&k, &rk, Unreplied, 0, 1, &f); o != Created {
			t.Fatalf("flow %d: %v", i, o)
		}
	}
	k := key4("198.18.0.9", "198.18.0.2", 100, 53, ProtoUDP)
	rk := k.Reverse()
	if o := tb.Create(&k, &rk, Unreplied, 0, 1, &f); o != Full {
		t.Errorf("create in a full table: %v", o)
	}
	if tb.Stats().DropFull != 1 {
		t.Errorf("stats %+v", tb.Stats())
	}
	k = key4("198.18.0.1", "198.18.0.2", 7, 53, ProtoUDP)
	if !tb.Lookup(&k, &f) || !tb.Update(&f, 0, 10, 1) {
		t.Errorf("existing flow lost")
	}
}

func TestFilter(t *testing.T) {
	e := Entry{Orig: key4("198.18.0.1", "198.19.128.1", 1234, 80, ProtoTCP),
		Reply: key4("198.18.2.2", "198.18.0.1", 8080, 1234, ProtoTCP), State: Established, Mark: 3}
	for _, tc := range []struct {
		words []string
		match bool
		err   string
	}{
		{nil, true, ""},
		{[]string{"tcp"}, true, ""},
		{[]string{"udp"}, false, ""},
		{[]string{"198.18.2.2", "port=8080"}, true, ""},
		{[]string{"198.18.2.3"}, false, ""},
		{[]string{"state=established", "mark=3"}, true, ""},
		{[]string{"state=syn_sent"}, false, ""},
		{[]string{"mark=0"}, false, ""},
		{[]string{"port=0"}, false, `conntrack filter port "0": want 1-65535`},
		{[]string{"state=bogus"}, false, `conntrack filter state "bogus": unknown`},
		{[]string{"frob"}, false, `conntrack filter "frob": not a protocol, address or key=value`},
		{[]string{"x=1"}, false, `conntrack filter "x=1": unknown key "x"`},
	} {
		f, err := ParseFilter(tc.words)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseFilter(%q) = %v, want %q", tc.words, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(&e); got != tc.match {
			t.Errorf("filter %q: match %v, want %v", tc.words, got, tc.match)
		}
	}
	if s := e.String(); s == "" {
		t.Error("empty entry string")
	}
}

func TestZeroAlloc(t *testing.T) {
	tb := newTable(t, Config{Size: 1024})
	k := key6("fd00:19::1", "fd00:96::10", 1000, 80, ProtoTCP)
	rk := key6("fd00:19::7", "fd00:19::1", 8080, 1000, ProtoTCP)
	var f Flow
	tb.Create(&k, &rk, SynSent, 0, 1, &f)
	if n := testing.AllocsPerRun(1000, func() {
		tb.Lookup(&k, &f)
		tb.Update(&f, FlagACK, 100, 2)
	}); n != 0 {
		t.Errorf("Lookup+Update: %v allocs", n)
	}
	var port uint16
	if n := testing.AllocsPerRun(1000, func() {
		port++
		o := key4("198.19.0.1", "198.18.9.9", port, 53, ProtoUDP)
		r := Key{Src: o.Dst, Dst: k.Src, SPort: 53, Proto: ProtoUDP, Family: IPv4}
		var g Flow
		if tb.CreateSNAT(&o, &r, 1024, 65535, Unreplied, 0, 1, &g) != Created {
			t.Fatal("create")
		}
		s := tb.entries[g.idx].seq.Load()
		tb.remove(g.idx, s, removeAny, 0)
	}); n != 0 {
		t.Errorf("CreateSNAT+remove: %v allocs", n)
	}
}

// TestConcurrent runs workers that create, look up and update their own
// flows and look up each other's, a sweeper that expires the short-lived
// ones and a walker, all at once; run it with -race. Each worker's
// established flows must always be found.
func TestConcurrent(t *testing.T) {
	const workers, size = 4, 2048
	tb := newTable(t, Config{Size: size, MaxEmbryonicPerSource: size, Timeouts: Timeouts{UDPNew: 1}})
	var now atomic.Uint32
	now.Store(1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var failures atomic.Int64
	var ready sync.WaitGroup
	ready.Add(workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var mine []Key
			for i := range 200 {
				k := key4(fmt.Sprintf("198.18.%d.1", w), "198.19.0.1", uint16(i+1), 80, ProtoTCP)
				rk := k.Reverse()
				var f Flow
				if tb.Create(&k, &rk, Established, uint32(w), now.Load(), &f) != Created {
					failures.Add(1)
				}
				mine = append(mine, k)
			}
			ready.Done()
			ready.Wait()
			for i := 0; i < 20000; i++ {
				var f Flow
				k := mine[rng.IntN(len(mine))]
				if !tb.Lookup(&k, &f) || f.Mark != uint32(w) || !tb.Update(&f, FlagACK, 100, now.Load()) {
					failures.Add(1)
				}
				// Short-lived UDP flows the sweeper removes.
				u := key4(fmt.Sprintf("198.18.%d.2", w), "198.19.0.2", uint16(rng.IntN(5000)+1), 53, ProtoUDP)
				ur := u.Reverse()
				if !tb.Lookup(&u, &f) {
					tb.Create(&u, &ur, Unreplied, 0, now.Load(), &f)
				} else {
					tb.Update(&f, 0, 1, now.Load())
				}
			}
		}()
	}
	sweeper := make(chan struct{})
	go func() {
		defer close(sweeper)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := now.Add(1)
			tb.Sweep(n, size/4)
			tb.Walk(n, func(e *Entry) bool { return true })
		}
	}()
	wg.Wait()
	close(stop)
	<-sweeper
	if n := failures.Load(); n != 0 {
		t.Errorf("%d lookups or updates of established flows failed", n)
	}
	live := 0
	tb.Walk(now.Load(), func(*Entry) bool { live++; return true })
	if st := tb.Stats(); int64(live) != st.Entries {
		t.Errorf("walk saw %d flows, stats say %d", live, st.Entries)
	}
	t.Logf("stats %+v", tb.Stats())
}
