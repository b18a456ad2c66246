package checkout

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// docTransitions parses the transition table in attempt.go's comment: the
// rows after the "from to by" header, up to the first line that is not a
// table row. "-" stands for no state (the order's creation).
func docTransitions(t *testing.T) []orderTransition {
	t.Helper()
	src, err := os.ReadFile("attempt.go")
	if err != nil {
		t.Fatal(err)
	}
	var rows []orderTransition
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		row, isRow := strings.CutPrefix(line, "//\t")
		f := strings.Fields(row)
		switch {
		case !in && isRow && len(f) == 3 && f[0] == "from" && f[1] == "to" && f[2] == "by":
			in = true
		case in && (!isRow || len(f) < 3):
			return rows
		case in:
			from := OrderStatus(f[0])
			if from == "-" {
				from = ""
			}
			rows = append(rows, orderTransition{from: from, to: OrderStatus(f[1])})
		}
	}
	if !in {
		t.Fatal(`attempt.go: no transition table (a "from to by" header in a comment)`)
	}
	return rows
}

// TestTransitionTableMatchesDoc: the transitions orderTransitions allows
// are exactly the rows of the table in attempt.go's comment.
func TestTransitionTableMatchesDoc(t *testing.T) {
	doc := docTransitions(t)
	code := orderTransitions()
	seen := map[orderTransition]bool{}
	for _, r := range code {
		if seen[r] {
			t.Errorf("orderTransitions lists %q -> %q twice", r.from, r.to)
		}
		seen[r] = true
	}
	inDoc := map[orderTransition]bool{}
	for _, r := range doc {
		inDoc[r] = true
		if !seen[r] {
			t.Errorf("attempt.go's table has %q -> %q, orderTransitions does not", r.from, r.to)
		}
	}
	for _, r := range code {
		if !inDoc[r] {
			t.Errorf("orderTransitions has %q -> %q, attempt.go's table does not", r.from, r.to)
		}
	}
	if len(doc) != len(code) {
		t.Errorf("attempt.go's table has %d rows, orderTransitions %d", len(doc), len(code))
	}
	t.Logf("%d transitions", len(code))
}

// TestCheckTransition: every row of the table is allowed, and moves it
// does not list (a paid order going back, a pending one paid without an
// attempt, an unknown state) are refused with errTransition.
func TestCheckTransition(t *testing.T) {
	for _, r := range orderTransitions() {
		if err := checkTransition(r.from, r.to); err != nil {
			t.Errorf("%q -> %q: %v", r.from, r.to, err)
		}
	}
	for _, r := range []orderTransition{
		{OrderPaid, OrderPending}, {OrderPaid, OrderPaying}, {OrderPending, OrderPaid}, {"", OrderPaid}, {OrderPaying, "SHIPPED"},
	} {
		if err := checkTransition(r.from, r.to); !errors.Is(err, errTransition) {
			t.Errorf("%q -> %q: got %v, want errTransition", r.from, r.to, err)
		}
	}
}
