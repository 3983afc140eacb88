package codecs

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// A video or opaque query returns the fields it names, after time, in the
// order named; no name means key and data. A repeated or unknown name is a
// bad option that lists the fields.
func TestBytesFieldSelection(t *testing.T) {
	descs := map[string]signals.Description{
		"video":  &signals.Video{},
		"opaque": &signals.Opaque{MediaType: "application/x-test"},
	}
	cases := []struct {
		fields []string
		want   []string // column names; nil: an error
	}{
		{nil, []string{"time", "key", "data"}},
		{[]string{"data"}, []string{"time", "data"}},
		{[]string{"key"}, []string{"time", "key"}},
		{[]string{"data", "key"}, []string{"time", "data", "key"}},
		{[]string{"key", "data"}, []string{"time", "key", "data"}},
		{[]string{"key", "key"}, nil},
		{[]string{"time"}, nil},
		{[]string{"payload"}, nil},
	}
	frames := []Frame{
		{Data: []byte{0, 0, 0, 1, 0x65}, Time: 1_000_000, Key: true},
		{Data: []byte("second"), Time: 2_000_000},
		{Data: []byte("out of range"), Time: 9_000_000},
	}
	for kind, desc := range descs {
		for _, tc := range cases {
			t.Run(kind+"/"+strings.Join(tc.fields, ","), func(t *testing.T) {
				dec, err := NewArrowDecoder(desc, ArrowOptions{Fields: tc.fields})
				if tc.want == nil {
					if !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), "key, data") {
						t.Fatalf("error %v, want a bad option naming the fields", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, f := range dec.Schema().Fields() {
					names = append(names, f.Name)
				}
				if !slices.Equal(names, tc.want) {
					t.Fatalf("columns %v, want %v", names, tc.want)
				}
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				b := array.NewRecordBuilder(mem, dec.Schema())
				defer b.Release()
				rows := 0
				for _, f := range frames {
					n, err := dec.Append(b, f, TimeRange{Start: 0, End: 5_000_000})
					if err != nil {
						t.Fatal(err)
					}
					rows += n
				}
				rec := b.NewRecordBatch()
				defer rec.Release()
				if rows != 2 || rec.NumRows() != 2 {
					t.Fatalf("%d rows appended, %d in the batch; want 2", rows, rec.NumRows())
				}
				for c, name := range tc.want {
					for r := range 2 {
						f := frames[r]
						switch col := rec.Column(c).(type) {
						case *array.Timestamp:
							if name != "time" || col.Value(r) != arrow.Timestamp(f.Time) {
								t.Fatalf("column %s row %d: time %d", name, r, col.Value(r))
							}
						case *array.Boolean:
							if name != "key" || col.Value(r) != f.Key {
								t.Fatalf("column %s row %d: key %v", name, r, col.Value(r))
							}
						case *array.Binary:
							if name != "data" || !bytes.Equal(col.Value(r), f.Data) {
								t.Fatalf("column %s row %d: data %q", name, r, col.Value(r))
							}
						default:
							t.Fatalf("column %s is a %T", name, col)
						}
					}
				}
			})
		}
	}
}
