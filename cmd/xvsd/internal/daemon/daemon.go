package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/vswitch"
)

// Switch is the dataplane as the daemon drives it; *vswitch.Switch is one.
type Switch interface {
	api.Dataplane
	Start() error
	// Close stops the workers, detaches every XDP program and closes the
	// sockets.
	Close() error
}

// NewSwitchFunc builds (but does not start) the dataplane.
type NewSwitchFunc func(cfg vswitch.Config, log *slog.Logger) (Switch, error)

// Exit codes.
const (
	ExitOK      = 0
	ExitRuntime = 1
	ExitUsage   = 2 // bad flags or configuration
)

// stopTimeout bounds how long shutdown waits for API calls and scrapes.
const stopTimeout = 5 * time.Second

// Main parses args (without the program name), loads and validates the
// configuration, and runs the daemon until ctx is done. It returns the
// process exit code. linkCheck validates port names (config.NetlinkLinkCheck
// in xvsd; nil skips).
func Main(ctx context.Context, args []string, stderr io.Writer, version string, newSwitch NewSwitchFunc, linkCheck config.LinkCheck) int {
	fs := flag.NewFlagSet("xvsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgPath     = fs.String("config", "", "YAML configuration `file` (default: none, built-in defaults)")
		apiSocket   = fs.String("api-socket", config.DefaultAPISocket, "API unix socket `path`")
		metricsAddr = fs.String("metrics-addr", config.DefaultMetricsAddr, "Prometheus /metrics `address` (loopback)")
		healthAddr  = fs.String("health-addr", config.DefaultHealthAddr, "/healthz and /readyz `address` (loopback)")
		logLevel    = fs.String("log-level", config.DefaultLogLevel, "debug, info, warn or error")
		logFormat   = fs.String("log-format", config.DefaultLogFormat, "text or json")
		stateFile   = fs.String("state-file", config.DefaultStateFile, "`file` recording API-added ports and routes, replayed at start")
		workers     = fs.Int("workers", 1, "worker goroutines")
		batchSize   = fs.Int("batch-size", vswitch.DefaultBatchSize, "frames per vector (1..256)")
		poll        = fs.String("poll", "adaptive", "busy or adaptive")
		idleSpin    = fs.String("idle-spin", "0s", "adaptive polling: how long an idle worker keeps polling before it sleeps (0s: sleep at once)")
		fastPath    = fs.Bool("xdp-fast-path", false, "forward pod-to-pod frames in the pods' XDP programs (pods need GRO on)")
		workerCPUs  = fs.String("worker-cpus", "", "comma list: pin worker i to the i-th CPU (default: not pinned)")
		showVersion = fs.Bool("version", false, "print the version and exit")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: xvsd [flags]\n\nxvsd is the xvs userspace vSwitch daemon. Flags override the config file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xvsd: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	if *showVersion {
		fmt.Fprintf(stderr, "xvsd %s\n", version)
		return ExitOK
	}

	file := &config.File{}
	if *cfgPath != "" {
		f, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "xvsd: %v\n", err)
			return ExitUsage
		}
		file = f
	}
	// Only flags given on the command line override the file.
	var ov config.Overrides
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "api-socket":
			ov.APISocket = apiSocket
		case "metrics-addr":
			ov.MetricsAddr = metricsAddr
		case "health-addr":
			ov.HealthAddr = healthAddr
		case "log-level":
			ov.LogLevel = logLevel
		case "log-format":
			ov.LogFormat = logFormat
		case "state-file":
			ov.StateFile = stateFile
		case "workers":
			ov.Workers = workers
		case "batch-size":
			ov.BatchSize = batchSize
		case "poll":
			ov.Poll = poll
		case "idle-spin":
			ov.IdleSpin = idleSpin
		case "xdp-fast-path":
			ov.XDPFastPath = fastPath
		case "worker-cpus":
			cpus := []int{}
			for _, c := range strings.Split(*workerCPUs, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(c))
				if err != nil {
					n = -1 // refused by Resolve, which names the field
				}
				cpus = append(cpus, n)
			}
			ov.WorkerCPUs = &cpus
		}
	})
	ov.Apply(file)
	cfg, err := file.Resolve(config.Options{LinkCheck: linkCheck})
	if err != nil {
		where := "configuration"
		if *cfgPath != "" {
			where = *cfgPath
		}
		fmt.Fprintf(stderr, "xvsd: invalid %s:\n", where)
		for _, e := range unjoin(err) {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		return ExitUsage
	}

	log := NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if newSwitch == nil {
		log.Error("this xvsd was built without a dataplane")
		return ExitRuntime
	}
	d, err := New(cfg, newSwitch, log, version)
	if err != nil {
		log.Error("start failed", "err", err)
		return ExitRuntime
	}
	if err := d.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return ExitRuntime
	}
	return ExitOK
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// NewLogger returns the daemon's logger on w.
func NewLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Daemon is a started xvsd: its listeners are open, its switch forwards.
type Daemon struct {
	cfg  *config.Config
	log  *slog.Logger
	sw   Switch
	api  *api.Server
	apiL net.Listener
	http []*httpServer
	cni  *cni
	bgp  *bgpNode  // nil without a bgp: section
	kube *kubeNode // nil without a kubernetes: section
	svc  *svcState // nil when the switch has no NAT stage
}

type httpServer struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// New takes the listeners, builds and starts the switch. On error
// everything it took is released.
func New(cfg *config.Config, newSwitch NewSwitchFunc, log *slog.Logger, version string) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			d.release()
		}
	}()
	if d.apiL, err = api.Listen(cfg.APISocket); err != nil {
		return nil, err
	}
	if err := d.listenHTTP(); err != nil {
		return nil, err
	}
	sw, err := newSwitch(cfg.Switch, log)
	if err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	d.sw = sw
	if err := sw.Start(); err != nil {
		return nil, fmt.Errorf("start dataplane: %w", err)
	}
	d.api = api.NewServer(sw, log.With("component", "api"), api.ServerOptions{Version: version, LinkCheck: config.NetlinkLinkCheck, StateFile: cfg.StateFile})
	if err := d.api.Restore(); err != nil {
		return nil, fmt.Errorf("restore state: %w", err)
	}
	if err := d.startServices(); err != nil {
		return nil, err
	}
	if d.svc != nil {
		d.api.RegisterServices(svcBackend{d})
	} else {
		d.api.RegisterServices(nil)
	}
	if err := d.newKube(); err != nil {
		return nil, err
	}
	if err := d.startCNI(d.api.RegisterService); err != nil {
		return nil, fmt.Errorf("cni server: %w", err)
	}
	if err := d.startBGP(context.Background()); err != nil {
		return nil, err
	}
	var advertise func([]netip.Prefix) error
	if d.bgp != nil {
		advertise = d.SetAdvertised
	}
	d.api.RegisterBGP(d.BGP(), advertise)
	if k := d.Kube(); k != nil {
		d.api.RegisterKube(func() any { return k.Status() })
	} else {
		d.api.RegisterKube(nil)
	}
	d.startKube()
	d.setHandlers(version)
	return d, nil
}

// listenHTTP opens the metrics and health listeners (one when they share
// an address; ":0" means a fresh port each).
func (d *Daemon) listenHTTP() error {
	addrs := []struct{ name, addr string }{{"metrics", d.cfg.MetricsAddr}, {"health", d.cfg.HealthAddr}}
	if d.cfg.MetricsAddr == d.cfg.HealthAddr && !strings.HasSuffix(d.cfg.MetricsAddr, ":0") {
		addrs = addrs[:1]
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", a.name, err)
		}
		d.http = append(d.http, &httpServer{name: a.name, ln: ln})
	}
	return nil
}

func (d *Daemon) setHandlers(version string) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(d.sw), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(d.bgpCollectors()...)
	reg.MustRegister(d.kubeCollectors()...)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xvs_build_info", Help: "Always 1; the version label says which xvsd runs.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)})

	healthz := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }
	readyz := func(w http.ResponseWriter, _ *http.Request) {
		if !d.sw.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	}
	for i, h := range d.http {
		mux := http.NewServeMux()
		if i == 0 {
			mux.Handle("GET /metrics", metrics)
		}
		if h.name == "health" || len(d.http) == 1 {
			mux.HandleFunc("GET /healthz", healthz)
			mux.HandleFunc("GET /readyz", readyz)
		}
		h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	}
}

// MetricsAddr and HealthAddr are the addresses actually bound (":0" in
// tests becomes a real port).
func (d *Daemon) MetricsAddr() string { return d.http[0].ln.Addr().String() }
func (d *Daemon) HealthAddr() string  { return d.http[len(d.http)-1].ln.Addr().String() }

// Run serves until ctx is done or a server fails, then shuts everything
// down: API calls and scrapes in flight get stopTimeout to finish, then the
// switch is closed (detaching its XDP programs). It returns the first
// server error, or the switch's close error.
func (d *Daemon) Run(ctx context.Context) error {
	errc := make(chan error, 1+len(d.http))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := d.api.Serve(d.apiL); err != nil {
			errc <- fmt.Errorf("api server: %w", err)
		}
	})
	for _, h := range d.http {
		wg.Go(func() {
			if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", h.name, err)
			}
		})
	}
	d.log.Info("xvsd running", "api", d.cfg.APISocket, "metrics", d.MetricsAddr(), "health", d.HealthAddr(),
		"workers", d.cfg.Switch.Workers, "ports", len(d.cfg.Switch.Ports), "pid", os.Getpid())

	var runErr error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down", "cause", context.Cause(ctx))
	case runErr = <-errc:
		d.log.Error("server failed, shutting down", "err", runErr)
	}
	d.api.Stop(stopTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	for _, h := range d.http {
		h.srv.Shutdown(sctx)
	}
	cancel()
	wg.Wait()
	d.stopKube()
	d.stopBGP() // before the CNI server: its block watcher reads the CNI server's store
	d.stopCNI()
	if err := d.sw.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close dataplane: %w", err)
	}
	d.log.Info("xvsd stopped")
	return runErr
}

// release undoes a partial New.
func (d *Daemon) release() {
	d.stopKube()
	d.stopBGP()
	d.stopCNI()
	if d.sw != nil {
		d.sw.Close()
	}
	for _, h := range d.http {
		h.ln.Close()
	}
	if d.apiL != nil {
		d.apiL.Close()
	}
}
