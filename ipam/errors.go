package ipam

import (
	"errors"
	"fmt"
)

// Sentinels the CNI plugin maps to CNI error codes. Every error the
// allocator returns for one of these conditions wraps exactly one of them,
// so errors.Is picks the code; the message names the pool, field and value.
var (
	// ErrPoolExhausted: no free address in any pool the request may use,
	// counting blocks claimed by other nodes (borrowing).
	ErrPoolExhausted = errors.New("pool exhausted")
	// ErrUnknownPool: a requested pool name or CIDR matches no pool, or no
	// pool of the family exists for the node.
	ErrUnknownPool = errors.New("unknown pool")
	// ErrPoolDisabled: a requested pool exists but is disabled.
	ErrPoolDisabled = errors.New("pool disabled")
	// ErrBadBlockSize: blockSize outside 20–32 (IPv4) or 116–128 (IPv6), or
	// shorter than the pool's own prefix.
	ErrBadBlockSize = errors.New("bad block size")
	// ErrPoolOverlap: a pool's CIDR overlaps another pool's.
	ErrPoolOverlap = errors.New("pools overlap")
	// ErrInvalidPool: any other bad pool field (name, cidr, encapsulation,
	// nodeSelector).
	ErrInvalidPool = errors.New("invalid pool")
	// ErrPoolConflict: the request's pools contradict themselves or the
	// family they are listed under (an IPv6 pool in ipv4pools).
	ErrPoolConflict = errors.New("conflicting pools")
	// ErrBadAnnotation: an ipv4pools/ipv6pools annotation or network
	// config list is not a JSON list of pool names or CIDRs.
	ErrBadAnnotation = errors.New("bad pool annotation")
	// ErrPoolNotSelected: a requested pool's nodeSelector does not select
	// this node.
	ErrPoolNotSelected = errors.New("pool does not select node")
	// ErrPoolInUse: a pool cannot be deleted or changed in CIDR or
	// blockSize while addresses are allocated from it.
	ErrPoolInUse = errors.New("pool in use")
	// ErrInvalidRequest: an Assign, Release or GC request lacks a field.
	ErrInvalidRequest = errors.New("invalid request")
)

// Store errors. A Store implementation returns these (wrapped or not) so the
// allocator can tell a lost compare-and-swap from a failure.
var (
	// ErrConflict: the object changed since it was read (stale Revision).
	ErrConflict = errors.New("revision conflict")
	// ErrNotFound: no such object.
	ErrNotFound = errors.New("not found")
	// ErrExists: CreateBlock of a CIDR that already has a block.
	ErrExists = errors.New("already exists")
)

// PoolError is a pool or pool-selection error naming the pool, the field
// and the value at fault. Err is one of the sentinels above.
type PoolError struct {
	Pool  string // pool name, or the name or CIDR as the request gave it
	Field string // e.g. "blockSize", "cidr"; empty when the pool itself is at fault
	Value string // the offending value; empty with Field
	Err   error
	// Detail says what is wrong beyond the sentinel, e.g. "IPv4 allows 20-32".
	Detail string
}

func (e *PoolError) Error() string {
	s := fmt.Sprintf("pool %q", e.Pool)
	if e.Field != "" {
		s += fmt.Sprintf(": %s %s", e.Field, e.Value)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s + ": " + e.Err.Error()
}

func (e *PoolError) Unwrap() error { return e.Err }

func poolErr(pool, field, value string, err error, detailf string, args ...any) *PoolError {
	return &PoolError{Pool: pool, Field: field, Value: value, Err: err, Detail: fmt.Sprintf(detailf, args...)}
}
