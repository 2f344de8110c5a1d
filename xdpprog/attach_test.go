package xdpprog

import (
	"testing"
	"time"

	"github.com/xvs-project/xvs/xsk/xsktest"
)

func TestAttachDetach(t *testing.T) {
	requireBPF(t)
	xsktest.CheckGoroutines(t)
	a, b := xsktest.NewNS(t), xsktest.NewNS(t)
	ifA, _ := xsktest.Veth(t, a, b, nil, nil)
	idx := a.Ifindex(t, ifA)
	p, err := New(Pod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	other, err := New(Pod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	for _, tc := range []struct {
		mode    AttachMode
		netlink bool
	}{{AttachNative, false}, {AttachGeneric, false}, {AttachAuto, false}, {AttachNative, true}, {AttachGeneric, true}} {
		mode := tc.mode
		p.forceNetlink, other.forceNetlink = tc.netlink, tc.netlink
		for i := range 5 {
			done := make(chan error, 1)
			go func() {
				err := a.Do(func() error {
					got, err := p.Attach(idx, mode)
					if err == nil && mode != AttachAuto && got != mode {
						t.Errorf("attached %s, want %s", got, mode)
					}
					return err
				})
				if err == nil && !a.XDPAttached(t, ifA) {
					t.Errorf("%s round %d: netlink shows no program", mode, i)
				}
				if err == nil {
					// Someone else's program is never replaced.
					if oerr := a.Do(func() error { _, err := other.Attach(idx, mode); return err }); oerr == nil {
						t.Errorf("%s: second program replaced the first", mode)
						other.Detach()
					}
					err = p.Detach()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s round %d: %v", mode, i, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s round %d: attach/detach hung", mode, i)
			}
			if a.XDPAttached(t, ifA) {
				t.Fatalf("%s round %d: program left attached", mode, i)
			}
		}
	}
}
