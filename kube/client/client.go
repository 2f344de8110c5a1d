package client

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/gentype"
	"k8s.io/client-go/rest"

	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
)

// Scheme knows xvs's types, and the meta types the API sends with them
// (Status, WatchEvent, ListOptions).
var Scheme = runtime.NewScheme()

// Codecs serializes Scheme's types.
var Codecs = serializer.NewCodecFactory(Scheme)

var parameterCodec = runtime.NewParameterCodec(Scheme)

func init() {
	if err := xvsv1.AddToScheme(Scheme); err != nil {
		panic(err) // only a programming error in register.go can make this fail
	}
	metav1.AddToGroupVersion(Scheme, metav1.SchemeGroupVersion)
}

// Resource is the typed client of one custom resource; T is the object,
// L its list.
type Resource[T runtime.Object, L runtime.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// Clientset reaches every xvs.dev/v1 resource.
type Clientset struct {
	rest rest.Interface

	ipPools           *gentype.ClientWithList[*xvsv1.IPPool, *xvsv1.IPPoolList]
	bgpConfigurations *gentype.ClientWithList[*xvsv1.BGPConfiguration, *xvsv1.BGPConfigurationList]
	bgpPeers          *gentype.ClientWithList[*xvsv1.BGPPeer, *xvsv1.BGPPeerList]
	ipamBlocks        *gentype.ClientWithList[*xvsv1.IPAMBlock, *xvsv1.IPAMBlockList]
}

// NewForConfig makes a Clientset from a client configuration (a
// kubeconfig's, or rest.InClusterConfig's). c is not modified.
func NewForConfig(c *rest.Config) (*Clientset, error) {
	cfg := rest.CopyConfig(c)
	cfg.GroupVersion = &xvsv1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = Codecs.WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("xvs.dev client: %w", err)
	}
	return New(rc), nil
}

// New makes a Clientset on a REST client configured for xvs.dev/v1.
func New(rc rest.Interface) *Clientset {
	return &Clientset{
		rest: rc,
		ipPools: gentype.NewClientWithList[*xvsv1.IPPool, *xvsv1.IPPoolList](
			xvsv1.ResourceIPPools, rc, parameterCodec, "",
			func() *xvsv1.IPPool { return &xvsv1.IPPool{} },
			func() *xvsv1.IPPoolList { return &xvsv1.IPPoolList{} }),
		bgpConfigurations: gentype.NewClientWithList[*xvsv1.BGPConfiguration, *xvsv1.BGPConfigurationList](
			xvsv1.ResourceBGPConfigurations, rc, parameterCodec, "",
			func() *xvsv1.BGPConfiguration { return &xvsv1.BGPConfiguration{} },
			func() *xvsv1.BGPConfigurationList { return &xvsv1.BGPConfigurationList{} }),
		bgpPeers: gentype.NewClientWithList[*xvsv1.BGPPeer, *xvsv1.BGPPeerList](
			xvsv1.ResourceBGPPeers, rc, parameterCodec, "",
			func() *xvsv1.BGPPeer { return &xvsv1.BGPPeer{} },
			func() *xvsv1.BGPPeerList { return &xvsv1.BGPPeerList{} }),
		ipamBlocks: gentype.NewClientWithList[*xvsv1.IPAMBlock, *xvsv1.IPAMBlockList](
			xvsv1.ResourceIPAMBlocks, rc, parameterCodec, "",
			func() *xvsv1.IPAMBlock { return &xvsv1.IPAMBlock{} },
			func() *xvsv1.IPAMBlockList { return &xvsv1.IPAMBlockList{} }),
	}
}

// RESTClient is the underlying REST client (for informers' ListWatch).
func (c *Clientset) RESTClient() rest.Interface { return c.rest }

// IPPools is the client of ippools.xvs.dev.
func (c *Clientset) IPPools() Resource[*xvsv1.IPPool, *xvsv1.IPPoolList] { return c.ipPools }

// BGPConfigurations is the client of bgpconfigurations.xvs.dev.
func (c *Clientset) BGPConfigurations() Resource[*xvsv1.BGPConfiguration, *xvsv1.BGPConfigurationList] {
	return c.bgpConfigurations
}

// BGPPeers is the client of bgppeers.xvs.dev.
func (c *Clientset) BGPPeers() Resource[*xvsv1.BGPPeer, *xvsv1.BGPPeerList] { return c.bgpPeers }

// IPAMBlocks is the client of ipamblocks.xvs.dev.
func (c *Clientset) IPAMBlocks() Resource[*xvsv1.IPAMBlock, *xvsv1.IPAMBlockList] {
	return c.ipamBlocks
}
