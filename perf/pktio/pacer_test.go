package pktio

import (
	"testing"
	"time"
)

func TestPacerUnlimited(t *testing.T) {
	p := NewPacer(0, 64)
	if got := p.Take(64, time.Time{}); got != 64 {
		t.Fatalf("unlimited Take = %d", got)
	}
}

// TestPacerNeverAhead checks the bucket never lets more through than the
// rate allows plus one burst. A slow machine only makes it send less, so
// the check holds however loaded the host is.
func TestPacerNeverAhead(t *testing.T) {
	const rate, burst = 20000.0, 32
	p := NewPacer(rate, burst)
	start := time.Now()
	deadline := start.Add(50 * time.Millisecond)
	total := 0
	for {
		n := p.Take(burst, deadline)
		if n == 0 {
			break
		}
		if n > burst {
			t.Fatalf("Take returned %d > burst %d", n, burst)
		}
		total += n
	}
	if allowed := int(rate*time.Since(start).Seconds()) + burst; total > allowed {
		t.Errorf("sent %d, the rate allows %d", total, allowed)
	}
	if total == 0 {
		t.Error("nothing sent")
	}
}
