package ddbmem

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
)

// ErrUnsupported is matched (errors.Is) by every *UnsupportedError.
var ErrUnsupported = errors.New("ddbmem: not implemented")

// UnsupportedError reports a request the engine does not implement: an
// operation, a parameter or an expression feature. Nothing was applied.
type UnsupportedError struct {
	// Op is the DynamoDB operation, for example "UpdateItem".
	Op string
	// What names the feature, for example "function size in an update".
	What string
}

// Error implements error.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("ddbmem: %s: %s is not implemented", e.Op, e.What)
}

// Is reports whether target is ErrUnsupported.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

func unsupported(op, what string) error { return &UnsupportedError{Op: op, What: what} }

// withOp fills in the operation of an *UnsupportedError made where it was
// not known.
func withOp(op string, err error) error {
	var u *UnsupportedError
	if errors.As(err, &u) && u.Op == "" {
		return &UnsupportedError{Op: op, What: u.What}
	}
	return err
}

// validation is DynamoDB's ValidationException (HTTP 400), which has no
// typed form in the SDK.
func validation(format string, args ...any) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}
