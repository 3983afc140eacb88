package mp4

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// FORMAT.md states the constants the format fixes; this keeps the document
// and the code in step.
func TestFormatDocConstants(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("major_brand %q, minor_version 0x%x (format)", majorBrand, minorVersion),
		fmt.Sprintf("timescale %d (MovieTimescale)", MovieTimescale),
		fmt.Sprintf("a sync sample `0x%08X`", flagsSync),
		fmt.Sprintf("any\nother `0x%08X`", flagsNonSync),
		fmt.Sprintf("v0, flags 0x%06x (default-base-is-moof)", tfhdDefaultBaseMoof),
		fmt.Sprintf("0x%02x default_sample_duration", tfhdDefaultDuration),
		fmt.Sprintf("0x%02x default_sample_size", tfhdDefaultSize),
		fmt.Sprintf("0x%02x default_sample_flags", tfhdDefaultFlags),
		fmt.Sprintf("0x%03x data_offset", trunDataOffset),
		fmt.Sprintf("0x%03x first_sample_flags", trunFirstFlags),
		fmt.Sprintf("0x%03x duration, 0x%03x size, 0x%03x flags", trunDuration, trunSize, trunFlags),
		fmt.Sprintf("0x%03x composition offset", trunCTS),
		fmt.Sprintf("flags u32 (%d float, %d big-endian, %d signed integer, %d packed", lpcmFloat, lpcmBigEndian, lpcmSigned, lpcmPacked),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("FORMAT.md does not say %q", want)
		}
	}
}

// boxes lists the top-level boxes of b as type:size.
func boxes(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("%d bytes left, not a box", len(b))
		}
		n := int(be.Uint32(b))
		if n < 8 || n > len(b) {
			t.Fatalf("box %q of size %d in %d bytes", b[4:8], n, len(b))
		}
		out = append(out, fmt.Sprintf("%s:%d", b[4:8], n))
		b = b[n:]
	}
	return out
}

// A run with a negative composition offset is written as trun version 1
// with the offset in two's complement; one without as version 0; what all
// samples share moves to tfhd.
func TestTrunVersionAndDefaults(t *testing.T) {
	cases := []struct {
		name     string
		samples  []Sample
		version  byte
		trun     uint32
		tfhd     uint32
		lastCTS  int32
		hasCTS   bool
		perEntry int // bytes per sample in trun
	}{
		{"audio: all shared", []Sample{{1024, 10, true, 0}, {1024, 10, true, 0}}, 0, trunDataOffset,
			tfhdDefaultBaseMoof | tfhdDefaultDuration | tfhdDefaultSize | tfhdDefaultFlags, 0, false, 0},
		{"video: first key", []Sample{{3600, 10, true, 0}, {3600, 20, false, 7200}, {3600, 5, false, 0}}, 0,
			trunDataOffset | trunSize | trunFirstFlags | trunCTS, tfhdDefaultBaseMoof | tfhdDefaultDuration | tfhdDefaultFlags, 0, true, 8},
		{"negative offset", []Sample{{3600, 10, true, 0}, {3600, 20, false, 7200}, {1800, 5, true, -3600}}, 1,
			trunDataOffset | trunDuration | trunSize | trunFlags | trunCTS, tfhdDefaultBaseMoof, -3600, true, 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var data []byte
			for _, s := range c.samples {
				data = append(data, make([]byte, s.Size)...)
			}
			f := Fragment{Sequence: 7, Runs: []Run{{Track: 1, DecodeTime: 1 << 40, Samples: c.samples, Data: data}}}
			h, err := f.AppendHeader(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := boxes(t, append(h, data...)); len(got) != 2 || !strings.HasPrefix(got[0], "moof:") || got[1] != fmt.Sprintf("mdat:%d", 8+len(data)) {
				t.Fatalf("boxes %v", got)
			}
			tfhd := bytes.Index(h, []byte("tfhd"))
			if flags := be.Uint32(h[tfhd+4:]) & 0xffffff; flags != c.tfhd {
				t.Errorf("tfhd flags %#x, want %#x", flags, c.tfhd)
			}
			tfdt := bytes.Index(h, []byte("tfdt"))
			if h[tfdt+4] != 1 || be.Uint64(h[tfdt+8:]) != 1<<40 {
				t.Errorf("tfdt %x", h[tfdt+4:tfdt+16])
			}
			at := bytes.Index(h, []byte("trun"))
			version, flags := h[at+4], be.Uint32(h[at+4:])&0xffffff
			if version != c.version || flags != c.trun {
				t.Fatalf("trun version %d flags %#x, want %d %#x", version, flags, c.version, c.trun)
			}
			size := int(be.Uint32(h[at-4:]))
			fixed := 8 + 4 + 4 + 4 // header, version+flags, sample_count, data_offset
			if c.trun&trunFirstFlags != 0 {
				fixed += 4
			}
			if size != fixed+c.perEntry*len(c.samples) {
				t.Errorf("trun of %d bytes, want %d", size, fixed+c.perEntry*len(c.samples))
			}
			if off := be.Uint32(h[at+12:]); int(off) != len(h) {
				t.Errorf("data_offset %d, want the header's length %d (moof + mdat header)", off, len(h))
			}
			if c.hasCTS {
				last := int32(be.Uint32(h[at-4+size-4:]))
				if last != c.lastCTS {
					t.Errorf("last composition offset %d, want %d", last, c.lastCTS)
				}
			}
		})
	}
}

func TestFragmentRefusesMismatchedData(t *testing.T) {
	f := Fragment{Runs: []Run{{Track: 1, Samples: []Sample{{Duration: 1, Size: 4}}, Data: []byte{1, 2, 3}}}}
	if _, err := f.AppendHeader(nil); err == nil {
		t.Fatal("a run whose data is shorter than its samples was written")
	}
	if _, err := (&Fragment{}).AppendHeader(nil); err == nil {
		t.Fatal("a fragment without runs was written")
	}
}

func TestDescriptorSizes(t *testing.T) {
	for _, c := range []struct {
		n    int
		size []byte
	}{{0, []byte{0}}, {127, []byte{127}}, {128, []byte{0x81, 0}}, {300, []byte{0x82, 0x2c}}, {1 << 14, []byte{0x81, 0x80, 0}}} {
		got := descriptor(nil, 5, make([]byte, c.n))
		if !bytes.Equal(got[1:1+len(c.size)], c.size) || len(got) != 1+len(c.size)+c.n {
			t.Errorf("descriptor of %d bytes: size field %x, want %x", c.n, got[1:1+len(c.size)], c.size)
		}
	}
}
