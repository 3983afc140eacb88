package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// corruptFragment is scalarFragment with its last frame replaced by bytes
// that are not a scalar frame.
func corruptFragment(t *testing.T, origin, first int64, frames int) []byte {
	t.Helper()
	priv, err := pumpDesc.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	startNS := pumpDesc.SampleTime(origin, int(first))
	clusterMS := startNS / int64(time.Millisecond)
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: float64(frames * 100)})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: signals.CodecIDScalar, CodecPrivate: priv}})
	var blocks []mkv.Block
	var s signals.Samples
	for k := range frames {
		s.Reset(signals.Float32, 3, 100)
		s.Start = pumpDesc.SampleTime(origin, int(first)+k*100)
		data, err := codecs.AppendScalarFrame(nil, pumpDesc, &s, codecs.Plain)
		if err != nil {
			t.Fatal(err)
		}
		if k == frames-1 {
			data = []byte{0xde, 0xad, 0xbe, 0xef}
		}
		blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(s.Start/int64(time.Millisecond) - clusterMS), Keyframe: true, Data: data})
	}
	return mkv.AppendCluster(b, uint64(clusterMS), blocks)
}

// The read path's errors over HTTP: a frame that does not decode, a start at
// a fragment that does not exist, a ListFragments end copied from a listing,
// and a misspelt query key.
func TestQueryAndArchiveErrors(t *testing.T) {
	srv := startServer(t, "")
	origin, nc := fill(t, srv, "err-1", 3) // fragments of samples 0–2999, good
	c := sdk.NewClient(srv.HTTPURL(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good, _, err := c.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("err-1")})
	if err != nil || len(good) != 3 {
		t.Fatalf("list: %v %v", good, err)
	}
	bad := publish(t, nc, "err-1", corruptFragment(t, origin, 3000, 10), "test", 4)
	if bad.EventType != wire.EventPersisted {
		t.Fatalf("corrupt fragment: %+v", bad)
	}

	t.Run("corrupt frame", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			first     int64 // sample the query starts at
			batchRows int
			rows      int64 // rows before the error
		}{
			{"after batches", 0, 100, 3900},        // 3 good fragments, 9 good frames of the bad one
			{"before any batch", 3000, 1 << 20, 0}, // the bad fragment is read before a batch is full
		} {
			t.Run(tc.name, func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				in := sdk.QueryInput{Stream: "err-1", Start: time.Unix(0, pumpDesc.SampleTime(origin, int(tc.first))),
					End: time.Unix(0, pumpDesc.SampleTime(origin, 5000)), BatchRows: tc.batchRows, Fields: []string{"x"}}
				res, err := c.Query(ctx, in, mem)
				var rows int64
				if err == nil {
					for res.Next() {
						rows += res.RecordBatch().NumRows()
					}
					err = res.Err()
					res.Close()
				}
				if err == nil {
					t.Fatalf("the query read %d rows and no error", rows)
				}
				for _, want := range []string{"InternalFailure", "stream err-1", "fragment " + bad.FragmentNumber, "track 1"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if rows != tc.rows {
					t.Errorf("%d rows before the error, want %d", rows, tc.rows)
				}
			})
		}
	})

	// Before the first batch nothing has been sent: the answer is the error
	// itself, with its status, not 200 and an empty body.
	t.Run("corrupt frame before any batch: the status says so", func(t *testing.T) {
		body := fmt.Sprintf(`{"stream":"err-1","start":%d,"end":%d,"fields":["x"]}`,
			pumpDesc.SampleTime(origin, 3000), pumpDesc.SampleTime(origin, 5000))
		status, typ, out := call(t, srv, "v1/query", body)
		if status != 500 || typ != httpwire.InternalFailure || !strings.Contains(string(out), "fragment "+bad.FragmentNumber) {
			t.Fatalf("%d %s %s", status, typ, out)
		}
	})

	t.Run("start at an unknown fragment", func(t *testing.T) {
		body := map[string]any{"StreamName": "err-1", "Follow": false,
			"StartSelector": map[string]any{"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": "999999999"}}
		if status, typ, out := call(t, srv, "getMedia", body); status != 404 || typ != httpwire.ResourceNotFound || !strings.Contains(string(out), "999999999") {
			t.Fatalf("GetMedia: %d %s %s", status, typ, out)
		}
		// Following, it used to wait for that number forever.
		if _, err := c.GetMedia(ctx, sdk.ByName("err-1"), sdk.StartAtFragment("999999999"), true); !errors.Is(err, sdk.ErrResourceNotFound) {
			t.Fatalf("GetMedia following: %v", err)
		}
		if status, typ, _ := call(t, srv, "getMediaForFragmentList", map[string]any{"StreamName": "err-1", "Fragments": []string{good[0].FragmentNumber, "999999999"}}); status != 404 || typ != httpwire.ResourceNotFound {
			t.Fatalf("GetMediaForFragmentList: %d %s", status, typ)
		}
	})

	t.Run("end copied from a listing", func(t *testing.T) {
		for _, sel := range []string{"SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"} {
			at := good[1].ServerTimestamp.Time
			if sel == "PRODUCER_TIMESTAMP" {
				at = good[1].ProducerTimestamp.Time
			}
			got, _, err := c.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("err-1"), Selector: sel, Start: at, End: at})
			if err != nil || len(got) != 1 || got[0].FragmentNumber != good[1].FragmentNumber {
				t.Errorf("%s [%s, %s]: %+v %v, want fragment %s", sel, at.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano), got, err, good[1].FragmentNumber)
			}
		}
	})

	t.Run("misspelt query key", func(t *testing.T) {
		status, typ, out := call(t, srv, "v1/query", `{"stream":"err-1","start":0,"end":1,"feilds":["x"]}`)
		if status != 400 || typ != httpwire.InvalidArgument || !strings.Contains(string(out), "feilds") {
			t.Fatalf("%d %s %s", status, typ, out)
		}
	})
}
