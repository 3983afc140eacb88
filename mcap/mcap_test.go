package mcap

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
)

// writeFile writes n messages on two channels (one without a schema) with
// the given compression and chunk size.
func writeFile(t testing.TB, comp string, chunk, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{Profile: "ros2", Compression: comp, ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddSchema(Schema{ID: 1, Name: "std_msgs/msg/Float64", Encoding: "ros2msg", Data: []byte("float64 data")}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddChannel(Channel{ID: 1, SchemaID: 1, Topic: "/a", MessageEncoding: "cdr", Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddChannel(Channel{ID: 2, Topic: "/b", MessageEncoding: "json"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ch := uint16(1 + i%2)
		// Times go back now and then: the index must still be in order.
		ts := uint64(1e9 + i*1000 - (i%5)*300)
		if err := w.WriteMessage(&Message{ChannelID: ch, Sequence: uint32(i), LogTime: ts, PublishTime: ts + 1, Data: []byte(fmt.Sprintf("message %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		comp  string
		chunk int
		n     int
	}{{"zstd", 100, 50}, {"lz4", 100, 50}, {"none", 100, 50}, {"zstd", 1 << 20, 1000}, {"lz4", 0, 0}} {
		t.Run(fmt.Sprintf("%s/%d/%d", tc.comp, tc.chunk, tc.n), func(t *testing.T) {
			b := writeFile(t, tc.comp, tc.chunk, tc.n)
			r, err := NewReader(bytes.NewReader(b), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if h := r.Header(); h.Profile != "ros2" || h.Library != "sensorium" {
				t.Fatalf("header %+v", h)
			}
			i := 0
			for {
				m, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("message %d", i); string(m.Data) != want || m.Sequence != uint32(i) || m.ChannelID != uint16(1+i%2) {
					t.Fatalf("message %d: %+v %q", i, m, m.Data)
				}
				c := r.Channel(m.ChannelID)
				if m.ChannelID == 1 && (c.Topic != "/a" || c.Metadata["k"] != "v" || r.Schema(c.SchemaID).Name != "std_msgs/msg/Float64") {
					t.Fatalf("channel %+v", c)
				}
				i++
			}
			if i != tc.n {
				t.Fatalf("%d messages, want %d", i, tc.n)
			}
			st := r.Statistics()
			if st == nil || st.MessageCount != uint64(tc.n) || st.ChannelCount != 2 || st.SchemaCount != 1 {
				t.Fatalf("statistics %+v", st)
			}
			s, err := ReadSummary(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Chunks) != int(st.ChunkCount) || len(s.Channels) != 2 || len(s.Schemas) != 1 {
				t.Fatalf("summary: %d chunks (statistics %d), %d channels, %d schemas", len(s.Chunks), st.ChunkCount, len(s.Channels), len(s.Schemas))
			}
			// Every chunk index points at a chunk record and its message
			// indexes at Message Index records of their channel.
			for _, ci := range s.Chunks {
				if b[ci.ChunkStartOffset] != OpChunk || ci.Compression != map[string]string{"none": ""}[tc.comp] && tc.comp != "none" && ci.Compression != tc.comp {
					t.Fatalf("chunk index %+v", ci)
				}
				for ch, off := range ci.MessageIndexOffsets {
					if b[off] != OpMessageIndex || uint16(b[off+9])|uint16(b[off+10])<<8 != ch {
						t.Fatalf("message index of channel %d at %d", ch, off)
					}
				}
			}
		})
	}
}

// A damaged byte anywhere is found: by a CRC, or by the structure it breaks.
func TestReaderFindsDamage(t *testing.T) {
	for _, comp := range []string{"none", "zstd", "lz4"} {
		b := writeFile(t, comp, 200, 40)
		cases := []struct {
			name string
			at   int
		}{
			{"magic", 2},
			{"inside a chunk's records", 0}, // filled in below
			{"summary", 0},
			{"closing magic", len(b) - 3},
		}
		s, err := ReadSummary(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		cases[1].at = int(s.Chunks[0].ChunkStartOffset + s.Chunks[0].ChunkLength - 3)
		cases[2].at = int(s.Footer.SummaryStart + 12)
		for _, tc := range cases {
			d := bytes.Clone(b)
			d[tc.at] ^= 0x40
			err := readAll(d)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: damage at %d (%s): %v, want an ErrInvalid", comp, tc.at, tc.name, err)
			}
		}
		// Cut short anywhere: an error, never a silent end.
		for _, n := range []int{len(b) - 1, len(b) / 2, 20, 9} {
			if err := readAll(b[:n]); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: file cut at %d: %v", comp, n, err)
			}
		}
	}
}

func readAll(b []byte) error {
	r, err := NewReader(bytes.NewReader(b), Options{})
	if err != nil {
		return err
	}
	for {
		if _, err := r.Next(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// An attachment's CRC is checked, and a data length that would overflow is
// refused, not followed.
func TestAttachmentCRC(t *testing.T) {
	att := func(dataLen uint64, data []byte, crc uint32) []byte {
		b := append([]byte(nil), Magic...)
		b, st := recordStart(b, OpHeader)
		b = appendStr(appendStr(b, ""), "")
		b = recordEnd(b, st)
		b, st = recordStart(b, OpAttachment)
		b = append(b, make([]byte, 16)...)
		b = appendStr(appendStr(b, "calib.yaml"), "text/yaml")
		b = append(b, byte(dataLen), byte(dataLen>>8), byte(dataLen>>16), byte(dataLen>>24), byte(dataLen>>32), byte(dataLen>>40), byte(dataLen>>48), byte(dataLen>>56))
		b = append(b, data...)
		if crc == 1 {
			crc = crc32.ChecksumIEEE(b[st:])
		}
		b = append(b, byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24))
		b = recordEnd(b, st)
		b, st = recordStart(b, OpFooter)
		b = append(b, make([]byte, 20)...)
		b = recordEnd(b, st)
		return append(b, Magic...)
	}
	if err := readAll(att(3, []byte("a:1"), 1)); err != nil {
		t.Fatalf("good attachment: %v", err)
	}
	if err := readAll(att(3, []byte("a:1"), 0)); err != nil {
		t.Fatalf("attachment without CRC: %v", err)
	}
	if err := readAll(att(3, []byte("a:1"), 12345)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad CRC: %v", err)
	}
	if err := readAll(att(^uint64(0)-1, []byte("a:1"), 0)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("overflowing length: %v", err)
	}
}
