package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
	"github.com/xvs-project/xvs/kube/client"
	"github.com/xvs-project/xvs/kube/kubetest"
	"github.com/xvs-project/xvs/lab"
	"github.com/xvs-project/xvs/podnet"
)

// The shared IPPools of TestKubeIPAMThreeNodes: blocks of 16 IPv4 and 16
// IPv6 addresses, 16 blocks each, outside every lab address.
var (
	kubePool4 = netip.MustParsePrefix("198.19.224.0/24")
	kubePool6 = netip.MustParsePrefix("fd00:1b::/112")
)

// apiProxy forwards TCP connections accepted inside a node's namespace
// (127.0.0.1 there) to the API server on the root namespace's loopback,
// so xvsd in the lab reaches the one API server of the test. It is a
// plain byte pipe: TLS runs end to end between xvsd and the API server.
type apiProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func startAPIProxy(ns, target string) (*apiProxy, error) {
	var ln net.Listener
	err := lab.InNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("api proxy in %s: %w", ns, err)
	}
	p := &apiProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	return p, nil
}

func (p *apiProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add && p.closed {
		return false
	}
	if add {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *apiProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		// This goroutine is not locked to the namespace's thread: the
		// dial goes out of the root namespace.
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, true) || !p.track(out, true) {
			in.Close()
			out.Close()
			continue
		}
		p.wg.Go(func() {
			var pipes sync.WaitGroup
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
			}
			pipes.Go(func() { pipe(out, in) })
			pipes.Go(func() { pipe(in, out) })
			pipes.Wait()
			in.Close()
			out.Close()
			p.track(in, false)
			p.track(out, false)
		})
	}
}

// Addr is the proxy's address inside the namespace.
func (p *apiProxy) Addr() string { return p.ln.Addr().String() }

func (p *apiProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// kubeLab is a lab whose xvsd nodes run against one real API server.
type kubeLab struct {
	*cniEnv
	rc      *rest.Config
	kube    kubernetes.Interface
	xvs     *client.Clientset
	mu      sync.Mutex
	proxies map[string]*apiProxy // by node namespace
}

// proxyFor returns (starting it once) the API proxy in namespace ns.
func (k *kubeLab) proxyFor(t *testing.T, ns string) *apiProxy {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.proxies[ns]; p != nil {
		return p
	}
	p, err := startAPIProxy(ns, strings.TrimPrefix(k.rc.Host, "https://"))
	if err != nil {
		t.Errorf("%v", err)
		return nil
	}
	k.proxies[ns] = p
	return p
}

// kubeXVSDConfig turns the lab's xvsd config for node into a Kubernetes
// node's: the static mesh members go (the mesh comes from the Node
// objects), an ipam: section without pools (they are the IPPools) and a
// kubernetes: section whose kubeconfig goes through the node's proxy.
func (k *kubeLab) kubeXVSDConfig(t *testing.T, cfg string) []string {
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Errorf("xvsd config: %v", err)
		return []string{"-config", cfg}
	}
	node := strings.TrimSuffix(filepath.Base(cfg), ".yaml")
	dir := filepath.Dir(cfg)
	ns := filepath.Base(dir) + "-" + node // lab.Topology's node namespace
	p := k.proxyFor(t, ns)
	if p == nil {
		return []string{"-config", cfg}
	}
	var out []string
	skip := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "  meshMembers:"):
			skip = true
			continue
		case skip && strings.HasPrefix(line, "    - "):
			continue
		}
		skip = false
		out = append(out, line)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://" + p.Addr(), CertificateAuthorityData: k.rc.CAData, TLSServerName: k.rc.ServerName}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: k.rc.BearerToken}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	kpath := filepath.Join(dir, node+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kpath); err != nil {
		t.Errorf("kubeconfig: %v", err)
	}
	out = append(out, fmt.Sprintf(`ipam:
  store: %q
kubernetes:
  kubeconfig: %q
  node: %q
  reclaim_grace: 2s
`, filepath.Join(dir, node, "ipam.db"), kpath, node))
	kcfg := cfg + ".kube.yaml"
	if err := os.WriteFile(kcfg, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Errorf("xvsd config: %v", err)
	}
	return []string{"-config", kcfg}
}

// newKubeLab starts an API server with xvs's CRDs, the Node objects of
// nodes node1..nodeN (as kubelets would register them) and the shared
// IPPools, then a BGP lab of n nodes whose xvsd run against it.
func newKubeLab(t *testing.T, nodes int) *kubeLab {
	t.Helper()
	requireLab(t)
	path := cniPlugins(t)
	s := kubetest.Start(t)
	k := &kubeLab{rc: s.Config, proxies: map[string]*apiProxy{}}
	var err error
	if k.kube, err = kubernetes.NewForConfig(s.Config); err != nil {
		t.Fatal(err)
	}
	if k.xvs, err = client.NewForConfig(s.Config); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range k.proxies {
			p.Close()
		}
	})
	ctx := context.Background()
	// No controller manager runs: the service account pods need.
	if _, err := k.kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if _, err := k.kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node%d", i+1)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, spec := range map[string]xvsv1.IPPoolSpec{
		"pool4": {CIDR: kubePool4.String(), BlockSize: 28},
		"pool6": {CIDR: kubePool6.String(), BlockSize: 124},
	} {
		if _, err := k.xvs.IPPools().Create(ctx, &xvsv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	o := lab.Options{Nodes: nodes, PodsPerNode: 1, BGP: true}
	o.XVSDArgs = func(cfg string) []string { return k.kubeXVSDConfig(t, cfg) }
	l := newLab(t, o)
	k.cniEnv = &cniEnv{t: t, l: l, node: l.T.Nodes[0], cni: libcni.NewCNIConfigWithCacheDir(path, t.TempDir(), nil)}
	t.Cleanup(func() {
		for _, n := range k.netnss {
			podnet.DeleteNamed(n)
		}
	})
	// The nodes' addresses, as the kubelet reports them: the agents
	// build the BGP mesh from them.
	for _, n := range l.T.Nodes {
		node, err := k.kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.UplinkV4.Addr().String()},
			{Type: corev1.NodeInternalIP, Address: n.UplinkV6.Addr().String()},
		}
		if _, err := k.kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// addOn ADDs a pod on node n through libcni and xvs-cni.
func (k *kubeLab) addOn(n *lab.Node, id string) (netns string, rt *libcni.RuntimeConf, addrs []netip.Addr, err error) {
	k.mu.Lock()
	e := *k.cniEnv
	e.node = n
	k.mu.Unlock()
	l, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "xvs", "plugins": [%s]}`, e.xvsPlugin(""))))
	if err != nil {
		return "", nil, nil, err
	}
	k.mu.Lock()
	k.seq++
	netns = fmt.Sprintf("%sc%d", k.l.T.Prefix, k.seq)
	err = podnet.NewNamed(netns)
	if err == nil {
		k.netnss = append(k.netnss, netns)
	}
	k.mu.Unlock()
	if err != nil {
		return "", nil, nil, err
	}
	// The pod object, as the scheduler leaves it: the CNI server reads
	// its annotations from the API.
	po := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}}}
	if _, err := k.kube.CoreV1().Pods("default").Create(context.Background(), po, metav1.CreateOptions{}); err != nil {
		return "", nil, nil, fmt.Errorf("pod %s: %w", id, err)
	}
	rt = e.rt(id, netns, nil)
	var r *current.Result
	// Until the node's IPAM store synced, xvsd asks to try again later.
	for deadline := time.Now().Add(30 * time.Second); ; {
		r, err = e.add(l, rt)
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "not ready") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("ADD %s on %s: %w", id, n.Name, err)
	}
	for _, ip := range r.IPs {
		addrs = append(addrs, netip.MustParseAddr(ip.Address.IP.String()))
	}
	if len(addrs) != 2 || !addrs[0].Is4() {
		return "", nil, nil, fmt.Errorf("ADD %s on %s: addresses %v, want IPv4 then IPv6", id, n.Name, addrs)
	}
	return netns, rt, addrs, nil
}

// blocks lists the IPAMBlock objects: CIDR → affinity.
func (k *kubeLab) blocks(t *testing.T) (map[netip.Prefix]string, []xvsv1.IPAMBlock) {
	t.Helper()
	list, err := k.xvs.IPAMBlocks().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Prefix]string{}
	for _, b := range list.Items {
		out[netip.MustParsePrefix(b.Spec.CIDR)] = b.Spec.Affinity
	}
	return out, list.Items
}

// blockOf is the block of a that blocks list.
func blockOf(blocks map[netip.Prefix]string, a netip.Addr) (netip.Prefix, bool) {
	for b := range blocks {
		if b.Contains(a) {
			return b, true
		}
	}
	return netip.Prefix{}, false
}

// TestKubeIPAMThreeNodes: three lab nodes, each an xvsd with a
// kubernetes: section, against one real kube-apiserver and etcd (through
// a TCP proxy in each node's namespace). One pair of IPPools is shared;
// pods ADDed at once on the three nodes through libcni and xvs-cni get
// addresses from blocks their node claimed through the API, and no block
// is claimed twice. The BGP mesh comes from the Node objects' addresses;
// the pods reach each other across nodes over IPv4 and IPv6. A restarted
// xvsd re-adopts its pod, which keeps its addresses and forwards. A node
// that leaves (its xvsd gone, its Node object deleted) has its blocks
// and addresses reclaimed by the others after the grace period.
func TestKubeIPAMThreeNodes(t *testing.T) {
	k := newKubeLab(t, 3)
	ctx := context.Background()
	nodes := k.l.T.Nodes

	// Two pods per node, the three nodes at once: a race for blocks.
	type pod struct {
		node  *lab.Node
		ns    string
		rt    *libcni.RuntimeConf
		addrs []netip.Addr
	}
	pods := make([]pod, 2*len(nodes))
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i := range pods {
		n := nodes[i%len(nodes)]
		wg.Go(func() {
			ns, rt, as, err := k.addOn(n, fmt.Sprintf("k%d", i))
			pods[i], errs[i] = pod{node: n, ns: ns, rt: rt, addrs: as}, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	blocks, objs := k.blocks(t)
	seen := map[netip.Addr]int{}
	for i, p := range pods {
		for _, a := range p.addrs {
			if j, dup := seen[a]; dup {
				t.Errorf("address %s given to pod %d and pod %d", a, j, i)
			}
			seen[a] = i
			if !kubePool4.Contains(a) && !kubePool6.Contains(a) {
				t.Errorf("pod %d on %s: %s is outside the IPPools", i, p.node.Name, a)
			}
			b, ok := blockOf(blocks, a)
			if !ok || blocks[b] != p.node.Name {
				t.Errorf("pod %d on %s: %s is in block %s of %q, want a block of its node (blocks %v)", i, p.node.Name, a, b, blocks[b], blocks)
			}
		}
	}
	// One block of each family per node: no two nodes share one.
	perNode := map[string]int{}
	for _, aff := range blocks {
		perNode[aff]++
	}
	for _, n := range nodes {
		if perNode[n.Name] != 2 {
			t.Errorf("%s holds %d blocks, want 2 (an IPv4 and an IPv6 one): %v", n.Name, perNode[n.Name], blocks)
		}
	}
	for _, o := range objs {
		t.Logf("block %s affinity %s, %d allocations", o.Spec.CIDR, o.Spec.Affinity, len(o.Spec.Allocations))
	}
	if t.Failed() {
		t.FailNow()
	}

	// The mesh from the Node objects: every node learns the others'
	// blocks by BGP, natively.
	for _, n := range nodes {
		eventually(t, 60*time.Second, n.Name+" learns the other nodes' blocks", func() error {
			got, err := bgpRoutes(n)
			if err != nil {
				return err
			}
			for b, aff := range blocks {
				if aff != n.Name && got[b] != "adjacency" {
					return fmt.Errorf("block %s of %s: %q (bgp routes %v)", b, aff, got[b], got)
				}
			}
			return nil
		})
	}
	for i := range len(nodes) {
		from, to := pods[i], pods[(i+1)%len(nodes)]
		for _, a := range to.addrs {
			pingNS(t, from.ns, a)
		}
	}
	assertForwardingOff(t, k.l)

	// Restart node2's xvsd: its pods keep their addresses and forward.
	n2 := nodes[1]
	before := k.endpoints(t, n2)
	if err := k.l.StopXVSD(n2.Name); err != nil {
		t.Fatal(err)
	}
	if err := k.l.StartXVSD(n2.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "node2 re-adopts its pods", func() error {
		after := k.endpointsErr(n2)
		if after == nil {
			return errors.New("endpoints not listed yet")
		}
		if fmt.Sprint(after) != fmt.Sprint(before) {
			return fmt.Errorf("endpoints %v, before the restart %v", after, before)
		}
		return nil
	})
	for _, a := range pods[1].addrs {
		eventually(t, 60*time.Second, fmt.Sprintf("pod on node1 reaches %s on node2 after the restart", a), func() error {
			out, err := execOut("ip", "netns", "exec", pods[0].ns, "ping", "-c", "1", "-W", "1", a.String())
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		pingNS(t, pods[4].ns, a)
	}
	if b2, _ := k.blocks(t); fmt.Sprint(b2) != fmt.Sprint(blocks) {
		t.Errorf("blocks after the restart %v, before %v", b2, blocks)
	}

	// node3 leaves: its xvsd stops, its Node object goes. The other
	// nodes' reclaimers release its addresses and its blocks.
	n3 := nodes[2]
	if err := k.l.StopXVSD(n3.Name); err != nil {
		t.Fatal(err)
	}
	if err := k.kube.CoreV1().Nodes().Delete(ctx, n3.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "node3's blocks reclaimed", func() error {
		_, objs := k.blocks(t)
		for _, o := range objs {
			if o.Spec.Affinity == n3.Name {
				return fmt.Errorf("block %s still affine to %s", o.Spec.CIDR, n3.Name)
			}
			for _, a := range o.Spec.Allocations {
				if a.Node == n3.Name {
					return fmt.Errorf("block %s still holds %v", o.Spec.CIDR, a)
				}
			}
		}
		return nil
	})
	// node1 and node2 keep theirs, and forward.
	after, _ := k.blocks(t)
	for b, aff := range blocks {
		if aff != n3.Name && after[b] != aff {
			t.Errorf("block %s of %s: now %q", b, aff, after[b])
		}
	}
	pingNS(t, pods[0].ns, pods[1].addrs[0])
	pingNS(t, pods[1].ns, pods[0].addrs[1])
}

// endpoints lists node n's CNI endpoints: pod name → addresses.
func (k *kubeLab) endpoints(t *testing.T, n *lab.Node) map[string][]string {
	t.Helper()
	eps := k.endpointsErr(n)
	if eps == nil {
		t.Fatalf("endpoints of %s not listed", n.Name)
	}
	return eps
}

func (k *kubeLab) endpointsErr(n *lab.Node) map[string][]string {
	out, err := xvsctl(k.t, k.l, n.Name, "-o", "json", "show", "endpoints")
	if err != nil {
		return nil
	}
	var eps struct {
		Endpoints []struct {
			Pod       string   `json:"pod"`
			Addresses []string `json:"addresses"`
			Up        bool     `json:"up"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(out), &eps); err != nil {
		return nil
	}
	m := map[string][]string{}
	for _, e := range eps.Endpoints {
		if e.Up {
			m[e.Pod] = e.Addresses
		}
	}
	return m
}
