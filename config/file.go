package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// Defaults for the daemon's own settings.
const (
	DefaultAPISocket   = "/run/xvs/xvsd.sock"
	DefaultMetricsAddr = "127.0.0.1:9091" // Calico's Prometheus port
	DefaultHealthAddr  = "127.0.0.1:9099" // Calico's health port
	DefaultLogLevel    = "info"
	DefaultLogFormat   = "text"
	DefaultStateFile   = "/var/lib/xvs/state.json"
)

// File is the configuration file as written. Values stay strings until
// Resolve so that errors can quote exactly what the operator wrote.
type File struct {
	Workers    int    `yaml:"workers"`
	BatchSize  int    `yaml:"batch_size"`
	Poll       string `yaml:"poll"`
	IdleSpin   string `yaml:"idle_spin"`
	WorkerCPUs []int  `yaml:"worker_cpus"`
	// XDPFastPath: see vswitch.Config.XDPFastPath.
	XDPFastPath bool   `yaml:"xdp_fast_path"`
	Frames      int    `yaml:"frames"`
	FrameSize   int    `yaml:"frame_size"`
	GatewayV4   string `yaml:"gateway_v4"`
	GatewayV6   string `yaml:"gateway_v6"`
	GatewayMAC  string `yaml:"gateway_mac"`
	ICMPRate    int    `yaml:"icmp_rate"`

	APISocket   string `yaml:"api_socket"`
	MetricsAddr string `yaml:"metrics_addr"`
	HealthAddr  string `yaml:"health_addr"`
	LogLevel    string `yaml:"log_level"`
	LogFormat   string `yaml:"log_format"`
	StateFile   string `yaml:"state_file"`

	// VXLAN makes the node a VXLAN tunnel endpoint; absent: no VXLAN.
	VXLAN *VXLAN `yaml:"vxlan"`

	// IPAM turns on the CNI server (see IPAM); absent: no CNI server.
	IPAM *IPAM `yaml:"ipam"`

	Ports  []Port  `yaml:"ports"`
	Routes []Route `yaml:"routes"`

	// BGP runs the BGP speaker (see BGP); absent: no BGP.
	BGP *BGP `yaml:"bgp"`

	// Kubernetes runs the node agent (see Kubernetes); absent: standalone.
	Kubernetes *Kubernetes `yaml:"kubernetes"`

	// Services are load-balanced services set in the file (service.go);
	// the Kubernetes agent's and the API's join them.
	Services []Service `yaml:"services"`
	// NAT is the SNAT port range and extra internal prefixes (service.go).
	NAT *NAT `yaml:"nat"`
}

// VXLAN is the vxlan: section, the node's VTEP (see vswitch.VXLANConfig).
// An empty section (vxlan: {}) turns VXLAN on with every default.
type VXLAN struct {
	VNI    int    `yaml:"vni"`
	Port   int    `yaml:"port"`
	MAC    string `yaml:"mac"`
	VTEPv4 string `yaml:"vtep_v4"`
	VTEPv6 string `yaml:"vtep_v6"`
}

// Port is one entry of ports:.
type Port struct {
	Name      string     `yaml:"name"`
	Kind      string     `yaml:"kind"`
	Mode      string     `yaml:"mode"`
	Queue     int        `yaml:"queue"`
	Queues    int        `yaml:"queues"`
	Addresses []string   `yaml:"addresses"`
	PeerMAC   string     `yaml:"peer_mac"`
	MTU       int        `yaml:"mtu"`
	Memif     *PortMemif `yaml:"memif"` // mode memif only (memif.go)
}

// Route is one entry of routes:.
type Route struct {
	Prefix    string `yaml:"prefix"`
	Via       string `yaml:"via"`
	Port      string `yaml:"port"`
	Blackhole bool   `yaml:"blackhole"`
	// VXLAN sends the prefix into a tunnel to another node's VTEP.
	VXLAN *RouteVXLAN `yaml:"vxlan"`
}

// RouteVXLAN is a route's vxlan: the other node's VTEP address and MAC.
type RouteVXLAN struct {
	Remote string `yaml:"remote"`
	MAC    string `yaml:"mac"`
}

// Load reads and parses the file at path. It does not validate: call
// Resolve after applying overrides.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse parses one YAML document. Unknown keys and a second document are
// errors; an empty document is an empty File.
func Parse(data []byte) (*File, error) {
	f := &File{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse: more than one YAML document")
	}
	return f, nil
}

// Overrides are command-line values that replace the file's. A nil field
// leaves the file's value alone.
type Overrides struct {
	APISocket   *string
	MetricsAddr *string
	HealthAddr  *string
	LogLevel    *string
	LogFormat   *string
	StateFile   *string
	Workers     *int
	BatchSize   *int
	Poll        *string
	IdleSpin    *string
	WorkerCPUs  *[]int
	XDPFastPath *bool
}

// Apply copies every set override into f.
func (o Overrides) Apply(f *File) {
	setS := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setI := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setS(&f.APISocket, o.APISocket)
	setS(&f.MetricsAddr, o.MetricsAddr)
	setS(&f.HealthAddr, o.HealthAddr)
	setS(&f.LogLevel, o.LogLevel)
	setS(&f.LogFormat, o.LogFormat)
	setS(&f.StateFile, o.StateFile)
	setI(&f.Workers, o.Workers)
	setI(&f.BatchSize, o.BatchSize)
	setS(&f.Poll, o.Poll)
	setS(&f.IdleSpin, o.IdleSpin)
	if o.XDPFastPath != nil {
		f.XDPFastPath = *o.XDPFastPath
	}
	if o.WorkerCPUs != nil {
		f.WorkerCPUs = *o.WorkerCPUs
	}
}
