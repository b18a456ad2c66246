package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
)

// TestPayNowWaits: through the local stack, "Pay Now" clicked three times
// 50 ms apart with "Prefer: wait=10" while the provider takes 1 s. The
// second and third clicks wait for the first instead of getting 409: three
// 201 with one body, one charge, the second and third replayed, each
// waiting click within the stated number of DynamoDB reads (read from the
// function's log line of that request).
func TestPayNowWaits(t *testing.T) {
	logStart := len(slowOutput.String()) // the slow stack serves other tests (the browser's) too
	order := createOrderOn(t, slow, "waiting-alice")
	key, tok, body := newKey(t), token("waiting-alice"), paymentBody(order, order["amount"])
	prefer := http.Header{"Prefer": {"wait=10"}}
	answers := make([]response, 3)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = postWith(t, slow, "/payments", tok, key, body, prefer)
		}()
		time.Sleep(50 * time.Millisecond) // the clicks, 50 ms apart: the scenario, not a synchronisation
	}
	wg.Wait()
	replays := 0
	for i, r := range answers {
		if r.status != http.StatusCreated || string(r.body) != string(answers[0].body) {
			t.Fatalf("click %d: %d %s; want one 201 body for all (%s)", i+1, r.status, r.body, answers[0].body)
		}
		if r.header.Get("Idempotent-Replayed") == "true" {
			replays++
			if r.header.Get("Preference-Applied") != "wait=10" {
				t.Fatalf("click %d: replayed without Preference-Applied: %v", i+1, r.header)
			}
		}
	}
	if replays != 2 {
		t.Fatalf("%d replays; want the second and third clicks", replays)
	}
	wantOneChargeOn(t, slow, order["order_id"].(string))

	// The two waiting requests' log lines: outcome replayed, wait_reads in bound.
	bound := idemddb.MaxWaitReads(10 * time.Second)
	waited := 0
	sc := bufio.NewScanner(strings.NewReader(slowOutput.String()[logStart:]))
	for sc.Scan() {
		_, line, ok := strings.Cut(sc.Text(), "] ")
		if !ok || !strings.Contains(line, `"wait_reads"`) {
			continue
		}
		var ev struct {
			Msg       string  `json:"msg"`
			Outcome   string  `json:"outcome"`
			Route     string  `json:"route"`
			WaitReads int     `json:"wait_reads"`
			WaitedMS  float64 `json:"waited_ms"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Route != "POST /payments" {
			continue
		}
		waited++
		t.Logf("waiting request: %s after %.0f ms, %d reads (bound %d)", ev.Outcome, ev.WaitedMS, ev.WaitReads, bound)
		if ev.Outcome != "replayed" || ev.WaitReads < 1 || ev.WaitReads > bound {
			t.Fatalf("waiting request logged %+v; want a replay within %d reads", ev, bound)
		}
	}
	if waited != 2 {
		t.Fatalf("%d waiting requests in the function logs, want 2:\n%s", waited, slowOutput.String()[logStart:])
	}
}
