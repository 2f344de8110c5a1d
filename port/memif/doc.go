// Package memif is the memif port driver: a pod (or any packet
// application: DPDK's net_memif, libmemif, VPP, gomemif) gets shared-memory
// rings to the switch instead of a veth. It wraps the memif package's
// server (xvsd is the memif master, Ethernet mode) in the port.Port
// interface, registered for spec.ModeMemif; the pipeline does not know it
// is memif.
//
// What it owns:
//   - Driver: one memif.Server per (network namespace, socket), shared by
//     the ports on it (told apart by interface id) and closed with the last.
//   - Port: one memif interface. Receive copies frames off the peer's S2M
//     rings into the worker's Umem frames at port.Headroom (held frames,
//     paired with their slices, are topped up so an idle ring costs
//     nothing: a port holds up to a batch of its worker's Umem frames, so
//     size frames for the pods a worker serves); Transmit copies Umem frames into the peer's M2S buffers and
//     frees them; Flush signals the peer once per burst unless it masked
//     its ring. Nothing is left in shared memory between calls, so a peer
//     that dies takes no xvs frame with it.
//   - PodPort: the port a CNI server adds for a pod's memif, and the
//     socket path the CNI result reports (cniserver calls it for each
//     memif a pod asks for by its xvs.dev/memif annotation or the network
//     config's memif key).
//
// Queue pairs and workers: one port is one interface served by one worker
// (the switch's least-loaded, as for a veth pod). Every queue pair the peer
// connects is received from in turn; frames go out on queue pair 0. A
// memif pod is one application's interface, and one worker moves well
// above what the uplink and the other pods bring (BENCHMARKS.md), while
// spreading its queues over workers would need the cross-worker handoff on
// every frame to it. Several queues still serve a peer that insists on
// them (DPDK with --rxq/--txq).
//
// Interrupt and polling: in interrupt mode PollFD is an epoll descriptor
// holding the current connection's rx eventfds (added when the peer
// connects, gone when memif closes them), so the worker's poll(2) wakes on
// any queue; Receive clears the eventfds once when it finds the rings
// empty and looks again, so a signal that raced with the look is not lost.
// With MemifConfig.Polling the rings are masked, PollFD is -1 and the
// worker polls (right with Poll: busy).
//
// Up and down: the port implements port.LinkNotifier. It opens down
// ("waiting for a peer"); the switch installs its pod routes when a peer
// connects and takes them out when it disconnects, dies or breaks the ring
// protocol (the reason shows in `xvsctl show ports`), and puts them back
// when a peer connects again.
//
// Socket placement for pods: the socket is abstract ("@xvs-memif<i>") and
// opened from a thread inside the pod's network namespace (Calico-VPP's
// way): abstract unix sockets belong to a network namespace, so only that
// pod reaches it, the pod spec needs no volume, nothing is left on the
// host's filesystem when a pod dies, and DPDK's net_memif and libmemif use
// abstract sockets by default. The other way, a file under a host path
// mounted into the pod (e.g. /run/xvs/memif/<pod>/memif.sock), works for
// applications that cannot take an abstract name and lets file permissions
// guard it, but every memif pod then needs a hostPath volume (and the
// privilege to have one), and stale files must be cleaned up. File sockets
// stay available through MemifConfig.Socket for such cases.
//
// Routes: a memif interface has its own /32 and /128 (the pod's eth0 keeps
// its addresses and everything else: DNS, probes); they are routed to the
// memif port, and the application uses the same gateway as on eth0
// (169.254.1.1 and fe80::ecee:eeff:feee:eeee, whose ARP and NDP the switch
// answers on the port). The peer's MAC is configured or learnt from its
// first frame.
//
// Concurrency: a Port belongs to its worker (Receive, Transmit, Flush,
// PollFD); LinkUp, FillStatus and NotifyLink are safe from any goroutine;
// the notify function runs on the memif control goroutine. Close runs
// after the worker stopped. A Driver is safe for concurrent use.
//
// Allocation: Receive, Transmit and Flush allocate nothing
// (testing.AllocsPerRun holds them to zero, and BenchmarkMemifPodToPod in
// vswitch the whole path); they make no system call except the eventfd
// write of a kick and the eventfd reads when the rings run empty in
// interrupt mode.
package memif
