// Package perf runs benchmark scenarios: each builds its own pod-to-pod
// topology per forwarder (namespaces named xp + random hex, deleted on
// Close), drives the same bounded load through every forwarder, alternating
// A B A B for a number of rounds, and reports medians and the ratio of each
// forwarder to the first, as JSON, a Markdown table and SVG plots.
//
// A scenario is a few lines:
//
//	s := perf.Scenario{
//		Name:       "pod-to-pod",
//		Forwarders: []perf.Forwarder{perf.Kernel(), perf.XVSD("bin/xvsd")},
//		Loads:      []perf.Load{perf.Pktgen(4, 64, 1, 2*time.Second)},
//		Rounds:     3,
//	}
//	rep, err := s.Run(ctx, log)
//
// Forwarders that cannot run here (no binary, no XDP, no forwarding) are
// skipped with the reason in the report, never silently.
//
// The standard sets (standard.go): PodToPod (the kernel, xvsd, its XDP fast
// path, an XDP_REDIRECT ceiling), TCP (iperf3 through the kernel and each
// xvsd pod mode and fast path), CrossNode (two lab nodes behind the lab's
// outside router: Lab.KernelRouting on both against xvsd on both),
// CrossNodeVXLAN (the same in Calico's VXLAN mode: the outside routes only
// the nodes; the kernel's vxlan devices against xvsd's tunnels) and Ring
// (the generator's send paths). The cross-node labs turn GRO on at the
// nodes' uplink ends for every forwarder (lab.Options.UplinkGRO), as a
// NIC's driver has it. Forwarders built on package lab (XVSD*,
// KernelCrossNode*) share startLab; Kernel and XDPRedirect use their own
// pod pair (podpair.go). xvs-bench (perf/cmd) picks the sets.
//
// The traffic generator is perf/pktgen, run in process; iperf3 is run as a
// command inside the pod namespaces. Nothing here asserts a speed: the
// harness measures and reports.
//
// Concurrency: a Scenario runs its loads one at a time. Allocation: not a
// hot path; the generator it drives is allocation-free per packet.
package perf
