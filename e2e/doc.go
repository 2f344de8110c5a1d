// Package e2e holds the end-to-end tests of the whole xvsd: each test
// builds a lab (package lab) of network namespaces, starts the xvsd binary
// in its node namespace, and checks forwarding, ICMP errors, counters,
// restarts and port loss from the pods' and the outside's point of view.
// Kernel forwarding is off in every node, so whatever crosses a node went
// through xvsd.
//
// The tests need root and iproute2, ping and iperf3; TestMain builds xvsd
// and xvsctl from this module into a temporary directory once, and every
// test skips with the reason when any of that is missing. All namespaces
// of a run share one prefix (xe and four hex digits); TestMain fails the
// run if any is left behind, and deletes it.
//
// The CNI tests (cni_test.go) drive the built xvs-cni through libcni in a
// node's namespace, as a kubelet does, against an xvsd with an ipam:
// section, with the reference plugins portmap, bandwidth, tuning and
// loopback at RefPluginsVersion (built by `make cni-plugins` into
// $XVS_CNI_PLUGINS, by default ~/.cache/xvs/cni-plugins-v1.10.0) and
// Debian's ptp and host-local from /usr/lib/cni. TestCNIBenchmark runs
// only with -e2e.cnibench.
//
// TestKubeIPAMThreeNodes (kubeipam_test.go) runs three xvsd nodes with
// kubernetes: and ipam: sections against one real kube-apiserver and etcd
// (e2e/kubeapi, on the root namespace's loopback). Each node reaches it
// through a TCP proxy: a goroutine of the test that listens on 127.0.0.1
// inside the node's namespace and dials the API server from the root
// namespace (TLS end to end). The test creates the Node, Pod and IPPool
// objects a cluster would have; nothing else of Kubernetes runs.
//
// There is no code outside the tests: this file exists for the package
// comment.
package e2e
