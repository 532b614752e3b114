package schedule

import (
	"errors"
	"fmt"
)

// ErrBadSpec: Compile refused a Spec (or its creation time). The error
// returned is a *SpecError that names the field and the reason; test for
// it with errors.Is(err, ErrBadSpec) or errors.As.
var ErrBadSpec = errors.New("bad schedule spec")

// SpecError says which field of a Spec is wrong and why.
type SpecError struct {
	Field  string // "Cron", "Every", "TimeZone", "Jitter", "Missed" or "created"
	Value  string // the offending value, as given
	Reason string // what is wrong, lowercase, without the value
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("%v: %s %q: %s", ErrBadSpec, e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrBadSpec) true.
func (e *SpecError) Is(target error) bool { return target == ErrBadSpec }

func badSpec(field, value, reason string) error {
	return &SpecError{Field: field, Value: value, Reason: reason}
}
