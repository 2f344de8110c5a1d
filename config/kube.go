package config

import (
	"os"
)

// DefaultKubeNamespace is where the BGPPeers' password Secrets live: the
// namespace of xvs's DaemonSet (deploy/k8s).
const DefaultKubeNamespace = "xvs-system"

// Kubernetes is the kubernetes: section. Present, xvsd runs the node agent
// (package kube/agent): nodes, pools, BGP settings and pod annotations come
// from the API server. Absent, xvsd runs standalone.
type Kubernetes struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster (the
	// service account of xvsd's pod, KUBERNETES_SERVICE_HOST).
	Kubeconfig string `yaml:"kubeconfig"`
	// Node is this node's Node object name (default: $NODE_NAME, then
	// ipam.node, then the hostname).
	Node string `yaml:"node"`
	// Namespace holds the Secrets that BGPPeer passwords name (default:
	// $POD_NAMESPACE, then xvs-system).
	Namespace string `yaml:"namespace"`
}

// KubeConfig is the resolved kubernetes: section.
type KubeConfig struct {
	Kubeconfig string // "" means in-cluster
	Node       string
	Namespace  string
}

func (k *Kubernetes) resolve(ipamNode string, e *errs) *KubeConfig {
	c := &KubeConfig{Kubeconfig: k.Kubeconfig, Node: k.Node, Namespace: k.Namespace}
	// A kubeconfig that cannot be read is xvsd's start-up error, naming
	// the file (the file may be written after the config is checked).
	if c.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		e.str("kubernetes.kubeconfig", "", "empty means in-cluster, but KUBERNETES_SERVICE_HOST is not set")
	}
	if c.Node == "" {
		c.Node = os.Getenv("NODE_NAME")
	}
	if c.Node == "" {
		c.Node = ipamNode
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			e.missing("kubernetes.node", "empty, $NODE_NAME unset, and the hostname is unknown: "+err.Error())
		}
		c.Node = h
	}
	if c.Namespace == "" {
		c.Namespace = os.Getenv("POD_NAMESPACE")
	}
	if c.Namespace == "" {
		c.Namespace = DefaultKubeNamespace
	}
	return c
}
