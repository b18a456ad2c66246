package checkout

import (
	"errors"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"unicode"
	"unicode/utf8"
)

// ErrValidation matches every *ValidationError.
var ErrValidation = errors.New("checkout: invalid request")

// ValidationError lists the invalid fields of a request body.
type ValidationError struct {
	Fields []FieldError
}

// Error describes the failure.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrValidation.Error())
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + " " + f.Detail)
	}
	return b.String()
}

// Is reports whether target is ErrValidation.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// Problem returns the 400 problem describing e (ProblemValidation, with
// extension "errors" listing e.Fields).
func (e *ValidationError) Problem() apigw.Problem { return validationProblem(e.Fields) }

// validator collects field errors.
type validator struct{ errs []FieldError }

func (v *validator) add(field, detail string) {
	v.errs = append(v.errs, FieldError{Field: field, Detail: detail})
}

func (v *validator) addErr(fe *FieldError) { v.errs = append(v.errs, *fe) }

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.errs}
}

// checkCurrency validates a required currency field.
func (v *validator) checkCurrency(field string, c *string) string {
	switch {
	case c == nil:
		v.add(field, "is required")
	case !ValidCurrency(*c):
		v.add(field, "must be an ISO 4217 currency code in upper case, such as INR")
	default:
		return *c
	}
	return ""
}

// checkInt validates a required integer field that must be at least min;
// belowMin is the detail when it is not. ok is false when n is invalid.
func (v *validator) checkInt(field string, n *int64, min int64, belowMin string) (_ int64, ok bool) {
	switch {
	case n == nil:
		v.add(field, "is required")
	case *n < min:
		v.add(field, belowMin)
	default:
		return *n, true
	}
	return 0, false
}

// checkToken validates a required identifier-like string: not blank, at
// most max bytes, valid UTF-8 and free of control characters.
func (v *validator) checkToken(field string, s *string, max int) string {
	switch {
	case s == nil:
		v.add(field, "is required")
	case strings.TrimSpace(*s) == "":
		v.add(field, "must not be empty")
	case len(*s) > max:
		v.add(field, "must be at most "+itoa(max)+" bytes")
	case !utf8.ValidString(*s) || strings.ContainsFunc(*s, unicode.IsControl):
		v.add(field, "must not contain control characters")
	default:
		return *s
	}
	return ""
}
