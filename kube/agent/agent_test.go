package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/ipam"
	"github.com/xvs-project/xvs/kube/agent"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
	"github.com/xvs-project/xvs/kube/kubetest"
	"github.com/xvs-project/xvs/spec"
)

// recorder stands in for xvsd's switch, speaker and allocator: the agent's
// side of those seams is what this test checks against a real API server
// (the sinks' own behaviour is tested in their packages).
type recorder struct {
	mu     sync.Mutex
	bgp    agent.BGPState
	routes map[netip.Prefix]spec.Route
	pools  []ipam.Pool
	labels map[string]string
}

func (r *recorder) SetBGP(_ context.Context, st agent.BGPState) error {
	r.mu.Lock()
	r.bgp = st
	r.mu.Unlock()
	return nil
}

func (r *recorder) ApplyRoutes(o fib.Origin, adds []spec.Route, dels []netip.Prefix) error {
	if o != fib.OriginKube {
		return fmt.Errorf("origin %v", o)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range dels {
		delete(r.routes, p)
	}
	for _, a := range adds {
		r.routes[a.Prefix] = a
	}
	return nil
}

func (r *recorder) SetPools(_ context.Context, ps []ipam.Pool) error {
	r.mu.Lock()
	r.pools = slices.Clone(ps)
	r.mu.Unlock()
	return nil
}

func (r *recorder) SetNodeLabels(l map[string]string) {
	r.mu.Lock()
	r.labels = l
	r.mu.Unlock()
}

func node(name string, ips []string, ann map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "rack": "a"}, Annotations: ann}}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func createNode(t *testing.T, kc kubernetes.Interface, n *corev1.Node) {
	t.Helper()
	ctx := context.Background()
	st := n.Status
	got, err := kc.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Status = st
	if _, err := kc.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func vtepAnn(mac, v4, v6 string, blocks ...string) map[string]string {
	js, _ := json.Marshal(blocks)
	return map[string]string{agent.AnnotationVTEPMAC: mac, agent.AnnotationVTEP4: v4, agent.AnnotationVTEP6: v6, agent.AnnotationBlocks: string(js)}
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func u32(v uint32) *uint32 { return &v }

// TestAgent runs the agent against a real kube-apiserver and etcd: the
// mesh and explicit peers from Node and BGPPeer objects, the AS from the
// BGPConfiguration, VXLAN routes to another node's blocks by its pool's
// vxlanMode, pools (an overlapping one refused, naming the field), pod
// annotations, this node's own annotations; a third node joins and the
// second leaves, without a restart.
func TestAgent(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (etcd and kube-apiserver data under the test's dir)")
	}
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kc := kubernetes.NewForConfigOrDie(s.Config)
	xc, err := client.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	createNode(t, kc, node("n1", []string{"198.18.0.1", "fd00:18::1"}, nil))
	createNode(t, kc, node("n2", []string{"198.18.0.2", "fd00:18::2"},
		vtepAnn("02:00:00:00:00:02", "198.18.0.2", "fd00:18::2", "198.19.64.64/26", "198.19.80.0/26", "fd00:64::40/122")))
	for _, p := range []xvsv1.IPPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "vx4"}, Spec: xvsv1.IPPoolSpec{CIDR: "198.19.64.0/20", VXLANMode: xvsv1.VXLANAlways}},
		{ObjectMeta: metav1.ObjectMeta{Name: "vx6"}, Spec: xvsv1.IPPoolSpec{CIDR: "fd00:64::/112", VXLANMode: xvsv1.VXLANAlways}},
		{ObjectMeta: metav1.ObjectMeta{Name: "native4"}, Spec: xvsv1.IPPoolSpec{CIDR: "198.19.80.0/20"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "zz-overlap"}, Spec: xvsv1.IPPoolSpec{CIDR: "198.19.80.0/24"}},
	} {
		if _, err := xc.IPPools().Create(ctx, &p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := xc.BGPConfigurations().Create(ctx, &xvsv1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: xvsv1.BGPConfigurationSpec{ASNumber: u32(64600)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "xvs-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Secrets("xvs-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bgp"}, StringData: map[string]string{"tor": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []xvsv1.BGPPeer{
		{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: xvsv1.BGPPeerSpec{PeerIP: "198.18.0.254", ASNumber: 65000, NodeSelector: `rack == "a"`,
			Password: &xvsv1.BGPPassword{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "bgp"}, Key: "tor"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other-node"}, Spec: xvsv1.BGPPeerSpec{PeerIP: "198.18.0.253", ASNumber: 65000, Node: "n9"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bad-selector"}, Spec: xvsv1.BGPPeerSpec{PeerIP: "198.18.0.252", ASNumber: 65000, NodeSelector: `rack ==`}},
	} {
		if _, err := xc.BGPPeers().Create(ctx, &p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	rec := &recorder{routes: map[netip.Prefix]spec.Route{}}
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	a, err := agent.New(agent.Options{
		Config: s.Config, Node: "n1", Namespace: "xvs-system", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		BGP: rec, Routes: rec, Pools: rec, ProbeInterval: 200 * time.Millisecond,
		VTEP: func() (agent.VTEP, bool) {
			return agent.VTEP{MAC: mac, V4: netip.MustParseAddr("198.18.0.1"), V6: netip.MustParseAddr("fd00:18::1"), Subnets: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}, true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(actx); close(done) }()
	defer func() { acancel(); <-done }()
	a.SetBlocks([]netip.Prefix{netip.MustParsePrefix("198.19.64.0/26")})

	mesh := func(addrs ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range addrs {
			out = append(out, netip.MustParseAddr(s))
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return out
	}
	eventually(t, "bgp state", func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		st := rec.bgp
		if st.ASNumber != 64600 || !st.MeshEnabled || !slices.Equal(st.Mesh, mesh("198.18.0.1", "198.18.0.2", "fd00:18::1", "fd00:18::2")) {
			return fmt.Errorf("got %+v", st)
		}
		if len(st.Peers) != 1 || st.Peers[0].Address != netip.MustParseAddr("198.18.0.254") || st.Peers[0].Password != "s3cret" || st.Peers[0].ASNumber != 65000 {
			return fmt.Errorf("peers %+v", st.Peers)
		}
		return nil
	})
	wantRoutes := func(want map[string]string) func() error {
		return func() error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			got := map[string]string{}
			for p, r := range rec.routes {
				got[p.String()] = fmt.Sprintf("%s %x", r.VXLAN.Remote, r.VXLAN.MAC)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("routes %v, want %v", got, want)
			}
			return nil
		}
	}
	// The native pool's block is BGP's, not a tunnel's.
	eventually(t, "vxlan routes to n2", wantRoutes(map[string]string{
		"198.19.64.64/26": "198.18.0.2 020000000002", "fd00:64::40/122": "fd00:18::2 020000000002"}))
	eventually(t, "pools and labels", func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var names []string
		for _, p := range rec.pools {
			names = append(names, p.Name)
		}
		if fmt.Sprint(names) != "[native4 vx4 vx6]" || rec.labels["rack"] != "a" {
			return fmt.Errorf("pools %v labels %v", names, rec.labels)
		}
		return nil
	})
	st := a.Status()
	refused := strings.Join(st.Refused, "\n")
	for _, want := range []string{"ippool zz-overlap: spec.cidr", "bgppeer bad-selector: spec.nodeSelector"} {
		if !strings.Contains(refused, want) {
			t.Errorf("refused %q: no %q", refused, want)
		}
	}
	if !st.Connected || !st.Synced || st.Objects["nodes"] != 2 || st.Objects["ippools"] != 4 || st.LastResync.IsZero() {
		t.Errorf("status %+v", st)
	}
	eventually(t, "n1's annotations", func() error {
		n, err := kc.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.Annotations[agent.AnnotationVTEPMAC] != "02:00:00:00:00:01" || n.Annotations[agent.AnnotationVTEP4] != "198.18.0.1" ||
			n.Annotations[agent.AnnotationVTEP6] != "fd00:18::1" || n.Annotations[agent.AnnotationBlocks] != `["198.19.64.0/26"]` {
			return fmt.Errorf("annotations %v", n.Annotations)
		}
		return nil
	})

	// Pod annotations for the CNI server, the pod's and its namespace's.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{"cni.projectcalico.org/ipv4pools": `["vx4"]`}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
	// No controller manager runs to make the namespace's service account.
	if _, err := kc.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pa, _, err := a.PodAnnotations(ctx, "default", "web")
	if err != nil || pa["cni.projectcalico.org/ipv4pools"] != `["vx4"]` {
		t.Errorf("PodAnnotations = %v, %v", pa, err)
	}
	if _, _, err := a.PodAnnotations(ctx, "default", "nope"); err == nil {
		t.Error("PodAnnotations of a missing pod: no error")
	}

	// A third node joins (CrossSubnet off its subnet: tunnelled); the
	// second leaves: its routes and mesh addresses go.
	p, err := xc.IPPools().Get(ctx, "vx6", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.VXLANMode = xvsv1.VXLANCrossSubnet
	if _, err := xc.IPPools().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	createNode(t, kc, node("n3", []string{"198.18.1.3"}, vtepAnn("02:00:00:00:00:03", "198.18.1.3", "", "198.19.65.0/26", "fd00:64::80/122")))
	// n2 is on n1's subnet: its IPv6 block (now CrossSubnet) goes native.
	eventually(t, "n3 joins", wantRoutes(map[string]string{
		"198.19.64.64/26": "198.18.0.2 020000000002",
		"198.19.65.0/26":  "198.18.1.3 020000000003", "fd00:64::80/122": "198.18.1.3 020000000003"}))
	if err := kc.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 leaves", wantRoutes(map[string]string{
		"198.19.65.0/26": "198.18.1.3 020000000003", "fd00:64::80/122": "198.18.1.3 020000000003"}))
	eventually(t, "mesh without n2", func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if !slices.Equal(rec.bgp.Mesh, mesh("198.18.0.1", "198.18.1.3", "fd00:18::1")) {
			return fmt.Errorf("mesh %v", rec.bgp.Mesh)
		}
		return nil
	})
	// nodeToNodeMeshEnabled=false turns the mesh off.
	bc, err := xc.BGPConfigurations().Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	off := false
	bc.Spec.NodeToNodeMeshEnabled = &off
	if _, err := xc.BGPConfigurations().Update(ctx, bc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mesh off", func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.bgp.MeshEnabled {
			return fmt.Errorf("mesh still on")
		}
		return nil
	})

	// The API server goes away: the routes stay, the status says so.
	if err := s.Stop(); err != nil {
		t.Logf("stop: %v", err)
	}
	eventually(t, "not connected", func() error {
		if a.Status().Connected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	if err := wantRoutes(map[string]string{
		"198.19.65.0/26": "198.18.1.3 020000000003", "fd00:64::80/122": "198.18.1.3 020000000003"})(); err != nil {
		t.Errorf("after the API server stopped: %v", err)
	}
}
