package vswitch

import (
	"fmt"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// checkMemif holds a port to spec's memif rules (spec.ValidateMemif),
// the config loader's and the driver's too.
func checkMemif(pc spec.PortConfig) error {
	if errs := spec.ValidateMemif(pc.Mode, pc.Kind, pc.Memif); len(errs) > 0 {
		return fmt.Errorf("port %s: %w: %w", pc.Name, errs[0], ErrConfig)
	}
	return nil
}

// watchLinkLocked follows a port whose link comes and goes while it stays
// open (memif: the peer connects, disconnects, dies). Down, its pod
// routes leave the FIB, as a pod without a link is unreachable, and the
// status says why; up, they come back. The port stays with its worker
// either way: a memif port without a peer receives nothing and refuses
// what it is given (counted as tx drops). Static routes through it stay.
func (s *Switch) watchLinkLocked(ps *portState) {
	ln, ok := ps.Dev.(port.LinkNotifier)
	if !ok {
		return
	}
	ln.NotifyLink(func() {
		ps.linkPending.Store(true)
		select {
		case s.linkCh <- struct{}{}:
		default:
		}
	})
	// A change from here on is pending; read the state as it is now.
	up, reason := ln.LinkUp()
	ps.linkDown = !up
	if !up {
		ps.setStatus(false, ps.Dev.Mode(), reason)
	}
}

// applyLinks applies the link changes ports reported (event loop).
func (s *Switch) applyLinks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.ports {
		if !ps.linkPending.Swap(false) || ps.Dev == nil {
			continue
		}
		ln, ok := ps.Dev.(port.LinkNotifier)
		if !ok {
			continue
		}
		up, reason := ln.LinkUp()
		if up == !ps.linkDown {
			continue
		}
		ps.linkDown = !up
		mode := ps.Dev.Mode()
		if !up {
			var keys []fib.RouteKey
			for _, r := range s.podRoutes(ps) {
				if cur, ok := s.fib.Get(0, r.Prefix); ok && cur.Origin == fib.OriginPod && cur.NextHop.Port == ps.ID {
					keys = append(keys, fib.RouteKey{Prefix: r.Prefix})
				}
			}
			if err := s.applyLocked(nil, keys); err != nil {
				s.log.Warn("remove routes of downed port", "port", ps.Name, "err", err)
			}
			ps.setStatus(false, mode, reason)
			s.log.Warn("port down", "port", ps.Name, "reason", reason)
			continue
		}
		if err := s.installPortRoutesLocked(ps); err != nil {
			s.log.Warn("install routes of port back up", "port", ps.Name, "err", err)
		}
		ps.setStatus(true, mode, "")
		s.log.Info("port up", "port", ps.Name)
	}
}
