package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/deploy"
	"github.com/xvs-project/xvs/e2e/kubeapi"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/kubetest"
)

// The address ranges tests and shipped examples keep to.
var testRanges = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("fd00::/8")}

func inTestRanges(t *testing.T, field, cidrs string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range strings.Split(cidrs, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			t.Errorf("%s: %q: %v", field, s, err)
			continue
		}
		if !slices.ContainsFunc(testRanges, func(r netip.Prefix) bool { return r.Bits() <= p.Bits() && r.Contains(p.Addr()) }) {
			t.Errorf("%s: %s is outside 198.18.0.0/15 and fd00::/8", field, p)
		}
		out = append(out, p)
	}
	return out
}

// manifests decodes the Kubernetes files of deploy/ (crds/ and k8s/).
func manifests(t *testing.T) []kubetest.Doc {
	t.Helper()
	var all []kubetest.Doc
	for _, dir := range []string{"crds", "k8s"} {
		docs, err := kubetest.DecodeDir(deploy.FS, dir)
		if err != nil {
			t.Fatalf("decode %s: %v", dir, err)
		}
		if len(docs) == 0 {
			t.Fatalf("%s: no manifests", dir)
		}
		all = append(all, docs...)
	}
	return all
}

// TestEveryFileHasADecoder walks deploy/ on disk: every YAML or JSON file
// is one the strict decoders below read, so a new manifest cannot ship
// unchecked.
func TestEveryFileHasADecoder(t *testing.T) {
	checked := map[string]bool{}
	for _, pattern := range []string{"crds/*.yaml", "k8s/*.yaml", "kind/*.yaml"} {
		m, err := fs.Glob(deploy.FS, pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			checked[f] = true
		}
	}
	checked["xvsd.yaml"] = true // TestExampleConfig
	for _, f := range cniConflists {
		checked[f] = true // TestCNIConflists
	}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".json", ".conflist":
			if !checked[filepath.ToSlash(p)] {
				t.Errorf("%s: no test decodes it (add it to the embed list or a decoder here)", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestManifestsStrict decodes every manifest into the API types with
// unknown fields as errors, and checks what the files must agree on.
func TestManifestsStrict(t *testing.T) {
	docs := manifests(t)
	var (
		ds    *appsv1.DaemonSet
		cm    *corev1.ConfigMap
		sa    *corev1.ServiceAccount
		cr    *rbacv1.ClusterRole
		pools []*xvsv1.IPPool
		crds  []string
	)
	for _, d := range docs {
		switch o := d.Obj.(type) {
		case *appsv1.DaemonSet:
			ds = o
		case *corev1.ConfigMap:
			cm = o
		case *corev1.ServiceAccount:
			sa = o
		case *rbacv1.ClusterRole:
			cr = o
		case *xvsv1.IPPool:
			pools = append(pools, o)
		case *apiextv1.CustomResourceDefinition:
			crds = append(crds, o.Name)
		}
	}
	if ds == nil || cm == nil || sa == nil || cr == nil {
		t.Fatalf("missing objects: daemonset %v, configmap %v, serviceaccount %v, clusterrole %v", ds != nil, cm != nil, sa != nil, cr != nil)
	}
	slices.Sort(crds)
	if diff := cmp.Diff([]string{"bgpconfigurations.xvs.dev", "bgppeers.xvs.dev", "ipamblocks.xvs.dev", "ippools.xvs.dev"}, crds); diff != "" {
		t.Errorf("CRDs (-want +got):\n%s", diff)
	}

	// The DaemonSet runs as the ServiceAccount the RBAC binds, in its
	// namespace, from the ConfigMap that exists, on the host's network.
	pod := ds.Spec.Template.Spec
	if pod.ServiceAccountName != sa.Name || ds.Namespace != sa.Namespace || cm.Namespace != ds.Namespace {
		t.Errorf("daemonset %s/%s runs as %q; serviceaccount is %s/%s, configmap in %s", ds.Namespace, ds.Name, pod.ServiceAccountName, sa.Namespace, sa.Name, cm.Namespace)
	}
	if !pod.HostNetwork {
		t.Error("daemonset: hostNetwork is false")
	}
	var cmRef string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			cmRef = v.ConfigMap.Name
		}
	}
	if cmRef != cm.Name {
		t.Errorf("daemonset mounts configmap %q, manifests ship %q", cmRef, cm.Name)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("daemonset: %d containers, want xvsd alone", len(pod.Containers))
	}
	xvsd := pod.Containers[0]
	if xvsd.SecurityContext == nil || xvsd.SecurityContext.Privileged == nil || !*xvsd.SecurityContext.Privileged {
		t.Error("xvsd container is not privileged")
	}
	var nodeName bool
	for _, e := range xvsd.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("xvsd has no env from the downward API's spec.nodeName")
	}

	// The base config is a valid xvsd config, and the probes ask its
	// health address.
	base, err := config.Parse([]byte(cm.Data["xvsd-base.yaml"]))
	if err != nil {
		t.Fatalf("configmap xvsd-base.yaml: %v", err)
	}
	// Its kubernetes: section is in-cluster, as in xvsd's pod.
	t.Setenv("KUBERNETES_SERVICE_HOST", "198.19.128.1")
	if _, err := base.Resolve(config.Options{}); err != nil {
		t.Fatalf("configmap xvsd-base.yaml: %v", err)
	}
	health, err := netip.ParseAddrPort(base.HealthAddr)
	if err != nil {
		t.Fatalf("health_addr %q: %v", base.HealthAddr, err)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": xvsd.LivenessProbe, "readiness": xvsd.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: not an httpGet", name)
			continue
		}
		got := fmt.Sprintf("%s:%d%s", p.HTTPGet.Host, p.HTTPGet.Port.IntValue(), p.HTTPGet.Path)
		if w := health.String() + want; got != w {
			t.Errorf("%s probe asks %s, xvsd serves %s", name, got, w)
		}
	}

	// The conflist is JSON with the fields CNI requires.
	var conf struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	dec := json.NewDecoder(strings.NewReader(cm.Data["10-xvs.conflist"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&conf); err != nil {
		t.Fatalf("10-xvs.conflist: %v", err)
	}
	if conf.CNIVersion != "1.1.0" || conf.Name == "" || len(conf.Plugins) == 0 || conf.Plugins[0]["type"] != "xvs-cni" {
		t.Errorf("10-xvs.conflist: %+v, want cniVersion 1.1.0, a name, xvs-cni first", conf)
	}

	// The default pools are one per family, their CIDRs kind's podSubnet.
	kind := kindConfig(t)
	podSubnets := inTestRanges(t, "kind podSubnet", kind.Networking.PodSubnet)
	inTestRanges(t, "kind serviceSubnet", kind.Networking.ServiceSubnet)
	var poolCIDRs []netip.Prefix
	for _, p := range pools {
		poolCIDRs = append(poolCIDRs, inTestRanges(t, "ippool "+p.Name, p.Spec.CIDR)...)
	}
	if diff := cmp.Diff(podSubnets, poolCIDRs, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("default pools vs kind podSubnet (-kind +pools):\n%s", diff)
	}
}

func kindConfig(t *testing.T) *kindv1alpha4.Cluster {
	t.Helper()
	data, err := fs.ReadFile(deploy.FS, "kind/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// As kind itself reads it: yaml.v3, unknown fields are errors.
	var c kindv1alpha4.Cluster
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("kind/cluster.yaml: %v", err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind/cluster.yaml: kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	if !c.Networking.DisableDefaultCNI || c.Networking.IPFamily != kindv1alpha4.DualStackFamily {
		t.Errorf("kind/cluster.yaml: disableDefaultCNI %v ipFamily %q, want true and dual", c.Networking.DisableDefaultCNI, c.Networking.IPFamily)
	}
	return &c
}

// TestKindConfigStrict reads the kind config as kind does.
func TestKindConfigStrict(t *testing.T) { kindConfig(t) }

// TestExampleConfig: deploy/xvsd.yaml is a valid xvsd config (interfaces
// not checked: they are the reader's to fill in).
func TestExampleConfig(t *testing.T) {
	f, err := config.Load("xvsd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Resolve(config.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestStrictDecoderRefuses shows the decoder the tests rely on is strict:
// a misspelt field is an error, not a silent default.
func TestStrictDecoderRefuses(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"daemonset", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      hostNetwrk: true\n", `unknown field "spec.template.spec.hostNetwrk"`},
		{"ippool", "apiVersion: xvs.dev/v1\nkind: IPPool\nmetadata: {name: x}\nspec: {cidr: 198.19.0.0/16, vxlan: Always}\n", `unknown field "spec.vxlan"`},
		{"duplicate", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, name: b}\n", `key "name" already set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kubetest.DecodeFile(fstestMap(tc.doc), "doc.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decode: err = %v, want it to contain %s", err, tc.want)
			}
		})
	}
}

// TestManifestsApply applies every manifest to a real API server: the CRDs
// become Established, every object is accepted with strict server-side
// field validation, and the ServiceAccount may do what the agent needs and
// no more.
func TestManifestsApply(t *testing.T) {
	s := kubeapi.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kubetest.InstallCRDs(t, s.Config)

	dc, err := discovery.NewDiscoveryClientForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	docs := manifests(t)
	// Namespaces before what lives in them; the CRDs exist already.
	slices.SortStableFunc(docs, func(a, b kubetest.Doc) int {
		return rank(a) - rank(b)
	})
	for _, d := range docs {
		if _, ok := d.Obj.(*apiextv1.CustomResourceDefinition); ok {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(d.Raw); err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %s: %v", d.Name(), gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
			t.Errorf("apply %s (%s %s): %v", d.Name(), gvk.Kind, u.GetName(), err)
		}
	}
	if t.Failed() {
		return
	}

	// What the agent may and may not do, asked of the API server's own
	// authorizer for the DaemonSet's ServiceAccount.
	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:xvs-system:xvs-node"
	for _, tc := range []struct {
		ra      authzv1.ResourceAttributes
		allowed bool
	}{
		{authzv1.ResourceAttributes{Verb: "watch", Resource: "nodes"}, true},
		{authzv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Subresource: "status"}, true},
		{authzv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
		{authzv1.ResourceAttributes{Verb: "watch", Resource: "namespaces"}, true},
		{authzv1.ResourceAttributes{Verb: "list", Resource: "services"}, true},
		{authzv1.ResourceAttributes{Verb: "watch", Resource: "services"}, true},
		{authzv1.ResourceAttributes{Verb: "list", Group: "discovery.k8s.io", Resource: "endpointslices"}, true},
		{authzv1.ResourceAttributes{Verb: "watch", Group: "discovery.k8s.io", Resource: "endpointslices"}, true},
		{authzv1.ResourceAttributes{Verb: "watch", Group: "xvs.dev", Resource: "ippools"}, true},
		{authzv1.ResourceAttributes{Verb: "list", Group: "xvs.dev", Resource: "bgppeers"}, true},
		{authzv1.ResourceAttributes{Verb: "get", Group: "xvs.dev", Resource: "bgpconfigurations"}, true},
		{authzv1.ResourceAttributes{Verb: "create", Group: "xvs.dev", Resource: "ipamblocks"}, true},
		{authzv1.ResourceAttributes{Verb: "update", Group: "xvs.dev", Resource: "ipamblocks"}, true},
		{authzv1.ResourceAttributes{Verb: "delete", Group: "xvs.dev", Resource: "ipamblocks"}, true},
		{authzv1.ResourceAttributes{Verb: "create", Namespace: "default", Resource: "events"}, true},
		{authzv1.ResourceAttributes{Verb: "create", Namespace: "default", Group: "events.k8s.io", Resource: "events"}, true},
		{authzv1.ResourceAttributes{Verb: "get", Namespace: "xvs-system", Resource: "secrets"}, true},
		// Not the agent's business.
		{authzv1.ResourceAttributes{Verb: "get", Namespace: "default", Resource: "secrets"}, false},
		{authzv1.ResourceAttributes{Verb: "delete", Resource: "nodes"}, false},
		{authzv1.ResourceAttributes{Verb: "update", Resource: "pods"}, false},
		{authzv1.ResourceAttributes{Verb: "update", Resource: "services"}, false},
		{authzv1.ResourceAttributes{Verb: "create", Group: "xvs.dev", Resource: "ippools"}, false},
		{authzv1.ResourceAttributes{Verb: "update", Group: "xvs.dev", Resource: "bgppeers"}, false},
		{authzv1.ResourceAttributes{Verb: "deletecollection", Group: "xvs.dev", Resource: "ipamblocks"}, false},
		{authzv1.ResourceAttributes{Verb: "delete", Namespace: "default", Resource: "events"}, false},
	} {
		ra := tc.ra
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &ra}}
		got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review %+v: %v", ra, err)
		}
		if got.Status.Allowed != tc.allowed {
			t.Errorf("%s %s %s/%s (ns %q): allowed = %v, want %v", user, ra.Verb, ra.Group, ra.Resource+sub(ra.Subresource), ra.Namespace, got.Status.Allowed, tc.allowed)
		}
	}
}

func sub(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}

func rank(d kubetest.Doc) int {
	switch d.Obj.(type) {
	case *corev1.Namespace:
		return 0
	case *corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.Role:
		return 1
	default:
		return 2
	}
}

// fstestMap is a one-file file system holding doc.yaml.
func fstestMap(doc string) fs.FS {
	return fstest.MapFS{"doc.yaml": &fstest.MapFile{Data: []byte(doc)}}
}
