package main

// The contend mode: many clients paying one order at once, each with its
// own Idempotency-Key (the ride-sharing case), against a stack that is
// already running (`make dev`):
//
//	go run ./local/cmd/devload -contend http://127.0.0.1:3000 [-orders 20] [-payers 8] [-engine URL]
//
// For each of -orders orders it creates the order, then fires -payers
// concurrent POST /payments with distinct keys, and reports the latency
// percentiles of the payments, the answers by status and problem type, how
// many orders ended PAID (GET /orders/{id}), and, with -engine (the
// DynamoDB endpoint `make dev` prints), the CAPTURED authorizations per
// order, which must all be 1. Loopback only, bounded by the flags.

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// contendFlags are the contend mode's flags.
type contendFlags struct {
	url, engine, table, issuer, audience *string
	orders, payers                       *int
}

// registerContend defines the contend mode's flags on fs.
func registerContend(fs *flag.FlagSet) *contendFlags {
	return &contendFlags{
		url:      fs.String("contend", "", "contend mode: base URL of a running stack (make dev), e.g. http://127.0.0.1:3000; see contend.go"),
		orders:   fs.Int("orders", 20, "contend mode: orders to pay (1..1000)"),
		payers:   fs.Int("payers", 8, "contend mode: concurrent payments per order, each with its own key (1..64)"),
		engine:   fs.String("engine", "", "contend mode: the stack's DynamoDB endpoint, to count CAPTURED authorizations per order"),
		table:    fs.String("payments-table", "PaymentsTable", "contend mode: the payments table's name on -engine"),
		issuer:   fs.String("issuer", "https://issuer.example.com/", "contend mode: JWT iss (the template's JwtIssuer)"),
		audience: fs.String("audience", "checkout-api", "contend mode: JWT aud (the template's JwtAudience)"),
	}
}

// enabled reports whether the contend mode was asked for.
func (f *contendFlags) enabled() bool { return *f.url != "" }

// contendResult is one payment's answer.
type contendResult struct {
	latency time.Duration
	answer  string // "201", "200 already_paid", "409 payment-in-progress", ...
}

// runContend runs the contend mode and returns the exit status.
func runContend(ctx context.Context, f *contendFlags, logf func(string, ...any)) int {
	if *f.orders < 1 || *f.orders > 1000 || *f.payers < 1 || *f.payers > 64 {
		logf("-orders must be 1..1000 and -payers 1..64")
		return 2
	}
	base, err := url.Parse(strings.TrimRight(*f.url, "/"))
	if err != nil || (base.Hostname() != "127.0.0.1" && base.Hostname() != "localhost") {
		logf("-contend must be a loopback URL such as http://127.0.0.1:3000")
		return 2
	}
	c := &contender{
		base:   base.String(),
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *f.payers}},
		auth: "Bearer " + gateway.UnsignedJWT(map[string]any{
			"iss": *f.issuer, "aud": *f.audience, "sub": "devload-contend", "exp": time.Now().Add(time.Hour).Unix(),
		}),
		run: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	var results []contendResult
	var ids []string
	paid := 0
	for i := range *f.orders {
		id, err := c.createOrder(ctx, i)
		if err != nil {
			logf("order %d: %v", i, err)
			return 1
		}
		ids = append(ids, id)
		results = append(results, c.payAtOnce(ctx, id, i, *f.payers)...)
		if st, err := c.orderStatus(ctx, id); err == nil && st == "PAID" {
			paid++
		}
	}

	lat := make([]time.Duration, len(results))
	answers := map[string]int{}
	for i, r := range results {
		lat[i] = r.latency
		answers[r.answer]++
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("contend: %d orders × %d concurrent distinct-key payments = %d POST /payments\n", *f.orders, *f.payers, len(results))
	fmt.Printf("         latency p50 %s, p99 %s, max %s\n", percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1].Round(time.Millisecond))
	fmt.Printf("         answers: %s\n", tally(answers, "%[2]d × %[1]v"))
	fmt.Printf("         orders PAID: %d of %d\n", paid, len(ids))
	if *f.engine != "" {
		perOrder, err := capturesPerOrder(ctx, *f.engine, *f.table, ids)
		if err != nil {
			logf("count captures: %v", err)
			return 1
		}
		fmt.Printf("         CAPTURED authorizations per order: %s\n", perOrder)
	}
	if paid != len(ids) || answers["201"] != len(ids) {
		return 1
	}
	return 0
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank, 1)-1].Round(time.Millisecond)
}

// contender sends the contend mode's requests.
type contender struct {
	base, auth, run string
	client          *http.Client
}

func (c *contender) do(ctx context.Context, method, path, key, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", c.auth)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c *contender) createOrder(ctx context.Context, i int) (string, error) {
	status, body, err := c.do(ctx, http.MethodPost, "/orders", fmt.Sprintf("contend-%s-order-%d", c.run, i),
		`{"currency":"INR","items":[{"sku":"SKU-1","quantity":1,"unit_price":49900}]}`)
	var o struct {
		OrderID string `json:"order_id"`
	}
	switch {
	case err != nil:
		return "", err
	case status != http.StatusCreated || json.Unmarshal(body, &o) != nil || o.OrderID == "":
		return "", fmt.Errorf("POST /orders: %d %s", status, body)
	}
	return o.OrderID, nil
}

// payAtOnce fires n payments for one order at the same moment, each with
// its own key, and returns their answers.
func (c *contender) payAtOnce(ctx context.Context, orderID string, i, n int) []contendResult {
	body := fmt.Sprintf(`{"order_id":%q,"amount":49900,"currency":"INR","payment_method":"card_visa"}`, orderID)
	out := make([]contendResult, n)
	var wg sync.WaitGroup
	gun := make(chan struct{})
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gun
			start := time.Now()
			status, b, err := c.do(ctx, http.MethodPost, "/payments", fmt.Sprintf("contend-%s-pay-%d-%d", c.run, i, j), body)
			out[j] = contendResult{latency: time.Since(start), answer: answerOf(status, b, err)}
		}()
	}
	close(gun)
	wg.Wait()
	return out
}

// answerOf names an answer by its status and, for a problem, its type.
func answerOf(status int, body []byte, err error) string {
	if err != nil {
		return "transport error"
	}
	var p struct {
		Type        string `json:"type"`
		AlreadyPaid bool   `json:"already_paid"`
	}
	switch {
	case status >= 400 && json.Unmarshal(body, &p) == nil && p.Type != "":
		return strconv.Itoa(status) + " " + p.Type[strings.LastIndex(p.Type, "/")+1:]
	case status == http.StatusOK && json.Unmarshal(body, &p) == nil && p.AlreadyPaid:
		return "200 already_paid"
	}
	return strconv.Itoa(status)
}

func (c *contender) orderStatus(ctx context.Context, id string) (string, error) {
	status, body, err := c.do(ctx, http.MethodGet, "/orders/"+id, "", "")
	var o struct {
		Status string `json:"status"`
	}
	if err == nil && (status != http.StatusOK || json.Unmarshal(body, &o) != nil) {
		err = fmt.Errorf("GET /orders/%s: %d %s", id, status, body)
	}
	return o.Status, err
}

// capturesPerOrder counts the CAPTURED authorizations of each order in the
// payments table, as "N orders × M captures" groups.
func capturesPerOrder(ctx context.Context, endpoint, table string, ids []string) (string, error) {
	db := localddb.NewClient(endpoint)
	filter := expression.Name("pk").BeginsWith("AUTH#").And(expression.Name("status").Equal(expression.Value("CAPTURED")))
	expr, err := expression.NewBuilder().WithFilter(filter).Build()
	if err != nil {
		return "", err
	}
	count := map[string]int{}
	for _, id := range ids {
		count[id] = 0
	}
	in := &dynamodb.ScanInput{TableName: aws.String(table), FilterExpression: expr.Filter(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true)}
	for {
		out, err := db.Scan(ctx, in)
		if err != nil {
			return "", err
		}
		for _, it := range out.Items {
			var rec struct {
				OrderID string `dynamodbav:"order_id"`
			}
			_ = attributevalue.UnmarshalMap(it, &rec)
			if _, ok := count[rec.OrderID]; ok {
				count[rec.OrderID]++
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	groups := map[int]int{}
	for _, n := range count {
		groups[n]++
	}
	return tally(groups, "%[2]d orders × %[1]v"), nil
}

// tally formats each key and count of m with format (key first, count
// second), in key order, comma-separated.
func tally[K cmp.Ordered](m map[K]int, format string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf(format, k, m[k]))
	}
	return strings.Join(parts, ", ")
}
