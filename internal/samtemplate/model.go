package samtemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The typed model. Every type below is read from a resource's properties
// (Globals merged) the same way, whatever the source of the tree:
//   - as written (Parse): an intrinsic function in a typed field reads as
//     the zero value, and the consumer that cares keeps the raw value
//     (Function.Env, Props) or a reference (Ref, below);
//   - resolved (Template.Resolve, what local/devstack does with local
//     physical names): every field is a literal.
// A literal of the wrong shape (Timeout: abc) is an error of Parse or
// Resolve, never a panic.

// Event source types the model reads.
const (
	EventHTTPAPI    = "HttpApi"
	EventAPI        = "Api"
	EventSchedule   = "Schedule"
	EventScheduleV2 = "ScheduleV2"
	EventDynamoDB   = "DynamoDB"
	EventSQS        = "SQS"
)

// Lambda defaults for properties a function or mapping leaves unset.
const (
	DefaultTimeout    = 3 * time.Second
	DefaultMemorySize = 128
	// DefaultStreamBatchSize and DefaultQueueBatchSize are the BatchSize of
	// a DynamoDB stream and an SQS event source mapping.
	DefaultStreamBatchSize = 100
	DefaultQueueBatchSize  = 10
)

// Function is an AWS::Serverless::Function with Globals.Function merged in
// the way SAM merges them.
type Function struct {
	ID        string
	Condition string         // the resource's Condition, "" when none
	Props     map[string]any // merged properties
	Metadata  map[string]any

	CodeURI       string
	Handler       string
	Runtime       string
	Architectures []string
	// Timeout and MemorySize are 0 when not set (or not a literal); see
	// TimeoutOrDefault and MemoryOrDefault.
	Timeout    time.Duration
	MemorySize int
	// Events are the function's event sources, sorted by name.
	Events []Event
}

// Env returns the function's environment variables (Globals merged), each
// value as written: a literal, or an intrinsic such as {"Ref": "Table"}.
func (f Function) Env() map[string]any {
	env, _ := f.Props["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	return vars
}

// EnvStrings returns the environment as strings: for a resolved template,
// the values the function sees.
func (f Function) EnvStrings() map[string]string {
	out := map[string]string{}
	for k, v := range f.Env() {
		out[k] = String(v)
	}
	return out
}

// TimeoutOrDefault is the timeout Lambda applies (3 s when unset).
func (f Function) TimeoutOrDefault() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return DefaultTimeout
}

// MemoryOrDefault is the memory size Lambda applies in MB (128 when unset).
func (f Function) MemoryOrDefault() int {
	if f.MemorySize > 0 {
		return f.MemorySize
	}
	return DefaultMemorySize
}

// Event is one entry of a function's Events, or an
// AWS::Lambda::EventSourceMapping resource of the template whose
// FunctionName is the function (Mapping is then its logical ID, which is
// also the Name, and Type is DynamoDB or SQS by its EventSourceArn). Exactly
// one of HTTP, Schedule, Stream and Queue is set for the types the model
// knows; other types keep only their Properties.
type Event struct {
	Name       string
	Type       string
	Properties map[string]any
	// Mapping is the logical ID of the AWS::Lambda::EventSourceMapping
	// this event is, "" for an entry of the function's Events.
	Mapping string

	HTTP     *HTTPEvent     // HttpApi, Api
	Schedule *ScheduleEvent // Schedule, ScheduleV2
	Stream   *StreamEvent   // DynamoDB
	Queue    *QueueEvent    // SQS
}

// HTTPEvent is an HttpApi (payload 2.0 by default) or Api (REST, payload
// 1.0) route.
type HTTPEvent struct {
	// API is the logical ID of the API (ApiId / RestApiId), "" for the
	// implicit API SAM creates.
	API    string
	Method string // upper case; "ANY" for any method
	Path   string // "$default" for an HttpApi event without a path
	// Authorizer is the event's Auth.Authorizer ("" to use the API's
	// DefaultAuthorizer; "NONE" for none).
	Authorizer string
	// Scopes are Auth.AuthorizationScopes.
	Scopes []string
	// PayloadFormatVersion is "2.0" or "1.0".
	PayloadFormatVersion string
}

// RouteKey is API Gateway's route key: "POST /orders" or "$default".
func (h *HTTPEvent) RouteKey() string {
	if h.Path == "$default" {
		return "$default"
	}
	return h.Method + " " + h.Path
}

// ScheduleEvent is a Schedule (EventBridge rule) or ScheduleV2 (EventBridge
// Scheduler) event.
type ScheduleEvent struct {
	Expression string // rate(...), cron(...) or at(...)
	// Input is the event's Input: a JSON text sent instead of the
	// Scheduled Event, "" when unset.
	Input string
	// Enabled is false when Enabled is false or State is DISABLED.
	Enabled  bool
	Name     string
	TimeZone string // ScheduleV2's ScheduleExpressionTimezone
}

// Rate parses a rate(N unit) expression. ok is false for cron() and at().
func (s *ScheduleEvent) Rate() (d time.Duration, ok bool, err error) {
	return ParseRate(s.Expression)
}

// ParseRate parses EventBridge's rate(N minute|minutes|hour|hours|day|days).
// ok is false when expr is not a rate expression.
func ParseRate(expr string) (time.Duration, bool, error) {
	inner, found := strings.CutPrefix(strings.TrimSpace(expr), "rate(")
	if !found {
		return 0, false, nil
	}
	inner, found = strings.CutSuffix(inner, ")")
	fields := strings.Fields(inner)
	if !found || len(fields) != 2 {
		return 0, true, fmt.Errorf("schedule %q: want rate(N unit)", expr)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return 0, true, fmt.Errorf("schedule %q: %q is not a positive integer", expr, fields[0])
	}
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(fields[1], "s")]
	if unit == 0 {
		return 0, true, fmt.Errorf("schedule %q: unit %q is not minute(s), hour(s) or day(s)", expr, fields[1])
	}
	if (n == 1) != !strings.HasSuffix(fields[1], "s") {
		return 0, true, fmt.Errorf("schedule %q: EventBridge wants the singular unit for 1 and the plural otherwise", expr)
	}
	return time.Duration(n) * unit, true, nil
}

// Batching is what the stream and queue event source mappings share.
type Batching struct {
	// BatchSize is 0 when unset (Lambda's default: 100 for streams, 10 for
	// queues).
	BatchSize int
	// MaximumBatchingWindow is MaximumBatchingWindowInSeconds.
	MaximumBatchingWindow time.Duration
	// Filters are the FilterCriteria patterns (JSON texts).
	Filters []string
	// FunctionResponseTypes, e.g. [ReportBatchItemFailures].
	FunctionResponseTypes []string
	// Enabled is false only when the mapping sets Enabled: false.
	Enabled bool
}

// BatchSizeOrDefault is the batch size Lambda applies: BatchSize, else def
// (DefaultStreamBatchSize or DefaultQueueBatchSize).
func (b *Batching) BatchSizeOrDefault(def int) int {
	if b.BatchSize > 0 {
		return b.BatchSize
	}
	return def
}

// ReportsBatchItemFailures reports whether the function answers with
// batchItemFailures (FunctionResponseTypes has ReportBatchItemFailures).
func (b *Batching) ReportsBatchItemFailures() bool {
	return slices.Contains(b.FunctionResponseTypes, "ReportBatchItemFailures")
}

func (e *errs) batching(p map[string]any) Batching {
	return Batching{
		BatchSize:             e.int("BatchSize", p["BatchSize"]),
		MaximumBatchingWindow: e.seconds("MaximumBatchingWindowInSeconds", p["MaximumBatchingWindowInSeconds"]),
		Filters:               filters(p["FilterCriteria"]),
		FunctionResponseTypes: Strings(p["FunctionResponseTypes"]),
		Enabled:               e.bool("Enabled", p["Enabled"], true),
	}
}

// StreamEvent is a DynamoDB stream event source mapping.
type StreamEvent struct {
	// Stream is the table whose stream is read (Stream, or an
	// EventSourceMapping's EventSourceArn): a reference to a table of the
	// template (!GetAtt T.StreamArn) or a literal ARN.
	Stream           Ref
	StartingPosition string
	Batching
	BisectBatchOnFunctionError bool
	// MaximumRetryAttempts is nil when unset (Lambda retries until the
	// record expires, -1).
	MaximumRetryAttempts *int
	// MaximumRecordAge is MaximumRecordAgeInSeconds (0 when unset).
	MaximumRecordAge      time.Duration
	ParallelizationFactor int
	// OnFailure is DestinationConfig.OnFailure.Destination: a reference to
	// a queue or topic of the template, or a literal ARN; zero when unset.
	OnFailure Ref
}

// QueueEvent is an SQS event source mapping.
type QueueEvent struct {
	// Queue is a reference to a queue of the template (!GetAtt Q.Arn) or a
	// literal ARN (Queue, or an EventSourceMapping's EventSourceArn).
	Queue Ref
	Batching
	// MaximumConcurrency is ScalingConfig.MaximumConcurrency (0 when unset).
	MaximumConcurrency int
}

// Ref names another resource: Resource is its logical ID when the value is
// a Ref or Fn::GetAtt to it (or resolved from one, see Resolved); otherwise
// Value holds the literal (an ARN, a name).
type Ref struct {
	Resource  string
	Attribute string // "Arn", "StreamArn", ... ("" for a Ref)
	Value     string // the literal, or the resolved value
}

// IsZero reports whether the reference is unset.
func (r Ref) IsZero() bool { return r == Ref{} }

// Resolved is a value an intrinsic resolved to, remembering the resource
// the Ref or Fn::GetAtt named, so that the model of a resolved template
// still knows which resource an event source or destination is. Resolvers
// (Template.Resolve) return it for references to resources; String gives
// the value.
type Resolved struct {
	Value     string
	Resource  string
	Attribute string
}

func refOf(v any) Ref {
	switch x := v.(type) {
	case nil:
		return Ref{}
	case Resolved:
		return Ref{Resource: x.Resource, Attribute: x.Attribute, Value: x.Value}
	}
	if id, ok := RefTarget(v); ok {
		return Ref{Resource: id}
	}
	if id, attr, ok := GetAttTarget(v); ok {
		return Ref{Resource: id, Attribute: attr}
	}
	return Ref{Value: String(v)}
}

// HTTPAPI is an AWS::Serverless::HttpApi or AWS::Serverless::Api (ID "" for
// the implicit API, whose Auth comes from Globals).
type HTTPAPI struct {
	ID   string
	Type string
	// DefaultAuthorizer is Auth.DefaultAuthorizer ("" when unset).
	DefaultAuthorizer string
	// Authorizers are Auth.Authorizers by name.
	Authorizers map[string]Authorizer
	// CORS is an HttpApi's CorsConfiguration, nil when unset (an Api's
	// Cors is not read).
	CORS *CORSConfiguration
}

// CORSConfiguration is an HttpApi's CorsConfiguration: what API Gateway
// answers a preflight with, and adds to every response to a request from
// an allowed origin. CorsConfiguration: true allows every origin.
//
// In a template as written (Parse), a list given as !Split [delim, !Ref P]
// of a String parameter P reads as the split of P's Default (Parameter is
// then P), so the checks see what a deploy without overrides gets; a
// resolved template (Template.Resolve) has the deployed values.
type CORSConfiguration struct {
	AllowOrigins  []string
	AllowHeaders  []string
	AllowMethods  []string
	ExposeHeaders []string
	// AllowCredentials sends Access-Control-Allow-Credentials: true.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight's answer (0 when
	// unset: the browser's default, 5 s in Chromium).
	MaxAge time.Duration
	// OriginsParameter is the parameter AllowOrigins was split from, ""
	// when AllowOrigins is written out.
	OriginsParameter string
}

// Authorizer is one entry of an API's Auth.Authorizers.
type Authorizer struct {
	Name           string
	IdentitySource string // default $request.header.Authorization
	// JWT is set for JWT authorizers (JwtConfiguration).
	JWT *JWTConfiguration
}

// JWTConfiguration is an HttpApi JWT authorizer's issuer and audience
// (empty when not literals).
type JWTConfiguration struct {
	Issuer   string
	Audience []string
}

// RouteAuthorizer names the authorizer of a route: the event's, else the
// API's default. "" or "NONE" means none; "AWS_IAM" is IAM authorization.
func (a *HTTPAPI) RouteAuthorizer(h *HTTPEvent) string {
	if h.Authorizer != "" {
		return h.Authorizer
	}
	if a == nil {
		return ""
	}
	return a.DefaultAuthorizer
}

// Table is an AWS::DynamoDB::Table, or an AWS::Serverless::SimpleTable in
// the same shape.
type Table struct {
	ID        string
	Type      string
	Condition string
	Props     map[string]any
	// Name is TableName ("" when CloudFormation names the table).
	Name                   string
	AttributeDefinitions   []AttributeDefinition
	KeySchema              []KeySchemaElement
	GlobalSecondaryIndexes []SecondaryIndex
	LocalSecondaryIndexes  []SecondaryIndex
	// TTL is TimeToLiveSpecification (nil when absent).
	TTL *TimeToLive
	// StreamViewType is StreamSpecification.StreamViewType ("" when the
	// table has no stream).
	StreamViewType string
}

// TTLAttribute is the attribute TTL is enabled on, "" when disabled.
func (t Table) TTLAttribute() string {
	if t.TTL != nil && t.TTL.Enabled {
		return t.TTL.AttributeName
	}
	return ""
}

// AttributeDefinition mirrors the CloudFormation property.
type AttributeDefinition struct{ AttributeName, AttributeType string }

// KeySchemaElement mirrors the CloudFormation property.
type KeySchemaElement struct{ AttributeName, KeyType string }

// SecondaryIndex mirrors the CloudFormation GSI/LSI property; the
// projection defaults to ALL.
type SecondaryIndex struct {
	IndexName        string
	KeySchema        []KeySchemaElement
	ProjectionType   string
	NonKeyAttributes []string
}

// TimeToLive mirrors TimeToLiveSpecification. Enabled is false unless it
// is the literal true.
type TimeToLive struct {
	AttributeName string
	Enabled       bool
}

// Queue is an AWS::SQS::Queue.
type Queue struct {
	ID        string
	Condition string
	Props     map[string]any
	// Name is QueueName ("" when CloudFormation names the queue).
	Name string
	Fifo bool
	// VisibilityTimeout is 0 when unset (SQS's default is 30 s).
	VisibilityTimeout time.Duration
	// DeadLetter is RedrivePolicy.deadLetterTargetArn (zero when unset).
	DeadLetter      Ref
	MaxReceiveCount int
}

// String renders a literal value as text: strings as they are, numbers
// without exponent, booleans as true/false, lists comma separated, a
// Resolved as its value. An unresolved intrinsic renders as "".
func String(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case Resolved:
		return x.Value
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = String(e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		return ""
	}
	return fmt.Sprint(v)
}

// List returns v as a list: a list as it is, nil as nil, anything else as
// a one-element list (CloudFormation accepts a single Action, Resource...).
func List(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// Maps returns the mappings of a list, skipping other elements.
func Maps(v any) []map[string]any {
	var out []map[string]any
	for _, e := range List(v) {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// Strings returns the literal strings of a list (or a single value).
func Strings(v any) []string {
	var out []string
	for _, e := range List(v) {
		if s := String(e); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// literal reports whether v is set and is not an unresolved intrinsic.
func literal(v any) bool {
	if v == nil {
		return false
	}
	m, ok := v.(map[string]any)
	return !ok || !isIntrinsic(m)
}

// intOf reads an integer property: 0 when unset or an intrinsic, an error
// when a literal is not an integer.
func intOf(where string, v any) (int, error) {
	if !literal(v) {
		return 0, nil
	}
	s := String(v)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s is %q, want an integer", where, s)
	}
	return n, nil
}

// boolOf reads a boolean property; def when unset or an intrinsic.
func boolOf(where string, v any, def bool) (bool, error) {
	if !literal(v) {
		return def, nil
	}
	b, err := strconv.ParseBool(String(v))
	if err != nil {
		return def, fmt.Errorf("%s is %q, want true or false", where, String(v))
	}
	return b, nil
}

func seconds(where string, v any) (time.Duration, error) {
	n, err := intOf(where, v)
	if err == nil && n < 0 {
		err = fmt.Errorf("%s is %d, want a positive number of seconds", where, n)
	}
	return time.Duration(n) * time.Second, err
}

// errs collects the first error of a sequence of reads.
type errs struct{ err error }

func (e *errs) int(where string, v any) int {
	n, err := intOf(where, v)
	e.keep(err)
	return n
}

func (e *errs) bool(where string, v any, def bool) bool {
	b, err := boolOf(where, v, def)
	e.keep(err)
	return b
}

func (e *errs) seconds(where string, v any) time.Duration {
	d, err := seconds(where, v)
	e.keep(err)
	return d
}

func (e *errs) keep(err error) {
	if e.err == nil {
		e.err = err
	}
}

func newFunction(r Resource, props map[string]any) (Function, error) {
	f := Function{ID: r.ID, Condition: r.Condition, Props: props, Metadata: r.Metadata}
	var e errs
	f.CodeURI = String(props["CodeUri"])
	f.Handler = String(props["Handler"])
	f.Runtime = String(props["Runtime"])
	f.Architectures = Strings(props["Architectures"])
	f.Timeout = e.seconds("Timeout", props["Timeout"])
	f.MemorySize = e.int("MemorySize", props["MemorySize"])
	if e.err == nil && (f.MemorySize < 0 || (literal(props["Timeout"]) && f.Timeout == 0)) {
		e.keep(errors.New("the Timeout and MemorySize must be positive"))
	}
	events, _ := props["Events"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(events)) {
		em, ok := events[name].(map[string]any)
		if !ok {
			e.keep(fmt.Errorf("event %s is not a mapping", name))
			continue
		}
		ev, err := newEvent(name, em)
		if err != nil {
			e.keep(fmt.Errorf("event %s: %w", name, err))
			continue
		}
		f.Events = append(f.Events, ev)
	}
	if e.err != nil {
		return f, fmt.Errorf("function %s: %w", r.ID, e.err)
	}
	return f, nil
}

func newEvent(name string, em map[string]any) (Event, error) {
	ev := Event{Name: name, Type: String(em["Type"])}
	ev.Properties, _ = em["Properties"].(map[string]any)
	p := ev.Properties
	var e errs
	switch ev.Type {
	case EventHTTPAPI, EventAPI:
		h := &HTTPEvent{Method: strings.ToUpper(String(p["Method"])), Path: String(p["Path"]), PayloadFormatVersion: "2.0"}
		if ev.Type == EventHTTPAPI {
			h.API = refOf(p["ApiId"]).name()
			if h.Method == "" {
				h.Method = "ANY"
			}
			if h.Path == "" {
				h.Path = "$default"
			}
			if v := String(p["PayloadFormatVersion"]); v != "" {
				h.PayloadFormatVersion = v
			}
		} else {
			h.API = refOf(p["RestApiId"]).name()
			h.PayloadFormatVersion = "1.0"
			if h.Method == "" || h.Path == "" {
				return ev, errors.New("an Api event needs Method and Path")
			}
		}
		if h.Method == "X-AMAZON-APIGATEWAY-ANY-METHOD" || h.Method == "*" {
			h.Method = "ANY"
		}
		if auth, ok := p["Auth"].(map[string]any); ok {
			h.Authorizer = String(auth["Authorizer"])
			h.Scopes = Strings(auth["AuthorizationScopes"])
		}
		ev.HTTP = h
	case EventSchedule, EventScheduleV2:
		s := &ScheduleEvent{Expression: String(firstOf(p, "Schedule", "ScheduleExpression")), Name: String(p["Name"]),
			TimeZone: String(p["ScheduleExpressionTimezone"])}
		s.Enabled = e.bool("Enabled", p["Enabled"], true)
		if st := strings.ToUpper(String(p["State"])); st == "DISABLED" {
			s.Enabled = false
		}
		switch in := p["Input"].(type) {
		case nil:
		case string:
			s.Input = in
		default:
			if b, err := json.Marshal(in); err == nil && literal(in) {
				s.Input = string(b)
			}
		}
		if _, ok, err := s.Rate(); ok {
			e.keep(err)
		}
		ev.Schedule = s
	case EventDynamoDB:
		s := &StreamEvent{Stream: refOf(firstOf(p, "Stream", "EventSourceArn")), StartingPosition: String(p["StartingPosition"]), Batching: e.batching(p)}
		s.BisectBatchOnFunctionError = e.bool("BisectBatchOnFunctionError", p["BisectBatchOnFunctionError"], false)
		if literal(p["MaximumRetryAttempts"]) {
			n := e.int("MaximumRetryAttempts", p["MaximumRetryAttempts"])
			s.MaximumRetryAttempts = &n
		}
		s.MaximumRecordAge = e.seconds("MaximumRecordAgeInSeconds", p["MaximumRecordAgeInSeconds"])
		s.ParallelizationFactor = e.int("ParallelizationFactor", p["ParallelizationFactor"])
		s.OnFailure = onFailure(p["DestinationConfig"])
		ev.Stream = s
	case EventSQS:
		q := &QueueEvent{Queue: refOf(firstOf(p, "Queue", "EventSourceArn")), Batching: e.batching(p)}
		if sc, ok := p["ScalingConfig"].(map[string]any); ok {
			q.MaximumConcurrency = e.int("ScalingConfig.MaximumConcurrency", sc["MaximumConcurrency"])
		}
		ev.Queue = q
	}
	return ev, e.err
}

// newMapping reads an AWS::Lambda::EventSourceMapping as an event of the
// function its FunctionName names (fn: that function's ID, "" when it
// names none of the template's).
func newMapping(t *Template, r Resource, props map[string]any) (fn string, ev Event, err error) {
	fn = refOf(props["FunctionName"]).Resource
	if f := t.Resources[fn]; f.Type != TypeFunction {
		return "", ev, fmt.Errorf("event source mapping %s: FunctionName must be !Ref (or !GetAtt .Arn) of a function of this template", r.ID)
	}
	ev, err = newEvent(r.ID, map[string]any{"Type": mappingType(t, props["EventSourceArn"]), "Properties": props})
	if err != nil {
		return "", ev, fmt.Errorf("event source mapping %s: %w", r.ID, err)
	}
	ev.Mapping = r.ID
	return fn, ev, nil
}

// mappingType is the event type of an EventSourceMapping reading source:
// DynamoDB for a table's StreamArn (or a stream ARN), SQS for a queue's Arn
// (or a queue ARN), "" for any other source (Kinesis, Kafka, MQ).
func mappingType(t *Template, source any) string {
	ref := refOf(source)
	if ref.Resource != "" {
		switch typ := t.Resources[ref.Resource].Type; {
		case typ == TypeTable && ref.Attribute == "StreamArn":
			return EventDynamoDB
		case typ == TypeQueue && ref.Attribute == "Arn":
			return EventSQS
		}
		return ""
	}
	switch arn := ref.Value; {
	case strings.HasPrefix(arn, "arn:aws:dynamodb:") && strings.Contains(arn, "/stream/"):
		return EventDynamoDB
	case strings.HasPrefix(arn, "arn:aws:sqs:"):
		return EventSQS
	}
	return ""
}

// name is the logical ID of a reference, else its literal.
func (r Ref) name() string {
	if r.Resource != "" {
		return r.Resource
	}
	return r.Value
}

func filters(v any) []string {
	fc, _ := v.(map[string]any)
	var out []string
	for _, f := range Maps(fc["Filters"]) {
		switch p := f["Pattern"].(type) {
		case string:
			out = append(out, p)
		case map[string]any:
			if b, err := json.Marshal(p); err == nil {
				out = append(out, string(b))
			}
		}
	}
	return out
}

func onFailure(v any) Ref {
	dc, _ := v.(map[string]any)
	of, _ := dc["OnFailure"].(map[string]any)
	return refOf(of["Destination"])
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}

func newHTTPAPI(id, typ string, props map[string]any, params map[string]any) (HTTPAPI, error) {
	a := HTTPAPI{ID: id, Type: typ, Authorizers: map[string]Authorizer{}}
	auth, _ := props["Auth"].(map[string]any)
	a.DefaultAuthorizer = String(auth["DefaultAuthorizer"])
	auths, _ := auth["Authorizers"].(map[string]any)
	for name, v := range auths {
		am, _ := v.(map[string]any)
		az := Authorizer{Name: name, IdentitySource: "$request.header.Authorization"}
		if is := Strings(am["IdentitySource"]); len(is) > 0 {
			az.IdentitySource = is[0]
		}
		if jc, ok := am["JwtConfiguration"].(map[string]any); ok {
			az.JWT = &JWTConfiguration{Issuer: String(firstOf(jc, "issuer", "Issuer")), Audience: Strings(firstOf(jc, "audience", "Audience"))}
		}
		a.Authorizers[name] = az
	}
	if typ == TypeHTTPAPI {
		cors, err := newCORS(props["CorsConfiguration"], params)
		if err != nil {
			return a, fmt.Errorf("api %s: CorsConfiguration: %w", id, err)
		}
		a.CORS = cors
	}
	return a, nil
}

// newCORS reads a CorsConfiguration (nil when unset or false). params are
// the template's Parameters, for a !Split of a parameter's Default.
func newCORS(v any, params map[string]any) (*CORSConfiguration, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if !x {
			return nil, nil
		}
		return &CORSConfiguration{AllowOrigins: []string{"*"}}, nil
	case map[string]any:
		if isIntrinsic(x) {
			return nil, nil // not a literal: nothing known
		}
	default:
		return nil, fmt.Errorf("is %v, want a mapping or true", v)
	}
	m := v.(map[string]any)
	c := &CORSConfiguration{}
	c.AllowOrigins, c.OriginsParameter = splitList(m["AllowOrigins"], params)
	c.AllowHeaders, _ = splitList(m["AllowHeaders"], params)
	c.AllowMethods, _ = splitList(m["AllowMethods"], params)
	c.ExposeHeaders, _ = splitList(m["ExposeHeaders"], params)
	var e errs
	c.AllowCredentials = e.bool("AllowCredentials", m["AllowCredentials"], false)
	c.MaxAge = e.seconds("MaxAge", m["MaxAge"])
	return c, e.err
}

// splitList reads a list of strings: a literal list (or single value), or
// Fn::Split [delim, {Ref: P}] of a parameter P, read from P's Default
// (param is then P). Entries are trimmed; empty ones are dropped.
func splitList(v any, params map[string]any) (list []string, param string) {
	if m, ok := v.(map[string]any); ok && isIntrinsic(m) {
		args, _ := m["Fn::Split"].([]any)
		if len(args) != 2 {
			return nil, ""
		}
		delim, _ := args[0].(string)
		param, _ = RefTarget(args[1])
		p, _ := params[param].(map[string]any)
		def, ok := p["Default"]
		if delim == "" || !ok {
			return nil, param
		}
		var parts []any
		for _, x := range strings.Split(String(def), delim) {
			parts = append(parts, x)
		}
		v = parts
	}
	for _, s := range Strings(v) {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	return list, param
}

func newTable(r Resource, p map[string]any) (Table, error) {
	t := Table{ID: r.ID, Type: r.Type, Condition: r.Condition, Props: p, Name: String(p["TableName"])}
	if r.Type == TypeSimpleTable {
		name, typ := "id", "S"
		if pk, ok := p["PrimaryKey"].(map[string]any); ok {
			if n := String(pk["Name"]); n != "" {
				name = n
			}
			switch String(pk["Type"]) {
			case "Number":
				typ = "N"
			case "Binary":
				typ = "B"
			}
		}
		t.AttributeDefinitions = []AttributeDefinition{{name, typ}}
		t.KeySchema = []KeySchemaElement{{name, "HASH"}}
		return t, nil
	}
	for _, a := range Maps(p["AttributeDefinitions"]) {
		t.AttributeDefinitions = append(t.AttributeDefinitions, AttributeDefinition{String(a["AttributeName"]), String(a["AttributeType"])})
	}
	t.KeySchema = keySchema(p["KeySchema"])
	t.GlobalSecondaryIndexes = indexes(p["GlobalSecondaryIndexes"])
	t.LocalSecondaryIndexes = indexes(p["LocalSecondaryIndexes"])
	var e errs
	if ttl, ok := p["TimeToLiveSpecification"].(map[string]any); ok {
		t.TTL = &TimeToLive{AttributeName: String(ttl["AttributeName"])}
		t.TTL.Enabled = e.bool("TimeToLiveSpecification.Enabled", ttl["Enabled"], false)
	}
	if ss, ok := p["StreamSpecification"].(map[string]any); ok {
		t.StreamViewType = String(ss["StreamViewType"])
	}
	if e.err != nil {
		return t, fmt.Errorf("table %s: %w", r.ID, e.err)
	}
	return t, nil
}

func keySchema(v any) []KeySchemaElement {
	var out []KeySchemaElement
	for _, k := range Maps(v) {
		out = append(out, KeySchemaElement{String(k["AttributeName"]), String(k["KeyType"])})
	}
	return out
}

func indexes(v any) []SecondaryIndex {
	var out []SecondaryIndex
	for _, ix := range Maps(v) {
		si := SecondaryIndex{IndexName: String(ix["IndexName"]), KeySchema: keySchema(ix["KeySchema"]), ProjectionType: "ALL"}
		if pr, ok := ix["Projection"].(map[string]any); ok {
			if pt := String(pr["ProjectionType"]); pt != "" {
				si.ProjectionType = pt
			}
			si.NonKeyAttributes = Strings(pr["NonKeyAttributes"])
		}
		out = append(out, si)
	}
	return out
}

func newQueue(r Resource, p map[string]any) (Queue, error) {
	q := Queue{ID: r.ID, Condition: r.Condition, Props: p, Name: String(p["QueueName"])}
	var e errs
	q.Fifo = e.bool("FifoQueue", p["FifoQueue"], false)
	q.VisibilityTimeout = e.seconds("VisibilityTimeout", p["VisibilityTimeout"])
	rp := p["RedrivePolicy"]
	if s, ok := rp.(string); ok { // JSON text is allowed too
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) == nil {
			rp = m
		}
	}
	if m, ok := rp.(map[string]any); ok {
		q.DeadLetter = refOf(m["deadLetterTargetArn"])
		q.MaxReceiveCount = e.int("RedrivePolicy.maxReceiveCount", m["maxReceiveCount"])
	}
	if e.err != nil {
		return q, fmt.Errorf("queue %s: %w", r.ID, e.err)
	}
	return q, nil
}
