package spec

import (
	"path/filepath"
	"strconv"
	"strings"
)

// ValidateMemif checks a port's memif rules: the section goes with mode
// memif and only with it, and a memif port is a pod port; then the
// section itself (MemifConfig.Validate, its fields under "memif."). The
// config loader, the switch and the driver all hold a memif port to
// these rules.
func ValidateMemif(mode Mode, kind PortKind, m *MemifConfig) []error {
	var errs []error
	switch {
	case mode != ModeMemif:
		if m != nil {
			errs = append(errs, fieldErr("mode", mode.String(), "a memif: section needs mode memif"))
		}
		return errs
	case kind != PortPod:
		errs = append(errs, fieldErr("kind", kind.String(), "a memif port is a pod port"))
	}
	if m == nil {
		return append(errs, fieldErr("memif", "", "required with mode memif (socket: /path or @name)"))
	}
	for _, err := range m.Validate() {
		fe := err.(*FieldError)
		fe.Field = "memif." + fe.Field
		errs = append(errs, fe)
	}
	return errs
}

// Validate checks a memif section on its own; the fields are named as
// the config file spells them.
func (m *MemifConfig) Validate() []error {
	var errs []error
	switch s := m.Socket; {
	case s == "" || s == "@":
		errs = append(errs, fieldErr("socket", s, "required: an absolute path or @name"))
	case len(s) > 107:
		errs = append(errs, fieldErr("socket", s, "longer than a unix socket address (107 bytes)"))
	case s[0] != '@' && !filepath.IsAbs(s):
		errs = append(errs, fieldErr("socket", s, "must be an absolute path or @name"))
	}
	if m.Netns != "" && (!filepath.IsAbs(m.Netns) || strings.Contains(m.Netns, "..")) {
		errs = append(errs, fieldErr("netns", m.Netns, "must be an absolute path (/proc/PID/ns/net, /run/netns/NAME)"))
	}
	if m.Queues < 0 || m.Queues > 64 {
		errs = append(errs, numErr("queues", m.Queues, "must be 1..64"))
	}
	if r := m.RingSize; r != 0 && (r < 2 || r > 1<<14 || r&(r-1) != 0) {
		errs = append(errs, numErr("ring_size", r, "must be a power of two, 2..16384"))
	}
	if len(m.Secret) > 24 {
		errs = append(errs, numErr("secret", len(m.Secret), "bytes: at most 24"))
	}
	return errs
}

func numErr(field string, v int, msg string) *FieldError {
	return &FieldError{Field: field, Value: strconv.Itoa(v), Num: true, Msg: msg}
}
