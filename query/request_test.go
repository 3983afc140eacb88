package query

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParseRequest: any body gives a request or an ErrInvalidRequest,
// never a panic; what it accepts names a stream and both ends of the range.
// Seeds live in testdata/fuzz/FuzzParseRequest.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"stream":"pump-1","start":"2026-11-24T12:00:00Z","end":1795000000000000000}`,
		`{"stream":"lidar-1","start":1,"end":2,"fields":["x","y"],"layout":"frames","basis":"server","track":3,"batch_rows":4096}`,
		`{"stream":"a","start":null,"end":"x"}`, ``, `[]`, `{"channels":[1]}`,
		`{"stream":"a","start":1,"end":2,"feilds":["x"]}`, `{"Stream":"a","START":1,"End":2}`,
		`{"stream":"a","start":1,"end":2} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error is not an ErrInvalidRequest: %v", err)
			}
			return
		}
		if (req.Stream == "" && len(req.Streams) == 0 && len(req.Inputs) == 0) || req.BatchRows < 0 {
			t.Fatalf("accepted %+v", req)
		}
		// What it accepts has only known keys (matched as encoding/json matches
		// them, ignoring case).
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) == nil {
			for k := range top {
				if !slices.ContainsFunc(topLevelKeys, func(known string) bool { return strings.EqualFold(k, known) }) {
					t.Fatalf("accepted unknown key %q in %s", k, body)
				}
			}
		}
	})
}

// topLevelKeys are the query's documented keys (README, "POST /v1/query" and
// "Arrow Flight").
var topLevelKeys = []string{"stream", "streams", "start", "end", "basis", "fields", "channels", "layout", "track", "batch_rows",
	"shape", "window", "inputs", "align", "follow", "partitions"}

// Every documented key and alias is accepted; a misspelt one, at any depth, is
// an ErrInvalidRequest naming it.
func TestParseRequestKeys(t *testing.T) {
	cases := []struct {
		name, body string
		bad        string // the key the error must name; "" for a body that parses
	}{
		{"samples", `{"stream":"a","start":1,"end":2,"basis":"server","fields":["x"],"layout":"frames","track":2,"batch_rows":10}`, ""},
		{"channels alias", `{"stream":"a","start":"2026-11-24T12:00:00Z","end":2000000000000000000,"channels":["x","y"]}`, ""},
		{"streams", `{"streams":["a","b"],"start":1,"end":2,"shape":"windows","window":{"length":8,"anchor":1,"starts_before":2}}`, ""},
		{"aligned anchor", `{"start":1,"end":2,"shape":"aligned","inputs":[{"stream":"a"}],"align":{"rate":1,"interpolation":"none","anchor":"2026-11-24T12:00:00Z"}}`, ""},
		{"windows", `{"stream":"a","start":1,"end":2,"shape":"windows","window":{"length":8,"hop":4}}`, ""},
		{"aligned", `{"start":1,"end":2,"shape":"aligned","inputs":[{"stream":"a","fields":["x"],"track":1},{"stream":"b"}],` +
			`"align":{"rate":100,"reference":0,"interpolation":"linear"}}`, ""},
		{"follow", `{"stream":"a","start":1,"follow":true}`, ""},
		{"flight partitions", `{"stream":"a","start":1,"end":2,"partitions":4}`, ""},
		{"keys ignore case", `{"Stream":"a","START":1,"End":2}`, ""},
		{"misspelt fields", `{"stream":"a","start":1,"end":2,"feilds":["x"]}`, "feilds"},
		{"misspelt start", `{"stream":"a","strat":1,"end":2}`, "strat"},
		{"misspelt window length", `{"stream":"a","start":1,"end":2,"shape":"windows","window":{"lenght":8}}`, "lenght"},
		{"misspelt input fields", `{"start":1,"end":2,"shape":"aligned","inputs":[{"stream":"a","feilds":["x"]}],"align":{"rate":1,"interpolation":"none"}}`, "feilds"},
		{"misspelt align rate", `{"start":1,"end":2,"shape":"aligned","inputs":[{"stream":"a"}],"align":{"rte":1,"interpolation":"none"}}`, "rte"},
		{"unknown key", `{"stream":"a","start":1,"end":2,"limit":5}`, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest([]byte(tc.body))
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), `"`+tc.bad+`"`) || !strings.Contains(err.Error(), "the keys are") {
				t.Fatalf("error %v, want an ErrInvalidRequest naming %q and listing the keys", err, tc.bad)
			}
		})
	}
	if _, err := ParseRequest([]byte(`{"stream":"a","start":1,"end":2} {"stream":"b"}`)); err == nil {
		t.Error("a body with a second JSON value after the query was accepted")
	}
}

// A request survives MarshalJSON → ParseRequest, for every shape.
func TestRequestJSONRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{Stream: "a", Start: 1, End: 2, Fields: []string{"x"}, Track: 2, BatchRows: 10},
		{Stream: "a", Start: 1, End: 9, Shape: "windows", Window: Window{Length: 5, Hop: 3}},
		{Streams: []string{"a", "b"}, Start: 1, End: 9, Shape: "windows", Window: Window{Length: 5, Hop: 3, Anchor: -4, StartsBefore: 7}},
		{Start: 1, End: 9, Shape: "aligned", Inputs: []Input{{Stream: "a", Fields: []string{"x"}}, {Stream: "b"}}, Align: Align{Rate: 100, Interpolation: "linear", Anchor: 3}},
	} {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.Stream != r.Stream || !slices.Equal(got.Streams, r.Streams) || got.Start != r.Start || got.End != r.End || got.Shape != r.Shape || got.Window != r.Window ||
			got.Align != r.Align || len(got.Inputs) != len(r.Inputs) || got.Track != r.Track {
			t.Errorf("%s → %+v, want %+v", b, got, r)
		}
	}
}
