package ddbmem_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"id": s(k)}
}

func newDB(t *testing.T) *ddbmem.Engine {
	t.Helper()
	db := ddbmem.New()
	if err := db.CreateIdempotencyTable("t"); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestTableMatchesTheStoreDefaults(t *testing.T) {
	// The key attribute: a store with the default config claims on it.
	db := newDB(t)
	st, err := idemddb.New(db, idemddb.Config{Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Run(context.Background(), idemddb.Request{Key: "k"}, func(context.Context, *idemddb.Claim) ([]byte, error) { return []byte("x"), nil }); err != nil {
		t.Fatal(err)
	}
	items, _ := db.Items("t")
	if len(items) != 1 || !ddbmem.EqualItems(map[string]types.AttributeValue{"id": s("k")}, map[string]types.AttributeValue{"id": items[0]["id"]}) {
		t.Fatalf("items %v", items)
	}
}

func TestFailedConditionReturnsOldItem(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	put := &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"id": s("a"), "v": n("1")},
		ConditionExpression: aws.String("attribute_not_exists(#id)"), ExpressionAttributeNames: map[string]string{"#id": "id"},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
	if _, err := db.PutItem(ctx, put); err != nil {
		t.Fatal(err)
	}
	_, err := db.PutItem(ctx, put)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || ccf.Item == nil || ccf.Item["v"].(*types.AttributeValueMemberN).Value != "1" {
		t.Fatalf("want ConditionalCheckFailed with the old item, got %v (%+v)", err, ccf)
	}
}

func TestCancelledTransactionAppliesNothing(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"id": s("a"), "v": n("1")}}); err != nil {
		t.Fatal(err)
	}
	_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"id": s("b")}}},
		{Update: &types.Update{TableName: aws.String("t"), Key: key("a"), UpdateExpression: aws.String("SET #v = :x"),
			ConditionExpression: aws.String("#v = :no"), ExpressionAttributeNames: map[string]string{"#v": "v"},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":x": n("2"), ":no": n("9")},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}},
	}})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != 2 {
		t.Fatalf("want a cancellation with two reasons, got %v", err)
	}
	if c := aws.ToString(tce.CancellationReasons[0].Code); c != "None" {
		t.Fatalf("reason 0 %q", c)
	}
	if c := aws.ToString(tce.CancellationReasons[1].Code); c != "ConditionalCheckFailed" || tce.CancellationReasons[1].Item == nil {
		t.Fatalf("reason 1 %q item %v", c, tce.CancellationReasons[1].Item)
	}
	out, _ := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: key("b")})
	if out.Item != nil {
		t.Fatal("the other entry of a cancelled transaction was written")
	}
}

func TestUpdateExpressions(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	upd := func(expr string, vals map[string]types.AttributeValue, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
		out, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key("a"), UpdateExpression: aws.String(expr),
			ExpressionAttributeValues: vals, ReturnValues: rv})
		if err != nil {
			return nil, err
		}
		return out.Attributes, nil
	}
	one := n("1")
	empty := &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
	x := &types.AttributeValueMemberL{Value: []types.AttributeValue{s("x")}}
	for range 2 {
		if _, err := upd("SET c = if_not_exists(c, :z) + :one, l = list_append(if_not_exists(l, :e), :x) REMOVE gone",
			map[string]types.AttributeValue{":z": n("0"), ":one": one, ":e": empty, ":x": x}, ""); err != nil {
			t.Fatal(err)
		}
	}
	got, err := upd("ADD c :one", map[string]types.AttributeValue{":one": one}, types.ReturnValueAllNew)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]types.AttributeValue{"id": s("a"), "c": n("3"), "l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("x"), s("x")}}}
	if !ddbmem.EqualItems(got, want) {
		t.Fatalf("got %v", got)
	}
	old, err := upd("SET c = c - :one", map[string]types.AttributeValue{":one": one}, types.ReturnValueUpdatedOld)
	if err != nil || !ddbmem.EqualItems(old, map[string]types.AttributeValue{"c": n("3")}) {
		t.Fatalf("UPDATED_OLD %v %v", old, err)
	}
	if _, err := upd("SET id = :one", map[string]types.AttributeValue{":one": one}, ""); !isCode(err, "ValidationException") {
		t.Fatalf("update of the key: %v", err)
	}
	if _, err := upd("SET c = :one, c = :one", map[string]types.AttributeValue{":one": one}, ""); !isCode(err, "ValidationException") {
		t.Fatalf("overlapping paths: %v", err)
	}
	if _, err := upd("SET c = :one", map[string]types.AttributeValue{":one": one, ":unused": one}, ""); !isCode(err, "ValidationException") {
		t.Fatalf("unused value: %v", err)
	}
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

func TestUnsupportedIsTypedAndAppliesNothing(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	cases := map[string]error{}
	_, cases["nested update"] = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key("a"),
		UpdateExpression: aws.String("SET m.x = :v"), ExpressionAttributeValues: map[string]types.AttributeValue{":v": n("1")}})
	_, cases["projection"] = db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: key("a"), ProjectionExpression: aws.String("id")})
	_, cases["legacy"] = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: key("a"), Expected: map[string]types.ExpectedAttributeValue{}})
	_, cases["function"] = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: key("a"), ConditionExpression: aws.String("frobnicate(id)")})
	for name, err := range cases {
		var u *ddbmem.UnsupportedError
		if !errors.As(err, &u) || !errors.Is(err, ddbmem.ErrUnsupported) || u.Op == "" {
			t.Errorf("%s: want *UnsupportedError naming the operation, got %v", name, err)
		}
	}
	if items, _ := db.Items("t"); len(items) != 0 {
		t.Fatalf("unsupported requests applied %v", items)
	}
}

func TestClientRequestTokenRepeatIsANoOp(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	db := ddbmem.New(ddbmem.WithClock(func() time.Time { return now }))
	if err := db.CreateIdempotencyTable("t"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx := func() error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{ClientRequestToken: aws.String("tok"), TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{TableName: aws.String("t"), Key: key("a"), UpdateExpression: aws.String("ADD c :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1")}}}}})
		return err
	}
	for range 2 {
		if err := tx(); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(11 * time.Minute)
	if err := tx(); err != nil {
		t.Fatal(err)
	}
	items, _ := db.Items("t")
	if !ddbmem.EqualItems(items[0], map[string]types.AttributeValue{"id": s("a"), "c": n("2")}) {
		t.Fatalf("want c=2 (the repeat within the window applied nothing), got %v", items[0])
	}
}

// TestConditionFunctions: begins_with and contains on strings, binaries,
// lists and sets, with an operand of the same type or another: each
// condition holds (the update applies) or fails its check, as listed.
func TestConditionFunctions(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	item := map[string]types.AttributeValue{
		"id": s("x"), "s": s("hello"), "b": &types.AttributeValueMemberB{Value: []byte("abc")},
		"l":  &types.AttributeValueMemberL{Value: []types.AttributeValue{s("a"), n("1")}},
		"ss": &types.AttributeValueMemberSS{Value: []string{"p", "q"}},
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cond  string
		value types.AttributeValue
		holds bool
	}{
		{"begins_with(s, :v)", s("he"), true},
		{"begins_with(s, :v)", s("el"), false},
		{"begins_with(s, :v)", &types.AttributeValueMemberB{Value: []byte("he")}, false},
		{"begins_with(b, :v)", &types.AttributeValueMemberB{Value: []byte("ab")}, true},
		{"begins_with(b, :v)", s("ab"), false},
		{"contains(s, :v)", s("ell"), true},
		{"contains(s, :v)", s("xyz"), false},
		{"contains(s, :v)", n("1"), false},
		{"contains(b, :v)", &types.AttributeValueMemberB{Value: []byte("bc")}, true},
		{"contains(l, :v)", s("a"), true},
		{"contains(l, :v)", n("1"), true},
		{"contains(l, :v)", n("2"), false},
		{"contains(ss, :v)", s("q"), true},
		{"contains(ss, :v)", s("r"), false},
	} {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String("t"), Key: key("x"),
			UpdateExpression:          aws.String("SET touched = :one"),
			ConditionExpression:       aws.String(tc.cond),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": tc.value, ":one": n("1")},
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case tc.holds && err != nil:
			t.Errorf("%s with %v: %v, want it to hold", tc.cond, tc.value, err)
		case !tc.holds && !errors.As(err, &ccf):
			t.Errorf("%s with %v: %v, want ConditionalCheckFailedException", tc.cond, tc.value, err)
		}
	}
}
