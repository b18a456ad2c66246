package idemddb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Request identifies one idempotent operation.
type Request struct {
	// Key is the idempotency key, already scoped by the caller (tenant,
	// route...). 1 to MaxKeyBytes bytes.
	Key string
	// Fingerprint describes the request; the store keeps its SHA-256. The
	// same key with a different fingerprint is a mismatch.
	Fingerprint []byte
	// Wait, when positive, is how long a caller that finds the key in
	// progress waits for the other caller to finish before it gets
	// *InProgressError: it polls the record with strongly consistent reads
	// (see MaxWaitReads) and returns the stored result as a replay once the
	// record completes; if the other caller releases the key (its work
	// failed) or its lease lapses, this caller claims the key and runs its
	// own work. The wait never outlasts ctx's deadline minus WaitMargin. A
	// mismatch is never waited for.
	Wait time.Duration
}

// Result is the outcome of a successful Run.
type Result struct {
	// Data is the work's result: fresh, or replayed from the record.
	Data []byte
	// Replayed is true when the work did not run in this call.
	Replayed bool
	// Retained is false when the result was too large to store: the record
	// is COMPLETED without it and replays get a *ResultTooLargeError.
	Retained bool
	// Waited is how long the call waited for another caller (Request.Wait),
	// and WaitReads how many reads it made meanwhile: for logs and metrics.
	Waited    time.Duration
	WaitReads int
}

// checkKey refuses a key the store cannot use (ErrInvalidRequest).
func checkKey(key string) error {
	if key == "" || len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: key must be 1 to %d bytes, got %d", ErrInvalidRequest, MaxKeyBytes, len(key))
	}
	return nil
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Run runs work at most once for req.Key (see the package documentation for
// the full contract). On a first execution it returns the work's result;
// when the key already completed it returns the stored result with Replayed
// set, without running work. The work's context carries the claim
// (ClaimFromContext) and, when ctx has no deadline, one LeaseMargin before
// the lease ends. If work returns an error the key is released and the error
// is returned unchanged. If work panics the key is released and the panic
// continues.
func (s *Store) Run(ctx context.Context, req Request, work func(ctx context.Context, c *Claim) ([]byte, error)) (Result, error) {
	claim, replay, err := s.Begin(ctx, req)
	if err != nil || replay != nil {
		if replay != nil {
			return *replay, err
		}
		return Result{}, err
	}
	data, err := s.runWork(ctx, claim, work)
	if err != nil {
		s.releaseOrWarn(ctx, claim, "a work error")
		return Result{}, err
	}
	return s.Complete(ctx, claim, data)
}

// runWork calls work with the claim in its context. A panic in work releases
// the key on the way up and is not recovered.
func (s *Store) runWork(ctx context.Context, c *Claim, work func(context.Context, *Claim) ([]byte, error)) (data []byte, err error) {
	wctx := WithClaim(ctx, c)
	stop := c.LeaseUntil.Add(-s.cfg.LeaseMargin)
	if dl, ok := ctx.Deadline(); !ok || dl.After(stop) {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(wctx, stop)
		defer cancel()
	}
	panicked := true
	defer func() {
		if panicked {
			_ = s.releaseDetached(ctx, c)
		}
	}()
	data, err = work(wctx, c)
	panicked = false
	return data, err
}

// Begin claims req.Key. Exactly one of the returned claim and result is
// non-nil when err is nil: a claim means the caller must run its work and
// then call Complete or Release; a result is a replay of the completed
// record. Run is Begin, work, then Complete or Release; use Begin directly
// when the work cannot be a single function call. With req.Wait, a key in
// progress is waited for (see Request.Wait) before *InProgressError.
func (s *Store) Begin(ctx context.Context, req Request) (*Claim, *Result, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, nil, err
	}
	fp := fingerprintDigest(req.Fingerprint)
	now := s.cfg.Now()
	if c := s.cfg.Cache; c != nil {
		if e, ok := c.get(req.Key, now); ok {
			if !bytes.Equal(e.fp, fp) {
				return nil, nil, &MismatchError{Key: req.Key}
			}
			r := record{result: e.result, enc: e.enc, size: e.size}
			data, err := s.decodeResult(&r)
			if err != nil {
				return nil, nil, err
			}
			return nil, &Result{Data: data, Replayed: true, Retained: true}, nil
		}
	}
	c, res, err := s.begin(ctx, req.Key, fp, now)
	var busy *InProgressError
	if req.Wait > 0 && errors.As(err, &busy) {
		return s.await(ctx, req.Key, fp, req.Wait, busy)
	}
	return c, res, err
}

// Do is Run for a typed result, encoded as JSON in the record. It returns the
// work's value (or the stored one) and whether it was replayed.
func Do[T any](ctx context.Context, s *Store, key string, fingerprint []byte, work func(ctx context.Context, c *Claim) (T, error)) (T, bool, error) {
	var fresh T
	res, err := s.Run(ctx, Request{Key: key, Fingerprint: fingerprint}, func(ctx context.Context, c *Claim) ([]byte, error) {
		v, err := work(ctx, c)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("idemddb: encode result: %w", err)
		}
		fresh = v
		return b, nil
	})
	if err != nil {
		var zero T
		return zero, false, err
	}
	if !res.Replayed {
		return fresh, false, nil
	}
	var out T
	if err := json.Unmarshal(res.Data, &out); err != nil {
		return out, true, fmt.Errorf("idemddb: decode stored result: %w", err)
	}
	return out, true, nil
}
