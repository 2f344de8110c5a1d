// Package client is a typed client for xvs's custom resources (package
// kube/apis/xvs/v1), written by hand on client-go's REST client and its
// generic typed client (k8s.io/client-go/gentype), which is what
// generated clientsets are made of. Each resource has Create, Get,
// Update, Patch, Delete, DeleteCollection, List and Watch; all four are
// cluster-scoped.
//
// Updates are optimistic: an Update carries the object's
// resourceVersion, and the API server answers 409 Conflict
// (apierrors.IsConflict) when someone else wrote the object since; a
// Create of a name that exists answers AlreadyExists. The IPAM store
// claims blocks and allocates addresses on exactly these two answers.
//
// Concurrency: a Clientset and its resource clients are safe for
// concurrent use (they share one rest.Interface, which is). Allocation:
// every call allocates; none is on a packet path.
package client
