package main

import (
	"log/slog"

	"github.com/xvs-project/xvs/cmd/xvsd/internal/daemon"
	"github.com/xvs-project/xvs/vswitch"
)

// The dataplane behind the daemon. Kept apart from main.go so the daemon
// (and its tests, over a fake) do not depend on how the switch is built.
func init() {
	newSwitch = func(cfg vswitch.Config, log *slog.Logger) (daemon.Switch, error) {
		sw, err := vswitch.New(cfg, log)
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return sw, nil
	}
}

// The switch has the NAT stage the daemon's services and NAT need.
var _ daemon.ServiceSwitch = (*vswitch.Switch)(nil)
