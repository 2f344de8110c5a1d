// Package agent is xvsd's Kubernetes node agent: client-go informers on
// Nodes, IPPools, BGPConfigurations, BGPPeers (passwords from Secrets in
// one namespace), Namespaces and the Pods of this node, turned into what
// xvsd drives:
//
//   - BGP (BGPSink): the node-to-node mesh from every Node's InternalIP
//     addresses unless nodeToNodeMeshEnabled is false, explicit peers from
//     BGPPeers (global, node, nodeSelector), the AS from the
//     BGPConfiguration (node.<name> over default).
//   - VXLAN routes (RouteApplier, origin fib.OriginKube): for every other
//     node that publishes a VTEP and blocks in its annotations, a route per
//     block into the tunnel to its VTEP when the block's IPPool says
//     vxlanMode Always, or CrossSubnet and the node's address is on none of
//     this node's subnets. A node deleted, or its annotations gone, takes
//     its routes with it.
//   - Pools (PoolSink): the IPPools as ipam.Pools, and this node's labels
//     for their nodeSelectors. xvsd's allocator runs on kube/ipamstore,
//     which reads the IPPools itself and claims blocks through the API, so
//     xvsd takes only the labels from this sink.
//   - Pod annotations (PodAnnotations) for the CNI server: from the cache,
//     falling back to one GET when the pod is not in it yet.
//
// This node publishes its own VTEP and blocks as annotations on its Node
// object (AnnotationVTEPMAC, AnnotationVTEP4, AnnotationVTEP6,
// AnnotationBlocks). Calico's projectcalico.org/IPv4VXLANTunnelAddr is
// the address of a vxlan.calico device; ours is the VTEP's underlay
// address, which is what another node needs to reach it.
//
// Faults: the API server unreachable at start or later leaves everything
// as it is (the switch keeps forwarding what it has); informers retry with
// client-go's backoff, a probe of /readyz every ProbeInterval says whether
// the agent is connected, and reconciliation runs on the caches once they
// synced, so a reconnect resyncs from fresh lists without dropping
// anything that did not change. Status says connected, synced, the last
// resync, watch errors and the objects seen; Collector exports them.
//
// Concurrency: Run owns one goroutine that reconciles; informer handlers
// only kick it. Status, PodAnnotations and SetBlocks are safe from any
// goroutine. The sinks are called from Run's goroutine only.
//
// Allocation: control plane only; nothing here is on a packet path.
package agent
