package signals

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func testKindDescriptions() []Description {
	return []Description{
		&Detections{},
		&Detections{Extra: []Field{{Name: "track_id", Type: Int32}, {Name: "prob", Type: Float32, Unit: "1"}}},
		&Array{ElemType: Float32, Rows: 256, Cols: 64, Unit: "dB",
			RowAxis: Axis{Name: "range", Unit: "m", Start: 0, Step: 0.39}, ColAxis: Axis{Name: "doppler", Unit: "m/s", Start: -16, Step: 0.5}},
		&Array{ElemType: Int16, Rows: 480, Cols: 640},
		&PointCloud{Rings: 32, Resolution: 0.001},
		&PointCloud{Rings: 128, Resolution: 0.0005, Extra: []Field{{Name: "reflectivity", Type: Int16}, {Name: "ambient", Type: Int32}}},
		&Audio{SampleRate: 16000, SampleType: Int16, Channels: []string{"mono"}},
		&Audio{SampleRate: 48000, SampleType: Float32, Channels: []string{"left", "right"}},
		&Opaque{MediaType: "application/json"},
		&Video{AVCC: []byte{1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1e, 1, 0, 2, 0x68, 0xee}},
	}
}

// Every description survives AppendBinary → ParseDescription, and every
// truncation or trailing byte is an error wrapping ErrInvalid.
func TestKindDescriptionsRoundTrip(t *testing.T) {
	for _, d := range testKindDescriptions() {
		b, err := d.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%T: %v", d, err)
		}
		got, err := ParseDescription(d.CodecID(), b)
		if err != nil {
			t.Fatalf("%T: %v", d, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(d)) {
			t.Errorf("%T: got %+v, want %+v", d, got, d)
		}
		for cut := range b {
			if _, err := ParseDescription(d.CodecID(), b[:cut]); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%T cut to %d: %v", d, cut, err)
			}
		}
		if _, isVideo := d.(*Video); isVideo {
			continue // avcC records may carry trailing fields (High profile's chroma format …)
		}
		if _, err := ParseDescription(d.CodecID(), append(b, 0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%T with a trailing byte: %v", d, err)
		}
	}
}

// normalize makes nil and empty field lists compare equal.
func normalize(d Description) Description {
	switch x := d.(type) {
	case *Detections:
		if len(x.Extra) == 0 {
			return &Detections{}
		}
	case *PointCloud:
		if len(x.Extra) == 0 {
			c := *x
			c.Extra = nil
			return &c
		}
	}
	return d
}

func TestKindDescriptionsInvalid(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    Description
	}{
		{"extra field named like a standard one", &Detections{Extra: []Field{{Name: "range", Type: Float32}}}},
		{"reserved field name", &Detections{Extra: []Field{{Name: "index", Type: Int32}}}},
		{"field without a type", &Detections{Extra: []Field{{Name: "x"}}}},
		{"empty array", &Array{ElemType: Float32, Rows: 0, Cols: 4}},
		{"huge array", &Array{ElemType: Float32, Rows: 1 << 16, Cols: 1 << 16}},
		{"array of nothing", &Array{Rows: 2, Cols: 2}},
		{"no rings", &PointCloud{Resolution: 0.001}},
		{"no resolution", &PointCloud{Rings: 16}},
		{"long unit", &Array{ElemType: Int16, Rows: 1, Cols: 1, Unit: strings.Repeat("u", 300)}},
		{"audio without channels", &Audio{SampleRate: 8000, SampleType: Int16}},
		{"audio at 0 Hz", &Audio{SampleType: Int16, Channels: []string{"a"}}},
		{"opaque without a media type", &Opaque{}},
		{"video without avcC", &Video{}},
		{"avcC without an SPS", &Video{AVCC: []byte{1, 0x64, 0, 0x1e, 0xff, 0xe0, 0}}},
	} {
		if err := tt.d.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
		if _, err := tt.d.AppendBinary(nil); err == nil {
			t.Errorf("%s: AppendBinary accepted it", tt.name)
		}
	}
}

// format_kinds.md names the versions and fields the code has.
func TestKindFormatDoc(t *testing.T) {
	b, err := os.ReadFile("format_kinds.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, f := range append(append([]Field(nil), DetectionFields...), PointFields...) {
		row := "| " + f.Name + " | " + f.Type.String() + " | " + f.Unit + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("format_kinds.md lacks the row %q", row)
		}
	}
	for _, id := range []string{CodecIDDetections, CodecIDArray, CodecIDPointCloud, CodecIDPCMInt, CodecIDPCMFloat, CodecIDH264, CodecIDOpaque} {
		if !strings.Contains(doc, id) {
			t.Errorf("format_kinds.md does not name %s", id)
		}
	}
}

func FuzzParseKindDescriptions(f *testing.F) {
	for _, d := range testKindDescriptions() {
		b, _ := d.AppendBinary(nil)
		f.Add(d.CodecID(), b)
	}
	f.Fuzz(func(t *testing.T, id string, b []byte) {
		d, err := ParseDescription(id, b)
		if err != nil {
			return
		}
		again, err := d.AppendBinary(nil)
		if err != nil || string(again) != string(b) {
			t.Fatalf("%T re-encodes differently: %x vs %x (%v)", d, again, b, err)
		}
	})
}

// Golden descriptions of every other kind: a change of a description's bytes
// fails here. Run with -update only for a deliberate, versioned change.
func TestGoldenKindDescriptions(t *testing.T) {
	imu, _ := (&IMU{SampleRate: 1000, SampleType: Int16, Sensors: []IMUSensor{
		{Type: Accelerometer, Unit: "m/s²", Scale: 9.80665 / 8192}, {Type: Gyroscope, Unit: "rad/s", Scale: 0.0002663}}}).AppendBinary(nil)
	golden := map[string][]byte{"imu_v1.hex": imu}
	for i, d := range testKindDescriptions() {
		b, err := d.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		golden[fmt.Sprintf("%s_v1_%d.hex", d.Kind(), i)] = b
	}
	for file, got := range golden {
		path := filepath.Join("testdata", "golden", file)
		if *update {
			if err := writeHex(path, "description "+file, got); err != nil {
				t.Fatal(err)
			}
		}
		want, err := readHex(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the description's bytes changed:\n got %x\nwant %x", file, got, want)
		}
	}
}

// The offset tables of format_kinds.md say where the code writes each field:
// a description with known values is encoded and every documented fixed
// offset is read back from its bytes.
func TestKindFormatDocOffsets(t *testing.T) {
	b, err := os.ReadFile("format_kinds.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	u16 := func(b []byte) string { return strconv.Itoa(int(binary.LittleEndian.Uint16(b))) }
	u32 := func(b []byte) string { return strconv.Itoa(int(binary.LittleEndian.Uint32(b))) }
	f64 := func(b []byte) string {
		return strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)), 'g', -1, 64)
	}
	str := func(b []byte) string { return string(b[1 : 1+int(b[0])]) }
	u8 := func(b []byte) string { return strconv.Itoa(int(b[0])) }
	for _, tt := range []struct {
		heading string
		desc    Description
		// per documented offset: how to read the field there and the value
		// the description holds
		want map[int]func([]byte) string
		vals map[int]string
	}{
		{
			heading: "## 2-D array: `S_SENSORIUM/ARRAY` (kind 6, version 1)",
			desc:    &Array{ElemType: Float32, Rows: 256, Cols: 64, Unit: "dB", RowAxis: Axis{Name: "range", Unit: "m", Step: 0.5}, ColAxis: Axis{Name: "doppler", Unit: "m/s", Start: -16, Step: 0.5}},
			want:    map[int]func([]byte) string{6: u8, 7: u32, 11: u32, 15: str},
			vals:    map[int]string{6: strconv.Itoa(int(Float32)), 7: "256", 11: "64", 15: "dB"},
		},
		{
			heading: "## LIDAR point cloud: `S_SENSORIUM/POINTCLOUD` (kind 4, version 1)",
			desc:    &PointCloud{Rings: 32, Resolution: 0.001, Extra: []Field{{Name: "reflectivity", Type: Int16}}},
			want:    map[int]func([]byte) string{6: u16, 8: f64, 16: u16},
			vals:    map[int]string{6: "32", 8: "0.001", 16: "1"},
		},
		{
			heading: "## PCM audio: `A_PCM/INT/LIT` and `A_PCM/FLOAT/IEEE` (kind 3, version 1)",
			desc:    &Audio{SampleRate: 16000, SampleType: Int16, Channels: []string{"left", "right"}},
			want:    map[int]func([]byte) string{6: f64, 14: u8, 15: u8, 16: str},
			vals:    map[int]string{6: "16000", 14: strconv.Itoa(int(Int16)), 15: "2", 16: "left"},
		},
		{
			heading: "## Opaque: `S_SENSORIUM/OPAQUE` (kind 8, version 1)",
			desc:    &Opaque{MediaType: "application/json"},
			want:    map[int]func([]byte) string{6: str},
			vals:    map[int]string{6: "application/json"},
		},
		{
			heading: "## Field list",
			// a detections description is the preamble then a field list
			desc: &Detections{Extra: []Field{{Name: "track_id", Type: Int32, Unit: "1"}}},
			want: map[int]func([]byte) string{0: u16, 2: str},
			vals: map[int]string{0: "1", 2: "track_id"},
		},
	} {
		enc, err := tt.desc.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.heading, err)
		}
		base := 0
		if tt.heading == "## Field list" {
			base = descPreambleSz
		}
		var offsets []int
		for _, row := range docTable(t, doc, tt.heading)[1:] {
			if off, err := strconv.Atoi(row[0]); err == nil {
				offsets = append(offsets, off)
			}
		}
		if len(offsets) != len(tt.want) {
			t.Errorf("%s: the doc has fixed offsets %v, the test knows %d", tt.heading, offsets, len(tt.want))
		}
		for _, off := range offsets {
			read, ok := tt.want[off]
			if !ok {
				t.Errorf("%s: offset %d in the doc is not where the code writes a field", tt.heading, off)
				continue
			}
			if got := read(enc[base+off:]); got != tt.vals[off] {
				t.Errorf("%s: at offset %d the code wrote %q, the description holds %q", tt.heading, off, got, tt.vals[off])
			}
		}
	}
}
