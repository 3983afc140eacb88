package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/store"
)

// threeStreams makes pumps a, b and c: 5 s each of testDesc, stream k's
// samples valued 10000k + i (testFragment counts from first).
func threeStreams(t *testing.T) (*store.Store, *Service) {
	st, svc := newTestService(t, "a")
	for _, name := range []string{"b", "c"} {
		if _, err := st.CreateStream(store.CreateStreamInput{Name: name, RetentionHours: 1}); err != nil {
			t.Fatal(err)
		}
	}
	sec := int64(time.Second)
	for k, name := range []string{"a", "b", "c"} {
		var frags []*store.Fragment
		for i := range 5 {
			frags = append(frags, testFragment(t, uint64(10*(i+1)), queryBase+int64(i)*sec, queryBase+int64(i)*sec, 10000*k+1000*i, 10, false))
		}
		appendAll(t, st, name, frags...)
	}
	return st, svc
}

// streamRows reads a query of several streams: per row the stream's name,
// the time and x.
type streamRow struct {
	stream string
	t      int64
	x      float32
}

func readStreamRows(t *testing.T, svc *Service, req Request, viaIPC bool) []streamRow {
	t.Helper()
	var out []streamRow
	run(t, svc, req, viaIPC, func(rec arrow.RecordBatch) {
		if rec.Schema().Field(0).Name != StreamField {
			t.Fatalf("schema %v", rec.Schema())
		}
		names := rec.Column(0).(*array.Dictionary)
		dict := names.Dictionary().(*array.String)
		tc := rec.Column(1).(*array.Timestamp)
		x := rec.Column(2).(*array.Float32)
		for i := range int(rec.NumRows()) {
			out = append(out, streamRow{dict.Value(names.GetValueIndex(i)), int64(tc.Value(i)), x.Value(i)})
		}
	})
	return out
}

// A query of several streams returns each stream's rows — exactly those of
// its own query — under a dictionary-encoded stream column, the streams in
// the order asked; through the IPC stream too (the dictionary goes once); its
// Flight partitions return the same rows; the streams must share a schema.
func TestStreamsQuery(t *testing.T) {
	st, svc := threeStreams(t)
	start, end := queryBase+1234*int64(time.Millisecond), queryBase+4321*int64(time.Millisecond)
	order := []string{"c", "a", "b"}
	var want []streamRow
	for _, name := range order {
		run(t, svc, Request{Stream: name, Start: start, End: end}, false, func(rec arrow.RecordBatch) {
			tc, x := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float32)
			for i := range int(rec.NumRows()) {
				want = append(want, streamRow{name, int64(tc.Value(i)), x.Value(i)})
			}
		})
	}
	same := func(what string, got []streamRow) {
		t.Helper()
		if len(got) != len(want) || len(want) != 3*(4321-1234) {
			t.Fatalf("%s: %d rows, the streams' own queries %d", what, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: row %d is %+v, want %+v", what, i, got[i], want[i])
			}
		}
	}
	req := Request{Streams: order, Start: start, End: end, BatchRows: 700}
	same("batches", readStreamRows(t, svc, req, false))
	same("IPC", readStreamRows(t, svc, req, true))
	p, err := svc.PrepareQuery(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 7} {
		parts, err := p.Partitions(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) < 3 {
			t.Fatalf("%d partitions of 3 streams", len(parts))
		}
		var got []streamRow
		for _, part := range parts {
			got = append(got, readStreamRows(t, svc, part, false)...)
		}
		same(fmt.Sprintf("%d partitions", len(parts)), got)
	}

	// Windows of several streams.
	var n int
	run(t, svc, Request{Streams: order, Start: start, End: end, Shape: "windows", Window: Window{Length: 1000}}, true, func(rec arrow.RecordBatch) {
		names := rec.Column(0).(*array.Dictionary)
		x := rec.Column(3).(*array.FixedSizeList).ListValues().(*array.Float32)
		for i := range int(rec.NumRows()) {
			k := map[string]int{"a": 0, "b": 1, "c": 2}[names.Dictionary().(*array.String).Value(names.GetValueIndex(i))]
			if first := x.Value(i * 1000); math.Floor(float64(first)/10000) != float64(k) {
				t.Fatalf("window %d of stream %d starts with %v", i, k, first)
			}
			n++
		}
	})
	if n != 3*3 { // [1234, 4321) holds three whole 1000-sample windows per stream
		t.Fatalf("%d windows of 3 streams", n)
	}

	// Bad queries.
	if _, err := st.CreateStream(store.CreateStreamInput{Name: "other", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	other := testFragment(t, 10, queryBase, queryBase, 0, 10, false)
	appendAll(t, st, "other", other)
	for _, bad := range []struct {
		req  Request
		want string
	}{
		{Request{Streams: []string{"a", "a"}, Start: start, End: end}, "twice"},
		{Request{Stream: "a", Streams: []string{"b"}, Start: start, End: end}, "not both"},
		{Request{Streams: []string{"a", "b"}, Fields: []string{"x"}, Start: start, End: end, Shape: "aligned", Inputs: []Input{{Stream: "a"}}, Align: Align{Rate: 1, Interpolation: "none"}}, "inputs"},
		{Request{Streams: []string{"a", "nope"}, Start: start, End: end}, "nope"},
	} {
		_, err := svc.PrepareQuery(bad.req)
		if !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, store.ErrFragmentNotFound) && !errors.Is(err, store.ErrStreamNotFound) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error saying %q", bad.req, err, bad.want)
		}
	}
}

// A live query of several streams follows them all: each stream's new rows
// come as they are stored, whichever stream they are in.
func TestStreamsFollow(t *testing.T) {
	st, svc := threeStreams(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p, err := svc.PrepareQuery(Request{Streams: []string{"a", "b", "c"}, Start: queryBase, End: math.MaxInt64, Follow: true, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	counts := make(chan map[string]int, 100)
	done := make(chan error, 1)
	go func() {
		done <- svc.QueryBatches(ctx, p, func(rec arrow.RecordBatch) error {
			names := rec.Column(0).(*array.Dictionary)
			m := map[string]int{}
			for i := range int(rec.NumRows()) {
				m[names.Dictionary().(*array.String).Value(names.GetValueIndex(i))]++
			}
			counts <- m
			return nil
		})
	}()
	total := map[string]int{}
	await := func(want map[string]int) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for total["a"] < want["a"] || total["b"] < want["b"] || total["c"] < want["c"] {
			select {
			case m := <-counts:
				for k, v := range m {
					total[k] += v
				}
			case <-timeout:
				t.Fatalf("rows %v, want %v", total, want)
			}
		}
	}
	await(map[string]int{"a": 5000, "b": 5000, "c": 5000})
	// One more second of b only.
	appendAll(t, st, "b", testFragment(t, 60, queryBase+5*int64(time.Second), queryBase+5*int64(time.Second), 15000, 10, false))
	await(map[string]int{"a": 5000, "b": 6000, "c": 5000})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the live query ended with %v", err)
	}
	if total["a"] != 5000 || total["c"] != 5000 || total["b"] != 6000 {
		t.Fatalf("rows %v", total)
	}
}
