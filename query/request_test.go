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
		if req.Stream == "" || req.BatchRows < 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}
