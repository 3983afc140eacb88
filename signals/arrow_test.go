package signals

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestArrowSchema(t *testing.T) {
	d := &Scalar{SampleRate: 25600, SampleType: Int32, Channels: []Channel{{"x", "g"}, {"y", ""}, {"温度", "°C"}}}
	tests := []struct {
		names   []string
		fields  []string
		indexes []int
	}{
		{nil, []string{"time", "x", "y", "温度"}, []int{0, 1, 2}},
		{[]string{}, []string{"time", "x", "y", "温度"}, []int{0, 1, 2}},
		{[]string{"温度", "x"}, []string{"time", "温度", "x"}, []int{2, 0}},
		{[]string{"y"}, []string{"time", "y"}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			s, idx, err := d.ArrowSchema(tt.names)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(idx, tt.indexes) {
				t.Errorf("indexes %v, want %v", idx, tt.indexes)
			}
			var names []string
			for _, f := range s.Fields() {
				names = append(names, f.Name)
				if f.Nullable {
					t.Errorf("field %q is nullable", f.Name)
				}
			}
			if !slices.Equal(names, tt.fields) {
				t.Fatalf("fields %v, want %v", names, tt.fields)
			}
			if !arrow.TypeEqual(s.Field(0).Type, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}) {
				t.Errorf("time type %v", s.Field(0).Type)
			}
			for k, i := range idx {
				f := s.Field(k + 1)
				if !arrow.TypeEqual(f.Type, arrow.PrimitiveTypes.Int32) {
					t.Errorf("%s type %v", f.Name, f.Type)
				}
				unit, ok := f.Metadata.GetValue(MetaUnit)
				if want := d.Channels[i].Unit; unit != want || ok != (want != "") {
					t.Errorf("%s unit %q (present %v), want %q", f.Name, unit, ok, want)
				}
			}
			rate, _ := s.Metadata().GetValue(MetaSampleRate)
			if r, err := strconv.ParseFloat(rate, 64); err != nil || r != d.SampleRate {
				t.Errorf("sample rate metadata %q", rate)
			}
		})
	}
}

func TestArrowSchemaErrors(t *testing.T) {
	d := vib3()
	for _, tt := range []struct {
		names []string
		msg   string
	}{
		{[]string{"x", "w"}, `unknown channel "w"`},
		{[]string{"time"}, `unknown channel "time"`},
		{[]string{"x", "y", "x"}, `channel "x" selected twice`},
	} {
		if _, _, err := d.ArrowSchema(tt.names); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ArrowSchema(%q) = %v, want %q", tt.names, err, tt.msg)
		}
	}
}

func TestArrowSchemaAllChannels(t *testing.T) {
	d := &Scalar{SampleRate: 1, SampleType: Float64, Channels: manyChannels(MaxChannels)}
	names := make([]string, 0, MaxChannels)
	for i := MaxChannels - 1; i >= 0; i-- {
		names = append(names, d.Channels[i].Name)
	}
	s, idx, err := d.ArrowSchema(names)
	if err != nil || s.NumFields() != MaxChannels+1 || idx[0] != MaxChannels-1 || idx[MaxChannels-1] != 0 {
		t.Fatalf("reversed selection of every channel: %v fields, %v", s, err)
	}
}
