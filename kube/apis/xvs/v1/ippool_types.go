package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VXLANMode says when traffic between nodes of a pool is put in VXLAN,
// as Calico's vxlanMode.
// +kubebuilder:validation:Enum=Always;CrossSubnet;Never
type VXLANMode string

const (
	// VXLANAlways encapsulates all traffic to pods on other nodes.
	VXLANAlways VXLANMode = "Always"
	// VXLANCrossSubnet encapsulates only toward nodes outside this
	// node's subnet; within it, traffic is routed natively.
	VXLANCrossSubnet VXLANMode = "CrossSubnet"
	// VXLANNever routes natively (the underlay or BGP carries the pool).
	VXLANNever VXLANMode = "Never"
)

// Default block sizes, Calico's: 64 addresses a block in both families.
const (
	DefaultBlockSize4 = 26
	DefaultBlockSize6 = 122
)

// IPPool is a range of pod addresses, carved into per-node blocks. One
// pool is one family; a dual-stack cluster has a pool of each.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=`.spec.cidr`
// +kubebuilder:printcolumn:name="Block",type=integer,JSONPath=`.spec.blockSize`
// +kubebuilder:printcolumn:name="VXLAN",type=string,JSONPath=`.spec.vxlanMode`
// +kubebuilder:printcolumn:name="NAT",type=boolean,JSONPath=`.spec.natOutgoing`
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=`.spec.disabled`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPPoolSpec `json:"spec"`
}

// IPPoolSpec is what a pool is; the API server checks every rule below.
//
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !has(self.blockSize) || (cidr(self.cidr).ip().family() == 4 ? self.blockSize >= 20 && self.blockSize <= 32 : self.blockSize >= 116 && self.blockSize <= 128)",message="blockSize must be 20 to 32 for an IPv4 pool, 116 to 128 for an IPv6 pool",fieldPath=".blockSize",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !has(self.blockSize) || self.blockSize >= cidr(self.cidr).prefixLength()",message="blockSize must not be shorter than the pool's prefix length",fieldPath=".blockSize",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="(has(self.blockSize) ? self.blockSize : 0) == (has(oldSelf.blockSize) ? oldSelf.blockSize : 0)",message="blockSize is immutable: blocks were carved with it",fieldPath=".blockSize"
type IPPoolSpec struct {
	// CIDR is the pool's prefix with its host bits zero, e.g.
	// 198.19.0.0/16 or fd00:10::/48. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be an IPv4 or IPv6 prefix such as 198.19.0.0/16 or fd00:10::/48",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="host bits must be zero",reason=FieldValueInvalid
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cidr is immutable: blocks were carved from it"
	CIDR string `json:"cidr"`

	// BlockSize is the prefix length of the blocks a node claims: 20 to
	// 32 for IPv4 (default 26), 116 to 128 for IPv6 (default 122).
	// Immutable.
	// +optional
	// +kubebuilder:validation:Minimum=20
	// +kubebuilder:validation:Maximum=128
	BlockSize int32 `json:"blockSize,omitempty"`

	// VXLANMode: Always, CrossSubnet or Never (default).
	// +optional
	// +kubebuilder:default=Never
	VXLANMode VXLANMode `json:"vxlanMode,omitempty"`

	// NATOutgoing source-NATs pod traffic leaving every pool to the
	// node's address.
	// +optional
	NATOutgoing bool `json:"natOutgoing,omitempty"`

	// NodeSelector picks the nodes that allocate from the pool, in
	// Calico's selector syntax (all(), k == "v", k in {"a"}, has(k),
	// !, &&, ||); empty means all(). The node agent parses it and
	// reports a bad one in an event naming the pool.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	NodeSelector string `json:"nodeSelector,omitempty"`

	// Disabled pools keep their allocations but give out no new ones.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// EffectiveBlockSize is BlockSize, or the family's default when unset.
// ok is false when CIDR does not parse.
func (s *IPPoolSpec) EffectiveBlockSize() (size int, ok bool) {
	p, err := parsePrefix(s.CIDR)
	if err != nil {
		return 0, false
	}
	if s.BlockSize != 0 {
		return int(s.BlockSize), true
	}
	if p.Addr().Is4() {
		return DefaultBlockSize4, true
	}
	return DefaultBlockSize6, true
}

// IPPoolList is a list of IPPools.
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}
