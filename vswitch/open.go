package vswitch

import (
	"errors"
	"log/slog"

	"github.com/xvs-project/xvs/vswitch/xsk"
)

// defaultOpener opens AF_XDP ports, falling back to AF_PACKET.
func defaultOpener(pc PortConfig, umem *xsk.Umem, log *slog.Logger) (OpenedPort, error) {
	return OpenedPort{}, errors.New("kernel ports are not wired yet")
}
