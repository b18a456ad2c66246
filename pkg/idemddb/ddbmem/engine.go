package ddbmem

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// keyAttribute is the partition key of the table CreateIdempotencyTable
// makes: idemddb.Config.KeyAttribute's default.
const keyAttribute = "id"

// clientTokenWindow is how long DynamoDB remembers a TransactWriteItems
// ClientRequestToken.
const clientTokenWindow = 10 * time.Minute

// Hook is called before every request with the operation name
// ("PutItem", ...) and its input. A non-nil error is returned to the caller
// as the request's answer and nothing is applied: a way to inject refusals
// and throttles. For a write applied whose answer is lost, wrap the Engine
// in a Client of your own instead.
type Hook func(ctx context.Context, op string, in any) error

// Option configures an Engine.
type Option func(*Engine)

// WithHook sets the hook called before every request.
func WithHook(h Hook) Option { return func(e *Engine) { e.hook = h } }

// WithClock sets the clock the engine reads for the ClientRequestToken
// window of TransactWriteItems (default time.Now, which inside a
// testing/synctest bubble is the bubble's fake clock). Nothing else in the
// engine reads time: expiry conditions compare the values the caller sends.
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// Engine is an in-memory DynamoDB. It is safe for concurrent use; every
// request is applied atomically, in the order the engine receives them.
type Engine struct {
	hook Hook
	now  func() time.Time

	mu     sync.Mutex
	tables map[string]*table
	tokens map[string]tokenUse
}

type tokenUse struct {
	at time.Time
	in *dynamodb.TransactWriteItemsInput
}

type table struct {
	name     string
	hashKey  string
	hashType types.ScalarAttributeType
	rangeKey string
	rngType  types.ScalarAttributeType
	items    map[string]map[string]types.AttributeValue
}

// New returns an empty engine.
func New(opts ...Option) *Engine {
	e := &Engine{now: time.Now, tables: map[string]*table{}, tokens: map[string]tokenUse{}}
	for _, o := range opts {
		o(e)
	}
	return e
}

func (e *Engine) before(ctx context.Context, op string, in any) error {
	if e.hook != nil {
		return e.hook(ctx, op, in)
	}
	return ctx.Err()
}

// CreateIdempotencyTable creates the table an idemddb.Store with the
// default Config.KeyAttribute uses: partition key "id" (S), TTL enabled on
// "expires_at".
func (e *Engine) CreateIdempotencyTable(name string) error {
	_, err := e.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(keyAttribute), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(keyAttribute), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		return err
	}
	_, err = e.UpdateTimeToLive(context.Background(), &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(idemddb.TTLAttribute), Enabled: aws.Bool(true)},
	})
	return err
}

// CreateTable creates a table with a partition key and optionally a sort
// key. Indexes and streams are not implemented.
func (e *Engine) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	const op = "CreateTable"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	if len(in.GlobalSecondaryIndexes) > 0 || len(in.LocalSecondaryIndexes) > 0 {
		return nil, unsupported(op, "secondary indexes")
	}
	if in.StreamSpecification != nil && aws.ToBool(in.StreamSpecification.StreamEnabled) {
		return nil, unsupported(op, "streams")
	}
	name := aws.ToString(in.TableName)
	if name == "" {
		return nil, validation("TableName must be given")
	}
	defs := map[string]types.ScalarAttributeType{}
	for _, d := range in.AttributeDefinitions {
		defs[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	t := &table{name: name, items: map[string]map[string]types.AttributeValue{}}
	for _, k := range in.KeySchema {
		n := aws.ToString(k.AttributeName)
		typ, ok := defs[n]
		if !ok {
			return nil, validation("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions")
		}
		switch k.KeyType {
		case types.KeyTypeHash:
			t.hashKey, t.hashType = n, typ
		case types.KeyTypeRange:
			t.rangeKey, t.rngType = n, typ
		default:
			return nil, validation("Invalid KeyType %q", k.KeyType)
		}
	}
	if t.hashKey == "" || len(defs) != len(in.KeySchema) {
		return nil, validation("One or more parameter values were invalid: the key schema needs one HASH key and its attribute definitions only")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.tables[name]; ok {
		return nil, &types.ResourceInUseException{Message: aws.String("Table already exists: " + name)}
	}
	e.tables[name] = t
	return &dynamodb.CreateTableOutput{TableDescription: &types.TableDescription{
		TableName: aws.String(name), TableStatus: types.TableStatusActive,
		KeySchema: in.KeySchema, AttributeDefinitions: in.AttributeDefinitions,
	}}, nil
}

// UpdateTimeToLive accepts a TTL setting for an existing table. The engine
// deletes nothing by itself (DynamoDB's sweeper runs at some time after
// expiry; the store already treats an expired record as absent).
func (e *Engine) UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	const op = "UpdateTimeToLive"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	if in.TimeToLiveSpecification == nil {
		return nil, validation("TimeToLiveSpecification must be given")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.table(aws.ToString(in.TableName)); err != nil {
		return nil, err
	}
	return &dynamodb.UpdateTimeToLiveOutput{TimeToLiveSpecification: in.TimeToLiveSpecification}, nil
}

// Items returns a copy of every item of table, in key order.
func (e *Engine) Items(tableName string) ([]map[string]types.AttributeValue, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.table(tableName)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]types.AttributeValue, 0, len(t.items))
	for _, k := range sortedKeys(t.items) {
		out = append(out, copyItem(t.items[k]))
	}
	return out, nil
}

func (e *Engine) table(name string) (*table, error) {
	t, ok := e.tables[name]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	return t, nil
}

// keyOf returns the storage key of the key attributes in m. exact demands
// that m holds nothing else (a Key parameter rather than an Item).
func (t *table) keyOf(m map[string]types.AttributeValue, exact bool) (string, map[string]types.AttributeValue, error) {
	want := 1
	if t.rangeKey != "" {
		want = 2
	}
	if exact && len(m) != want {
		return "", nil, validation("The provided key element does not match the schema")
	}
	key := make(map[string]types.AttributeValue, want)
	var b strings.Builder
	for _, part := range []struct {
		name string
		typ  types.ScalarAttributeType
	}{{t.hashKey, t.hashType}, {t.rangeKey, t.rngType}}[:want] {
		v, ok := m[part.name]
		if !ok {
			if exact {
				return "", nil, validation("The provided key element does not match the schema")
			}
			return "", nil, validation("One or more parameter values were invalid: Missing the key %s in the item", part.name)
		}
		if typeName(v) != string(part.typ) {
			return "", nil, validation("One or more parameter values were invalid: Type mismatch for key %s expected: %s actual: %s", part.name, part.typ, typeName(v))
		}
		var s string
		switch x := v.(type) {
		case *types.AttributeValueMemberS:
			s = x.Value
		case *types.AttributeValueMemberB:
			s = string(x.Value)
		case *types.AttributeValueMemberN:
			n, err := normalizeNumber(x.Value)
			if err != nil {
				return "", nil, err
			}
			s = n
		}
		if s == "" {
			return "", nil, validation("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: %s", part.name)
		}
		c, err := checkValue(v)
		if err != nil {
			return "", nil, err
		}
		key[part.name] = c
		fmt.Fprintf(&b, "%d:%s|", len(s), s)
	}
	return b.String(), key, nil
}

func (t *table) keyAttrs() []string {
	if t.rangeKey == "" {
		return []string{t.hashKey}
	}
	return []string{t.hashKey, t.rangeKey}
}

// checkItem validates an item to store and returns its stored form.
func checkItem(item map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		c, err := checkValue(v)
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	if itemSize(out) > 400*1024 {
		return nil, validation("Item size has exceeded the maximum allowed size")
	}
	return out, nil
}

// write is one prepared write: the item's storage key and what it becomes
// (nil: deleted), or a condition check that changes nothing.
type write struct {
	t       *table
	key     string
	old     map[string]types.AttributeValue
	new     map[string]types.AttributeValue
	touched []string
	check   bool
}

// prepared condition, evaluated against the current item.
type condition struct {
	c cond
}

func (c *condition) holds(item map[string]types.AttributeValue) (bool, error) {
	if c == nil || c.c == nil {
		return true, nil
	}
	return evalCond(c.c, item)
}

// parseCond parses an optional condition expression.
func parseCond(x *exprCtx, expr *string) (*condition, error) {
	if expr == nil {
		return nil, nil
	}
	if *expr == "" {
		return nil, validation("Invalid ConditionExpression: The expression can not be empty;")
	}
	c, err := parseCondition(x, "Condition", *expr)
	if err != nil {
		return nil, err
	}
	return &condition{c}, nil
}

func ccf(old map[string]types.AttributeValue, rv types.ReturnValuesOnConditionCheckFailure) error {
	e := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	if rv == types.ReturnValuesOnConditionCheckFailureAllOld && old != nil {
		e.Item = copyItem(old)
	}
	return e
}

func checkRVOnFailure(op string, rv types.ReturnValuesOnConditionCheckFailure) error {
	switch rv {
	case "", types.ReturnValuesOnConditionCheckFailureNone, types.ReturnValuesOnConditionCheckFailureAllOld:
		return nil
	}
	return validation("%s: invalid ReturnValuesOnConditionCheckFailure %q", op, rv)
}

func checkCapacity(op string, rc types.ReturnConsumedCapacity, rm types.ReturnItemCollectionMetrics) error {
	if (rc != "" && rc != types.ReturnConsumedCapacityNone) || (rm != "" && rm != types.ReturnItemCollectionMetricsNone) {
		return unsupported(op, "ReturnConsumedCapacity / ReturnItemCollectionMetrics")
	}
	return nil
}

// singleWrite is what PutItem and DeleteItem are asked alike, besides
// the item or key.
type singleWrite struct {
	legacy      bool // Expected or ConditionalOperator
	rc          types.ReturnConsumedCapacity
	rm          types.ReturnItemCollectionMetrics
	rv          types.ReturnValue
	rvOnFailure types.ReturnValuesOnConditionCheckFailure
	names       map[string]string
	values      map[string]types.AttributeValue
	cond        *string
}

// checkSingleWrite refuses what PutItem and DeleteItem refuse alike, before
// they read the table, and parses their condition (every name and value
// must be used).
func checkSingleWrite(op string, w singleWrite) (*condition, error) {
	if w.legacy {
		return nil, unsupported(op, "Expected / ConditionalOperator (legacy conditions)")
	}
	if err := checkCapacity(op, w.rc, w.rm); err != nil {
		return nil, err
	}
	switch w.rv {
	case "", types.ReturnValueNone, types.ReturnValueAllOld:
	default:
		return nil, validation("Return values set to invalid value")
	}
	if err := checkRVOnFailure(op, w.rvOnFailure); err != nil {
		return nil, err
	}
	x := newExprCtx(op, w.names, w.values)
	c, err := parseCond(x, w.cond)
	if err != nil {
		return nil, withOp(op, err)
	}
	if err := x.checkUnused(); err != nil {
		return nil, err
	}
	return c, nil
}

// PutItem writes an item, replacing any item with the same key, when its
// condition holds.
func (e *Engine) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	const op = "PutItem"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	c, err := checkSingleWrite(op, singleWrite{
		legacy: in.Expected != nil || in.ConditionalOperator != "",
		rc:     in.ReturnConsumedCapacity, rm: in.ReturnItemCollectionMetrics,
		rv: in.ReturnValues, rvOnFailure: in.ReturnValuesOnConditionCheckFailure,
		names: in.ExpressionAttributeNames, values: in.ExpressionAttributeValues, cond: in.ConditionExpression,
	})
	if err != nil {
		return nil, err
	}
	item, err := checkItem(in.Item)
	if err != nil {
		return nil, withOp(op, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.table(aws.ToString(in.TableName))
	if err != nil {
		return nil, err
	}
	k, key, err := t.keyOf(item, false)
	if err != nil {
		return nil, err
	}
	for n, v := range key {
		item[n] = v
	}
	old := t.items[k]
	ok, err := c.holds(old)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ccf(old, in.ReturnValuesOnConditionCheckFailure)
	}
	t.items[k] = item
	out := &dynamodb.PutItemOutput{}
	if in.ReturnValues == types.ReturnValueAllOld && old != nil {
		out.Attributes = copyItem(old)
	}
	return out, nil
}

// GetItem reads an item. Every read is strongly consistent.
func (e *Engine) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	const op = "GetItem"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	if in.ProjectionExpression != nil || len(in.AttributesToGet) > 0 {
		return nil, unsupported(op, "ProjectionExpression / AttributesToGet")
	}
	if len(in.ExpressionAttributeNames) > 0 {
		return nil, validation("ExpressionAttributeNames can only be specified when using expressions")
	}
	if err := checkCapacity(op, in.ReturnConsumedCapacity, ""); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.table(aws.ToString(in.TableName))
	if err != nil {
		return nil, err
	}
	k, _, err := t.keyOf(in.Key, true)
	if err != nil {
		return nil, err
	}
	return &dynamodb.GetItemOutput{Item: copyItem(t.items[k])}, nil
}

// DeleteItem deletes an item when its condition holds (deleting an absent
// item succeeds).
func (e *Engine) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	const op = "DeleteItem"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	c, err := checkSingleWrite(op, singleWrite{
		legacy: in.Expected != nil || in.ConditionalOperator != "",
		rc:     in.ReturnConsumedCapacity, rm: in.ReturnItemCollectionMetrics,
		rv: in.ReturnValues, rvOnFailure: in.ReturnValuesOnConditionCheckFailure,
		names: in.ExpressionAttributeNames, values: in.ExpressionAttributeValues, cond: in.ConditionExpression,
	})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.table(aws.ToString(in.TableName))
	if err != nil {
		return nil, err
	}
	k, _, err := t.keyOf(in.Key, true)
	if err != nil {
		return nil, err
	}
	old := t.items[k]
	ok, err := c.holds(old)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ccf(old, in.ReturnValuesOnConditionCheckFailure)
	}
	delete(t.items, k)
	out := &dynamodb.DeleteItemOutput{}
	if in.ReturnValues == types.ReturnValueAllOld && old != nil {
		out.Attributes = copyItem(old)
	}
	return out, nil
}

// UpdateItem updates (or creates) an item when its condition holds.
func (e *Engine) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	const op = "UpdateItem"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	if in.Expected != nil || in.ConditionalOperator != "" || in.AttributeUpdates != nil {
		return nil, unsupported(op, "Expected / ConditionalOperator / AttributeUpdates (legacy parameters)")
	}
	if err := checkCapacity(op, in.ReturnConsumedCapacity, in.ReturnItemCollectionMetrics); err != nil {
		return nil, err
	}
	switch in.ReturnValues {
	case "", types.ReturnValueNone, types.ReturnValueAllOld, types.ReturnValueAllNew, types.ReturnValueUpdatedOld, types.ReturnValueUpdatedNew:
	default:
		return nil, validation("Return values set to invalid value")
	}
	if err := checkRVOnFailure(op, in.ReturnValuesOnConditionCheckFailure); err != nil {
		return nil, err
	}
	x := newExprCtx(op, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	c, err := parseCond(x, in.ConditionExpression)
	if err != nil {
		return nil, withOp(op, err)
	}
	if in.UpdateExpression == nil {
		return nil, unsupported(op, "an UpdateItem without UpdateExpression")
	}
	u, err := parseUpdate(x, *in.UpdateExpression)
	if err != nil {
		return nil, withOp(op, err)
	}
	if err := x.checkUnused(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.table(aws.ToString(in.TableName))
	if err != nil {
		return nil, err
	}
	w, err := t.prepareUpdate(op, in.Key, c, u, in.ReturnValuesOnConditionCheckFailure)
	if err != nil {
		return nil, err
	}
	t.items[w.key] = w.new
	out := &dynamodb.UpdateItemOutput{}
	switch in.ReturnValues {
	case types.ReturnValueAllOld:
		out.Attributes = copyItem(w.old)
	case types.ReturnValueAllNew:
		out.Attributes = copyItem(w.new)
	case types.ReturnValueUpdatedOld:
		out.Attributes = pick(w.old, w.touched)
	case types.ReturnValueUpdatedNew:
		out.Attributes = pick(w.new, w.touched)
	}
	return out, nil
}

// pick copies the named attributes of item that exist; nil when none do.
func pick(item map[string]types.AttributeValue, names []string) map[string]types.AttributeValue {
	var out map[string]types.AttributeValue
	for _, n := range names {
		if v, ok := item[n]; ok {
			if out == nil {
				out = map[string]types.AttributeValue{}
			}
			out[n] = copyValue(v)
		}
	}
	return out
}

// prepareUpdate evaluates an update against the current item without
// applying it.
func (t *table) prepareUpdate(op string, keyIn map[string]types.AttributeValue, c *condition, u *updateExpr, rv types.ReturnValuesOnConditionCheckFailure) (*write, error) {
	k, key, err := t.keyOf(keyIn, true)
	if err != nil {
		return nil, err
	}
	old := t.items[k]
	ok, err := c.holds(old)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ccf(old, rv)
	}
	nw, touched, err := applyUpdate(op, u, old, key, t.keyAttrs())
	if err != nil {
		return nil, err
	}
	nw, err = checkItem(nw)
	if err != nil {
		return nil, withOp(op, err)
	}
	return &write{t: t, key: k, old: old, new: nw, touched: touched}, nil
}

// Scan reads a table's items in key order, Limit items per page (before
// the filter), from ExclusiveStartKey.
func (e *Engine) Scan(ctx context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	const op = "Scan"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	if in.IndexName != nil || in.ProjectionExpression != nil || len(in.AttributesToGet) > 0 || in.ScanFilter != nil ||
		in.Segment != nil || in.TotalSegments != nil || (in.Select != "" && in.Select != types.SelectAllAttributes) || in.ConditionalOperator != "" {
		return nil, unsupported(op, "IndexName / ProjectionExpression / Select / Segment / legacy filters")
	}
	if err := checkCapacity(op, in.ReturnConsumedCapacity, ""); err != nil {
		return nil, err
	}
	x := newExprCtx(op, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	var filter cond
	if in.FilterExpression != nil {
		f, err := parseCondition(x, "Filter", *in.FilterExpression)
		if err != nil {
			return nil, withOp(op, err)
		}
		filter = f
	}
	if err := x.checkUnused(); err != nil {
		return nil, err
	}
	limit := int(aws.ToInt32(in.Limit))
	if in.Limit != nil && limit <= 0 {
		return nil, validation("Limit must be at least 1")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.table(aws.ToString(in.TableName))
	if err != nil {
		return nil, err
	}
	keys := sortedKeys(t.items)
	if in.ExclusiveStartKey != nil {
		start, _, err := t.keyOf(in.ExclusiveStartKey, true)
		if err != nil {
			return nil, err
		}
		i, _ := slices.BinarySearch(keys, start)
		for i < len(keys) && keys[i] <= start {
			i++
		}
		keys = keys[i:]
	}
	out := &dynamodb.ScanOutput{Items: []map[string]types.AttributeValue{}}
	for i, k := range keys {
		if limit > 0 && i == limit {
			last := t.items[keys[i-1]]
			out.LastEvaluatedKey = pick(last, t.keyAttrs())
			break
		}
		out.ScannedCount++
		it := t.items[k]
		if filter != nil {
			ok, err := evalCond(filter, it)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		out.Items = append(out.Items, copyItem(it))
		out.Count++
	}
	return out, nil
}

// TransactWriteItems applies up to 100 writes atomically: when any
// condition fails, nothing is applied and the *types.TransactionCanceledException
// carries one reason per item in order ("None" for the others), with the
// old item when that entry asked for ReturnValuesOnConditionCheckFailure
// ALL_OLD. A ClientRequestToken makes a repeat of a successful call within
// ten minutes a no-op success.
func (e *Engine) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	const op = "TransactWriteItems"
	if err := e.before(ctx, op, in); err != nil {
		return nil, err
	}
	if err := checkCapacity(op, in.ReturnConsumedCapacity, in.ReturnItemCollectionMetrics); err != nil {
		return nil, err
	}
	n := len(in.TransactItems)
	if n == 0 || n > 100 {
		return nil, validation("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100 and greater than or equal to 1")
	}
	entries := make([]txEntry, n)
	for i, ti := range in.TransactItems {
		en, err := parseTxItem(op, ti)
		if err != nil {
			return nil, err
		}
		entries[i] = en
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	token := aws.ToString(in.ClientRequestToken)
	if repeat, err := e.repeatedTx(token, in, now); err != nil {
		return nil, err
	} else if repeat {
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}
	writes, err := e.txWrites(entries)
	if err != nil {
		return nil, err
	}
	if err := evalTx(op, entries, writes); err != nil {
		return nil, err
	}
	for _, w := range writes {
		switch {
		case w.check:
		case w.new == nil:
			delete(w.t.items, w.key)
		default:
			w.t.items[w.key] = w.new
		}
	}
	e.rememberTx(token, in, now)
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

// txEntry is one parsed entry of a transaction: its table and key (or item,
// for a Put), its condition, its update, and what it does.
type txEntry struct {
	table string
	key   map[string]types.AttributeValue
	item  map[string]types.AttributeValue // Put
	cond  *condition
	upd   *updateExpr
	del   bool
	check bool
	rv    types.ReturnValuesOnConditionCheckFailure
}

// parseTxItem validates and parses one entry of a transaction: exactly one
// of Put, Update, Delete and ConditionCheck, with its expressions.
func parseTxItem(op string, ti types.TransactWriteItem) (txEntry, error) {
	var (
		en     txEntry
		names  map[string]string
		values map[string]types.AttributeValue
		cexpr  *string
		count  int
	)
	if p := ti.Put; p != nil {
		count++
		en.table, en.item, en.rv = aws.ToString(p.TableName), p.Item, p.ReturnValuesOnConditionCheckFailure
		names, values, cexpr = p.ExpressionAttributeNames, p.ExpressionAttributeValues, p.ConditionExpression
	}
	if u := ti.Update; u != nil {
		count++
		en.table, en.key, en.rv = aws.ToString(u.TableName), u.Key, u.ReturnValuesOnConditionCheckFailure
		names, values, cexpr = u.ExpressionAttributeNames, u.ExpressionAttributeValues, u.ConditionExpression
	}
	if d := ti.Delete; d != nil {
		count++
		en.table, en.key, en.rv, en.del = aws.ToString(d.TableName), d.Key, d.ReturnValuesOnConditionCheckFailure, true
		names, values, cexpr = d.ExpressionAttributeNames, d.ExpressionAttributeValues, d.ConditionExpression
	}
	if c := ti.ConditionCheck; c != nil {
		count++
		en.table, en.key, en.rv, en.check = aws.ToString(c.TableName), c.Key, c.ReturnValuesOnConditionCheckFailure, true
		names, values, cexpr = c.ExpressionAttributeNames, c.ExpressionAttributeValues, c.ConditionExpression
		if cexpr == nil {
			return en, validation("ConditionCheck requires a ConditionExpression")
		}
	}
	if count != 1 {
		return en, validation("TransactItems can only contain one of Check, Put, Update or Delete")
	}
	if err := checkRVOnFailure(op, en.rv); err != nil {
		return en, err
	}
	return en, en.parseExpressions(op, ti.Update, newExprCtx(op, names, values), cexpr)
}

// parseExpressions parses the entry's condition and, for an Update, its
// update expression, checks that every placeholder is used, and checks a
// Put's item.
func (en *txEntry) parseExpressions(op string, u *types.Update, x *exprCtx, cexpr *string) error {
	c, err := parseCond(x, cexpr)
	if err != nil {
		return withOp(op, err)
	}
	en.cond = c
	if u != nil {
		if u.UpdateExpression == nil {
			return validation("Update requires an UpdateExpression")
		}
		if en.upd, err = parseUpdate(x, *u.UpdateExpression); err != nil {
			return withOp(op, err)
		}
	}
	if err := x.checkUnused(); err != nil {
		return err
	}
	if en.item != nil {
		if en.item, err = checkItem(en.item); err != nil {
			return withOp(op, err)
		}
	}
	return nil
}

// repeatedTx reports whether in repeats, within the window, a successful
// transaction with the same client token: a no-op success, or an
// IdempotentParameterMismatchException when its items differ.
func (e *Engine) repeatedTx(token string, in *dynamodb.TransactWriteItemsInput, now time.Time) (bool, error) {
	if token == "" {
		return false, nil
	}
	used, ok := e.tokens[token]
	if !ok || now.Sub(used.at) >= clientTokenWindow {
		return false, nil
	}
	if !reflect.DeepEqual(used.in.TransactItems, in.TransactItems) {
		return false, &types.IdempotentParameterMismatchException{Message: aws.String("The request uses the same client token as a previous, but non-identical request.")}
	}
	return true, nil
}

// rememberTx records a successful transaction's client token, forgetting
// tokens past the window once there are many.
func (e *Engine) rememberTx(token string, in *dynamodb.TransactWriteItemsInput, now time.Time) {
	if token == "" {
		return
	}
	e.tokens[token] = tokenUse{at: now, in: in}
	for k, u := range e.tokens { // forget tokens past the window
		if len(e.tokens) < 1024 {
			break
		}
		if now.Sub(u.at) >= clientTokenWindow {
			delete(e.tokens, k)
		}
	}
}

// txWrites locates each entry's item (one entry per item) and the write it
// makes; an update's new item is computed by evalTx, with the condition.
func (e *Engine) txWrites(entries []txEntry) ([]*write, error) {
	writes := make([]*write, len(entries))
	seen := map[string]bool{}
	for i, en := range entries {
		t, err := e.table(en.table)
		if err != nil {
			return nil, err
		}
		src, exact := en.key, true
		if en.item != nil {
			src, exact = en.item, false
		}
		k, key, err := t.keyOf(src, exact)
		if err != nil {
			return nil, err
		}
		if seen[t.name+"\x00"+k] {
			return nil, validation("Transaction request cannot include multiple operations on one item")
		}
		seen[t.name+"\x00"+k] = true
		w := &write{t: t, key: k, old: t.items[k]}
		switch {
		case en.item != nil:
			for a, v := range key {
				en.item[a] = v
			}
			w.new = en.item
		case en.upd != nil:
			// evaluated by evalTx with the condition
		case en.del:
			w.new = nil
		case en.check:
			w.check = true
		}
		writes[i] = w
	}
	return writes, nil
}

// evalTx evaluates every entry's condition against its old item and
// computes the updates; when any fails, it returns the
// *types.TransactionCanceledException with one reason per entry.
func evalTx(op string, entries []txEntry, writes []*write) error {
	reasons := make([]types.CancellationReason, len(entries))
	failed := false
	for i, en := range entries {
		w := writes[i]
		reasons[i] = types.CancellationReason{Code: aws.String("None")}
		ok, err := en.cond.holds(w.old)
		if err != nil {
			return err
		}
		if !ok {
			failed = true
			reasons[i] = types.CancellationReason{Code: aws.String("ConditionalCheckFailed"), Message: aws.String("The conditional request failed")}
			if en.rv == types.ReturnValuesOnConditionCheckFailureAllOld && w.old != nil {
				reasons[i].Item = copyItem(w.old)
			}
			continue
		}
		if en.upd != nil {
			uw, err := w.t.prepareUpdate(op, en.key, nil, en.upd, "")
			if err != nil {
				if isValidation(err) {
					failed = true
					reasons[i] = types.CancellationReason{Code: aws.String("ValidationError"), Message: aws.String(errMessage(err))}
					continue
				}
				return err
			}
			w.new = uw.new
		}
	}
	if !failed {
		return nil
	}
	codes := make([]string, len(reasons))
	for i, r := range reasons {
		codes[i] = aws.ToString(r.Code)
	}
	return &types.TransactionCanceledException{
		Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]"),
		CancellationReasons: reasons,
	}
}

func isValidation(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException"
}

func errMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}
