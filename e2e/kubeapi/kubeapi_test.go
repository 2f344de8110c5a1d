package kubeapi_test

import (
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/xvs-project/xvs/e2e/kubeapi"
)

// TestServer starts the API server, uses it as an admin and as nobody,
// and checks that Stop leaves no process behind.
func TestServer(t *testing.T) {
	s := kubeapi.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "xvs-kubeapi-test"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// The service CIDRs are dual-stack and ours: the default "kubernetes"
	// service gets its ClusterIP from the IPv4 range.
	var svc *corev1.Service
	if err := kubeapi.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		svc, err = cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		t.Fatalf("default kubernetes service: %v", err)
	}
	if got := svc.Spec.ClusterIP; got != "198.19.128.1" {
		t.Errorf("kubernetes service ClusterIP = %q, want 198.19.128.1 (first of %s)", got, kubeapi.ServiceCIDRv4)
	}

	// Without the token the API refuses: authentication is on.
	anon := rest.AnonymousClientConfig(s.Config)
	acs, err := kubernetes.NewForConfig(anon)
	if err != nil {
		t.Fatal(err)
	}
	_, err = acs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) {
		t.Errorf("anonymous list namespaces: err = %v, want Forbidden or Unauthorized", err)
	}

	pids := s.PIDs()
	if len(pids) != 2 {
		t.Fatalf("PIDs() = %v, want etcd and kube-apiserver", pids)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, pid := range pids {
		// Reaped children are gone for good: signal 0 finds no process
		// (unless the PID was reused already, which a test cannot tell).
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d after Stop: kill(0) = %v, want ESRCH", pid, err)
		}
	}
	if _, err := http.Get(s.URL + "/readyz"); err == nil {
		t.Errorf("API server still answers at %s after Stop", s.URL)
	}
}
