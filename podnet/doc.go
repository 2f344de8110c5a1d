// Package podnet plumbs a pod into a node in-process, with netlink
// (vishvananda/netlink handles bound to each namespace) and the ethtool
// ioctl, the way a CNI plugin does: a veth pair with its host end in the
// switch's namespace and the pod end moved into the pod's namespace under
// the name the runtime asks for; MTU, MACs, queue counts; /32 and /128
// addresses (IPv6 without DAD); the pod's routes through the link-local
// gateway; permanent neighbour entries; sysctls; and the offload settings
// the port mode needs. The lab, the perf harness and the CNI plugin use it
// instead of running ip and ethtool.
//
// It owns: Setup, whose steps each have an undo, so a failure at any step
// leaves nothing behind; Teardown, idempotent (success when the namespace
// or the veth is already gone); Check, which names every difference for
// CNI CHECK; and the pieces they are made of for callers that build other
// shapes (NewNamed/DeleteNamed for named namespaces as `ip netns` makes
// them, SetSysctl/GetSysctl, SetOffloads/Features, Do).
//
// Concurrency: every function may be called from any goroutine, and
// concurrently for different pods. No goroutine's thread is ever left in
// another namespace: netlink work goes through handles whose sockets were
// opened in the target namespace, and where a thread must enter one
// (sysctls under /proc/sys/net, the ethtool socket, creating a namespace)
// it is a fresh goroutine locked to its thread, switched back before it
// is unlocked (and left locked, so the runtime ends the thread, if
// switching back fails). Two Setups of the same interface name race in the
// kernel, and one of them fails cleanly.
//
// Allocation: this is control-plane code, run once per pod; it allocates
// freely and no packet passes through it.
package podnet
