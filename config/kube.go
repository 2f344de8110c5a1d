package config

import (
	"os"
	"time"
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
	// ReclaimGrace is how long a node must have had no Node object before
	// its IPAM blocks and addresses are reclaimed (a duration; default
	// kube/ipamstore.DefaultReclaimGrace, 10m; at least 1s).
	ReclaimGrace string `yaml:"reclaim_grace"`
}

// KubeConfig is the resolved kubernetes: section.
type KubeConfig struct {
	Kubeconfig string // "" means in-cluster
	Node       string
	Namespace  string
	// ReclaimGrace: 0 means the reclaimer's default.
	ReclaimGrace time.Duration
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
	if k.ReclaimGrace != "" {
		d, err := time.ParseDuration(k.ReclaimGrace)
		if err != nil || d < time.Second {
			e.str("kubernetes.reclaim_grace", k.ReclaimGrace, "want a duration of at least 1s, such as 10m")
		}
		c.ReclaimGrace = d
	}
	return c
}

// kubeIPAM checks the ipam: section next to a kubernetes: one. In a
// cluster the IPAM store is the API server's (kube/ipamstore): pools are
// the IPPool objects, as in Calico's Kubernetes datastore mode, so
// ipam.pools is refused rather than silently ignored or written to the
// API; and the allocator's node is the Node object's name.
func kubeIPAM(f *File, c *Config, e *errs) {
	if len(f.IPAM.Pools) > 0 {
		e.num("ipam.pools", len(f.IPAM.Pools), "with a kubernetes: section the pools are the API server's IPPool objects (kubectl apply -f deploy/k8s/ippools.yaml): remove ipam.pools")
	}
	if f.IPAM.Node != "" && f.IPAM.Node != c.Kube.Node {
		e.str("ipam.node", f.IPAM.Node, "differs from kubernetes.node %q: the IPAM blocks' node is the Node object's name; set one of them", c.Kube.Node)
	}
	c.IPAM.Node = c.Kube.Node
}
