package ddbtest

import (
	"context"
	"errors"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Injected faults. Neither is a DynamoDB answer, so a caller cannot know
// whether the request was applied: both must be treated as "outcome
// unknown".
var (
	// ErrInjected is returned instead of sending a request (the engine
	// never saw it), like a connection refused or reset before writing.
	ErrInjected = errors.New("ddbtest: injected fault: connection reset by peer")
	// ErrLostReply is returned after the engine applied a request, like the
	// SDK's "use of closed network connection" on a request that landed
	// (aws-sdk-go-v2 #1825, #2737).
	ErrLostReply = errors.New("ddbtest: reply lost after the engine applied the request: use of closed network connection")
)

// Client wraps the engine's *dynamodb.Client for a test: it counts the
// requests of each operation and injects faults before a request is sent
// (Before), after it was applied (After, LoseReplies), or sends it twice as
// an SDK retry after a lost answer does (Redeliver). It implements every
// DynamoDB method the packages under test use; the others pass through
// uncounted. Safe for concurrent use; hooks run outside its lock.
type Client struct {
	*dynamodb.Client

	mu        sync.Mutex
	counts    map[string]int
	before    func(op string, in any) error
	after     func(op string, in any, err error) error
	redeliver func(op string, in any) bool
	lose      map[string]int
	refuse    map[string]refusal
}

// refusal is an answer to give, in place of the engine's, to the next n
// requests of one operation.
type refusal struct {
	n      int
	answer func(in any) error
}

// Wrap returns a Client sending through c.
func Wrap(c *dynamodb.Client) *Client {
	return &Client{Client: c, counts: map[string]int{}, lose: map[string]int{}, refuse: map[string]refusal{}}
}

// Before installs a hook run before each request (nil removes it). A
// non-nil error is returned instead of sending the request; the request is
// still counted.
func (c *Client) Before(f func(op string, in any) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.before = f
}

// After installs a hook run after each sent request with the engine's
// answer (nil removes it). Its result replaces the request's error: return
// err to keep the answer, ErrLostReply to lose a reply the engine applied.
func (c *Client) After(f func(op string, in any, err error) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.after = f
}

// Redeliver installs a hook (nil removes it): when it returns true the
// request is sent twice and the second answer returned, as the SDK does
// when it retries a request whose first answer was lost.
func (c *Client) Redeliver(f func(op string, in any) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.redeliver = f
}

// LoseReplies makes the next n requests of op reach the engine and then
// fail with ErrLostReply, whatever the engine answered.
func (c *Client) LoseReplies(op string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lose[op] += n
}

// Refuse makes the next n requests of op fail with answer(in) without
// reaching the engine, as DynamoDB answers a request it refused and did
// not apply (a TransactionConflict, say: see Cancellation and Conflict).
// A later call replaces an earlier one; n = 0 removes it.
func (c *Client) Refuse(op string, n int, answer func(in any) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse[op] = refusal{n: n, answer: answer}
}

// Count returns how many requests of op were made since the last Reset.
func (c *Client) Count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// Total returns how many requests were made since the last Reset.
func (c *Client) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// Counts returns a copy of the counts per operation.
func (c *Client) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Reset zeroes the counts and returns the previous ones. Hooks stay.
func (c *Client) Reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.counts
	c.counts = map[string]int{}
	return old
}

// do counts op, runs the hooks around send and returns its answer.
func do[I, O any](c *Client, op string, in I, send func() (O, error)) (O, error) {
	c.mu.Lock()
	c.counts[op]++
	before, after, redeliver := c.before, c.after, c.redeliver
	lose := c.lose[op] > 0
	if lose {
		c.lose[op]--
	}
	var refuse func(any) error
	if r := c.refuse[op]; r.n > 0 {
		refuse = r.answer
		r.n--
		c.refuse[op] = r
	}
	c.mu.Unlock()
	var zero O
	if refuse != nil {
		return zero, refuse(in)
	}
	if before != nil {
		if err := before(op, in); err != nil {
			return zero, err
		}
	}
	if redeliver != nil && redeliver(op, in) {
		_, _ = send()
	}
	out, err := send()
	if after != nil {
		err = after(op, in, err)
	}
	if lose {
		return zero, ErrLostReply
	}
	return out, err
}

// GetItem counts and sends a GetItem.
func (c *Client) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return do(c, "GetItem", in, func() (*dynamodb.GetItemOutput, error) { return c.Client.GetItem(ctx, in, o...) })
}

// PutItem counts and sends a PutItem.
func (c *Client) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return do(c, "PutItem", in, func() (*dynamodb.PutItemOutput, error) { return c.Client.PutItem(ctx, in, o...) })
}

// UpdateItem counts and sends an UpdateItem.
func (c *Client) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return do(c, "UpdateItem", in, func() (*dynamodb.UpdateItemOutput, error) { return c.Client.UpdateItem(ctx, in, o...) })
}

// DeleteItem counts and sends a DeleteItem.
func (c *Client) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return do(c, "DeleteItem", in, func() (*dynamodb.DeleteItemOutput, error) { return c.Client.DeleteItem(ctx, in, o...) })
}

// TransactWriteItems counts and sends a TransactWriteItems.
func (c *Client) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return do(c, "TransactWriteItems", in, func() (*dynamodb.TransactWriteItemsOutput, error) {
		return c.Client.TransactWriteItems(ctx, in, o...)
	})
}

// Query counts and sends a Query.
func (c *Client) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return do(c, "Query", in, func() (*dynamodb.QueryOutput, error) { return c.Client.Query(ctx, in, o...) })
}

// Scan counts and sends a Scan.
func (c *Client) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return do(c, "Scan", in, func() (*dynamodb.ScanOutput, error) { return c.Client.Scan(ctx, in, o...) })
}
