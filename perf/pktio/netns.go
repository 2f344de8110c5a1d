package pktio

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetns runs fn on a thread switched into the named network namespace
// (/run/netns/NAME); an empty name runs fn where the caller is. Sockets fn
// opens stay in that namespace whichever thread uses them later.
func InNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime destroys it with the
		// goroutine rather than reuse a thread in the wrong namespace.
		return fmt.Errorf("leave netns %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
