package codecs

import (
	"errors"
	"math"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// Column decoding gives, channel by channel, exactly the interleaved decode,
// for every codec and every test input; corrupt frames are errors.
func TestDecodeScalarColumns(t *testing.T) {
	var cols []Column
	var scratch signals.Samples
	for _, in := range numericInputs() {
		desc := testDesc(in.s.Type, in.s.Channels)
		for _, id := range []ID{Numeric, Plain, ShuffleZstd} {
			frame, err := AppendScalarFrame(nil, desc, in.s, id)
			if err != nil {
				t.Fatal(err)
			}
			var h ScalarHeader
			h, cols, err = DecodeScalarColumns(frame, desc, cols, &scratch)
			if err != nil || h.N != in.s.N || len(cols) != in.s.Channels {
				t.Fatalf("%s %v: header %+v, %d columns, %v", in.name, id, h, len(cols), err)
			}
			for c := range cols {
				for i := 0; i < in.s.N; i++ {
					j := i*in.s.Channels + c
					var a, b uint64
					switch in.s.Type {
					case signals.Int16:
						a, b = uint64(in.s.I16[j]), uint64(cols[c].I16[i])
					case signals.Int32:
						a, b = uint64(in.s.I32[j]), uint64(cols[c].I32[i])
					case signals.Float32:
						a, b = uint64(math.Float32bits(in.s.F32[j])), uint64(math.Float32bits(cols[c].F32[i]))
					case signals.Float64:
						a, b = math.Float64bits(in.s.F64[j]), math.Float64bits(cols[c].F64[i])
					}
					if a != b {
						t.Fatalf("%s %v: channel %d sample %d differs", in.name, id, c, i)
					}
				}
			}
			if id == Numeric && len(frame) > ScalarHeaderSize+4 {
				if _, _, err := DecodeScalarColumns(frame[:len(frame)-3], desc, cols, &scratch); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: a cut frame: %v", in.name, err)
				}
			}
		}
	}
}
