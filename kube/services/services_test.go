package services_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/xvs-project/xvs/e2e/kubeapi"
	"github.com/xvs-project/xvs/kube/services"
	"github.com/xvs-project/xvs/spec"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func ptr[T any](v T) *T { return &v }

func slice(ns, svc, name string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: at, Ports: ports, Endpoints: eps,
	}
}

func ep(addr, node string, ready, serving, term *bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: term}}
	if node != "" {
		e.NodeName = ptr(node)
	}
	return e
}

func TestConvert(t *testing.T) {
	local := corev1.ServiceInternalTrafficPolicyLocal
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "198.19.128.10", ClusterIPs: []string{"198.19.128.10", "fd00:96::10"},
			SessionAffinity:       corev1.ServiceAffinityClientIP,
			SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(30))}},
			InternalTrafficPolicy: &local, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web"), NodePort: 30080},
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(5353), NodePort: 30053},
				{Name: "sig", Protocol: corev1.ProtocolSCTP, Port: 9, NodePort: 30009},
			},
		},
	}
	ports := []discoveryv1.EndpointPort{
		{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}, // the named targetPort, resolved
		{Name: ptr("dns"), Protocol: ptr(corev1.ProtocolUDP), Port: ptr(int32(5353))},
	}
	eps := []*discoveryv1.EndpointSlice{
		slice("ns", "web", "web-a", discoveryv1.AddressTypeIPv4, ports,
			ep("198.18.1.5", "me", nil, nil, nil),
			ep("198.18.2.5", "other", ptr(false), ptr(true), ptr(true))),
		slice("ns", "web", "web-b", discoveryv1.AddressTypeIPv6, ports,
			ep("fd00:10::5", "me", ptr(true), nil, nil)),
		// the same endpoint again in a second slice counts once
		slice("ns", "web", "web-c", discoveryv1.AddressTypeIPv4, ports,
			ep("198.18.1.5", "me", nil, nil, nil)),
		slice("ns", "web", "web-fqdn", discoveryv1.AddressTypeFQDN, ports, ep("a.example", "", nil, nil, nil)),
	}
	got, skipped, ok := services.Convert(svc, eps, "me")
	if !ok {
		t.Fatal("ignored")
	}
	mk := func(port uint16) []spec.Endpoint {
		return []spec.Endpoint{
			{Addr: netip.MustParseAddr("198.18.1.5"), Port: port, Local: true, Ready: true, Serving: true},
			{Addr: netip.MustParseAddr("198.18.2.5"), Port: port, Serving: true, Terminating: true},
			{Addr: netip.MustParseAddr("fd00:10::5"), Port: port, Local: true, Ready: true, Serving: true},
		}
	}
	want := spec.Service{
		Name:       "ns/web",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("198.19.128.10"), netip.MustParseAddr("fd00:96::10")},
		Affinity:   true, AffinityTimeout: 30 * time.Second, InternalLocal: true, ExternalLocal: true,
		Ports: []spec.ServicePort{
			{Name: "http", Protocol: spec.ProtoTCP, Port: 80, NodePort: 30080, Endpoints: mk(8080)},
			{Name: "dns", Protocol: spec.ProtoUDP, Port: 53, NodePort: 30053, Endpoints: mk(5353)},
		},
	}
	if d := cmp.Diff(want, got, addrCmp); d != "" {
		t.Errorf("Convert (-want +got):\n%s", d)
	}
	if !slices.Equal(skipped, []string{"sig/SCTP:9"}) {
		t.Errorf("skipped %v", skipped)
	}
	if errs := got.Validate(); len(errs) > 0 {
		t.Errorf("Validate: %v", errs)
	}

	// ClusterIP type: no node ports, externalTrafficPolicy means nothing.
	c := svc.DeepCopy()
	c.Spec.Type = corev1.ServiceTypeClusterIP
	c.Spec.SessionAffinityConfig = nil
	got, _, _ = services.Convert(c, nil, "me")
	if got.Ports[0].NodePort != 0 || got.ExternalLocal || got.AffinityTimeout != spec.DefaultAffinityTimeout || len(got.Ports[0].Endpoints) != 0 {
		t.Errorf("ClusterIP service: %+v", got)
	}

	for name, mod := range map[string]func(*corev1.Service){
		"headless": func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} },
		"externalname": func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "a.example"
		},
		"no clusterIP": func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil },
	} {
		c := svc.DeepCopy()
		mod(c)
		if _, _, ok := services.Convert(c, eps, "me"); ok {
			t.Errorf("%s: not ignored", name)
		}
	}
}

// recorder is the switch side: it keeps the last set.
type recorder struct {
	mu   sync.Mutex
	last []spec.Service
	n    int
}

func (r *recorder) SetServices(s []spec.Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.n = slices.Clone(s), r.n+1
	return nil
}

func (r *recorder) get(name string) (spec.Service, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.last {
		if s.Name == name {
			return s, true
		}
	}
	return spec.Service{}, false
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kubeapi.WaitFor(ctx, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestWatcherAPIServer runs the watcher against a real kube-apiserver:
// Services and EndpointSlices created, updated and deleted there reach
// the switch-side recorder as []spec.Service.
func TestWatcherAPIServer(t *testing.T) {
	srv := kubeapi.Start(t)
	kc, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	w, err := services.New(services.Options{Client: kc, Node: "node-a", Sink: rec, Debounce: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The API server keeps the kubernetes Service and its slice itself.
	wait(t, "default/kubernetes", func() bool {
		s, ok := rec.get("default/kubernetes")
		return ok && len(s.Ports) == 1 && len(s.Ports[0].Endpoints) == 1 &&
			s.Ports[0].Endpoints[0].Addr == netip.MustParseAddr(kubeapi.AdvertiseAddress) && s.Ports[0].Port == 443
	})

	bg := context.Background()
	dual := corev1.IPFamilyPolicyRequireDualStack
	svc, err := kc.CoreV1().Services("default").Create(bg, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, IPFamilyPolicy: &dual,
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web")},
				{Name: "sig", Protocol: corev1.ProtocolSCTP, Port: 9},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v6only := corev1.IPFamilyPolicySingleStack
	if _, err := kc.CoreV1().Services("default").Create(bg, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "six"},
		Spec: corev1.ServiceSpec{IPFamilyPolicy: &v6only, IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol},
			Ports: []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Services("default").Create(bg, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "headless"},
		Spec:       corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ports := []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}}
	for _, es := range []*discoveryv1.EndpointSlice{
		slice("default", "web", "web-4", discoveryv1.AddressTypeIPv4, ports,
			ep("198.18.1.5", "node-a", nil, nil, nil), ep("198.18.2.5", "node-b", ptr(false), ptr(true), ptr(true))),
		slice("default", "web", "web-6", discoveryv1.AddressTypeIPv6, ports, ep("fd00:10::5", "node-b", ptr(true), nil, nil)),
		slice("default", "six", "six-6", discoveryv1.AddressTypeIPv6,
			[]discoveryv1.EndpointPort{{Name: ptr("dns"), Protocol: ptr(corev1.ProtocolUDP), Port: ptr(int32(5353))}},
			ep("fd00:10::7", "node-a", nil, nil, nil)),
	} {
		if _, err := kc.DiscoveryV1().EndpointSlices("default").Create(bg, es, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var cips []netip.Addr
	for _, ip := range svc.Spec.ClusterIPs {
		cips = append(cips, netip.MustParseAddr(ip))
	}
	if len(cips) != 2 {
		t.Fatalf("API server gave clusterIPs %v, want two families", svc.Spec.ClusterIPs)
	}
	want := spec.Service{Name: "default/web", ClusterIPs: cips, Ports: []spec.ServicePort{{
		Name: "http", Protocol: spec.ProtoTCP, Port: 80, NodePort: uint16(svc.Spec.Ports[0].NodePort),
		Endpoints: []spec.Endpoint{
			{Addr: netip.MustParseAddr("198.18.1.5"), Port: 8080, Local: true, Ready: true, Serving: true},
			{Addr: netip.MustParseAddr("198.18.2.5"), Port: 8080, Serving: true, Terminating: true},
			{Addr: netip.MustParseAddr("fd00:10::5"), Port: 8080, Ready: true, Serving: true},
		},
	}}}
	wait(t, "default/web with its endpoints", func() bool {
		s, _ := rec.get("default/web")
		return cmp.Equal(want, s, addrCmp)
	})
	if s, _ := rec.get("default/web"); !cmp.Equal(want, s, addrCmp) {
		t.Fatalf("web (-want +got):\n%s", cmp.Diff(want, s, addrCmp))
	}
	wait(t, "default/six", func() bool {
		s, ok := rec.get("default/six")
		return ok && len(s.ClusterIPs) == 1 && s.ClusterIPs[0].Is6() && len(s.Ports[0].Endpoints) == 1 && s.Ports[0].Endpoints[0].Port == 5353
	})
	if _, ok := rec.get("default/headless"); ok {
		t.Error("headless service came through")
	}
	if st := w.Stats(); st.SkippedPorts != 1 || !st.Synced {
		t.Errorf("stats %+v, want one skipped SCTP port", st)
	}

	// Update: affinity on, an endpoint gone.
	svc, err = kc.CoreV1().Services("default").Get(bg, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
	if _, err := kc.CoreV1().Services("default").Update(bg, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kc.DiscoveryV1().EndpointSlices("default").Delete(bg, "web-6", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, "web updated", func() bool {
		s, _ := rec.get("default/web")
		return s.Affinity && s.AffinityTimeout == time.Minute && len(s.Ports) == 1 && len(s.Ports[0].Endpoints) == 2
	})

	// Remove.
	if err := kc.CoreV1().Services("default").Delete(bg, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, "web removed", func() bool { _, ok := rec.get("default/web"); return !ok })
	if _, ok := rec.get("default/kubernetes"); !ok {
		t.Error("default/kubernetes gone with web")
	}
}
