package signals

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseScalar checks that ParseScalar never panics, fails only with
// ErrInvalid, and that whatever it accepts is valid and re-encodes to exactly
// the input (the encoding is canonical, so there is one byte string per
// description). Seeds live in testdata/fuzz/FuzzParseScalar.
func FuzzParseScalar(f *testing.F) {
	for _, g := range goldenScalars {
		b, err := g.d.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseScalar(b)
		if err != nil {
			if d != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseScalar = %v, %v", d, err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid description: %v", err)
		}
		again, err := d.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x (%v)", b, again, err)
		}
		if _, idx, err := d.ArrowSchema(nil); err != nil || len(idx) != len(d.Channels) {
			t.Fatalf("ArrowSchema of a parsed description: %v", err)
		}
		_ = d.SampleTimes(nil, 0, 3)
	})
}
