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

// newSwitch builds the dataplane; wire.go sets it to vswitch.New.
var newSwitch daemon.NewSwitchFunc

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		// The first signal starts a graceful shutdown; restoring the
		// default disposition lets a second one kill a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	code := daemon.Main(ctx, os.Args[1:], os.Stderr, version, newSwitch, config.NetlinkLinkCheck)
	stop()
	os.Exit(code)
}
