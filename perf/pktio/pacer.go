package pktio

import (
	"runtime"
	"time"
)

// Pacer spaces batches to a packet rate (a token bucket whose depth is one
// batch). A zero rate means no limit.
type Pacer struct {
	rate  float64 // packets per second
	burst uint64
	start time.Time
	sent  uint64 // tokens consumed since start
}

// NewPacer returns a pacer for pps packets per second that lets at most
// burst through at once.
func NewPacer(pps float64, burst int) *Pacer {
	return &Pacer{rate: pps, burst: uint64(max(burst, 1)), start: time.Now()}
}

// Take waits until at least one packet may go and returns how many, at most
// want, may go now. It returns want at once when the rate is unlimited, and
// 0 when deadline passes first.
func (p *Pacer) Take(want int, deadline time.Time) int {
	if p.rate <= 0 || want <= 0 {
		return want
	}
	for {
		now := time.Now()
		due := uint64(p.rate * now.Sub(p.start).Seconds())
		if due > p.sent+p.burst {
			// Behind (a stall): drop the backlog rather than burst.
			p.sent = due - p.burst
		}
		if due > p.sent {
			n := min(uint64(want), due-p.sent)
			p.sent += n
			return int(n)
		}
		if !deadline.IsZero() && now.After(deadline) {
			return 0
		}
		next := p.start.Add(time.Duration(float64(p.sent+1) / p.rate * 1e9))
		if wait := next.Sub(now); wait > 100*time.Microsecond {
			time.Sleep(wait - 50*time.Microsecond)
		} else {
			runtime.Gosched()
		}
	}
}
