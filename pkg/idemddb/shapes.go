package idemddb

import (
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The store's one placeholder scheme: every expression names a record
// attribute by the same placeholder, and the names a request binds are
// read off its expressions (DynamoDB rejects names an expression does not
// use), so changing a condition is an edit of its text alone.
func placeholderAttr(ph, keyAttr string) string {
	switch ph {
	case "#k":
		return keyAttr
	case "#s":
		return attrStatus
	case "#o":
		return attrOwner
	case "#l":
		return attrLease
	case "#e":
		return TTLAttribute
	case "#r":
		return attrResult
	case "#n":
		return attrEncoding
	case "#z":
		return attrResultSize
	}
	return ""
}

// placeholders finds the #names in an expression.
var placeholders = regexp.MustCompile(`#[a-z]+`)

// expression is the constant part of a request's expressions: the text and
// the attribute names they bind.
type expression struct {
	expr  *string
	names map[string]string
}

// newExpression makes the expression text, binding the names of every
// placeholder in text and in also (a condition sent with it).
func newExpression(keyAttr, text string, also ...string) expression {
	names := map[string]string{}
	for _, t := range append([]string{text}, also...) {
		for _, ph := range placeholders.FindAllString(t, -1) {
			names[ph] = placeholderAttr(ph, keyAttr)
		}
	}
	return expression{expr: aws.String(text), names: names}
}

// shapes are the parts of the store's requests that never change, built
// once by New and only read afterwards (the SDK does not modify its inputs),
// so a call allocates only what varies.
type shapes struct {
	table                            *string
	claim, takeover, release         expression // conditions
	completeFence                    *string
	raw, deflate, empty, notRetained expression // completions, with completeFence's names
}

func newShapes(table, keyAttr string) shapes {
	completion := func(update string) expression { return newExpression(keyAttr, update, completeFence) }
	return shapes{
		table:         aws.String(table),
		claim:         newExpression(keyAttr, claimCondition),
		takeover:      newExpression(keyAttr, takeoverCondition),
		release:       newExpression(keyAttr, releaseCondition),
		completeFence: aws.String(completeFence),
		raw:           completion(completeRaw),
		deflate:       completion(completeDeflate),
		empty:         completion(completeEmpty),
		notRetained:   completion(completeNotRetained),
	}
}
