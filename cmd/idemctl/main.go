// Command idemctl inspects idempotency records, for support staff: it
// shows a key's record decoded, lists the records stuck IN_PROGRESS past
// their lease, and deletes one record after confirmation.
//
//	idemctl [-table IdempotencyTable] show   KEY-SELECTION [-json]
//	idemctl [-table IdempotencyTable] stuck  [-limit 100]
//	idemctl [-table IdempotencyTable] delete KEY-SELECTION [-yes]
//
// KEY-SELECTION is either -key RECORD-KEY (the stored key), or what support
// knows of an API request: -route 'POST /orders', the caller (-iss ISSUER
// -sub SUBJECT for a JWT, or -lambda-principal ID, -iam-arn ARN, -principal
// RAW) and -client-key (the client's Idempotency-Key).
//
// It uses the AWS SDK's standard configuration (AWS_PROFILE, AWS_REGION,
// credentials, ...), so it works against AWS as it is and against the
// local engine with AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 (and
// any static credentials, e.g. AWS_ACCESS_KEY_ID=test
// AWS_SECRET_ACCESS_KEY=test). The table defaults to $IDEMPOTENCY_TABLE.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Client is what idemctl needs of DynamoDB: the store's calls and Scan.
type Client interface {
	idemddb.Client
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// app is one run of the command.
type app struct {
	client Client
	store  *idemddb.Store
	table  string
	out    io.Writer
	in     *bufio.Reader
	now    func() time.Time
}

const usage = `usage: idemctl [-table T] [-key-attribute id] show|stuck|delete [flags]
  show   (-key RECORD-KEY | -route 'POST /orders' CALLER -client-key K) [-json]
  stuck  [-limit 100]
  delete (-key RECORD-KEY | -route ... CALLER -client-key K) [-yes]
CALLER: -iss ISSUER -sub SUBJECT (JWT), -lambda-principal ID, -iam-arn ARN, or -principal RAW
The SDK's standard configuration applies; AWS_ENDPOINT_URL_DYNAMODB points it at a local engine.`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	top := flag.NewFlagSet("idemctl", flag.ContinueOnError)
	top.SetOutput(stderr)
	table := top.String("table", os.Getenv("IDEMPOTENCY_TABLE"), "idempotency table (env IDEMPOTENCY_TABLE)")
	keyAttr := top.String("key-attribute", "id", "the table's partition key")
	top.Usage = func() { fmt.Fprintln(stderr, usage) }
	if err := top.Parse(args); err != nil {
		return 2
	}
	if top.NArg() == 0 || *table == "" {
		fmt.Fprintln(stderr, usage)
		if *table == "" && top.NArg() > 0 {
			fmt.Fprintln(stderr, "idemctl: no table: pass -table or set IDEMPOTENCY_TABLE")
		}
		return 2
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "idemctl: AWS configuration:", err)
		return 1
	}
	a, err := newApp(dynamodb.NewFromConfig(cfg), *table, *keyAttr, stdin, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "idemctl:", err)
		return 1
	}
	cmd, rest := top.Arg(0), top.Args()[1:]
	switch cmd {
	case "show", "delete", "stuck":
	default:
		fmt.Fprintf(stderr, "idemctl: unknown command %q\n%s\n", cmd, usage)
		return 2
	}
	fs := flag.NewFlagSet("idemctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sel := addSelection(fs)
	asJSON := fs.Bool("json", false, "show: print the record as JSON")
	yes := fs.Bool("yes", false, "delete: do not ask for confirmation (scripts)")
	limit := fs.Int("limit", 100, "stuck: list at most this many records")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	switch cmd {
	case "stuck":
		err = a.stuck(ctx, *limit)
	default:
		var key string
		if key, err = sel.recordKey(); err == nil {
			if cmd == "show" {
				err = a.show(ctx, key, *asJSON)
			} else {
				err = a.delete(ctx, key, *yes)
			}
		}
	}
	switch {
	case errors.Is(err, errDeclined):
		fmt.Fprintln(stderr, "idemctl: not deleted")
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "idemctl: %v\n%s\n", err, usage)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "idemctl:", err)
		return 1
	}
	return 0
}

func newApp(c Client, table, keyAttr string, stdin io.Reader, stdout io.Writer) (*app, error) {
	// The store only reads and decodes here; its retention is irrelevant.
	s, err := idemddb.New(c, idemddb.Config{Table: table, KeyAttribute: keyAttr})
	if err != nil {
		return nil, err
	}
	return &app{client: c, store: s, table: table, out: stdout, in: bufio.NewReader(stdin), now: time.Now}, nil
}

var (
	errUsage    = errors.New("usage")
	errDeclined = errors.New("declined")
)

// selection is the flags naming one record.
type selection struct {
	key, route, iss, sub, lambda, iamARN, principal, clientKey *string
}

func addSelection(fs *flag.FlagSet) selection {
	return selection{
		key:       fs.String("key", "", "the record key as stored (e.g. apigw1:...)"),
		route:     fs.String("route", "", "the API route, method and template: 'POST /orders'"),
		iss:       fs.String("iss", "", "the caller's JWT issuer (iss claim)"),
		sub:       fs.String("sub", "", "the caller's JWT subject (sub claim)"),
		lambda:    fs.String("lambda-principal", "", "the caller's Lambda authorizer principalId"),
		iamARN:    fs.String("iam-arn", "", "the caller's IAM user ARN"),
		principal: fs.String("principal", "", "the caller as the wrapper names it (advanced)"),
		clientKey: fs.String("client-key", "", "the Idempotency-Key the client sent"),
	}
}

// key resolves the selection to a record key.
func (s selection) recordKey() (string, error) {
	if *s.key != "" {
		if *s.route != "" || *s.clientKey != "" {
			return "", fmt.Errorf("%w: -key or -route with -client-key, not both", errUsage)
		}
		return *s.key, nil
	}
	if *s.route == "" || *s.clientKey == "" {
		return "", fmt.Errorf("%w: name the record with -key, or with -route, the caller and -client-key", errUsage)
	}
	method, path, ok := strings.Cut(strings.TrimSpace(*s.route), " ")
	if !ok || !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("%w: -route %q: want METHOD /path, e.g. 'POST /orders'", errUsage, *s.route)
	}
	var principal string
	switch {
	case *s.principal != "":
		principal = *s.principal
	case *s.sub != "":
		principal = apigw.JWTPrincipal(*s.iss, *s.sub)
	case *s.lambda != "":
		principal = apigw.LambdaPrincipal(*s.lambda)
	case *s.iamARN != "":
		principal = apigw.IAMPrincipal(*s.iamARN)
	}
	return apigw.RecordKey(strings.ToUpper(method)+" "+path, principal, *s.clientKey), nil
}

// recordView is a record as idemctl prints it.
type recordView struct {
	Key        string        `json:"key"`
	Status     string        `json:"status"`
	Condition  string        `json:"condition"`
	LeaseOwner string        `json:"lease_owner,omitempty"`
	LeaseUntil *time.Time    `json:"lease_until,omitempty"`
	ExpiresAt  time.Time     `json:"expires_at"`
	ResourceID string        `json:"resource_id"`
	Response   *responseView `json:"response,omitempty"`
	Result     string        `json:"result,omitempty"`
	ResultNote string        `json:"result_note,omitempty"`
}

type responseView struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    string              `json:"body"`
}

func (a *app) view(r *idemddb.Record) recordView {
	now := a.now()
	v := recordView{Key: r.Key, Status: r.Status, LeaseOwner: r.LeaseOwner, ExpiresAt: r.ExpiresAt.UTC(), ResourceID: r.ResourceID}
	switch {
	case r.Expired(now):
		v.Condition = "expired: counts as absent; TTL deletes it lazily"
	case r.Stuck(now):
		v.Condition = "stuck: the lease is over and the work did not complete; a retry of the same request takes it over"
	case r.Status == idemddb.StatusInProgress:
		v.Condition = "in progress: a request holds the lease"
	default:
		v.Condition = "completed: retries get the stored result"
	}
	if r.Status == idemddb.StatusInProgress {
		t := r.LeaseUntil.UTC()
		v.LeaseUntil = &t
	}
	switch {
	case r.ResultErr != nil:
		v.ResultNote = r.ResultErr.Error()
	case r.Status == idemddb.StatusCompleted:
		if resp, err := apigw.DecodeStoredResponse(r.Result); err == nil {
			v.Response = &responseView{Status: resp.Status, Headers: resp.Header(), Body: printable(resp.Body)}
		} else {
			v.Result = printable(r.Result)
		}
	}
	return v
}

// printable is text as is, anything else base64.
func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}

func (a *app) lookup(ctx context.Context, key string) (*idemddb.Record, error) {
	r, err := a.store.Lookup(ctx, key)
	if errors.Is(err, idemddb.ErrNoRecord) {
		return nil, fmt.Errorf("no record for key %s in %s (never claimed, released after a failure, or deleted by TTL)", key, a.table)
	}
	return r, err
}

func (a *app) show(ctx context.Context, key string, asJSON bool) error {
	r, err := a.lookup(ctx, key)
	if err != nil {
		return err
	}
	v := a.view(r)
	if asJSON {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	a.printRecord(v)
	return nil
}

func (a *app) printRecord(v recordView) {
	now := a.now()
	w := a.out
	fmt.Fprintf(w, "key:          %s\n", v.Key)
	fmt.Fprintf(w, "status:       %s (%s)\n", v.Status, v.Condition)
	fmt.Fprintf(w, "lease owner:  %s\n", v.LeaseOwner)
	if v.LeaseUntil != nil {
		fmt.Fprintf(w, "lease until:  %s (%s)\n", v.LeaseUntil.Format(time.RFC3339Nano), relative(*v.LeaseUntil, now))
	}
	fmt.Fprintf(w, "expires at:   %s (%s)\n", v.ExpiresAt.Format(time.RFC3339), relative(v.ExpiresAt, now))
	fmt.Fprintf(w, "resource id:  %s\n", v.ResourceID)
	switch {
	case v.Response != nil:
		fmt.Fprintf(w, "stored response: HTTP %d\n", v.Response.Status)
		names := make([]string, 0, len(v.Response.Headers))
		for k := range v.Response.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, val := range v.Response.Headers[k] {
				fmt.Fprintf(w, "  %s: %s\n", k, val)
			}
		}
		fmt.Fprintf(w, "  %s\n", v.Response.Body)
	case v.Result != "":
		fmt.Fprintf(w, "stored result: %s\n", v.Result)
	case v.ResultNote != "":
		fmt.Fprintf(w, "stored result: %s\n", v.ResultNote)
	}
}

func relative(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d >= 0 {
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}

// stuck scans the table and lists the records IN_PROGRESS past their
// lease. It reads the whole table (a support tool, not a request path):
// records are decoded by the library, not filtered by attribute names.
func (a *app) stuck(ctx context.Context, limit int) error {
	now := a.now()
	var start map[string]types.AttributeValue
	found, scanned := 0, 0
	for {
		out, err := a.client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(a.table), ExclusiveStartKey: start})
		if err != nil {
			return fmt.Errorf("scan %s: %w", a.table, err)
		}
		for _, item := range out.Items {
			scanned++
			r, err := a.store.DecodeRecord(item)
			if err != nil || !r.Stuck(now) {
				continue
			}
			found++
			fmt.Fprintf(a.out, "%s  lease ended %s ago  resource %s  expires %s\n", r.Key, now.Sub(r.LeaseUntil).Round(time.Second), r.ResourceID, r.ExpiresAt.UTC().Format(time.RFC3339))
			if found == limit {
				fmt.Fprintf(a.out, "(stopped at -limit %d)\n", limit)
				return nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	fmt.Fprintf(a.out, "%d stuck records of %d in %s\n", found, scanned, a.table)
	return nil
}

// delete shows the record, asks, and deletes it if it still exists. (It
// does not condition on the record's own attributes: their names are the
// library's business, decoded only by it.)
func (a *app) delete(ctx context.Context, key string, yes bool) error {
	r, err := a.lookup(ctx, key)
	if err != nil {
		return err
	}
	v := a.view(r)
	a.printRecord(v)
	if r.Status == idemddb.StatusInProgress && !r.Stuck(a.now()) {
		fmt.Fprintln(a.out, "WARNING: a request holds this lease now; deleting lets a retry run the work a second time.")
	}
	if r.Status == idemddb.StatusCompleted {
		fmt.Fprintln(a.out, "WARNING: deleting a completed record lets a retry run the work again (a second order or charge).")
	}
	if !yes {
		fmt.Fprintf(a.out, "delete this record from %s? [y/N] ", a.table)
		answer, _ := a.in.ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errDeclined
		}
	}
	_, err = a.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(a.table),
		Key:                      map[string]types.AttributeValue{a.store.KeyAttribute(): &types.AttributeValueMemberS{Value: key}},
		ConditionExpression:      aws.String("attribute_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": a.store.KeyAttribute()},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return fmt.Errorf("the record is already gone")
	case err != nil:
		return fmt.Errorf("delete: %w", err)
	}
	fmt.Fprintln(a.out, "deleted")
	return nil
}
