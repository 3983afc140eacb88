package query

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/store"
)

var queryBase = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano()

// A frame that does not decode ends the query with a *FragmentError (an InternalFailure over HTTP) naming
// the stream, fragment and track. Before the first batch nothing is written
// (the HTTP layer can still answer with an error status); after it, the IPC
// stream has no end-of-stream marker, so a reader reads on to the end of the
// body, where the transport's error is (the SDK's Sensorium-Error trailer).
func TestQueryCorruptFrame(t *testing.T) {
	sec := int64(time.Second)
	cases := []struct {
		name      string
		corrupt   int // which fragment (of two) holds the bad frame
		batchRows int
		rows      int64 // rows a reader gets before the error
	}{
		{"in the first fragment", 0, 1000, 0},
		{"after batches went out", 1, 100, 900}, // fragment 10 and the 4 good frames of 20
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, svc := newTestService(t, "pump")
			appendAll(t, st, "pump",
				testFragment(t, 10, queryBase, queryBase, 0, 5, tc.corrupt == 0),
				testFragment(t, 20, queryBase+sec/2, queryBase+sec, 500, 5, tc.corrupt == 1))
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			p, err := svc.PrepareQuery(Request{Stream: "pump", Start: queryBase, End: queryBase + 10*sec, BatchRows: tc.batchRows, Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err = svc.Query(context.Background(), p, &out)
			number := []string{"fragment 10", "fragment 20"}[tc.corrupt]
			e, ok := errors.AsType[*FragmentError](err)
			if !ok || !errors.Is(err, codecs.ErrCorrupt) {
				t.Fatalf("error %v, want a *FragmentError wrapping codecs.ErrCorrupt", err)
			}
			for _, want := range []string{"stream pump", number, "track 1", "corrupt"} {
				if !strings.Contains(e.Message, want) {
					t.Errorf("message %q does not say %q", e.Message, want)
				}
			}
			if tc.rows == 0 {
				if out.Len() != 0 {
					t.Fatalf("%d bytes written before the first batch", out.Len())
				}
				return
			}
			body := out.Bytes()
			r, err := ipc.NewReader(bytes.NewReader(body), ipc.WithAllocator(mem))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			var rows int64
			for r.Next() {
				rows += r.RecordBatch().NumRows()
			}
			if rows != tc.rows || r.Err() != nil {
				t.Fatalf("reader got %d rows and error %v; want %d rows", rows, r.Err(), tc.rows)
			}
			if eos := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}; bytes.HasSuffix(body, eos) {
				t.Fatal("the failed query's stream ends with the end-of-stream marker, as a complete one does")
			}
		})
	}
}

// basis server selects whole fragments by server time; the time column stays
// the producer's (query/doc.go). Back-to-back server ranges split the rows at
// a fragment boundary, none lost or repeated.
func TestQueryServerBasis(t *testing.T) {
	st, svc := newTestService(t, "pump")
	sec := int64(time.Second)
	// Server time runs an hour after producer time: the producer's clock is
	// behind, or the fragments were re-sent later.
	lag := int64(time.Hour)
	appendAll(t, st, "pump",
		testFragment(t, 10, queryBase, queryBase+lag, 0, 5, false),
		testFragment(t, 20, queryBase+sec/2, queryBase+lag+sec, 500, 5, false),
		testFragment(t, 30, queryBase+sec, queryBase+lag+2*sec, 1000, 5, false))
	split := queryBase + lag + sec // fragment 20's server time
	var values []float32
	for _, rng := range [][2]int64{{queryBase + lag, split}, {split, queryBase + lag + 3*sec}} {
		p, err := svc.PrepareQuery(Request{Stream: "pump", Start: rng[0], End: rng[1], Basis: store.ServerTime})
		if err != nil {
			t.Fatal(err)
		}
		err = svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error {
			tc, x := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float32)
			for i := range int(rec.NumRows()) {
				n := int64(len(values))
				if want := queryBase + n*int64(time.Millisecond); int64(tc.Value(i)) != want {
					t.Fatalf("row %d: time %d, want the producer time %d", n, tc.Value(i), want)
				}
				values = append(values, x.Value(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if rng[0] == queryBase+lag && len(values) != 500 {
			t.Fatalf("the first server range gave %d rows, want fragment 10's 500", len(values))
		}
	}
	if len(values) != 1500 {
		t.Fatalf("%d rows, want 1500", len(values))
	}
	for i, v := range values {
		if v != float32(i) {
			t.Fatalf("row %d holds sample %v", i, v)
		}
	}
}
