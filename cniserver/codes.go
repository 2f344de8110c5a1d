package cniserver

import (
	"errors"
	"fmt"

	"github.com/xvs-project/xvs/ipam"
)

// CNI error codes. 1-99 are the spec's; 100 and up are xvs's own, each
// one kind of refusal a runtime or an operator can act on.
const (
	CodeIncompatibleVersion = 1
	CodeUnsupportedField    = 2
	CodeUnknownContainer    = 3 // the netns does not exist
	CodeInvalidEnv          = 4
	CodeIOFailure           = 5
	CodeDecodeFailure       = 6
	CodeInvalidConfig       = 7
	CodeTryAgainLater       = 11
	CodeNotReady            = 50 // STATUS: xvsd cannot take ADDs now
	CodeLimitedConnectivity = 51

	CodePoolExhausted   = 100 // no free address in the pools the pod may use
	CodeUnknownPool     = 101 // a requested pool name or CIDR matches no pool
	CodePoolDisabled    = 102
	CodePoolNotSelected = 103 // the pool's nodeSelector leaves this node out
	CodePoolConflict    = 104 // the pod's pools contradict themselves or their family
	CodeBadAnnotation   = 105 // an ipv4pools/ipv6pools annotation is not a JSON list, or xvs.dev/memif is bad
	CodeIfaceExists     = 106 // the interface name is taken in the pod or the node
	CodePlumbing        = 107 // the veth, addresses or routes could not be set up
	CodePort            = 108 // xvsd's switch refused the pod's port
	CodeCheckFailed     = 109 // CHECK found a difference
)

// Error is a refusal with its CNI code.
type Error struct {
	Code    uint32
	Msg     string
	Details string
}

func (e *Error) Error() string {
	if e.Details != "" {
		return e.Msg + ": " + e.Details
	}
	return e.Msg
}

func cniErr(code uint32, msg string, err error) *Error {
	e := &Error{Code: code, Msg: msg}
	if err != nil {
		e.Details = err.Error()
	}
	return e
}

// ipamCode maps the allocator's sentinels to codes.
func ipamCode(err error) uint32 {
	switch {
	case errors.Is(err, ipam.ErrPoolExhausted):
		return CodePoolExhausted
	case errors.Is(err, ipam.ErrUnknownPool):
		return CodeUnknownPool
	case errors.Is(err, ipam.ErrPoolDisabled):
		return CodePoolDisabled
	case errors.Is(err, ipam.ErrPoolNotSelected):
		return CodePoolNotSelected
	case errors.Is(err, ipam.ErrPoolConflict):
		return CodePoolConflict
	case errors.Is(err, ipam.ErrBadAnnotation):
		return CodeBadAnnotation
	case errors.Is(err, ipam.ErrInvalidRequest):
		return CodeInvalidEnv
	}
	return CodeIOFailure
}

// asError returns err as an *Error, code for anything that is not one.
func asError(code uint32, msg string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return cniErr(code, msg, err)
}

func errorf(code uint32, format string, a ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}
