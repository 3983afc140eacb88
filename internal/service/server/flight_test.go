package server

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sensorium-io/sensorium/sdk"
)

// startFlight starts a server with Flight and returns it with a client.
func startFlight(t *testing.T) (*Server, flight.Client) {
	t.Helper()
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		FlightListen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(strings.TrimPrefix(srv.FlightURL(), "grpc+tcp://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fc := flight.NewClientFromConn(conn, nil)
	return srv, fc
}

// doGet reads one endpoint's rows; the records are retained (release them).
func doGet(ctx context.Context, fc flight.Client, ep *flight.FlightEndpoint) ([]arrow.RecordBatch, error) {
	stream, err := fc.DoGet(ctx, ep.Ticket)
	if err != nil {
		return nil, err
	}
	rd, err := flight.NewRecordReader(stream)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	var out []arrow.RecordBatch
	for rd.Next() {
		rec := rd.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	return out, rd.Err()
}

// httpTable reads a query over HTTP into one table.
func httpTable(t *testing.T, srv *Server, in sdk.QueryInput) arrow.Table {
	t.Helper()
	res, err := sdk.NewClient(srv.HTTPURL(), nil).Query(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var recs []arrow.RecordBatch
	for res.Next() {
		rec := res.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	tbl := array.NewTableFromRecords(res.Schema(), recs)
	for _, r := range recs {
		r.Release()
	}
	return tbl
}

// Four workers DoGet the four partitions GetFlightInfo gives for a range, in
// parallel; together they read every sample of the range exactly once, the
// same as one HTTP query. Each endpoint is redeemed on the caller's own
// connection; GetSchema gives the query's schema; ListFlights lists the
// stream with its schema; bad queries have the gRPC codes of their errors.
func TestFlightPartitions(t *testing.T) {
	srv, fc := startFlight(t)
	origin, _ := fill(t, srv, "pump-9", 6) // 6 fragments of 10 frames of 100 samples at 1 kHz: 6 s
	ctx := context.Background()
	lo, hi := pumpDesc.SampleTime(origin, 777), pumpDesc.SampleTime(origin, 5555)

	// The reference: one HTTP query.
	res, err := sdk.NewClient(srv.HTTPURL(), nil).Query(ctx, sdk.QueryInput{Stream: "pump-9", Start: time.Unix(0, lo), End: time.Unix(0, hi)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for res.Next() {
		tc := res.RecordBatch().Column(0).(*array.Timestamp)
		for i := 0; i < tc.Len(); i++ {
			want = append(want, int64(tc.Value(i)))
		}
	}
	res.Close()

	cmd, _ := json.Marshal(map[string]any{"stream": "pump-9", "start": lo, "end": hi, "partitions": 4})
	info, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Endpoint) != 4 {
		t.Fatalf("%d endpoints, want 4", len(info.Endpoint))
	}
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for _, ep := range info.Endpoint {
		if len(ep.Location) != 1 || ep.Location[0].Uri != flight.LocationReuseConnection {
			t.Errorf("endpoint location %v, want %s", ep.Location, flight.LocationReuseConnection)
		}
		wg.Go(func() {
			recs, err := doGet(ctx, fc, ep)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, rec := range recs {
				tc, x := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float32)
				for i := 0; i < tc.Len(); i++ {
					got = append(got, int64(tc.Value(i)))
					k := int((int64(tc.Value(i)) - origin) / int64(time.Millisecond))
					if math.Float32bits(x.Value(i)) != math.Float32bits(sampleValue(int64(k), 0)) {
						t.Errorf("sample %d: x = %v", k, x.Value(i))
					}
				}
				rec.Release()
			}
		})
	}
	wg.Wait()
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	if len(got) != len(want) || len(got) != 5555-777 {
		t.Fatalf("flight read %d rows over 4 partitions, HTTP %d, want %d", len(got), len(want), 5555-777)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d: %d vs %d", i, got[i], want[i])
		}
	}

	// GetSchema and ListFlights.
	sr, err := fc.GetSchema(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	schema, err := flight.DeserializeSchema(sr.Schema, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	if infoSchema, _ := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator); !schema.Equal(infoSchema) || schema.NumFields() != 4 || schema.Field(0).Name != "time" {
		t.Fatalf("GetSchema %v, GetFlightInfo %v", schema, infoSchema)
	}
	lf, err := fc.ListFlights(ctx, &flight.Criteria{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := lf.Recv()
	if err != nil || fi.FlightDescriptor.Path[0] != "pump-9" || len(fi.Schema) == 0 {
		t.Fatalf("ListFlights: %+v, %v", fi, err)
	}
	// Bad queries: no range, a live query split, an unknown stream.
	for _, bad := range []struct {
		cmd  string
		code codes.Code
	}{
		{`{"stream":"pump-9"}`, codes.InvalidArgument},
		{`{"stream":"pump-9","start":1,"follow":true,"partitions":4}`, codes.InvalidArgument},
		{`{"stream":"pump-9","start":1,"end":2,"partitions":100000}`, codes.InvalidArgument},
		{`{"stream":"nope","start":1,"end":2}`, codes.NotFound},
	} {
		if _, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(bad.cmd)}); status.Code(err) != bad.code {
			t.Errorf("%s: %v, want %s", bad.cmd, err, bad.code)
		}
	}
	// A live query has one endpoint.
	live, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(`{"stream":"pump-9","start":1,"follow":true}`)})
	if err != nil || len(live.Endpoint) != 1 {
		t.Fatalf("live query: %v endpoints, %v", live, err)
	}
}

// The windows, aggregate and aligned shapes split into Flight partitions and read back
// exactly the table of one HTTP query: no window lost or repeated at a
// partition's edge, the aligned grid the same.
func TestFlightPartitionsOfEveryShape(t *testing.T) {
	srv, fc := startFlight(t)
	origin, _ := fill(t, srv, "pump-8", 6)
	ctx := context.Background()
	lo, hi := pumpDesc.SampleTime(origin, 321), pumpDesc.SampleTime(origin, 5900)
	cases := []struct {
		name string
		in   sdk.QueryInput
		cmd  map[string]any
	}{
		{"windows", sdk.QueryInput{Stream: "pump-8", Fields: []string{"x", "z"}, Shape: "windows", Window: &sdk.QueryWindow{Length: 250, Hop: 100}},
			map[string]any{"stream": "pump-8", "fields": []string{"x", "z"}, "shape": "windows", "window": map[string]int{"length": 250, "hop": 100}}},
		{"aggregate", sdk.QueryInput{Stream: "pump-8", Fields: []string{"y"}, Shape: "aggregate", Window: &sdk.QueryWindow{Length: 300, Hop: 100}, Aggregates: []string{"max", "rms"}},
			map[string]any{"stream": "pump-8", "fields": []string{"y"}, "shape": "aggregate", "aggregates": []string{"max", "rms"}, "window": map[string]int{"length": 300, "hop": 100}}},
		{"aligned", sdk.QueryInput{Shape: "aligned", Inputs: []sdk.QueryInputStream{{Stream: "pump-8", Fields: []string{"y"}}}, Align: &sdk.QueryAlign{Rate: 300, Interpolation: "linear"}},
			map[string]any{"shape": "aligned", "inputs": []map[string]any{{"stream": "pump-8", "fields": []string{"y"}}}, "align": map[string]any{"rate": 300, "interpolation": "linear"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Start, tc.in.End = time.Unix(0, lo), time.Unix(0, hi)
			want := httpTable(t, srv, tc.in)
			defer want.Release()
			tc.cmd["start"], tc.cmd["end"], tc.cmd["partitions"] = lo, hi, 5
			cmd, _ := json.Marshal(tc.cmd)
			info, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Endpoint) != 5 {
				t.Fatalf("%d endpoints, want 5", len(info.Endpoint))
			}
			var recs []arrow.RecordBatch
			for _, ep := range info.Endpoint { // in order: together they are the query's rows in order
				part, err := doGet(ctx, fc, ep)
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, part...)
			}
			got := array.NewTableFromRecords(want.Schema(), recs)
			defer got.Release()
			for _, r := range recs {
				r.Release()
			}
			if got.NumRows() != want.NumRows() || want.NumRows() == 0 || !array.TableEqual(got, want) {
				t.Fatalf("5 partitions read %d rows, one HTTP query %d, or different values", got.NumRows(), want.NumRows())
			}
		})
	}
}

// A DoGet whose query fails after its first batch ends with the error's
// status, not a clean end of stream: a worker never takes part of its
// partition for the whole of it.
func TestFlightErrorMidStream(t *testing.T) {
	srv, fc := startFlight(t)
	origin, nc := fill(t, srv, "err-9", 3)
	if ev := publish(t, nc, "err-9", corruptFragment(t, origin, 3000, 10), "test", 4); ev.EventType != "PERSISTED" {
		t.Fatalf("corrupt fragment: %+v", ev)
	}
	ctx := context.Background()
	cmd, _ := json.Marshal(map[string]any{"stream": "err-9", "start": origin, "end": origin + int64(time.Hour), "batch_rows": 500, "partitions": 1})
	info, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := doGet(ctx, fc, info.Endpoint[0])
	rows := 0
	for _, r := range recs {
		rows += int(r.NumRows())
		r.Release()
	}
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "does not decode") || rows == 0 {
		t.Fatalf("after %d rows: %v, want an Internal status naming the fragment that does not decode", rows, err)
	}
}

// A Flight query of several streams ("streams", the pumps of a plant) has an
// endpoint per stream (or more): together they return each stream's rows
// once, each row named by its stream column.
func TestFlightStreams(t *testing.T) {
	srv, fc := startFlight(t)
	origins := map[string]int64{}
	for _, name := range []string{"pump-a", "pump-b", "pump-c"} {
		origins[name], _ = fill(t, srv, name, 3)
	}
	ctx := context.Background()
	lo := min(origins["pump-a"], origins["pump-b"], origins["pump-c"])
	for _, parts := range []int{1, 3, 6} {
		cmd, _ := json.Marshal(map[string]any{"streams": []string{"pump-b", "pump-a", "pump-c"}, "fields": []string{"x"},
			"start": lo, "end": lo + int64(time.Hour), "partitions": parts})
		info, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Endpoint) != max(parts, 3) {
			t.Fatalf("%d endpoints for %d partitions of 3 streams", len(info.Endpoint), parts)
		}
		rows := map[string]int{}
		for _, ep := range info.Endpoint {
			recs, err := doGet(ctx, fc, ep)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				names := rec.Column(0).(*array.Dictionary)
				tc, x := rec.Column(1).(*array.Timestamp), rec.Column(2).(*array.Float32)
				for i := range int(rec.NumRows()) {
					name := names.Dictionary().(*array.String).Value(names.GetValueIndex(i))
					k := (int64(tc.Value(i)) - origins[name]) / int64(time.Millisecond)
					if x.Value(i) != sampleValue(k, 0) {
						t.Fatalf("%s sample %d: x = %v", name, k, x.Value(i))
					}
					rows[name]++
				}
				rec.Release()
			}
		}
		if rows["pump-a"] != 3000 || rows["pump-b"] != 3000 || rows["pump-c"] != 3000 {
			t.Fatalf("%d partitions: rows per stream %v, want 3000 each", parts, rows)
		}
	}
}
