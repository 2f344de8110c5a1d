// Package daemon is xvsd minus its main: flags, configuration, logging,
// the dataplane's life cycle, the API server, and the metrics and health
// HTTP endpoints. main only supplies how to build the switch, so tests run
// the whole daemon over a fake dataplane.
//
// Start-up order matters: the API socket and the HTTP listeners are taken
// before the switch is built, so a second xvsd (or a port already in use)
// fails before it attaches XDP to interfaces the first one owns.
//
// # Concurrency
//
// Run owns the daemon's goroutines (API server, HTTP servers) and returns
// after all of them stopped and the switch is closed. The metrics
// collector reads the switch at scrape time on promhttp's goroutine; it
// needs only the switch's methods to be safe for concurrent use.
//
// # Allocation
//
// Control path only; a scrape allocates one metric per counter and port.
package daemon
