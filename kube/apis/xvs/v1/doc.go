// Package v1 holds the Go types of xvs's custom resources, API group
// xvs.dev, version v1: IPPool, BGPConfiguration, BGPPeer and IPAMBlock,
// all cluster-scoped, with Calico's field names (crd.projectcalico.org)
// so that a Calico user finds what they expect. Their CRDs, with the
// OpenAPI v3 schemas and CEL rules the API server validates objects
// against, are generated from the markers here into deploy/crds/ (go
// generate runs controller-gen for the CRDs and the deep copies).
//
// The group is xvs.dev rather than Calico's own group so that xvs and
// Calico can be installed side by side (for a migration) without either
// reading the other's objects with a different meaning.
//
// kube/ is a top-level folder because these types, their client and the
// node agent that will use them are the Kubernetes side of xvs, which
// none of the dataplane or control folders is.
//
// Concurrency: plain data; an object must not be modified while another
// goroutine reads it (use DeepCopy). Allocation: not a hot path.
//
// +kubebuilder:object:generate=true
// +groupName=xvs.dev
package v1

//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=. crd:maxDescLen=400 output:crd:dir=../../../../deploy/crds
