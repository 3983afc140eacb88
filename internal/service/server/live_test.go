package server

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/sdk"
)

// A live query (follow, no end) returns the stored samples, then the new
// ones as fragments become durable, in order, without a repeat.
func TestLiveQuery(t *testing.T) {
	srv := startServer(t, "")
	origin, nc := fill(t, srv, "live-1", 2) // samples 0–1999
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	res, err := client.Query(ctx, sdk.QueryInput{Stream: "live-1", Start: time.Unix(0, origin), Follow: true, Fields: []string{"x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	got := int64(0)
	next := func(until int64) {
		t.Helper()
		for got < until {
			if !res.Next() {
				t.Fatalf("the live query ended at sample %d: %v", got, res.Err())
			}
			rec := res.RecordBatch()
			tc, x := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float32)
			for i := 0; i < int(rec.NumRows()); i++ {
				if int64(tc.Value(i)) != pumpDesc.SampleTime(origin, int(got)) || x.Value(i) != sampleValue(got, 0) {
					t.Fatalf("sample %d: time %d value %v", got, tc.Value(i), x.Value(i))
				}
				got++
			}
		}
	}
	next(2000)
	// Two more fragments, after the query caught up.
	for f := 2; f < 4; f++ {
		ev := publish(t, nc, "live-1", scalarFragment(t, origin, int64(f)*1000, 10), "test", uint64(f+1))
		if ev.EventType != "PERSISTED" {
			t.Fatalf("fragment %d: %+v", f, ev)
		}
	}
	next(4000)
	if got != 4000 {
		t.Fatalf("%d samples", got)
	}
}
