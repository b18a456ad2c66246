package httpcontract

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/obs"
)

// Response is the transport-neutral form of a response.
type Response struct {
	Status            int                 `json:"s"`
	Headers           map[string]string   `json:"h,omitempty"`
	MultiValueHeaders map[string][]string `json:"m,omitempty"`
	Cookies           []string            `json:"c,omitempty"`
	Base64            bool                `json:"b64,omitempty"`
	// NotRetained marks a response that was sent but not kept (streamed,
	// or larger than the front door buffers): a replay answers
	// ResultNotRetained.
	NotRetained bool   `json:"nr,omitempty"`
	Body        string `json:"-"`
}

// Engine runs the contract for one front door.
type Engine struct {
	s   *idemddb.Store
	c   *Config
	emf *obs.EMF
}

// NewEngine returns an Engine over s with configuration c.
func NewEngine(s *idemddb.Store, c *Config) *Engine {
	return &Engine{s: s, c: c, emf: obs.NewEMF(&c.Options)}
}

// Config returns the engine's configuration.
func (w *Engine) Config() *Config { return w.c }

// handlerError carries the handler's own error through Store.Run.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// notStoredError makes Store.Run release the key of a response the store
// policy keeps out of the record.
type notStoredError struct{}

func (notStoredError) Error() string { return "idempotency: response status not stored" }

// Serve runs the contract. It returns the response to send, or useFresh
// when the handler's own response is to be sent unchanged, or the
// handler's error. call runs the handler with the context it is given.
func (w *Engine) Serve(ctx context.Context, in *Request, call func(context.Context) (*Response, error)) (out *Response, useFresh bool, err error) {
	required, optional := w.c.Required[in.Method], w.c.Optional[in.Method]
	if !required && !optional {
		_, err := call(ctx)
		return nil, err == nil, err
	}
	ev := event{start: time.Now(), route: in.Route, requestID: in.RequestID, principal: in.Principal}
	key, kerr := ParseKey(in.KeyValues)
	if kerr == ErrKeyMissing && !required {
		_, err := call(ctx)
		return nil, err == nil, err
	}
	if kerr != nil {
		ev.outcome = outInvalidKey
		var why KeyError
		errors.As(kerr, &why)
		p := w.c.Problem(KeyInvalid, string(why))
		if kerr == ErrKeyMissing {
			p = w.c.Problem(KeyMissing, in.Method)
		}
		return w.reply(ctx, &ev, p)
	}
	body := in.Body
	if in.Base64 {
		if body, err = base64.StdEncoding.DecodeString(string(in.Body)); err != nil {
			ev.outcome = outInvalidRequest
			return w.reply(ctx, &ev, w.c.Problem(BodyInvalid))
		}
	}
	if len(body) > w.c.MaxBody {
		ev.outcome = outTooLarge
		size := strconv.Itoa(len(body))
		if in.BodyOver {
			size = "over " + strconv.Itoa(w.c.MaxBody)
		}
		return w.reply(ctx, &ev, w.c.Problem(BodyTooLarge, size, w.c.MaxBody))
	}
	if in.Principal == "" && w.c.NeedPrincipal {
		ev.outcome = outInvalidRequest
		return w.reply(ctx, &ev, w.c.Problem(PrincipalRequired))
	}
	ev.key = ScopedKey(in.Route, in.Principal, key)
	wait, applied := w.c.WaitFor(in.Prefer)

	var (
		claim *idemddb.Claim
		fresh *Response
	)
	res, err := w.s.Run(ctx, idemddb.Request{Key: ev.key, Fingerprint: Fingerprint(in, body), Wait: wait},
		func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
			claim = c
			r, err := call(ctx)
			if err != nil {
				return nil, &handlerError{err}
			}
			fresh = r
			if !w.c.StoreStatus(r.Status) {
				return nil, notStoredError{}
			}
			return EncodeResponse(r, w.c.Drop), nil
		})
	ev.waited, ev.waitReads = res.Waited, res.WaitReads
	var busy *idemddb.InProgressError
	if errors.As(err, &busy) {
		ev.waited, ev.waitReads = busy.Waited, busy.WaitReads
	}
	if ev.waitReads > 0 {
		ev.applied = applied
	}
	return w.finish(ctx, &ev, res, err, claim, fresh)
}

// Reject answers p for a request the front door refuses before Serve (a
// principal function that failed), logged and counted like Serve's own
// refusals.
func (w *Engine) Reject(ctx context.Context, in *Request, p Problem) *Response {
	ev := event{start: time.Now(), route: in.Route, requestID: in.RequestID, outcome: outInvalidRequest}
	out, _, _ := w.reply(ctx, &ev, p)
	return out
}

// finish maps the outcome of Store.Run to the response.
func (w *Engine) finish(ctx context.Context, ev *event, res idemddb.Result, err error, claim *idemddb.Claim, fresh *Response) (*Response, bool, error) {
	switch {
	case err == nil && !res.Replayed:
		ev.outcome, ev.status, ev.notRetained = outClaimed, fresh.Status, !res.Retained || fresh.NotRetained
		w.record(ctx, ev)
		return nil, true, nil
	case err == nil:
		return w.replay(ctx, ev, res.Data)
	default:
		return w.failure(ctx, ev, err, claim, fresh)
	}
}

// replay answers with the stored response data, marked as a replay.
func (w *Engine) replay(ctx context.Context, ev *event, data []byte) (*Response, bool, error) {
	r, derr := DecodeResponse(data)
	if derr != nil {
		ev.outcome, ev.err = outError, derr
		return w.reply(ctx, ev, w.c.Problem(StoredUnreadable))
	}
	if r.NotRetained {
		ev.outcome = outNotRetained
		return w.reply(ctx, ev, w.c.Problem(ResultNotRetained))
	}
	if r.Headers == nil {
		r.Headers = map[string]string{}
	}
	r.Headers[ReplayedHeader] = "true"
	if ev.applied != "" {
		r.Headers[PreferenceAppliedHeader] = ev.applied
	}
	ev.outcome, ev.status = outReplayed, r.Status
	w.record(ctx, ev)
	return r, false, nil
}

// failure maps an error of Store.Run to the response: the handler's own
// error or unstored response passed through, or a problem.
func (w *Engine) failure(ctx context.Context, ev *event, err error, claim *idemddb.Claim, fresh *Response) (*Response, bool, error) {
	var (
		herr *handlerError
		inpr *idemddb.InProgressError
		tce  *idemddb.TransactionCanceledError
	)
	switch {
	case errors.As(err, &herr):
		ev.outcome, ev.reason = outReleased, "handler_error"
		w.record(ctx, ev)
		return nil, false, herr.err
	case errors.As(err, new(notStoredError)):
		ev.outcome, ev.reason, ev.status = outReleased, "status_not_stored", fresh.Status
		w.record(ctx, ev)
		return nil, true, nil
	case errors.As(err, &inpr):
		return w.inProgress(ctx, ev, inpr)
	case errors.As(err, new(*idemddb.MismatchError)):
		ev.outcome = outMismatch
		return w.reply(ctx, ev, w.c.Problem(KeyReused))
	case errors.As(err, new(*idemddb.FencedError)):
		ev.outcome, ev.err = outFenced, err
		return w.reply(ctx, ev, w.c.Problem(LeaseLost))
	case errors.As(err, &tce):
		ev.outcome, ev.reason = outCanceled, fmt.Sprintf("write %d: %s", tce.Index, reasonCode(tce))
		p := w.c.Problem(TransactionConflict)
		if w.c.TxCanceled != nil {
			p = w.c.Normalise(w.c.TxCanceled(ctx, tce))
		}
		return w.reply(ctx, ev, p)
	case errors.As(err, new(*idemddb.ResultTooLargeError)):
		ev.outcome = outNotRetained
		return w.reply(ctx, ev, w.c.Problem(ResultNotRetained))
	case errors.Is(err, idemddb.ErrUnavailable):
		return w.unavailable(ctx, ev, err, claim)
	default:
		ev.outcome, ev.err = outError, err
		return w.reply(ctx, ev, w.c.Problem(Internal))
	}
}

// inProgress answers a request whose key another request holds: 409 with
// Retry-After, and the wait preference applied if it waited.
func (w *Engine) inProgress(ctx context.Context, ev *event, inpr *idemddb.InProgressError) (*Response, bool, error) {
	ev.outcome = outConflict
	p := w.c.Problem(KeyInUse)
	p.RetryAfter = CeilSeconds(inpr.RetryAfter)
	out, useFresh, err := w.reply(ctx, ev, p)
	if ev.applied != "" {
		out.Headers[PreferenceAppliedHeader] = ev.applied
	}
	return out, useFresh, err
}

// unavailable answers a request the store could not serve: 503, or, when
// the handler ran (claim is set) but its completion has an unknown
// outcome, the outcome-unknown problem until the lease ends.
func (w *Engine) unavailable(ctx context.Context, ev *event, err error, claim *idemddb.Claim) (*Response, bool, error) {
	ev.outcome, ev.err = outUnavailable, err
	p := w.c.Problem(StoreUnavailable)
	if claim != nil {
		// The handler ran but its completion has an unknown outcome:
		// the key stays claimed until the lease ends.
		ev.reason = "completion_unknown"
		p = w.c.Problem(OutcomeUnknown)
		p.RetryAfter = CeilSeconds(time.Until(claim.LeaseUntil))
	}
	return w.reply(ctx, ev, p)
}

func reasonCode(e *idemddb.TransactionCanceledError) string {
	if e.Index >= 0 && e.Index < len(e.Reasons) {
		return e.Reasons[e.Index].Code
	}
	return ""
}

// reply records the event and returns p as the response.
func (w *Engine) reply(ctx context.Context, ev *event, p Problem) (*Response, bool, error) {
	ev.status = p.Status
	w.record(ctx, ev)
	return p.Response(), false, nil
}

// CeilSeconds rounds d up to whole seconds, at least 1.
func CeilSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// storedVersion marks the record layout.
const storedVersion = 1

type storedMeta struct {
	V int `json:"v"`
	Response
}

// EncodeResponse is the stored form: a JSON line with status, headers,
// cookies and the base64 flag, a newline, then the body's bytes verbatim
// (JSON never contains a raw newline). Dropped headers are left out.
func EncodeResponse(r *Response, drop map[string]bool) []byte {
	m := storedMeta{V: storedVersion, Response: Response{Status: r.Status, Cookies: r.Cookies, Base64: r.Base64, NotRetained: r.NotRetained}}
	for k, v := range r.Headers {
		if !drop[strings.ToLower(k)] {
			if m.Headers == nil {
				m.Headers = map[string]string{}
			}
			m.Headers[k] = v
		}
	}
	for k, v := range r.MultiValueHeaders {
		if !drop[strings.ToLower(k)] {
			if m.MultiValueHeaders == nil {
				m.MultiValueHeaders = map[string][]string{}
			}
			m.MultiValueHeaders[k] = v
		}
	}
	b, _ := json.Marshal(m) // maps of strings always marshal
	b = append(b, '\n')
	if r.NotRetained {
		return b
	}
	return append(b, r.Body...)
}

// DecodeResponse decodes what EncodeResponse stored.
func DecodeResponse(data []byte) (*Response, error) {
	meta, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("idempotency: stored response has no header line")
	}
	var m storedMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("idempotency: stored response: %w", err)
	}
	if m.V != storedVersion {
		return nil, fmt.Errorf("idempotency: stored response version %d", m.V)
	}
	r := m.Response
	r.Body = string(body)
	return &r, nil
}
