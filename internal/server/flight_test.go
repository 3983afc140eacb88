package server

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sensorium-io/sensorium/sdk"
)

// Four workers DoGet the four partitions GetFlightInfo gives for a range, in
// parallel; together they read every sample of the range exactly once, the
// same as one HTTP query. ListFlights lists the stream with its schema.
func TestFlightPartitions(t *testing.T) {
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		FlightListen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
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

	conn, err := grpc.NewClient(srv.FlightURL()[len("grpc+tcp://"):], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fc := flight.NewClientFromConn(conn, nil)
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream, err := fc.DoGet(ctx, ep.Ticket)
			if err != nil {
				t.Error(err)
				return
			}
			rd, err := flight.NewRecordReader(stream)
			if err != nil {
				t.Error(err)
				return
			}
			defer rd.Release()
			for rd.Next() {
				rec := rd.RecordBatch()
				tc, x := rec.Column(0).(*array.Timestamp), rec.Column(1).(*array.Float32)
				mu.Lock()
				for i := 0; i < tc.Len(); i++ {
					got = append(got, int64(tc.Value(i)))
					k := int((int64(tc.Value(i)) - origin) / int64(time.Millisecond))
					if math.Float32bits(x.Value(i)) != math.Float32bits(sampleValue(int64(k), 0)) {
						t.Errorf("sample %d: x = %v", k, x.Value(i))
					}
				}
				mu.Unlock()
			}
			if err := rd.Err(); err != nil {
				t.Error(err)
			}
		}()
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
	if _, err := fc.GetSchema(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd}); err != nil {
		t.Fatal(err)
	}
	lf, err := fc.ListFlights(ctx, &flight.Criteria{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := lf.Recv()
	if err != nil || fi.FlightDescriptor.Path[0] != "pump-9" || len(fi.Schema) == 0 {
		t.Fatalf("ListFlights: %+v, %v", fi, err)
	}
	// A bad query is InvalidArgument, an unknown stream NotFound.
	if _, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(`{"stream":"pump-9"}`)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no range: %v", err)
	}
	if _, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(`{"stream":"nope","start":1,"end":2}`)}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown stream: %v", err)
	}
}
