package query

import (
	"testing"

	"github.com/sensorium-io/sensorium/internal/wire"
)

// FuzzParseRequest: any body gives a request or an InvalidArgumentException,
// never a panic; what it accepts names a stream and both ends of the range.
// Seeds live in testdata/fuzz/FuzzParseRequest.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"stream":"pump-1","start":"2026-11-24T12:00:00Z","end":1795000000000000000}`,
		`{"stream":"lidar-1","start":1,"end":2,"fields":["x","y"],"layout":"frames","basis":"server","track":3,"batch_rows":4096}`,
		`{"stream":"a","start":null,"end":"x"}`, ``, `[]`, `{"channels":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body)
		if err != nil {
			if e := wire.AsAPIError(err); e == nil || e.Name != wire.InvalidArgument {
				t.Fatalf("error is not an InvalidArgumentException: %v", err)
			}
			return
		}
		if (req.Stream == "" && len(req.Inputs) == 0) || req.BatchRows < 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// A request survives MarshalJSON → ParseRequest, for every shape.
func TestRequestJSONRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{Stream: "a", Start: 1, End: 2, Fields: []string{"x"}, Track: 2, BatchRows: 10},
		{Stream: "a", Start: 1, End: 9, Shape: "windows", Window: Window{Length: 5, Hop: 3}},
		{Start: 1, End: 9, Shape: "aligned", Inputs: []Input{{Stream: "a", Fields: []string{"x"}}, {Stream: "b"}}, Align: Align{Rate: 100, Interpolation: "linear"}},
	} {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.Stream != r.Stream || got.Start != r.Start || got.End != r.End || got.Shape != r.Shape || got.Window != r.Window ||
			got.Align != r.Align || len(got.Inputs) != len(r.Inputs) || got.Track != r.Track {
			t.Errorf("%s → %+v, want %+v", b, got, r)
		}
	}
}
