package checkout

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// RouteStripeWebhook is the webhook function's route (no JWT: Stripe signs
// each request instead).
const RouteStripeWebhook = "POST /webhooks/stripe"

// Stripe event types the webhook applies; every other type is acknowledged
// and logged.
const (
	EventPaymentSucceeded = "payment_intent.succeeded"
	EventPaymentFailed    = "payment_intent.payment_failed"
	EventChargeRefunded   = "charge.refunded"
)

// Provider statuses the webhook records on an order (provider_status).
const (
	ProviderStatusFailed    = "FAILED"
	ProviderStatusSucceeded = "SUCCEEDED"
	ProviderStatusRefunded  = "REFUNDED"
)

// Order attributes the webhook writes.
const (
	attrProviderStatus = "provider_status"
	attrProviderSeq    = "provider_event_seq"
	attrProviderEvent  = "provider_event_id"
	attrProviderPI     = "provider_payment_intent"
)

// Webhook results, as answered and stored per event id.
const (
	// WebhookApplied: the event moved the order's provider status forward.
	WebhookApplied = "applied"
	// WebhookStale: the order already has a later (or the same) event.
	WebhookStale = "stale"
	// WebhookUnknownOrder: no order of this checkout (no order_id in the
	// metadata, or no such order); acknowledged so Stripe stops retrying.
	WebhookUnknownOrder = "unknown_order"
	// WebhookIgnored: an event type the checkout does not apply.
	WebhookIgnored = "ignored"
)

// StripeWebhookConfig configures a StripeWebhook.
type StripeWebhookConfig struct {
	// DB reaches the orders table.
	DB          DB
	OrdersTable string
	// Store records each event id once (idemddb.Do).
	Store *idemddb.Store
	// Secret is the endpoint's signing secret (whsec_...).
	Secret string
	// Tolerance is how old a signature's timestamp may be (default
	// webhook.DefaultTolerance, 5 minutes).
	Tolerance time.Duration
	// Logger receives one line per event (default slog.Default()).
	Logger *slog.Logger
}

// StripeWebhook serves POST /webhooks/stripe. It verifies the
// Stripe-Signature header with stripe-go's webhook package (HMAC-SHA256 of
// "timestamp.body" under the signing secret, timestamp within Tolerance)
// and answers 400 problem+json, with no effect, to an unsigned, malformed,
// stale or forged request and to a signed body that is not an event.
//
// A verified event is applied once: idemddb.Do keyed "stripe-event:<event
// id>" runs it and stores its result, and Stripe's redeliveries (at least
// once) replay that result. Applying an event records the provider's view
// on its order (PaymentIntent metadata order_id): provider_status
// (FAILED, SUCCEEDED, REFUNDED), the event id and PaymentIntent, under a
// sequence made of the event's creation time and the status's rank
// (REFUNDED > SUCCEEDED > FAILED), with one conditional UpdateItem that
// only moves it forward: Stripe does not deliver in order, and an older
// event never moves an order backwards (it is acknowledged as stale).
// The order's own state machine (PENDING, PAYING, PAID) stays the payment
// requests' and the reconciler's: a success for an order not PAID is
// left to them (they find the capture at Stripe).
//
// Events for no order of this checkout are acknowledged (200) and logged,
// so Stripe does not retry them for days; unknown event types likewise.
// A failure of the tables is a 503, which Stripe retries.
type StripeWebhook struct {
	db        DB
	orders    string
	store     *idemddb.Store
	secret    string
	tolerance time.Duration
	logger    *slog.Logger
}

// NewStripeWebhook returns the webhook handler's owner.
func NewStripeWebhook(cfg StripeWebhookConfig) (*StripeWebhook, error) {
	if cfg.DB == nil || cfg.OrdersTable == "" || cfg.Store == nil || strings.TrimSpace(cfg.Secret) == "" {
		return nil, errors.New("checkout: StripeWebhookConfig needs DB, OrdersTable, Store and Secret")
	}
	if cfg.Tolerance < 0 {
		return nil, errors.New("checkout: StripeWebhookConfig.Tolerance is negative")
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = webhook.DefaultTolerance
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &StripeWebhook{db: cfg.DB, orders: cfg.OrdersTable, store: cfg.Store, secret: cfg.Secret,
		tolerance: cfg.Tolerance, logger: cfg.Logger}, nil
}

// WebhookAck is the 200 answer to a verified event.
type WebhookAck struct {
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	Result   string `json:"result"`
	OrderID  string `json:"order_id,omitempty"`
	Replayed bool   `json:"replayed"`
}

// Handle is the webhook function's handler (API Gateway HTTP API payload
// 2.0). The error result is always nil.
func (w *StripeWebhook) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return badWebhook("body", "is not valid base64"), nil
		}
		body = b
	}
	sig := header(req, "stripe-signature")
	ev, err := webhook.ConstructEventWithOptions(body, sig, w.secret, webhook.ConstructEventOptions{
		Tolerance: w.tolerance, IgnoreAPIVersionMismatch: true,
	})
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return badWebhook("Stripe-Signature", "is missing"), nil
	case errors.Is(err, webhook.ErrInvalidHeader):
		return badWebhook("Stripe-Signature", "is malformed"), nil
	case errors.Is(err, webhook.ErrTooOld):
		return badWebhook("Stripe-Signature", "is older than the tolerance ("+w.tolerance.String()+")"), nil
	case errors.Is(err, webhook.ErrNoValidSignature):
		return badWebhook("Stripe-Signature", "does not match the body under the endpoint's signing secret"), nil
	case err != nil:
		return badWebhook("body", "is not a Stripe event: "+err.Error()), nil
	case ev.ID == "" || ev.Type == "":
		return badWebhook("body", "is not a Stripe event: no id or type"), nil
	}
	ack := WebhookAck{EventID: ev.ID, Type: string(ev.Type)}
	ack, ack.Replayed, err = idemddb.Do(ctx, w.store, "stripe-event:"+ev.ID, body, func(ctx context.Context, _ *idemddb.Claim) (WebhookAck, error) {
		return w.apply(ctx, ev, ack)
	})
	if err != nil {
		w.logger.ErrorContext(ctx, "stripe webhook: event not applied; Stripe retries it", "event_id", ev.ID, "type", ev.Type, "error", err)
		return serviceUnavailable().ResponseV2(), nil
	}
	lvl := slog.LevelInfo
	if ack.Result == WebhookUnknownOrder || ack.Result == WebhookIgnored {
		lvl = slog.LevelWarn
	}
	w.logger.Log(ctx, lvl, "stripe webhook", "event_id", ev.ID, "type", ev.Type, "result", ack.Result, "order_id", ack.OrderID, "replayed", ack.Replayed)
	return jsonResponse(http.StatusOK, ack, nil)
}

// apply records one event on its order (see StripeWebhook).
func (w *StripeWebhook) apply(ctx context.Context, ev stripe.Event, ack WebhookAck) (WebhookAck, error) {
	var status string
	var rank int64
	switch ev.Type {
	case EventPaymentFailed:
		status, rank = ProviderStatusFailed, 1
	case EventPaymentSucceeded:
		status, rank = ProviderStatusSucceeded, 2
	case EventChargeRefunded:
		status, rank = ProviderStatusRefunded, 3
	default:
		ack.Result = WebhookIgnored
		return ack, nil
	}
	obj := ev.Data.Object
	meta, _ := obj["metadata"].(map[string]any)
	orderID, _ := meta[StripeMetaOrder].(string)
	pi, _ := obj["id"].(string)
	if ev.Type == EventChargeRefunded {
		pi, _ = obj["payment_intent"].(string)
	}
	ack.OrderID = orderID
	if orderID == "" {
		ack.Result = WebhookUnknownOrder
		return ack, nil
	}
	seq := ev.Created*10 + rank
	cond := expression.Name(attrOrderID).AttributeExists().And(
		expression.Name(attrProviderSeq).AttributeNotExists().Or(expression.Name(attrProviderSeq).LessThan(expression.Value(seq))))
	upd := expression.Set(expression.Name(attrProviderStatus), expression.Value(status)).
		Set(expression.Name(attrProviderSeq), expression.Value(seq)).
		Set(expression.Name(attrProviderEvent), expression.Value(ev.ID)).
		Set(expression.Name(attrProviderPI), expression.Value(pi))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return ack, err
	}
	_, err = w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(w.orders),
		Key:                                 orderKey(orderID),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		ack.Result = WebhookApplied
		return ack, nil
	case !errors.As(err, &ccf):
		return ack, err
	}
	item := ccf.Item
	if item == nil {
		if item, _, err = getItem(ctx, w.db, w.orders, attrOrderID, orderID); err != nil {
			return ack, err
		}
	}
	var o struct {
		OrderID string `dynamodbav:"order_id"`
	}
	if item != nil {
		if err := attributevalue.UnmarshalMap(item, &o); err != nil {
			return ack, err
		}
	}
	ack.Result = WebhookStale
	if o.OrderID == "" {
		ack.Result = WebhookUnknownOrder
	}
	return ack, nil
}

// badWebhook is the 400 answer to a request that is not a verified event.
func badWebhook(field, detail string) events.APIGatewayV2HTTPResponse {
	pr := ProblemValidation.Problem("the request is not a verified Stripe event; nothing was applied")
	pr.Extensions = map[string]any{"errors": []FieldError{{Field: field, Detail: detail}}}
	return pr.ResponseV2()
}
