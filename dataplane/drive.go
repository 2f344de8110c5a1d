package dataplane

import "github.com/xvs-project/xvs/port"

// Driving a worker by hand. A caller that does not Start a worker may run
// it itself, one step at a time: a test that forwards one vector and looks
// at what came out, a benchmark of the pipeline without a kernel. None of
// these may be called while the worker runs, and none allocates.

// Step runs one turn of the worker's loop at the current time: it
// receives what its ports have, forwards it, flushes, and publishes the
// counters. It returns how many frames it received.
func (w *Worker) Step() int {
	w.now = nanotime()
	n := w.poll1()
	w.cnt.publish()
	return n
}

// Tick sets the worker's clock to the current time, as every turn of its
// loop does.
func (w *Worker) Tick() { w.now = nanotime() }

// Now returns the worker's clock (monotonic nanoseconds).
func (w *Worker) Now() int64 { return w.now }

// SetNow sets the worker's clock: a test moves it past a rate limit.
func (w *Worker) SetNow(ns int64) { w.now = ns }

// Process forwards pkts, a vector received on in, queueing what it sends
// until Flush (or DiscardQueued).
func (w *Worker) Process(pkts []port.Packet, in *Port) { w.process(pkts, in) }

// ForwardLarge forwards one large frame received on in, as Process does a
// vector.
func (w *Worker) ForwardLarge(lf *port.LargeFrame, in *Port) { w.forwardLarge(lf, in) }

// Emit queues p for out, as the pipeline does with what it forwards.
func (w *Worker) Emit(p *port.Packet, out *Port) { w.emit(p, out) }

// Flush sends what is queued.
func (w *Worker) Flush() { w.flush() }

// DiscardQueued frees every frame queued since the last Flush, unsent.
func (w *Worker) DiscardQueued() {
	for _, id := range w.touched {
		for _, p := range w.out[id] {
			w.umem.Free(p.Addr)
		}
		w.out[id] = w.out[id][:0]
	}
	w.touched = w.touched[:0]
}

// PublishCounters publishes what the worker counted since it last did
// (Step does it too).
func (w *Worker) PublishCounters() { w.cnt.publish() }

// RxPorts returns the ports the worker receives from.
func (w *Worker) RxPorts() []*Port { return w.rxList }

// HandedOff reports whether frames for worker j wait in the handoff ring
// unpublished.
func (w *Worker) HandedOff(j int) bool { return w.outDirty[j] }
