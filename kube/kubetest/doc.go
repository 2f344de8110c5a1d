// Package kubetest is for tests that need xvs's CRDs in a real API server:
// it decodes manifests strictly into the Kubernetes API types (Scheme:
// client-go's built-in types, apiextensions v1, xvs.dev/v1; a duplicate
// key, an unknown field or an unknown kind is an error), installs the
// shipped CRDs and waits until they are Established, and Start combines
// that with e2e/kubeapi.Start.
//
// Concurrency: the functions share nothing but the read-only Scheme.
// Allocation: not a hot path.
package kubetest
