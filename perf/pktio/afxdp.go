package pktio

import "errors"

// ErrNoXDP is returned while the AF_XDP sender is not available.
var ErrNoXDP = errors.New("af_xdp sender not built yet")

// NewXDPTx opens an AF_XDP sender on ifname.
func NewXDPTx(ifname string, o Options) (Tx, error) { return nil, ErrNoXDP }
