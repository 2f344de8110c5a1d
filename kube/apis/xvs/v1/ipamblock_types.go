package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// MaxBlockAddresses bounds a block's allocations: the largest block
// (/20, /116) holds 4096 addresses. A full /26 or /122 with 64-digit
// container IDs is about 21 KB of JSON; a full /20 would be about 1.3 MB,
// near etcd's default 1.5 MiB request limit, which is why small blocks
// are the default.
const MaxBlockAddresses = 4096

// IPAMBlock is one block of a pool, claimed by a node, and the addresses
// allocated from it. Its name is BlockName(cidr), so two nodes claiming
// the same block both Create the same name and exactly one succeeds; an
// allocation is an Update against the block's resourceVersion, so two
// nodes allocating from one block never hand out the same address.
//
// Unlike Calico, there is no separate BlockAffinity object: the claim and
// the affinity are one object, so a claim is one create and cannot be left
// half-done (Calico needs a pending/confirmed protocol across two
// objects for that).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=`.spec.cidr`
// +kubebuilder:printcolumn:name="Affinity",type=string,JSONPath=`.spec.affinity`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPAMBlock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPAMBlockSpec `json:"spec"`
}

// IPAMBlockSpec is the block's prefix, owner and allocations.
type IPAMBlockSpec struct {
	// CIDR is the block's prefix, host bits zero. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be an IPv4 or IPv6 prefix",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="host bits must be zero",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cidr is immutable"
	CIDR string `json:"cidr"`

	// Affinity is the node that claimed the block and advertises it;
	// empty once that node released it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Affinity string `json:"affinity,omitempty"`

	// Allocations are the addresses in use, sorted by address, one entry
	// per address (the API server refuses a duplicate addr). Only used
	// addresses are listed, so a block with a few pods stays small.
	// +optional
	// +listType=map
	// +listMapKey=addr
	// +kubebuilder:validation:MaxItems=4096
	Allocations []IPAMAllocation `json:"allocations,omitempty"`
}

// IPAMAllocation is one address and who holds it. The holder is the CNI
// attachment (container ID, interface), as the CNI spec keys it, so a
// repeated ADD finds its address and DEL frees exactly it.
type IPAMAllocation struct {
	// Addr is the address, inside the block's CIDR.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address",reason=FieldValueInvalid
	Addr string `json:"addr"`
	// ContainerID is the runtime's container ID from CNI ADD.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ContainerID string `json:"containerID"`
	// IfName is the interface inside the container.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	IfName string `json:"ifName"`
	// Namespace and Pod name the pod, when the runtime passed them.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Pod string `json:"pod,omitempty"`
	// Node allocated the address; it differs from the block's Affinity
	// when the address was borrowed from another node's block.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
}

// IPAMBlockList is a list of IPAMBlocks.
// +kubebuilder:object:root=true
type IPAMBlockList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAMBlock `json:"items"`
}
