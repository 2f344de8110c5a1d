package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/xvs-project/xvs/deploy"
	"github.com/xvs-project/xvs/e2e/kubeapi"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
)

// Scheme knows the built-in Kubernetes types, CRDs and xvs's types.
var Scheme = runtime.NewScheme()

// strict decodes YAML or JSON; an unknown or duplicate field is an error.
var strict runtime.Decoder

func init() {
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextv1.AddToScheme, xvsv1.AddToScheme} {
		if err := add(Scheme); err != nil {
			panic(err)
		}
	}
	strict = serializer.NewCodecFactory(Scheme, serializer.EnableStrict).UniversalDeserializer()
}

// Doc is one decoded YAML document and where it came from.
type Doc struct {
	File  string // path in its file system
	Index int    // document number in the file, from 0
	Raw   []byte // the document as JSON
	Obj   runtime.Object
}

// Name is "file#index", for messages.
func (d Doc) Name() string { return fmt.Sprintf("%s#%d", d.File, d.Index) }

// DecodeFile decodes every document of a multi-document YAML file into the
// scheme's types, strictly: a duplicate key, an unknown field or an
// unknown kind is an error. Empty documents are skipped.
func DecodeFile(fsys fs.FS, name string) ([]Doc, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufioReader(data))
	var docs []Doc
	for i := 0; ; i++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, i, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 || string(bytes.TrimSpace(stripComments(raw))) == "---" {
			continue
		}
		js, err := sigsyaml.YAMLToJSONStrict(raw)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, i, err)
		}
		obj, _, err := strict.Decode(js, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, i, err)
		}
		docs = append(docs, Doc{File: name, Index: len(docs), Raw: js, Obj: obj})
	}
}

// DecodeDir decodes every *.yaml file of dir.
func DecodeDir(fsys fs.FS, dir string) ([]Doc, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var all []Doc
	for _, n := range names {
		docs, err := DecodeFile(fsys, n)
		if err != nil {
			return nil, err
		}
		all = append(all, docs...)
	}
	return all, nil
}

// CRDs are the shipped CustomResourceDefinitions.
func CRDs() ([]*apiextv1.CustomResourceDefinition, error) {
	docs, err := DecodeDir(deploy.FS, "crds")
	if err != nil {
		return nil, err
	}
	var crds []*apiextv1.CustomResourceDefinition
	for _, d := range docs {
		crd, ok := d.Obj.(*apiextv1.CustomResourceDefinition)
		if !ok {
			return nil, fmt.Errorf("%s: %T, want a CustomResourceDefinition", d.Name(), d.Obj)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// InstallCRDs creates the shipped CRDs and waits until each is
// Established (its resources served).
func InstallCRDs(t testing.TB, cfg *rest.Config) []*apiextv1.CustomResourceDefinition {
	t.Helper()
	crds, err := CRDs()
	if err != nil {
		t.Fatalf("decode CRDs: %v", err)
	}
	cs, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, crd := range crds {
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", crd.Name, err)
		}
	}
	for _, crd := range crds {
		if err := WaitEstablished(ctx, cs, crd.Name); err != nil {
			t.Fatalf("CRD %s: %v", crd.Name, err)
		}
	}
	return crds
}

// WaitEstablished waits for the CRD's Established condition, and reports
// NamesAccepted=False (a name clash) at once.
func WaitEstablished(ctx context.Context, cs apiextclient.Interface, name string) error {
	return kubeapi.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		crd, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextv1.NamesAccepted && c.Status == apiextv1.ConditionFalse {
				return false, fmt.Errorf("names not accepted: %s", c.Message)
			}
			if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("not established yet")
	})
}

// Start is kubeapi.Start plus InstallCRDs: an API server that serves
// xvs.dev/v1.
func Start(t testing.TB) *kubeapi.Server {
	t.Helper()
	s := kubeapi.Start(t)
	InstallCRDs(t, s.Config)
	return s
}
