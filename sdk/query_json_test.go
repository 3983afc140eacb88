package sdk

import (
	"encoding/json"
	"testing"
	"time"
)

// The query's optional times go on the wire as ns, and only when set.
func TestQueryJSON(t *testing.T) {
	at := time.Unix(1700000000, 5)
	cases := []struct {
		name string
		in   any
		want string
	}{
		{"window without anchor", QueryWindow{Length: 4}, `{"length":4}`},
		{"window on a grid", QueryWindow{Length: 4, Hop: 2, Anchor: at, StartsBefore: at.Add(time.Second)},
			`{"length":4,"hop":2,"anchor":1700000000000000005,"starts_before":1700000001000000005}`},
		{"align without anchor", QueryAlign{Rate: 10, Interpolation: "linear"}, `{"rate":10,"interpolation":"linear"}`},
		{"align on a grid", QueryAlign{Rate: 10, Interpolation: "none", Anchor: at}, `{"rate":10,"interpolation":"none","anchor":1700000000000000005}`},
		{"several streams", QueryInput{Streams: []string{"pump-1", "pump-2"}}, `{"streams":["pump-1","pump-2"]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Fatalf("%s, want %s", b, c.want)
			}
		})
	}
}
