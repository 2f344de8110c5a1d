package config

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/xvs-project/xvs/spec"
)

// ErrNoSuchInterface is what a LinkCheck returns for a missing interface.
var ErrNoSuchInterface = errors.New("no such interface")

// FieldError is one invalid value: Field is its path in the file
// ("ports[1].addresses[0]"), Value is the value as written, already quoted
// when it is a string, and Err says what is wrong with it.
type FieldError struct {
	Field string
	Value string // empty when the value is missing
	Err   error
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return e.Field + ": " + e.Err.Error()
	}
	return e.Field + ": " + e.Value + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// errs collects field errors in file order.
type errs []error

func (l *errs) str(field, v string, format string, a ...any) {
	*l = append(*l, &FieldError{Field: field, Value: strconv.Quote(v), Err: fmt.Errorf(format, a...)})
}

func (l *errs) strErr(field, v string, err error) {
	*l = append(*l, &FieldError{Field: field, Value: strconv.Quote(v), Err: err})
}

func (l *errs) num(field string, v int, format string, a ...any) {
	*l = append(*l, &FieldError{Field: field, Value: strconv.Itoa(v), Err: fmt.Errorf(format, a...)})
}

func (l *errs) missing(field, what string) {
	*l = append(*l, &FieldError{Field: field, Err: errors.New(what)})
}

// shared adds the errors of spec's rules (*spec.FieldError) under
// prefix, each value as the file spelled it when raw has its field.
func (l *errs) shared(prefix string, errs []error, raw map[string]string) {
	for _, err := range errs {
		var fe *spec.FieldError
		if !errors.As(err, &fe) {
			*l = append(*l, fmt.Errorf("%s: %w", prefix, err))
			continue
		}
		field := prefix
		if fe.Field != "" {
			field += "." + fe.Field
		}
		v, ok := raw[fe.Field]
		if !ok {
			v = fe.Value
		}
		if v == "" && fe.Value == "" {
			l.missing(field, fe.Msg)
			continue
		}
		if fe.Num {
			*l = append(*l, &FieldError{Field: field, Value: v, Err: errors.New(fe.Msg)})
			continue
		}
		l.str(field, v, "%s", fe.Msg)
	}
}

func (l errs) err() error {
	if len(l) == 0 {
		return nil
	}
	return errors.Join(l...)
}
