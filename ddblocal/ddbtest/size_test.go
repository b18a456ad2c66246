package ddbtest

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestItemSize(t *testing.T) {
	for _, c := range []struct {
		item map[string]types.AttributeValue
		want int
	}{
		{map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "abc"}}, 5},
		{map[string]types.AttributeValue{"b": &types.AttributeValueMemberB{Value: make([]byte, 32)}}, 33},
		{map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "1790086400"}}, 1 + 5}, // 8 significant digits
		{map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "1790086401"}}, 1 + 6}, // 10 digits
		{map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "-0.000"}}, 1 + 1},
		{map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberBOOL{Value: true}}}}, 1 + 3 + 1 + 1},
		{map[string]types.AttributeValue{"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}}}}, 1 + 3 + 1 + 1 + 1},
	} {
		if got := ItemSize(c.item); got != c.want {
			t.Errorf("ItemSize(%v) = %d, want %d", c.item, got, c.want)
		}
	}
}
