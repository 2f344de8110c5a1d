package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/lab"
)

// birdCtl is a birdc session over BIRD's control socket, so a command's
// time is BIRD's, not a process start's.
type birdCtl struct {
	c net.Conn
	r *bufio.Reader
}

func dialBIRD(sock string) (*birdCtl, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	b := &birdCtl{c: c, r: bufio.NewReader(c)}
	if _, err := b.reply(); err != nil { // the greeting
		c.Close()
		return nil, err
	}
	return b, nil
}

// reply reads one reply: lines "NNNN-text" or " text" continue it, the
// line "NNNN text" ends it.
func (b *birdCtl) reply() (string, error) {
	var out strings.Builder
	b.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := b.r.ReadString('\n')
		if err != nil {
			return out.String(), err
		}
		out.WriteString(line)
		if len(line) > 4 && line[4] == ' ' && line[0] >= '0' && line[0] <= '9' {
			if line[0] >= '8' { // 8xxx and 9xxx are errors
				return out.String(), fmt.Errorf("bird: %s", strings.TrimSpace(line))
			}
			return out.String(), nil
		}
	}
}

func (b *birdCtl) do(cmd string) error {
	if _, err := fmt.Fprintf(b.c, "%s\n", cmd); err != nil {
		return err
	}
	_, err := b.reply()
	return err
}

// TestBGPConvergence measures, through xvsd, how long a route change at
// a BIRD peer takes to reach the switch's FIB: 1,000 prefixes (/28s,
// each its own static protocol in BIRD), each withdrawn (BIRD's disable
// answered → the prefix no longer matches in xvsd's FIB) and announced
// again (enable answered → the prefix matches, resolved, adjacency).
// xvsd's FIB is polled over its API, so each figure includes a poll
// (~0.2 ms). Several minutes with the set-up; XVS_BGP_CONV=1 runs it.
func TestBGPConvergence(t *testing.T) {
	if os.Getenv("XVS_BGP_CONV") != "1" {
		t.Skip("XVS_BGP_CONV=1 runs the convergence measurement")
	}
	const n = 1000
	l := newLab(t, lab.Options{Nodes: 1, PodsPerNode: 1, BGP: true, BGPOutsideAS: 65000})
	node := l.T.Nodes[0]
	prefix := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(128 + i/16), byte(i%16) * 16}), 28)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "router id 198.18.0.254;\nprotocol device {}\n")
	fmt.Fprintf(&conf, "protocol bgp x4 { local 198.18.0.254 as 65000; neighbor %s as 64512; ipv4 { import all; export all; next hop self; }; }\n", node.UplinkV4.Addr())
	for i := range n {
		fmt.Fprintf(&conf, "protocol static s%d { ipv4; route %s unreachable; }\n", i, prefix(i))
	}
	sock := startBIRD(t, l, conf.String())

	c, err := api.Dial(node.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	matches := func(pf netip.Prefix) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rs, err := c.Routes(ctx, pf.Addr().Next().String())
		if err != nil {
			return false, err
		}
		return len(rs) == 1 && rs[0].GetPrefix() == pf.String() && rs[0].GetKind() == "adjacency", nil
	}
	eventually(t, 120*time.Second, "all prefixes learned", func() error {
		for _, i := range []int{0, n / 2, n - 1} {
			if ok, err := matches(prefix(i)); !ok || err != nil {
				return fmt.Errorf("%s not routed (%v)", prefix(i), err)
			}
		}
		return nil
	})
	var b *birdCtl
	eventually(t, 10*time.Second, "bird control socket", func() (err error) { b, err = dialBIRD(sock); return err })
	defer b.c.Close()

	wait := func(pf netip.Prefix, want bool) (time.Duration, error) {
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			ok, err := matches(pf)
			if err != nil {
				return 0, err
			}
			if ok == want {
				return time.Since(start), nil
			}
		}
		return 0, fmt.Errorf("%s: still %v after 10s", pf, !want)
	}
	var wd, an []time.Duration
	for i := range n {
		pf := prefix(i)
		if err := b.do(fmt.Sprintf("disable s%d", i)); err != nil {
			t.Fatal(err)
		}
		d, err := wait(pf, false)
		if err != nil {
			t.Fatal(err)
		}
		wd = append(wd, d)
		if err := b.do(fmt.Sprintf("enable s%d", i)); err != nil {
			t.Fatal(err)
		}
		if d, err = wait(pf, true); err != nil {
			t.Fatal(err)
		}
		an = append(an, d)
	}
	q := func(ds []time.Duration, f float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[int(f*float64(len(s)-1))]
	}
	t.Logf("withdraw at BIRD -> gone from xvsd's FIB: p50 %v, p99 %v, max %v (%d prefixes)", q(wd, .5), q(wd, .99), q(wd, 1), n)
	t.Logf("announce at BIRD -> forwarding in xvsd's FIB: p50 %v, p99 %v, max %v (%d prefixes)", q(an, .5), q(an, .99), q(an, 1), n)
}
