package obs

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// TestDocument: a document names its metrics, dimension and namespace in
// the _aws directive, carries each count and property as a member, and is
// one line.
func TestDocument(t *testing.T) {
	now := time.UnixMilli(1700000000123)
	b := Document("NS", "Route", "POST /orders", []Count{{"Replayed", 1}, {"Records", 3}}, map[string]any{"Status": 201}, now)
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", b)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Route    string
		Replayed int
		Records  int
		Status   int
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	cw := doc.AWS.CloudWatchMetrics
	if doc.AWS.Timestamp != now.UnixMilli() || len(cw) != 1 || cw[0].Namespace != "NS" ||
		len(cw[0].Dimensions) != 1 || len(cw[0].Dimensions[0]) != 1 || cw[0].Dimensions[0][0] != "Route" ||
		len(cw[0].Metrics) != 2 || cw[0].Metrics[0].Name != "Replayed" || cw[0].Metrics[1].Unit != "Count" {
		t.Fatalf("directive %+v", doc.AWS)
	}
	if doc.Route != "POST /orders" || doc.Replayed != 1 || doc.Records != 3 || doc.Status != 201 {
		t.Fatalf("members %+v", doc)
	}
}

// TestEMFWritesWholeDocuments: concurrent writers on one writer never
// interleave documents; nil metrics writes nothing.
func TestEMFWritesWholeDocuments(t *testing.T) {
	var buf bytes.Buffer
	o := NewOptions()
	o.SetMetrics(&buf)
	e := NewEMF(&o)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				e.Write("Consumer", "c", []Count{{"Processed", 1}}, nil, time.Now())
			}
		})
	}
	wg.Wait()
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, l := range lines {
		if !json.Valid(l) {
			t.Fatalf("interleaved line %q", l)
		}
	}
	o.SetMetrics(nil)
	buf.Reset()
	e.Write("Consumer", "c", []Count{{"Processed", 1}}, nil, time.Now())
	if buf.Len() != 0 {
		t.Fatalf("metrics disabled, wrote %q", buf.String())
	}
}
