// Package pktio moves generator frames in and out of one interface: an
// AF_PACKET sender (sendmmsg batches, PACKET_QDISC_BYPASS) and receiver
// (recvmmsg batches); an AF_XDP sender and receiver on the dataplane's own
// ring layer (xsk, with the xdpprog pod steering program in
// front of the receiver); an AF_XDP sender on github.com/asavie/xdp, kept
// only as the baseline the ring layer is measured against; a batched
// token-bucket Pacer; and the CLOCK_MONOTONIC clock the payload timestamps
// use.
//
// Sockets can be opened inside a named network namespace (InNetns): a socket
// belongs to the namespace it was created in, so only the opening runs on a
// thread switched into the namespace; the sending and receiving goroutines do
// not.
//
// Concurrency: a Tx or an Rx belongs to one goroutine, which also closes it;
// Receive returns at least every 100 ms so that goroutine can notice a stop.
//
// Allocation: Buffers, Send and Receive do not allocate.
package pktio
