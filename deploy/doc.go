// Package deploy holds xvs's deployment files: the CRDs (crds/, generated
// from kube/apis/xvs/v1), the Kubernetes manifests (k8s/: namespace,
// RBAC, ConfigMap, DaemonSet, default pools), the kind cluster config and
// guide (kind/), the systemd unit and an example xvsd.yaml. It embeds the
// Kubernetes files so that tests decode and apply exactly what ships.
//
// Concurrency: FS is read-only and safe for concurrent use. Allocation:
// not a hot path.
package deploy

import "embed"

// FS holds crds/*.yaml, k8s/*.yaml and kind/*.yaml.
//
//go:embed crds/*.yaml k8s/*.yaml kind/*.yaml
var FS embed.FS
