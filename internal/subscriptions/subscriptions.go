// Package subscriptions is the subscription signup service: POST
// /subscriptions creates one subscription per Idempotency-Key and one per
// email address. It is a plain net/http handler behind the idempotency
// library's net/http front door (idemhttp.Middleware), the way a team that
// reuses pkg/idemddb in its own service would write it; on Lambda it runs
// through aws-lambda-go-api-proxy (functions/create-subscription).
//
// # The contract
//
// POST /subscriptions with a JSON body {"email": "...", "plan": "basic" |
// "pro"} and an Idempotency-Key header answers:
//
//	201  the subscription: {"subscription_id", "email", "plan", "status":
//	     "ACTIVE"}, Location /subscriptions/{id}; a retry with the key
//	     replays it byte for byte with Idempotent-Replayed: true
//	400  subscription-invalid: the body is not such an object; extension
//	     "errors" lists every invalid field (stored: a retry replays it)
//	422  subscription-email-taken: another key already subscribed this
//	     email address; nothing was written and the key was released, so
//	     every request for the address answers the same 422. Final, and
//	     deliberately not a 409: in this API a 409 means "in flight, retry
//	     later" (stripe-go and stripe-node retry 409 on their own); a
//	     validation failure of this kind is a 422, as GitHub's API answers
//	     an "already_exists" field
//
// and every answer of the idempotency contract (400 key missing or
// invalid, 409 key in use, 422 key reused with another body, 413, 503;
// see pkg/idemddb/idemhttp).
//
// # One per email address
//
// The email item (partition key "pk" = "email#" + the lower-cased
// address) is the subscription: it is written with a condition that no
// such item exists, by Claim.AddWrites, so it commits in the same
// DynamoDB transaction as the idempotency record. The subscription exists
// if and only if the request is recorded as done, and two keys racing for
// one address get one 201 and one 422.
package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// EnvTable is the environment variable naming the subscriptions table
// (template.yaml sets it).
const EnvTable = "SUBSCRIPTIONS_TABLE"

// KeyAttribute is the subscriptions table's partition key (S).
const KeyAttribute = "pk"

// MaxBodyBytes is the largest request body accepted; a larger one gets
// 413 from the middleware before the handler runs.
const MaxBodyBytes = 4 << 10

// Problem type slugs (after the problem base, the idempotency library's).
const (
	ProblemInvalid    = "subscription-invalid"
	ProblemEmailTaken = "subscription-email-taken"
)

// Plans a subscription can have.
var plans = map[string]bool{"basic": true, "pro": true}

// ErrNoTable is returned by NewHandler without a table name.
var ErrNoTable = errors.New("subscriptions: no table name")

// Request is the body of POST /subscriptions.
type Request struct {
	Email string `json:"email"`
	Plan  string `json:"plan"`
}

// Subscription is the body of a 201.
type Subscription struct {
	ID     string `json:"subscription_id"`
	Email  string `json:"email"`
	Plan   string `json:"plan"`
	Status string `json:"status"`
}

// NewHandler returns the service's HTTP handler: a Go 1.22 ServeMux with
// POST /subscriptions wrapped by idemhttp.Middleware on store, with opts
// after the service's own (body limit, the email-taken mapping). table is
// the subscriptions table; the handler itself makes no DynamoDB request.
func NewHandler(store *idemddb.Store, table string, opts ...idemhttp.Option) (http.Handler, error) {
	if table == "" {
		return nil, ErrNoTable
	}
	if store == nil {
		return nil, errors.New("subscriptions: no idempotency store")
	}
	mw := idemhttp.Middleware(store, append([]idemhttp.Option{
		apigw.WithMaxBodyBytes(MaxBodyBytes),
		apigw.WithTransactionCanceled(emailTaken),
	}, opts...)...)
	mux := http.NewServeMux()
	mux.Handle("POST /subscriptions", mw(create{table: table}))
	return mux, nil
}

// emailTaken maps the failed condition of the email item (the only write
// the handler adds) to 422 subscription-email-taken (final).
func emailTaken(_ context.Context, err *idemddb.TransactionCanceledError) idemhttp.Problem {
	if err.Index == 0 && len(err.Reasons) > 0 && err.Reasons[0].Code == "ConditionalCheckFailed" {
		return idemhttp.Problem{
			Type:   apigw.DefaultProblemBase + ProblemEmailTaken,
			Title:  "Email address already subscribed",
			Status: http.StatusUnprocessableEntity,
			Detail: "A subscription with this email address exists; nothing was created. This answer is final.",
		}
	}
	return idemhttp.Problem{} // the default transaction-conflict
}

// create is the POST /subscriptions handler.
type create struct{ table string }

func (h create) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	claim, ok := idemddb.ClaimFromContext(r.Context())
	if !ok { // only reachable without the middleware
		http.Error(w, "no idempotency claim", http.StatusInternalServerError)
		return
	}
	req, errs := parse(r)
	if len(errs) > 0 {
		writeProblem(w, idemhttp.Problem{
			Type:       apigw.DefaultProblemBase + ProblemInvalid,
			Title:      "Invalid subscription request",
			Status:     http.StatusBadRequest,
			Detail:     "The request body must be a JSON object with an email address and a plan (basic or pro).",
			Extensions: map[string]any{"errors": errs},
		})
		return
	}
	sub := Subscription{ID: "sub_" + claim.ResourceID, Email: req.Email, Plan: req.Plan, Status: "ACTIVE"}
	claim.AddWrites(types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(h.table),
		Item: map[string]types.AttributeValue{
			KeyAttribute:      &types.AttributeValueMemberS{Value: EmailKey(req.Email)},
			"subscription_id": &types.AttributeValueMemberS{Value: sub.ID},
			"email":           &types.AttributeValueMemberS{Value: sub.Email},
			"plan":            &types.AttributeValueMemberS{Value: sub.Plan},
			"status":          &types.AttributeValueMemberS{Value: sub.Status},
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": KeyAttribute},
	}})
	body, _ := json.Marshal(sub) // strings always encode
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/subscriptions/"+sub.ID)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

// EmailKey is the partition key of an email address's item: the address
// lower-cased, so one mailbox spelled two ways is one subscription.
func EmailKey(email string) string { return "email#" + strings.ToLower(email) }

// fieldError is one entry of a 400's "errors".
type fieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// parse decodes and validates the body; the email is returned as the bare
// address.
func parse(r *http.Request) (Request, []fieldError) {
	var req Request
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return req, []fieldError{{Field: "", Reason: "the body is not a JSON object with the fields email and plan"}}
	}
	var errs []fieldError
	addr, err := mail.ParseAddress(req.Email)
	switch {
	case strings.TrimSpace(req.Email) == "":
		errs = append(errs, fieldError{"email", "required"})
	case err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(req.Email) || len(addr.Address) > 254:
		errs = append(errs, fieldError{"email", "not an email address"})
	default:
		req.Email = addr.Address
	}
	if !plans[req.Plan] {
		errs = append(errs, fieldError{"plan", "must be basic or pro"})
	}
	return req, errs
}

// writeProblem answers with p as application/problem+json.
func writeProblem(w http.ResponseWriter, p idemhttp.Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		p.Extensions = nil
		body, _ = json.Marshal(p)
	}
	w.Header().Set("Content-Type", apigw.ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
