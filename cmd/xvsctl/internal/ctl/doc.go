// Package ctl is xvsctl minus its main: argument parsing, the calls to
// xvsd's API, and the output, as human tables (text/tabwriter) or JSON
// (the API's messages in proto3 JSON, snake_case field names).
//
// Exit codes: 0 success, 1 runtime error (xvsd unreachable, a request it
// refused), 2 usage error. Errors go to stderr as "xvsctl: ..." and, for
// requests xvsd refused, quote xvsd's message, which names the field.
//
// # Concurrency
//
// One invocation, one goroutine; nothing is shared between calls to Main.
package ctl
