package kubeapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// Version is the Kubernetes release the Makefile builds kube-apiserver at.
const Version = "v1.37.2"

// Service CIDRs given to the API server: inside the test ranges.
const (
	ServiceCIDRv4 = "198.19.128.0/20"
	ServiceCIDRv6 = "fd00:96::/112"
	// AdvertiseAddress is what the API server publishes as its own
	// address in the default "kubernetes" Endpoints.
	AdvertiseAddress = "198.18.255.254"
)

// How long to wait for /readyz and for a process to exit on SIGTERM. The
// machine is shared with parallel builds, so these are generous; an API
// server that is ready sooner returns sooner.
const (
	readyTimeout = 90 * time.Second
	stopGrace    = 15 * time.Second
)

// Server is one etcd and one kube-apiserver.
type Server struct {
	// Config is an admin client configuration (system:masters token,
	// the API server's self-signed certificate trusted).
	Config *rest.Config
	// URL is the API server's https address.
	URL string
	// Dir holds both processes' data, certificates and logs.
	Dir string

	procs    []*proc // in start order; stopped in reverse
	stopOnce sync.Once
	stopErr  error

	mu      sync.Mutex
	stopped bool // Stop was called; guarded by mu
}

// proc is a child process and what its exit has told.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid after done
}

// Binary is the kube-apiserver the tests run: $XVS_KUBE_APISERVER if set,
// else kube-apiserver-<Version> in $XVS_CACHE (default ~/.cache/xvs),
// where `make kube-apiserver` puts it.
func Binary() string {
	if p := os.Getenv("XVS_KUBE_APISERVER"); p != "" {
		return p
	}
	return filepath.Join(CacheDir(), "kube-apiserver-"+Version)
}

// CacheDir is where the Makefile caches what the tests build once (the
// kube-apiserver, the CNI reference plugins): $XVS_CACHE, else
// ~/.cache/xvs.
func CacheDir() string {
	if dir := os.Getenv("XVS_CACHE"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "xvs")
}

// Start runs etcd and kube-apiserver and waits until /readyz answers. It
// fails t if either is missing or does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kube-apiserver %s: %v: run `make kube-apiserver` (builds it once, about 9 minutes)", bin, err)
	}
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd: %v: install Debian's etcd-server (`make deps` does)", err)
	}
	s := &Server{Dir: t.TempDir()}
	t.Cleanup(func() {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		// A test that called Stop has had its error already.
		if err := s.Stop(); err != nil && !stopped {
			t.Error(err)
		}
	})
	// A free port can be taken by someone else between our probe and the
	// child's bind; such a start fails fast, so try again with new ports.
	t0 := time.Now()
	var etcdURL string
	for attempt := 0; ; attempt++ {
		etcdURL, err = s.startEtcd(etcdBin, attempt)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("start etcd: %v", err)
		}
	}
	for attempt := 0; ; attempt++ {
		err = s.startAPIServer(bin, etcdURL, attempt)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("start kube-apiserver: %v", err)
		}
	}
	t.Logf("etcd and kube-apiserver %s ready at %s in %v (pids %v, logs in %s)", Version, s.URL, time.Since(t0).Round(time.Millisecond), s.PIDs(), s.Dir)
	return s
}

func (s *Server) startEtcd(bin string, attempt int) (string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	dir := filepath.Join(s.Dir, fmt.Sprintf("etcd%d", attempt))
	p, err := s.spawn("etcd", filepath.Join(s.Dir, fmt.Sprintf("etcd%d.log", attempt)), bin,
		"--name", "xvs-test",
		"--data-dir", dir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "xvs-test="+peer,
		"--initial-cluster-state", "new",
		"--log-level", "warn",
	)
	if err != nil {
		return "", err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := p.waitReady(func() bool {
		resp, err := hc.Get(client + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		s.stopProc(p)
		return "", err
	}
	return client, nil
}

func (s *Server) startAPIServer(bin, etcdURL string, attempt int) error {
	dir := filepath.Join(s.Dir, fmt.Sprintf("apiserver%d", attempt))
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o700); err != nil {
		return err
	}
	token, err := randomHex(16)
	if err != nil {
		return err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+`,xvs-admin,xvs-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	host := "127.0.0.1:" + strconv.Itoa(ports[0])
	p, err := s.spawn("kube-apiserver", filepath.Join(s.Dir, fmt.Sprintf("apiserver%d.log", attempt)), bin,
		"--etcd-servers", etcdURL,
		// Each attempt its own keyspace, so a retry meets no half-written state.
		"--etcd-prefix", fmt.Sprintf("/registry%d", attempt),
		"--bind-address", "127.0.0.1",
		// The address the "kubernetes" service's endpoints name; the API
		// server refuses loopback there. Nothing connects to it: a test
		// address, bound nowhere.
		"--advertise-address", AdvertiseAddress,
		"--secure-port", strconv.Itoa(ports[0]),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saKey,
		"--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", ServiceCIDRv4+","+ServiceCIDRv6,
		// As kubeadm and kind set it: xvsd's DaemonSet is privileged.
		"--allow-privileged=true",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	url := "https://" + host
	// The serving certificate is written before the port is bound; until
	// then trust nothing and poll without verification, only to learn
	// readiness. The client configuration below verifies it.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	if err := p.waitReady(func() bool {
		req, _ := http.NewRequest(http.MethodGet, url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		s.stopProc(p)
		return err
	}
	ca, err := os.ReadFile(filepath.Join(dir, "certs", "apiserver.crt"))
	if err != nil {
		s.stopProc(p)
		return fmt.Errorf("read serving certificate: %w", err)
	}
	s.URL = url
	s.Config = &rest.Config{
		Host:            url,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca, ServerName: "kubernetes"},
		QPS:             200,
		Burst:           400,
	}
	return nil
}

// spawn starts a child with its output in logPath. The child gets SIGKILL
// if the test process dies, so a crashed test leaves nothing running.
func (s *Server) spawn(name, logPath, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p, nil
}

// waitReady polls ready until it holds, the process exits or the time is up.
func (p *proc) waitReady(ready func() bool) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v; log:\n%s", p.name, p.err, tail(p.log))
		default:
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v; log:\n%s", p.name, readyTimeout, tail(p.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the API server, then etcd, by PID. It reports a process that
// was already gone (it crashed) or did not exit on SIGTERM in time. Safe
// to call more than once; t.Cleanup calls it too.
func (s *Server) Stop() error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.stopOnce.Do(func() {
		var errs []error
		for i := len(s.procs) - 1; i >= 0; i-- {
			if err := s.stopProc(s.procs[i]); err != nil {
				errs = append(errs, err)
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// stopProc ends one child and reaps it; it is removed from s.procs.
func (s *Server) stopProc(p *proc) error {
	for i, q := range s.procs {
		if q == p {
			s.procs = append(s.procs[:i], s.procs[i+1:]...)
			break
		}
	}
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) had exited before stop: %v; log:\n%s", p.name, p.cmd.Process.Pid, p.err, tail(p.log))
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s (pid %d): %w", p.name, p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v and was killed", p.name, p.cmd.Process.Pid, stopGrace)
}

// PIDs lists the running children's process IDs (etcd first).
func (s *Server) PIDs() []int {
	var pids []int
	for _, p := range s.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// freePorts returns n distinct loopback TCP ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// writeRSAKey writes a throwaway service-account signing key.
func writeRSAKey(path string) error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// tail is the end of a log, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

// WaitFor polls cond every 50 ms until it returns true or an error, or ctx
// ends; the last error is returned on timeout.
func WaitFor(ctx context.Context, cond func(context.Context) (bool, error)) error {
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
