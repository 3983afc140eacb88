package pcmpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// tone is n samples per channel of a chord with a little noise, in the
// layout of format bits (16, 24, 32 ints; -32, -64 floats), interleaved.
func tone(n, channels, bits int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 3))
	var out []byte
	for i := range n {
		for c := range channels {
			v := 0.4*math.Sin(float64(i)*0.031*float64(c+1)) + 0.2*math.Sin(float64(i)*0.0071) + 0.01*rng.NormFloat64()
			switch bits {
			case 16:
				out = binary.LittleEndian.AppendUint16(out, uint16(int16(v*32000)))
			case 24:
				x := int32(v * 8_000_000)
				out = append(out, byte(x), byte(x>>8), byte(x>>16))
			case 32:
				out = binary.LittleEndian.AppendUint32(out, uint32(int32(v*2_000_000_000)))
			case -32:
				out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v)))
			case -64:
				out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
			}
		}
	}
	return out
}

// fragment is a canonical fragment (as ingest keeps them) of an audio track
// in format bits and a video track, and its Cluster offset.
func fragment(bits, channels int, audio [][]byte) ([]byte, uint32) {
	codec, depth := signals.CodecIDPCMInt, uint64(bits)
	if bits < 0 {
		codec, depth = signals.CodecIDPCMFloat, uint64(-bits)
	}
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 1000})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{
		{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC"},
		{Number: 2, UID: 2, Type: mkv.TrackTypeAudio, CodecID: codec, Audio: &mkv.Audio{SamplingFrequency: 48000, Channels: uint64(channels), BitDepth: depth}},
	})
	b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: "site", Value: "hall 3"}})
	co := uint32(len(b))
	blocks := []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("a key frame, not audio")}}
	for i, a := range audio {
		blk := mkv.Block{Track: 2, Timecode: int16(i * 20), Keyframe: true, Data: a}
		if i == 1 {
			blk.Duration = 20 // a BlockGroup with its duration
		}
		blocks = append(blocks, blk)
	}
	blocks = append(blocks, mkv.Block{Track: 1, Timecode: 40, Data: []byte("a later frame")})
	return mkv.AppendCluster(b, 1_765_000_000_000, blocks), co
}

// lacedFragment is fragment with its audio in one SimpleBlock of two frames
// in fixed-size lacing (mkv writes no lacing; the block is made by hand).
func lacedFragment(a, b []byte) ([]byte, uint32) {
	head, co := fragment(16, 2, nil)
	head = head[:co]
	block := append([]byte{0x82, 0, 0, 0x80 | 0x04, 1}, a...) // track 2, timecode 0, key frame, fixed-size lacing, 2 frames
	block = append(block, b...)
	cluster := mkv.AppendElement(nil, 0xE7, []byte{0x01}) // Timecode
	cluster = mkv.AppendElement(cluster, 0xA3, block)     // SimpleBlock
	return mkv.AppendElement(head, 0x1F43B675, cluster), co
}

func frames(t *testing.T, payload []byte) []mkv.Block {
	t.Helper()
	rd := mkv.NewReader(bytes.NewReader(payload), mkv.MaxElementSize(int64(len(payload))))
	var out []mkv.Block
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if it.Kind == mkv.ItemBlock {
			b := *it.Block
			b.Data = bytes.Clone(b.Data)
			out = append(out, b)
		}
	}
}

func TestPackUnpackGivesThePCMBack(t *testing.T) {
	for _, tc := range []struct {
		name           string
		bits, channels int
	}{
		{"s16 stereo", 16, 2}, {"s16 mono", 16, 1}, {"s24 stereo", 24, 2}, {"s32 mono", 32, 1},
		{"f32 stereo", -32, 2}, {"f64 mono", -64, 1}, {"s16 six channels", 16, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audio := [][]byte{tone(960, tc.channels, tc.bits, 1), tone(960, tc.channels, tc.bits, 2), tone(1024, tc.channels, tc.bits, 3)}
			orig, co := fragment(tc.bits, tc.channels, audio)
			packed, pco, ok, err := Pack(orig, co)
			if err != nil || !ok {
				t.Fatalf("Pack: ok %v, %v", ok, err)
			}
			if len(packed) >= len(orig) {
				t.Fatalf("packed %d bytes, not fewer than the %d put", len(packed), len(orig))
			}
			if !Marked(packed, pco) || Marked(orig, co) {
				t.Fatal("the marker is not where it should be, or is where it should not")
			}
			if again, _, ok, _ := Pack(packed, pco); ok || again != nil {
				t.Fatal("a packed fragment was packed again")
			}
			got, gco, err := Unpack([]byte("previous"), packed, pco)
			if err != nil {
				t.Fatal(err)
			}
			got = got[len("previous"):]
			if !bytes.Equal(got[:gco], orig[:co]) {
				t.Fatal("the bytes before the Cluster differ from those put")
			}
			want, have := frames(t, orig), frames(t, got)
			if len(want) != len(have) {
				t.Fatalf("%d frames back, %d put", len(have), len(want))
			}
			for i := range want {
				if !bytes.Equal(want[i].Data, have[i].Data) || want[i].Timecode != have[i].Timecode || want[i].Keyframe != have[i].Keyframe ||
					want[i].Track != have[i].Track || want[i].Duration != have[i].Duration {
					t.Fatalf("frame %d differs: %+v against %+v", i, have[i].Track, want[i].Track)
				}
			}
			// A fragment that was not packed comes back as it is.
			if same, sco, err := Unpack(nil, orig, co); err != nil || !bytes.Equal(same, orig) || sco != co {
				t.Fatalf("an unpacked fragment changed: %v", err)
			}
		})
	}
}

func TestPackLeavesWhatItCannotGain(t *testing.T) {
	noise := make([]byte, 4000)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	cases := map[string]func() ([]byte, uint32){
		"noise":             func() ([]byte, uint32) { return fragment(16, 2, [][]byte{noise}) },
		"not whole samples": func() ([]byte, uint32) { return fragment(16, 2, [][]byte{tone(100, 2, 16, 1)[:399]}) },
		"8-bit PCM": func() ([]byte, uint32) {
			b, co := fragment(16, 1, [][]byte{tone(500, 1, 16, 1)})
			return bytes.Replace(b, []byte{0x64, 0x81, 0x10}, []byte{0x64, 0x81, 0x08}, 1), co // BitDepth 16 → 8
		},
		"laced": func() ([]byte, uint32) { return lacedFragment(tone(500, 2, 16, 1), tone(500, 2, 16, 2)) },
		"no audio": func() ([]byte, uint32) {
			b := mkv.AppendEBMLHeader(nil, "matroska")
			b = mkv.AppendSegmentStart(b)
			b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC"}})
			co := uint32(len(b))
			return mkv.AppendCluster(b, 1000, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("x")}}), co
		},
	}
	if n := len(frames(t, func() []byte { b, _ := lacedFragment(tone(500, 2, 16, 1), tone(500, 2, 16, 2)); return b }())); n != 2 {
		t.Fatalf("the laced fragment reads as %d frames, want 2 (the test's block is not laced)", n)
	}
	for name, make := range cases {
		b, co := make()
		if packed, _, ok, err := Pack(b, co); ok || packed != nil || err != nil {
			t.Errorf("%s: packed (ok %v, err %v)", name, ok, err)
		}
	}
}

// A Cluster that is not what its blocks' fields make (here: a Void element
// inside it, which Unpack would not give back) is stored as it came.
func TestPackLeavesAClusterItCouldNotRebuild(t *testing.T) {
	head, co := fragment(16, 2, nil)
	head = head[:co]
	block := append([]byte{0x82, 0, 0, 0x80}, tone(960, 2, 16, 1)...) // track 2, timecode 0, key frame
	cluster := mkv.AppendElement(nil, 0xE7, []byte{0x01})
	cluster = mkv.AppendElement(cluster, 0xA3, block)
	cluster = append(cluster, 0xEC, 0x82, 0, 0) // a Void of 2 bytes
	b := mkv.AppendElement(head, 0x1F43B675, cluster)
	if n := len(frames(t, b)); n != 1 {
		t.Fatalf("the test's fragment reads as %d frames, want 1", n)
	}
	if packed, _, ok, err := Pack(b, co); ok || packed != nil || err != nil {
		t.Fatalf("packed a Cluster with a Void in it (ok %v, err %v)", ok, err)
	}
}

// A producer's tag that ends where the Cluster starts with the marker's
// bytes would make readers take the fragment for packed: Disarm moves it
// away, and the fragment reads as it came.
func TestDisarmAMarkerLookalike(t *testing.T) {
	fake := string(appendMarker(nil, []uint64{2})[2:]) // the marker's body as a tag value
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC"}})
	b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: "x", Value: fake}})
	// Make the tag value's last bytes the whole marker: its ID and size
	// come from the value's own last two bytes before the body.
	if !bytes.HasSuffix(b, []byte(fake)) {
		t.Fatal("the Tags element does not end with the tag value")
	}
	b = append(b[:len(b)-len(fake)-2], appendMarker(nil, []uint64{2})...)
	co := uint32(len(b))
	b = mkv.AppendCluster(b, 1000, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("frame")}})
	if !Marked(b, co) {
		t.Fatal("the look-alike is not seen as marked: the test proves nothing")
	}
	d, dco := Disarm(b, co)
	if Marked(d, dco) {
		t.Fatal("still marked after Disarm")
	}
	if got, _, err := Unpack(nil, d, dco); err != nil || !bytes.Equal(got, d) {
		t.Fatalf("the disarmed fragment does not read as it is: %v", err)
	}
	if f := frames(t, d); len(f) != 1 || string(f[0].Data) != "frame" {
		t.Fatalf("the disarmed fragment's frames: %+v", f)
	}
	if same, sco := Disarm(d, dco); !bytes.Equal(same, d) || sco != dco {
		t.Fatal("Disarm changed a fragment that was not marked")
	}
}

// FuzzPack: whatever Pack takes, what it packs unpacks to the same frames.
func FuzzPack(f *testing.F) {
	b, co := fragment(16, 2, [][]byte{tone(300, 2, 16, 1), tone(200, 2, 16, 2)})
	f.Add(b, co)
	b, co = fragment(24, 1, [][]byte{tone(300, 1, 24, 1)})
	f.Add(b, co)
	f.Fuzz(func(t *testing.T, payload []byte, co uint32) {
		packed, pco, ok, err := Pack(payload, co)
		if err != nil || !ok {
			return
		}
		got, _, err := Unpack(nil, packed, pco)
		if err != nil {
			t.Fatalf("Unpack of what Pack made: %v", err)
		}
		want, have := frames(t, payload), frames(t, got)
		if len(want) != len(have) {
			t.Fatalf("%d frames back, %d put", len(have), len(want))
		}
		for i := range want {
			if !bytes.Equal(want[i].Data, have[i].Data) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}

// benchFragment is 10 s of 48 kHz 16-bit stereo in 20 ms blocks (ffmpeg's
// usual), as ingest keeps it.
func benchFragment() ([]byte, uint32) {
	var audio [][]byte
	for i := range 500 {
		audio = append(audio, tone(960, 2, 16, uint64(i)))
	}
	return fragment(16, 2, audio)
}

// BenchmarkPack: the ingester's cost per fragment; b.N fragments of 10 s.
func BenchmarkPack(b *testing.B) {
	frag, co := benchFragment()
	b.SetBytes(int64(len(frag)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, err := Pack(frag, co); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(10*float64(b.N)/b.Elapsed().Seconds(), "×realtime")
}

// BenchmarkUnpack: a reader's cost per fragment.
func BenchmarkUnpack(b *testing.B) {
	frag, co := benchFragment()
	packed, pco, _, _ := Pack(frag, co)
	b.SetBytes(int64(len(frag)))
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		var err error
		if dst, _, err = Unpack(dst[:0], packed, pco); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(10*float64(b.N)/b.Elapsed().Seconds(), "×realtime")
}
