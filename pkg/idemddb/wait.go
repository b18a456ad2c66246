package idemddb

import (
	"context"
	"errors"
	"time"
)

// Waiting for an in-flight duplicate (Request.Wait).
const (
	// WaitMargin is kept free before the context's deadline: a wait ends
	// that long before it, so the caller still has time to answer.
	WaitMargin = 500 * time.Millisecond
	// waitFirstPoll is the first interval between reads of a wait; it
	// doubles up to waitMaxPoll.
	waitFirstPoll = 100 * time.Millisecond
	waitMaxPoll   = time.Second
)

// MaxWaitReads is the most reads a wait of d makes: the intervals between
// them start at 100 ms and double up to 1 s, and the last read is made when
// the wait ends. 4 for 1 s, 8 for 5 s, 13 for 10 s. A wait that sees the key
// released or its lease lapse adds the claim's own request.
func MaxWaitReads(d time.Duration) int {
	n := 0
	for poll, waited := waitFirstPoll, time.Duration(0); waited < d; n++ {
		waited += min(poll, d-waited)
		poll = min(poll*2, waitMaxPoll)
	}
	return n
}

// await waits up to wait (bounded by ctx's deadline minus WaitMargin) for
// the key that busy reported in progress: it returns the replay once the
// record completes, the claim when the key is released or its lease lapses
// (the caller then runs its own work), a mismatch when the key was reused
// for another request meanwhile, or, when the wait ends first, the latest
// *InProgressError. A read that fails ends the wait the same way.
func (s *Store) await(ctx context.Context, key string, fp []byte, wait time.Duration, busy *InProgressError) (*Claim, *Result, error) {
	start := time.Now()
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-WaitMargin)
	}
	reads := 0
	last := busy
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for poll, waited := waitFirstPoll, time.Duration(0); waited < wait; poll = min(poll*2, waitMaxPoll) {
		step := min(poll, wait-waited)
		waited += step
		timer.Reset(step)
		select {
		case <-ctx.Done():
			return nil, nil, last.after(s.cfg.Now(), time.Since(start), reads)
		case <-timer.C:
		}
		reads++
		item, err := s.readRecord(ctx, key)
		if err != nil {
			break
		}
		now := s.cfg.Now()
		res, found, err := s.decide(key, fp, item, now)
		if found != decided {
			// Released, expired or lapsed: claim it ourselves.
			var c *Claim
			c, res, err = s.begin(ctx, key, fp, now)
			if c != nil {
				return c, nil, nil
			}
		}
		var again *InProgressError
		if errors.As(err, &again) {
			last = again
			continue
		}
		if res != nil {
			res.Waited, res.WaitReads = time.Since(start), reads
		}
		return nil, res, err
	}
	return nil, nil, last.after(s.cfg.Now(), time.Since(start), reads)
}

// after is e as it stands at now, when a wait of waited with reads reads
// ends.
func (e *InProgressError) after(now time.Time, waited time.Duration, reads int) *InProgressError {
	out := *e
	out.Waited, out.WaitReads = waited, reads
	out.RetryAfter = max(0, out.LeaseUntil.Sub(now))
	return &out
}
