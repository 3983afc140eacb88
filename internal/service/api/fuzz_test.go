package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// fuzzOps are the operations whose request is a JSON body (PutMedia's is
// MKV, fuzzed in package ingest), with a body that the seed corpus starts
// from: a valid request for the fixture stream.
var fuzzOps = []struct{ path, body string }{
	{"/createStream", `{"StreamName":"fuzz-new","DataRetentionInHours":1,"MediaType":"video/h264","Tags":{"a":"b"}}`},
	{"/describeStream", `{"StreamName":"camera-1"}`},
	{"/listStreams", `{"MaxResults":2,"StreamNameCondition":{"ComparisonOperator":"BEGINS_WITH","ComparisonValue":"cam"}}`},
	{"/updateStream", `{"StreamName":"camera-1","CurrentVersion":"x","DeviceName":"d","MediaType":"video/h264"}`},
	{"/updateDataRetention", `{"StreamName":"camera-1","CurrentVersion":"x","Operation":"INCREASE_DATA_RETENTION","DataRetentionChangeInHours":1}`},
	{"/deleteStream", `{"StreamName":"fuzz-new"}`},
	{"/tagStream", `{"StreamName":"camera-1","Tags":{"k":"v"}}`},
	{"/untagStream", `{"StreamName":"camera-1","TagKeyList":["k"]}`},
	{"/listTagsForStream", `{"StreamName":"camera-1","NextToken":""}`},
	{"/getDataEndpoint", `{"StreamName":"camera-1","APIName":"GET_MEDIA"}`},
	{"/getMedia", `{"StreamName":"camera-1","StartSelector":{"StartSelectorType":"FRAGMENT_NUMBER","AfterFragmentNumber":"1"}}`},
	{"/listFragments", `{"StreamName":"camera-1","MaxResults":10,"FragmentSelector":{"FragmentSelectorType":"SERVER_TIMESTAMP","TimestampRange":{"StartTimestamp":0,"EndTimestamp":4102444800}}}`},
	{"/getMediaForFragmentList", `{"StreamName":"camera-1","Fragments":["1"]}`},
	{"/v1/query", `{"streams":["camera-1"],"start":"1970-01-01T00:00:00Z","end":"2100-01-01T00:00:00Z"}`},
}

// FuzzOperationJSON sends any body to any operation of a real server (a
// loopback listener over a real store) and holds every answer to the
// contract the AWS SDKs parse: 200, or a 4xx named in x-amzn-ErrorType with
// a JSON body of that type and a message. A 5xx, a panic, a bare-text error
// or a request that hangs is a finding.
func FuzzOperationJSON(f *testing.F) {
	srv := fuzzServer(f)
	client := &http.Client{}
	for i, op := range fuzzOps {
		f.Add(uint8(i), []byte(op.body))
	}
	f.Add(uint8(1), []byte(`{"StreamARN":"arn:aws:kinesisvideo:us-east-1:000000000000:stream/camera-1/1"}`))
	f.Add(uint8(2), []byte(`{"MaxResults":-1,"NextToken":"!!"}`))
	f.Add(uint8(11), []byte(`{"StreamName":"camera-1","FragmentSelector":{"FragmentSelectorType":"PRODUCER_TIMESTAMP","TimestampRange":{"StartTimestamp":1e300,"EndTimestamp":-1}}}`))
	f.Add(uint8(12), []byte(`{"StreamName":"camera-1","Fragments":["18446744073709551616","-1",""]}`))
	f.Add(uint8(13), []byte(`{"streams":["camera-1"],"start":"yesterday","columns":[{"track":99}]}`))
	f.Add(uint8(0), []byte(`{"StreamName":"`+strings.Repeat("a", 300)+`"}`))
	f.Add(uint8(6), []byte(`{"StreamName":"camera-1","Tags":{"":""}}`))
	f.Add(uint8(3), []byte(`[1,2,3]`))
	f.Add(uint8(4), []byte("\xff\xfe{"))
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		o := fuzzOps[int(op)%len(fuzzOps)]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+o.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s %q: %v", o.path, body, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			// GetMedia follows the stream live: its answer never ends by
			// itself. That it began is all a fuzz run asks of it.
			if o.path != "/getMedia" {
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					t.Fatalf("POST %s %q: reading a 200 answer: %v", o.path, body, err)
				}
			}
			return
		}
		checkErrorAnswer(t, o.path, body, resp)
	})
}

// checkErrorAnswer holds an error answer to the shape the AWS SDKs parse.
func checkErrorAnswer(t *testing.T, path string, body []byte, resp *http.Response) {
	t.Helper()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	name := resp.Header.Get("x-amzn-ErrorType")
	var eb httpwire.ErrorBody
	if err := json.Unmarshal(msg, &eb); err != nil || eb.Type != name || name == "" || eb.Message == "" {
		t.Fatalf("POST %s %q: %d answer is not a KVS error (x-amzn-ErrorType %q): %q", path, body, resp.StatusCode, name, msg)
	}
	if want := (&httpwire.APIError{Name: name}).Status(); resp.StatusCode != want || want >= 500 {
		t.Fatalf("POST %s %q: %s answered with %d (its status is %d): %s", path, body, name, resp.StatusCode, want, eb.Message)
	}
}

// fuzzServer serves the API over loopback from a real store holding stream
// camera-1 with two fragments, and stream cam-2 with none.
func fuzzServer(f *testing.F) *httptest.Server {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Options{Dir: f.TempDir(), Logger: log, RetentionInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	for _, name := range []string{"camera-1", "cam-2"} {
		if _, err := st.CreateStream(store.CreateStreamInput{Name: name, RetentionHours: 24}); err != nil {
			f.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UnixNano()
	for n := uint64(1); n <= 2; n++ {
		frag, err := fuzzFragment(n, start+int64(n)*int64(time.Second))
		if err != nil {
			f.Fatal(err)
		}
		if _, err := st.Append("camera-1", frag); err != nil {
			f.Fatal(err)
		}
	}
	if err := st.Sync("camera-1"); err != nil {
		f.Fatal(err)
	}
	// a fuzzer is a runaway client by design
	return unthrottledServer(f, st, func(o *Options) { o.MaxMediaConnections = 1 << 20 })
}

// fuzzFragment is a fragment of one second of a 1 kHz float32 signal, as a
// producer would send it.
func fuzzFragment(number uint64, start int64) (*store.Fragment, error) {
	desc := &signals.Scalar{SampleRate: 1000, SampleType: signals.Float32, Channels: []signals.Channel{{Name: "x"}}}
	priv, err := desc.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 1000})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: signals.CodecIDScalar, CodecPrivate: priv}})
	clusterAt := len(b)
	var s signals.Samples
	s.Reset(signals.Float32, 1, 1000)
	s.Start = start
	for i := range s.F32 {
		s.F32[i] = float32(i)
	}
	data, err := codecs.AppendScalarFrame(nil, desc, &s, codecs.Plain)
	if err != nil {
		return nil, err
	}
	return &store.Fragment{
		Number: number, ServerTime: time.Now().UnixNano(), ProducerTime: start, Duration: int64(time.Second),
		ProducerID: "fuzz", ProducerSeq: number, ClusterOffset: uint32(clusterAt),
		Payload: mkv.AppendCluster(b, uint64(start/int64(time.Millisecond)), []mkv.Block{{Track: 1, Keyframe: true, Data: data}}),
	}, nil
}
