// Package porttest holds what tests of the switch and of port drivers
// share, the way wireguard-go ships tun/tuntest: FakePort and
// FakeOffloadPort, channel-backed ports over a worker's Umem; Driver and
// Registry, which hand them to a switch through the driver registry as if
// a kernel had opened them; and VethLab, two namespaces joined by a veth,
// for tests of the real drivers.
//
// # Concurrency
//
// A fake port belongs to one worker, as any port: the test writes to In
// and reads Out from its own goroutine, the channels hand frames over.
//
// # Allocation
//
// The fakes copy and allocate per frame: they are for tests, not speed.
package porttest
