package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Calico's defaults for BGP, which xvs keeps.
const (
	DefaultASNumber   = 64512
	DefaultListenPort = 179
	// BGPConfigurationDefault is the name of the cluster-wide
	// BGPConfiguration; BGPConfigurationNodePrefix+node names a node's
	// override of it, as in Calico.
	BGPConfigurationDefault    = "default"
	BGPConfigurationNodePrefix = "node."
)

// BGPConfiguration is the cluster's BGP settings ("default") or one
// node's override of them ("node.<node name>"). Unset fields take the
// cluster's value, then the built-in default.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="AS",type=integer,JSONPath=`.spec.asNumber`
// +kubebuilder:printcolumn:name="Mesh",type=boolean,JSONPath=`.spec.nodeToNodeMeshEnabled`
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=`.spec.listenPort`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default' || self.metadata.name.startsWith('node.')",message="metadata.name must be default (the cluster's) or node.<node name> (one node's)"
type BGPConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPConfigurationSpec `json:"spec,omitempty"`
}

// BGPConfigurationSpec holds the settings.
type BGPConfigurationSpec struct {
	// ASNumber is the AS of the nodes (default 64512).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	ASNumber *uint32 `json:"asNumber,omitempty"`

	// NodeToNodeMeshEnabled peers every node with every other (default
	// true). Turn it off when route reflectors or explicit peers carry
	// the routes.
	// +optional
	NodeToNodeMeshEnabled *bool `json:"nodeToNodeMeshEnabled,omitempty"`

	// ServiceClusterIPs are advertised by every node, so that routers
	// outside the cluster reach ClusterIPs.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ServiceClusterIPs []ServiceClusterIPBlock `json:"serviceClusterIPs,omitempty"`

	// ListenPort is the TCP port the nodes' BGP speakers listen on
	// (default 179).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ListenPort int32 `json:"listenPort,omitempty"`
}

// ServiceClusterIPBlock is one service prefix to advertise.
type ServiceClusterIPBlock struct {
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be an IPv4 or IPv6 prefix",reason=FieldValueInvalid
	CIDR string `json:"cidr"`
}

// BGPConfigurationList is a list of BGPConfigurations.
// +kubebuilder:object:root=true
type BGPConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPConfiguration `json:"items"`
}

// BGPPeer is a BGP speaker outside the node mesh (a top-of-rack router, a
// route reflector) that some or all nodes peer with.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="Peer",type=string,JSONPath=`.spec.peerIP`
// +kubebuilder:printcolumn:name="AS",type=integer,JSONPath=`.spec.asNumber`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.node`
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.nodeSelector`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPPeerSpec `json:"spec"`
}

// BGPPeerSpec says who peers with whom. With neither Node nor
// NodeSelector the peer is global: every node peers with it.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.node) && has(self.nodeSelector))",message="set node or nodeSelector, not both",fieldPath=".nodeSelector"
type BGPPeerSpec struct {
	// Node is the one node that peers (a node-specific peer).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`

	// NodeSelector picks the nodes that peer, in Calico's selector
	// syntax (as IPPool's).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	NodeSelector string `json:"nodeSelector,omitempty"`

	// PeerIP is the peer's IPv4 or IPv6 address.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address",reason=FieldValueInvalid
	PeerIP string `json:"peerIP"`

	// ASNumber is the peer's AS.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	ASNumber uint32 `json:"asNumber"`

	// Password is the TCP MD5 key, from a Secret in xvsd's namespace.
	// +optional
	Password *BGPPassword `json:"password,omitempty"`
}

// BGPPassword is where a session's password is kept.
type BGPPassword struct {
	// SecretKeyRef names the Secret and the key holding the password.
	// +optional
	SecretKeyRef *corev1.SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// BGPPeerList is a list of BGPPeers.
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}
