package api

import (
	"context"
	"errors"
	"io/fs"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/vswitch"
)

// Sentinels a Dataplane may wrap so the server picks the right status code.
// Wrapping fs.ErrNotExist / fs.ErrExist works too.
var (
	ErrInvalid  = errors.New("invalid argument")
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrNotReady = errors.New("switch not ready")
	// ErrRefused: the request is well-formed but the dataplane will not do
	// it in its current state (deleting a connected route, say).
	ErrRefused = errors.New("refused")
)

// errorCodes maps errors (matched with errors.Is, first match wins) to
// status codes. The dataplane's own sentinels belong here too.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrInvalid, codes.InvalidArgument},
	{fib.ErrBadNextHop, codes.InvalidArgument},
	{ErrNotFound, codes.NotFound},
	{fib.ErrNotFound, codes.NotFound},
	{fs.ErrNotExist, codes.NotFound},
	{ErrExists, codes.AlreadyExists},
	{fs.ErrExist, codes.AlreadyExists},
	{ErrNotReady, codes.Unavailable},
	{ErrRefused, codes.FailedPrecondition},
	{vswitch.ErrPortExists, codes.AlreadyExists},
	{vswitch.ErrPortNotFound, codes.NotFound},
	{vswitch.ErrRouteInvalid, codes.InvalidArgument},
	{vswitch.ErrConfig, codes.InvalidArgument},
	{vswitch.ErrNotOwner, codes.FailedPrecondition},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// Code returns the status code the server sends for err.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	var fe *config.FieldError
	if errors.As(err, &fe) {
		return codes.InvalidArgument
	}
	for _, ec := range errorCodes {
		if errors.Is(err, ec.err) {
			return ec.code
		}
	}
	return codes.Internal
}

// toStatus turns a dataplane or validation error into a status error whose
// message is err's text, unchanged.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err), err.Error())
}
