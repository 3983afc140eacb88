package codecs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/signals"
)

// testTone is audio-like PCM: a few decaying partials, a noise floor and a
// click, in [-1, 1) — enough structure for the predictor to have something to
// find, and the edges (clipping, silence) that break predictors.
func testTone(channels, n int, seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]float64, channels)
	for c := range out {
		out[c] = make([]float64, n)
		f := 0.01 + 0.05*rng.Float64()
		for i := range n {
			t := float64(i)
			v := 0.5*math.Sin(f*t)*math.Exp(-t/20000) + 0.2*math.Sin(3.1*f*t+float64(c)) + 0.01*rng.NormFloat64()
			if i == n/3 {
				v = 0.99 // a click
			}
			if i > n*3/4 && i < n*3/4+50 {
				v = 0 // a gap of silence
			}
			out[c][i] = min(max(v, -1), 1-1.0/(1<<23))
		}
	}
	return out
}

// pcmBytes renders testTone as PCM of type t.
func pcmBytes(t PCMType, tone [][]float64) []byte {
	var b []byte
	for i := range tone[0] {
		for c := range tone {
			v := tone[c][i]
			switch t {
			case PCMInt16:
				b = binary.LittleEndian.AppendUint16(b, uint16(int16(v*32767)))
			case PCMInt24:
				k := uint32(int32(v * (1<<23 - 1)))
				b = append(b, byte(k), byte(k>>8), byte(k>>16))
			case PCMInt32:
				b = binary.LittleEndian.AppendUint32(b, uint32(int32(v*(1<<23))<<8)) // 24-bit audio in 32: wasted bits
			case PCMFloat32:
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(math.Round(v*32767)/32768)))
			case PCMFloat64:
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
			}
		}
	}
	return b
}

var pcmTypes = []PCMType{PCMInt16, PCMInt24, PCMInt32, PCMFloat32, PCMFloat64}

// Every PCM type and channel count round-trips to the very bytes, for frame
// lengths from none to a second, and integer audio compresses.
func TestAudioFrameRoundTrip(t *testing.T) {
	for _, effort := range []AudioEffort{AudioBest, AudioFast} {
		for _, pt := range pcmTypes {
			for _, ch := range []int{1, 2, 3} {
				for _, n := range []int{0, 1, 2, 31, 33, 960, 4800, 48000} {
					if raceEnabled && n > 4800 {
						continue
					}
					t.Run(fmt.Sprintf("effort%d/type%d/%dch/%d", effort, pt, ch, n), func(t *testing.T) { testAudioFrameRoundTrip(t, effort, pt, ch, n) })
				}
			}
		}
	}
}

func testAudioFrameRoundTrip(t *testing.T, effort AudioEffort, pt PCMType, ch, n int) {
	pcm := pcmBytes(pt, testTone(ch, n, uint64(n+ch)))
	f := PCMFormat{Type: pt, Channels: ch}
	frame, err := EncodeAudioFrameEffort([]byte("pre"), pcm, f, effort)
	if err != nil {
		t.Fatal(err)
	}
	frame = frame[3:]
	got, gf, err := DecodeAudioFrame([]byte("x"), frame)
	if err != nil {
		t.Fatal(err)
	}
	if gf != f || !bytes.Equal(got[1:], pcm) {
		t.Fatalf("decoded %d bytes (format %+v), want the %d bytes given (%+v)", len(got)-1, gf, len(pcm), f)
	}
	// The tone's noise floor is 1 % of full scale: some 7 bits of
	// 16 are noise, 17 of 24.
	if limit := map[PCMType]float64{PCMInt16: 0.75, PCMInt24: 0.85, PCMInt32: 0.7, PCMFloat32: 0.75, PCMFloat64: 1}[pt]; n >= 960 && float64(len(frame)) > limit*float64(len(pcm)) {
		t.Errorf("%d bytes of PCM took %d", len(pcm), len(frame))
	}
}

// Edge signals: full-scale square waves and random bits (which the codec
// must store verbatim rather than grow), constant and alternating extremes,
// floats off any grid and float specials.
func TestAudioFrameEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := map[string]struct {
		t   PCMType
		ch  int
		gen func(i int) []byte
	}{
		"int16 extremes": {PCMInt16, 2, func(i int) []byte {
			v := []int16{math.MinInt16, math.MaxInt16}[i/7%2]
			return binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, uint16(v)), uint16(-v-1))
		}},
		"int32 extremes": {PCMInt32, 2, func(i int) []byte {
			v := []int32{math.MinInt32, math.MaxInt32}[i%2]
			return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(v)), uint32(^v))
		}},
		"int24 extremes": {PCMInt24, 1, func(i int) []byte {
			return [][]byte{{0, 0, 0x80}, {0xff, 0xff, 0x7f}, {0xff, 0xff, 0xff}}[i%3]
		}},
		"random int16": {PCMInt16, 1, func(int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(rng.Uint32())) }},
		"random int32": {PCMInt32, 2, func(int) []byte { return binary.LittleEndian.AppendUint64(nil, rng.Uint64()) }},
		"silence":      {PCMInt16, 2, func(int) []byte { return make([]byte, 4) }},
		"float32 off grid": {PCMFloat32, 1, func(i int) []byte {
			return binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.Sin(float64(i)/10))))
		}},
		"float32 specials": {PCMFloat32, 1, func(i int) []byte {
			return binary.LittleEndian.AppendUint32(nil, []uint32{0x7fc00001, 0x80000000, 0x7f800000, 0x3f000000}[i%4])
		}},
		"float64 grid with -0": {PCMFloat64, 1, func(i int) []byte {
			v := float64(i%100) / 128
			if i == 50 {
				v = math.Copysign(0, -1)
			}
			return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var pcm []byte
			for i := range 3000 {
				pcm = append(pcm, tc.gen(i)...)
			}
			frame, err := EncodeAudioFrame(nil, pcm, PCMFormat{Type: tc.t, Channels: tc.ch})
			if err != nil {
				t.Fatal(err)
			}
			if len(frame) > len(pcm)+16 {
				t.Errorf("%d bytes of PCM grew to %d", len(pcm), len(frame))
			}
			got, _, err := DecodeAudioFrame(nil, frame)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pcm) {
				t.Fatal("decoded PCM differs")
			}
		})
	}
}

// A truncated or damaged frame is an error wrapping ErrCorrupt or decodes,
// never a panic; a forged sample count allocates nothing.
func TestAudioFrameHostile(t *testing.T) {
	pcm := pcmBytes(PCMInt16, testTone(2, 2000, 3))
	frame, err := EncodeAudioFrame(nil, pcm, PCMFormat{Type: PCMInt16, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range truncations(len(frame)) {
		if _, _, err := DecodeAudioFrame(nil, frame[:cut]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("frame cut to %d of %d bytes: %v", cut, len(frame), err)
		}
	}
	for i := 0; i < len(frame); i += 1 + len(frame)/1024 {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 0x5a
		_, _, _ = DecodeAudioFrame(nil, bad)
	}
	forged := append([]byte{byte(LosslessAudio), byte(PCMInt16), 2}, binary.AppendUvarint(nil, 1<<22)...)
	forged = append(forged, frame[4:]...)
	// Bounded by the input, not by the 16 MiB the forged count would take
	// (the race detector's own allocations push it past 4 KiB).
	if n := allocatedBytes(func() { _, _, _ = DecodeAudioFrame(nil, forged) }); n > 64<<10 {
		t.Errorf("a forged count of 2²² samples allocated %d bytes", n)
	}
	if _, _, err := DecodeAudioFrame(nil, forged); !errors.Is(err, ErrCorrupt) {
		t.Errorf("forged count: %v", err)
	}
	if _, err := EncodeAudioFrame(nil, pcm[:3], PCMFormat{Type: PCMInt16, Channels: 2}); err == nil {
		t.Error("3 bytes of 2-channel int16 PCM encoded")
	}
}

// A compressed audio frame queried through the audio Arrow decoder (with
// Frame.Codec set) gives the same rows as its PCM, on both paths.
func TestAudioArrowLossless(t *testing.T) {
	for _, st := range []signals.SampleType{signals.Int16, signals.Int32, signals.Float32} {
		t.Run(st.String(), func(t *testing.T) {
			a := &signals.Audio{SampleRate: 16000, SampleType: st, Channels: []string{"left", "right"}}
			pcm := pcmBytes(PCMType(st), testTone(2, 320, 5))
			frame, err := EncodeAudioFrame(nil, pcm, PCMFormatOf(a))
			if err != nil {
				t.Fatal(err)
			}
			r := TimeRange{Start: 1_002_000_000, End: 1_015_000_000}
			rows := func(f Frame) string {
				dec, err := NewArrowDecoder(a, ArrowOptions{})
				if err != nil {
					t.Fatal(err)
				}
				b := array.NewRecordBuilder(memory.DefaultAllocator, dec.Schema())
				defer b.Release()
				if _, err := dec.Append(b, f, r); err != nil {
					t.Fatal(err)
				}
				rec := b.NewRecordBatch()
				defer rec.Release()
				bd := dec.(BatchDecoder)
				bd.StartBatches(memory.DefaultAllocator, 1024)
				defer bd.Release()
				if _, err := bd.AppendToBatch(f, r); err != nil {
					t.Fatal(err)
				}
				rec2 := bd.NewRecordBatch()
				defer rec2.Release()
				if !array.RecordEqual(rec, rec2) {
					t.Fatal("batch and builder paths differ")
				}
				return fmt.Sprint(rec)
			}
			want := rows(Frame{Data: pcm, Time: 1_000_000_000})
			got := rows(Frame{Data: frame, Time: 1_000_000_000, Codec: LosslessAudio})
			if got != want {
				t.Fatalf("compressed frame gives\n%s\nwant\n%s", got, want)
			}
			mono := &signals.Audio{SampleRate: 16000, SampleType: st, Channels: []string{"m"}}
			dec, _ := NewArrowDecoder(mono, ArrowOptions{})
			b := array.NewRecordBuilder(memory.DefaultAllocator, dec.Schema())
			defer b.Release()
			if _, err := dec.Append(b, Frame{Data: frame, Codec: LosslessAudio}, TimeRange{All: true}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a stereo frame on a mono track: %v", err)
			}
		})
	}
}

// The range coder ends exactly where its bytes do, for any residuals.
func TestRangeCoderEnds(t *testing.T) {
	for seed := uint64(0); seed < 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		var e rangeEncoder
		e.init([]byte("xx"))
		var m residualModel
		m.reset(3)
		vals := make([]uint64, rng.IntN(300))
		for i := range vals {
			if seed%7 != 0 {
				vals[i] = uint64(rng.IntN(1 << uint(rng.IntN(40))))
			}
			m.encode(&e, vals[i])
		}
		out := e.finish()
		var d rangeDecoder
		d.init(out[2:])
		m.reset(3)
		for i := range vals {
			if u, ok := m.decode(&d); !ok || u != vals[i] {
				t.Fatalf("seed %d: value %d is %d, want %d", seed, i, u, vals[i])
			}
		}
		if !d.finished(0) {
			t.Fatalf("seed %d: the decoder ended at byte %d of %d, code %d", seed, d.pos, len(d.src), d.code)
		}
	}
}

// The golden audio frames pin the format: the encoder must still write them
// and the decoder must still read them. The real-speech excerpt (from
// alsa-utils' Front_Center.wav, 48 kHz mono, GPL) is in testdata/audio.
// Each golden has a frame that the encoder writes today (the file) and one
// that an earlier encoder wrote (the file's name without "_w2", written
// before the encoder costed its predictors with the range coder's own
// model): the format did not change, so those must still decode.
func TestAudioGolden(t *testing.T) {
	speech, err := os.ReadFile(filepath.Join("testdata", "audio", "front_center_48k_mono.s16"))
	if err != nil {
		t.Fatal(err)
	}
	goldens := []struct {
		file string
		pcm  []byte
		f    PCMFormat
	}{
		{"audio_int16_stereo_w2.hex", pcmBytes(PCMInt16, testTone(2, 200, 9)), PCMFormat{PCMInt16, 2}},
		{"audio_int24_mono_w2.hex", pcmBytes(PCMInt24, testTone(1, 100, 10)), PCMFormat{PCMInt24, 1}},
		{"audio_float32_stereo_w2.hex", pcmBytes(PCMFloat32, testTone(2, 100, 11)), PCMFormat{PCMFloat32, 2}},
		{"audio_speech_20ms_w2.hex", speech[48000 : 48000+960*2], PCMFormat{PCMInt16, 1}},
	}
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.file)
			got, err := EncodeAudioFrame(nil, g.pcm, g.f)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				var b bytes.Buffer
				fmt.Fprintf(&b, "# a lossless-audio frame (FORMAT.md, \"Audio frame\")\n# regenerate with: go test ./codecs -run AudioGolden -update\n")
				for at := 0; at < len(got); at += 32 {
					fmt.Fprintf(&b, "%x\n", got[at:min(at+32, len(got))])
				}
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := readHex(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("EncodeAudioFrame no longer writes the golden bytes")
			}
			pcm, _, err := DecodeAudioFrame(nil, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pcm, g.pcm) {
				t.Fatal("the golden frame no longer decodes to its PCM")
			}
			old, err := readHex(filepath.Join("testdata", "golden", strings.Replace(g.file, "_w2", "", 1)))
			if err != nil {
				t.Fatal(err)
			}
			if pcm, _, err = DecodeAudioFrame(nil, old); err != nil || !bytes.Equal(pcm, g.pcm) {
				t.Fatalf("the first encoder's golden frame no longer decodes to its PCM (%v)", err)
			}
		})
	}
}

// On the real speech excerpt the codec beats zstd by far (FLAC-8 is about
// 0.6 × zstd on it; the bench compares with FLAC itself).
func TestAudioSpeechSize(t *testing.T) {
	speech, err := os.ReadFile(filepath.Join("testdata", "audio", "front_center_48k_mono.s16"))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for at := 0; at < len(speech); at += 1920 {
		f, err := EncodeAudioFrame(nil, speech[at:min(at+1920, len(speech))], PCMFormat{PCMInt16, 1})
		if err != nil {
			t.Fatal(err)
		}
		total += len(f)
	}
	if r := float64(total) / float64(len(speech)); r > 0.5 {
		t.Errorf("speech in 20 ms frames: %.3f of its PCM", r)
	}
}

// Real speech comes back bit for bit in frames of every length the bench
// measures (20 ms, 100 ms, 1 s), mono and as a stereo pair (the speech and
// an echo of it 7 ms later at 3/4 level: a real signal in both channels, with
// the correlation that stereo modes look for).
func TestAudioRealRoundTrip(t *testing.T) {
	speech, err := os.ReadFile(filepath.Join("testdata", "audio", "front_center_48k_mono.s16"))
	if err != nil {
		t.Fatal(err)
	}
	n := len(speech) / 2
	stereo := make([]byte, 0, 4*n)
	for i := range n {
		l := int16(binary.LittleEndian.Uint16(speech[2*i:]))
		var r int16
		if j := i - 336; j >= 0 {
			r = int16(int32(int16(binary.LittleEndian.Uint16(speech[2*j:]))) * 3 / 4)
		}
		stereo = binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(stereo, uint16(l)), uint16(r))
	}
	for _, tc := range []struct {
		name string
		pcm  []byte
		ch   int
	}{{"mono", speech, 1}, {"stereo", stereo, 2}} {
		for _, ms := range []int{20, 100, 1000} {
			t.Run(fmt.Sprintf("%s/%dms", tc.name, ms), func(t *testing.T) {
				per := 48 * ms * 2 * tc.ch
				for at := 0; at < len(tc.pcm); at += per {
					pcm := tc.pcm[at:min(at+per, len(tc.pcm))]
					frame, err := EncodeAudioFrame(nil, pcm, PCMFormat{PCMInt16, tc.ch})
					if err != nil {
						t.Fatal(err)
					}
					got, _, err := DecodeAudioFrame(nil, frame)
					if err != nil || !bytes.Equal(got, pcm) {
						t.Fatalf("frame at byte %d: %v", at, err)
					}
				}
			})
		}
	}
}
