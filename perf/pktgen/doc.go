// Package pktgen is the traffic generator and sink behind cmd/xvs-pktgen and
// the perf scenarios: it checks a Config, opens the interface(s) (AF_XDP
// through the dataplane's ring layer where it works, else AF_PACKET; see
// Config.IO and Config.RxIO), sends bounded traffic built by perf/gen, paced
// or at full speed, counts what arrives, prints progress once a second and
// returns a Result that marshals to the JSON the command writes. Usage
// errors are *UsageError (the command exits 2).
//
// It sends only on the interface it is given, and every run stops by itself:
// a count or a duration is required and both are capped.
//
// Concurrency: Run starts one sending and one receiving goroutine and
// returns after both ended. Allocation: none per packet.
package pktgen
