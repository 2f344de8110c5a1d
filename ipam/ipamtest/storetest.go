package ipamtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/xvs-project/xvs/ipam"
)

// TestStore runs the conformance tests on fresh stores made by open.
func TestStore(t *testing.T, open func(t *testing.T) ipam.Store) {
	ctx := context.Background()
	b4 := netip.MustParsePrefix("198.18.0.0/26")
	b6 := netip.MustParsePrefix("fd00:18::/122")
	h1 := ipam.Handle{ContainerID: "c1", IfName: "eth0"}
	al := func(addr string, h ipam.Handle) ipam.Allocation {
		return ipam.Allocation{Addr: netip.MustParseAddr(addr), Handle: h, Node: "n1"}
	}

	t.Run("pools", func(t *testing.T) {
		s := open(t)
		for _, p := range []ipam.Pool{
			{Name: "v6", CIDR: netip.MustParsePrefix("fd00:18::/64"), BlockSize: 122},
			{Name: "v4", CIDR: netip.MustParsePrefix("198.18.0.0/16"), BlockSize: 26, NATOutgoing: true, NodeSelector: `zone == "a"`},
		} {
			if err := s.PutPool(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ListPools(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := `[{v4 198.18.0.0/16 26  true zone == "a" false} {v6 fd00:18::/64 122  false  false}]`
		if g := fmt.Sprint(got); g != want {
			t.Errorf("ListPools (-want +got):\n-%s\n+%s", want, g)
		}
		if err := s.DeletePool(ctx, "v4"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePool(ctx, "v4"); !errors.Is(err, ipam.ErrNotFound) {
			t.Errorf("DeletePool twice: %v, want ErrNotFound", err)
		}
	})

	t.Run("block compare-and-swap", func(t *testing.T) {
		s := open(t)
		c, err := s.CreateBlock(ctx, ipam.Block{CIDR: b4, Affinity: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateBlock(ctx, ipam.Block{CIDR: b4, Affinity: "n2"}); !errors.Is(err, ipam.ErrExists) {
			t.Errorf("second CreateBlock: %v, want ErrExists", err)
		}
		stale := c
		c.Allocations = []ipam.Allocation{al("198.18.0.0", h1)}
		u, err := s.UpdateBlock(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if u.Revision == c.Revision {
			t.Errorf("revision unchanged by update: %s", u.Revision)
		}
		stale.Allocations = []ipam.Allocation{al("198.18.0.1", h1)}
		if _, err := s.UpdateBlock(ctx, stale); !errors.Is(err, ipam.ErrConflict) {
			t.Errorf("stale UpdateBlock: %v, want ErrConflict", err)
		}
		if err := s.DeleteBlock(ctx, stale); !errors.Is(err, ipam.ErrConflict) {
			t.Errorf("stale DeleteBlock: %v, want ErrConflict", err)
		}
		g, err := s.GetBlock(ctx, b4)
		if err != nil {
			t.Fatal(err)
		}
		if g.Revision != u.Revision || fmt.Sprint(g.Allocations) != fmt.Sprint(u.Allocations) {
			t.Errorf("GetBlock (-want +got):\n-%+v\n+%+v", u, g)
		}
		if _, err := s.UpdateBlock(ctx, ipam.Block{CIDR: netip.MustParsePrefix("198.18.1.0/26")}); !errors.Is(err, ipam.ErrNotFound) {
			t.Errorf("UpdateBlock of a missing block: %v, want ErrNotFound", err)
		}
		if err := s.DeleteBlock(ctx, g); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetBlock(ctx, b4); !errors.Is(err, ipam.ErrNotFound) {
			t.Errorf("GetBlock after delete: %v, want ErrNotFound", err)
		}
		if bs, _ := s.BlocksByHandle(ctx, h1.String()); len(bs) != 0 {
			t.Errorf("BlocksByHandle after delete: %v, want none", bs)
		}
	})

	t.Run("handle index", func(t *testing.T) {
		s := open(t)
		x, _ := s.CreateBlock(ctx, ipam.Block{CIDR: b4, Affinity: "n1"})
		y, _ := s.CreateBlock(ctx, ipam.Block{CIDR: b6, Affinity: "n1"})
		h2 := ipam.Handle{ContainerID: "c2", IfName: "eth0"}
		x.Allocations = []ipam.Allocation{al("198.18.0.0", h1), al("198.18.0.1", h2)}
		x, err := s.UpdateBlock(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		y.Allocations = []ipam.Allocation{al("fd00:18::5", h1)}
		if _, err := s.UpdateBlock(ctx, y); err != nil {
			t.Fatal(err)
		}
		cidrs := func(h ipam.Handle) string {
			bs, err := s.BlocksByHandle(ctx, h.String())
			if err != nil {
				t.Fatal(err)
			}
			var out []netip.Prefix
			for _, b := range bs {
				out = append(out, b.CIDR)
			}
			ipamSort(out)
			return fmt.Sprint(out)
		}
		if g, w := cidrs(h1), "[198.18.0.0/26 fd00:18::/122]"; g != w {
			t.Errorf("BlocksByHandle(c1) (-want +got):\n-%s\n+%s", w, g)
		}
		x.Allocations = x.Allocations[1:]
		if _, err := s.UpdateBlock(ctx, x); err != nil {
			t.Fatal(err)
		}
		if g, w := cidrs(h1), "[fd00:18::/122]"; g != w {
			t.Errorf("BlocksByHandle(c1) after removal (-want +got):\n-%s\n+%s", w, g)
		}
		if g, w := cidrs(h2), "[198.18.0.0/26]"; g != w {
			t.Errorf("BlocksByHandle(c2) (-want +got):\n-%s\n+%s", w, g)
		}
		// "c1/eth0" must not match "c1/eth01" through a prefix scan.
		if g, w := cidrs(ipam.Handle{ContainerID: "c1", IfName: "eth"}), "[]"; g != w {
			t.Errorf("BlocksByHandle(c1/eth) (-want +got):\n-%s\n+%s", w, g)
		}
	})

	t.Run("list order", func(t *testing.T) {
		s := open(t)
		for _, c := range []string{"fd00:18::/122", "198.18.0.128/26", "198.18.0.64/26", "198.18.1.0/26"} {
			if _, err := s.CreateBlock(ctx, ipam.Block{CIDR: netip.MustParsePrefix(c)}); err != nil {
				t.Fatal(err)
			}
		}
		bs, err := s.ListBlocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range bs {
			got = append(got, b.CIDR.String())
		}
		if g, w := fmt.Sprint(got), "[198.18.0.64/26 198.18.0.128/26 198.18.1.0/26 fd00:18::/122]"; g != w {
			t.Errorf("ListBlocks (-want +got):\n-%s\n+%s", w, g)
		}
	})

	t.Run("batch all or nothing", func(t *testing.T) {
		s := open(t)
		bs, ok := s.(ipam.BatchStore)
		if !ok {
			t.Skip("store is not an ipam.BatchStore")
		}
		x, _ := s.CreateBlock(ctx, ipam.Block{CIDR: b4})
		y, _ := s.CreateBlock(ctx, ipam.Block{CIDR: b6})
		staleY := y
		y.Affinity = "n9"
		if _, err := s.UpdateBlock(ctx, y); err != nil {
			t.Fatal(err)
		}
		x.Allocations = []ipam.Allocation{al("198.18.0.3", h1)}
		staleY.Allocations = []ipam.Allocation{al("fd00:18::3", h1)}
		if _, err := bs.UpdateBlocks(ctx, []ipam.Block{x, staleY}); !errors.Is(err, ipam.ErrConflict) {
			t.Fatalf("UpdateBlocks with one stale block: %v, want ErrConflict", err)
		}
		if g, _ := s.GetBlock(ctx, b4); g.Used() != 0 {
			t.Errorf("UpdateBlocks applied part of a failed batch: %+v", g)
		}
		if got, _ := s.BlocksByHandle(ctx, h1.String()); len(got) != 0 {
			t.Errorf("UpdateBlocks indexed part of a failed batch: %+v", got)
		}
		cur, _ := s.GetBlock(ctx, b6)
		cur.Allocations = staleY.Allocations
		out, err := bs.UpdateBlocks(ctx, []ipam.Block{x, cur})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 || out[0].CIDR != b4 || out[1].CIDR != b6 {
			t.Errorf("UpdateBlocks returned %+v", out)
		}
		if got, _ := s.BlocksByHandle(ctx, h1.String()); len(got) != 2 {
			t.Errorf("BlocksByHandle after batch: %d blocks, want 2", len(got))
		}
	})

	t.Run("copies", func(t *testing.T) {
		s := open(t)
		x, _ := s.CreateBlock(ctx, ipam.Block{CIDR: b4})
		x.Allocations = []ipam.Allocation{al("198.18.0.3", h1)}
		x, _ = s.UpdateBlock(ctx, x)
		x.Allocations[0].Pod = "changed"
		g, _ := s.GetBlock(ctx, b4)
		if g.Allocations[0].Pod != "" {
			t.Error("a returned block aliases the stored one")
		}
	})
}

func ipamSort(ps []netip.Prefix) {
	bs := make([]ipam.Block, len(ps))
	for i, p := range ps {
		bs[i].CIDR = p
	}
	ipam.SortBlocks(bs)
	for i := range bs {
		ps[i] = bs[i].CIDR
	}
}

// CheckStore runs Check and reports each violation as a test error. It
// returns the handles seen and what each holds.
func CheckStore(t testing.TB, s ipam.Store, strictFamilies bool) map[ipam.Handle][]netip.Addr {
	t.Helper()
	held, errs := Check(s, strictFamilies)
	for _, err := range errs {
		t.Error(err)
	}
	return held
}

// Check verifies what must hold in a store at rest, whatever ran or
// crashed before: every block keeps its invariants and lies in a pool, no
// address is held twice, every allocation is found through its handle
// (else a Release would leak it), and (strictFamilies) every handle holds
// two addresses, when all pods were dual-stack and the store commits
// batches. It returns the handles seen with their addresses, and the
// violations.
func Check(s ipam.Store, strictFamilies bool) (map[ipam.Handle][]netip.Addr, []error) {
	ctx := context.Background()
	var errs []error
	pools, err := s.ListPools(ctx)
	if err != nil {
		return nil, []error{err}
	}
	blocks, err := s.ListBlocks(ctx)
	if err != nil {
		return nil, []error{err}
	}
	seen := map[netip.Addr]ipam.Handle{}
	held := map[ipam.Handle][]netip.Addr{}
	for _, b := range blocks {
		if !ipam.CheckBlock(&b) {
			errs = append(errs, fmt.Errorf("block %s breaks its invariants: %+v", b.CIDR, b))
		}
		inPool := false
		for _, p := range pools {
			inPool = inPool || p.Contains(b.CIDR)
		}
		if !inPool {
			errs = append(errs, fmt.Errorf("block %s is in no pool", b.CIDR))
		}
		for _, al := range b.Allocations {
			if h, dup := seen[al.Addr]; dup {
				errs = append(errs, fmt.Errorf("address %s held twice: %s and %s", al.Addr, h, al.Handle))
			}
			seen[al.Addr] = al.Handle
			held[al.Handle] = append(held[al.Handle], al.Addr)
		}
	}
	for h, addrs := range held {
		bs, err := s.BlocksByHandle(ctx, h.String())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found := 0
		for _, b := range bs {
			for _, al := range b.Allocations {
				if al.Handle == h {
					found++
				}
			}
		}
		if found != len(addrs) {
			errs = append(errs, fmt.Errorf("handle %s holds %v, its index finds %d of them: a Release would leak the rest", h, addrs, found))
		}
		if strictFamilies && len(addrs) != 2 {
			errs = append(errs, fmt.Errorf("handle %s holds %v: half a dual-stack allocation", h, addrs))
		}
	}
	return held, errs
}
