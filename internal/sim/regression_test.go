package sim_test

import (
	"strings"
	"testing"

	"github.com/acme/idemcheckout/internal/sim"
)

// TestSimIssue21Seeds replays the first schedules the simulation found
// for issue #21 before its fix (a completion cancelled with reason
// TransactionConflict released the key, so a retry ran the work again
// while the first lease held): each injects that conflict and must now
// keep every property.
func TestSimIssue21Seeds(t *testing.T) {
	for _, seed := range []uint64{10, 14, 1001, 5014, 9018} {
		var faults, outcomes sim.Tally
		if v := runSchedule(t, seed, &faults, &outcomes); len(v) > 0 {
			t.Errorf("seed %d: %s", seed, strings.Join(v, "; "))
		}
		if faults.Get(fConflict) == 0 {
			t.Errorf("seed %d no longer injects a TransactionConflict: the schedule changed, find the seeds again", seed)
		}
	}
}

func TestParseCountRefusesBadInput(t *testing.T) {
	for _, in := range []string{"", "abc", "-1", "1.5", "1e3", "0x10"} {
		if _, err := sim.ParseCount("seed", in); err == nil || !strings.Contains(err.Error(), "usage: -seed") {
			t.Errorf("%q: want a usage error naming -seed, got %v", in, err)
		}
	}
	if n, err := sim.ParseCount("schedules", " 42 "); err != nil || n != 42 {
		t.Errorf("42: got %d, %v", n, err)
	}
}

// TestSimLateVoidSeeds replays the payment schedules that found a late
// void (3209, 7098, 9536, 16342: a settler found attempt 1's key unused
// and sent a tombstone, the request landed after attempt 1's delayed
// authorization captured and a newer settler had made that capture the
// order's payment, and the void voided it: a PAID order without a
// capture), and 377, which an intermediate fix (a void that reads first
// and voids the capture it reads) broke the same way. A tombstone now
// never voids a capture (Provider.Tombstone), so each keeps every
// property.
func TestSimLateVoidSeeds(t *testing.T) {
	raw := fixture(t)
	for _, seed := range []uint64{3209, 7098, 9536, 16342, 377} {
		var faults, outcomes sim.Tally
		if v := runPayments(t, raw, seed, &faults, &outcomes); len(v) > 0 {
			t.Errorf("seed %d: %s", seed, strings.Join(v, "; "))
		}
	}
}
