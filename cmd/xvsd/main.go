// Command xvsd is the xvs userspace vSwitch daemon: it owns the node's
// dataplane and serves the control API, metrics and health endpoints.
// Everything but the wiring lives in package daemon.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/xvs-project/xvs/cmd/xvsd/internal/daemon"
	"github.com/xvs-project/xvs/config"
)

// version is set at link time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

// newSwitch builds the dataplane. It stays nil until *vswitch.Switch has
// every method daemon.Switch needs; then it becomes:
//
//	func newSwitch(cfg vswitch.Config, log *slog.Logger) (daemon.Switch, error) {
//		sw, err := vswitch.New(cfg, log)
//		if err != nil {
//			return nil, err // not a typed nil inside the interface
//		}
//		return sw, nil
//	}
var newSwitch daemon.NewSwitchFunc

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := daemon.Main(ctx, os.Args[1:], os.Stderr, version, newSwitch, config.NetlinkLinkCheck)
	stop()
	os.Exit(code)
}
