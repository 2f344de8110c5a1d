// Package kubeapi runs a real Kubernetes API for tests: Debian's etcd and
// the kube-apiserver that `make kube-apiserver` builds (module
// e2e/kubeapi/apiserver, k8s.io/kubernetes v1.37.2), both on loopback on
// free ports, each in a temporary directory, authenticated by a throwaway
// bearer token in system:masters.
//
// Start needs no root. It fails the test, never skips it, when etcd or
// the kube-apiserver binary is missing, saying how to get it. Both
// processes are stopped by PID in t.Cleanup (SIGTERM, then SIGKILL after
// a grace period), and a process that had to be killed or exited before
// the end fails the test. The service CIDRs given to the API server are
// 198.19.128.0/20 and fd00:96::/112 (inside 198.18.0.0/15 and fd00::/8).
//
// Concurrency: a *Server is safe for concurrent use once Start returns;
// each Start is its own etcd and API server, so tests that run in
// parallel do not see each other's objects. Allocation: not a hot path.
package kubeapi
