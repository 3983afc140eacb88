package sdk_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

func TestSampleWriter(t *testing.T) {
	r := newRig(t, false)
	desc := &signals.Scalar{SampleRate: 44100, SampleType: signals.Int16, Channels: []signals.Channel{{Name: "l"}, {Name: "r"}}}
	track, err := sdk.ScalarTrack(2, "audio", desc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{}); err == nil {
		t.Fatal("a writer for a track the producer does not have")
	}
	w, err := sdk.NewSampleWriter(p, 2, desc, sdk.SampleWriterOptions{Origin: t0, FrameSamples: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.WriteFloat32(ctx, []float32{1, 2}); err == nil || !strings.Contains(err.Error(), "int16") {
		t.Fatalf("wrong type: %v", err)
	}
	if err := w.WriteInt16(ctx, []int16{1, 2, 3}); err == nil {
		t.Fatal("3 values accepted for 2 channels")
	}
	// 2.5 s in uneven writes: frames must be 1000 samples, contiguous, exact.
	var k int16 // values wrap around, as int16 does
	for written, step := 0, 0; written < 110250; step++ {
		n := min(1+(step*37)%777, 110250-written)
		v := make([]int16, 2*n)
		for i := range v {
			v[i] = k
			k++
		}
		if err := w.WriteInt16(ctx, v); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	frags := flushToBus(t, r, p, 111) // 110 full frames and one of 250 samples
	var s signals.Samples
	next, want := 0, int16(0)
	for _, f := range frags {
		for _, b := range f.blocks {
			if err := codecs.DecodeScalarFrame(b.Data, desc, &s); err != nil {
				t.Fatal(err)
			}
			if s.Start != desc.SampleTime(t0, next) {
				t.Fatalf("frame at sample %d starts at %d", next, s.Start)
			}
			for _, v := range s.I16 {
				if v != want {
					t.Fatalf("sample value %d, want %d", v, want)
				}
				want++
			}
			next += s.N
		}
	}
	if next != 110250 || w.Written() != 110250 {
		t.Fatalf("%d samples in frames, %d written", next, w.Written())
	}
}

func TestDefaultFrameSamples(t *testing.T) {
	for _, tt := range []struct {
		rate float64
		want int
	}{{25600, 2560}, {1000, 100}, {500, 100}, {10, 100}, {1, 10}, {0.01, 1}} {
		if got := sdk.DefaultFrameSamples(tt.rate); got != tt.want {
			t.Errorf("DefaultFrameSamples(%g) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

// SplitAnnexB never panics on arbitrary bytes, and the presentation order it
// derives is a permutation of the access units (or unknown for all).
func FuzzSplitAnnexB(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x64, 0, 0x1e, 0xac, 0, 0, 1, 0x68, 0xee, 0x3c, 0x80, 0, 0, 1, 0x65, 0x88, 0x84})
	f.Add([]byte{0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a})
	for _, name := range []string{"h264-bframes.h264", "h264-baseline.h264"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		aus, avcC, err := sdk.SplitAnnexB(b)
		if err != nil {
			return
		}
		if len(avcC) < 7 {
			t.Fatalf("avcC of %d bytes", len(avcC))
		}
		seen := make([]bool, len(aus))
		for i, au := range aus {
			if len(au.Data) < 5 {
				t.Fatalf("access unit of %d bytes", len(au.Data))
			}
			switch {
			case au.Order == -1 && aus[0].Order == -1:
			case au.Order < 0 || au.Order >= len(aus) || seen[au.Order]:
				t.Fatalf("access unit %d has Order %d: not a permutation of %d", i, au.Order, len(aus))
			default:
				seen[au.Order] = true
			}
		}
	})
}

// A slow sensor's short frames are stored compact (codec Compact2) when they
// start on a whole millisecond — smaller, and read back exactly with their
// block time — and as numeric frames when they do not, since a live
// message's exact timestamp and the MKV block's whole milliseconds would then
// give a compact frame two different starts. PutSamples does as the
// SampleWriter does; a long frame is never tried compact.
func TestShortFramesAreCompact(t *testing.T) {
	r := newRig(t, false)
	desc := &signals.Scalar{SampleRate: 1, SampleType: signals.Int16, Channels: []signals.Channel{{Name: "pressure", Unit: "count"}}}
	fast := &signals.Scalar{SampleRate: 10, SampleType: signals.Int16, Channels: desc.Channels}
	var tracks []sdk.Track
	for n := uint64(1); n <= 3; n++ {
		d := desc
		if n == 3 {
			d = fast
		}
		track, err := sdk.ScalarTrack(n, "p", d)
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, track)
	}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: tracks, MinFragmentDuration: 20 * time.Second, MaxFragmentDuration: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	value := func(i int) int16 { return int16(12000 + i/7 + (i*i)%3) } // a slowly drifting level
	origins := map[uint64]int64{1: t0, 2: t0 + 1234}                   // track 2 starts off the millisecond
	var writers []*sdk.SampleWriter
	for track := uint64(1); track <= 2; track++ {
		w, err := sdk.NewSampleWriter(p, track, desc, sdk.SampleWriterOptions{Origin: origins[track]})
		if err != nil {
			t.Fatal(err)
		}
		writers = append(writers, w)
	}
	for i := range 100 { // the tracks advance together
		for _, w := range writers {
			if err := w.WriteInt16(ctx, []int16{value(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var s signals.Samples
	s.Reset(signals.Int16, 1, 10)
	for i := range 10 {
		s.I16[i] = value(i)
	}
	s.Start = t0 + 100*int64(time.Second) // after the writers' samples: the tracks advance together
	if err := p.PutSamples(ctx, 3, fast, &s, 0); err != nil {
		t.Fatal(err)
	}
	var long signals.Samples // one sample past compactFrameSamples, at 10 Hz: numeric
	long.Reset(signals.Int16, 1, 129)
	for i := range 129 {
		long.I16[i] = value(10 + i)
	}
	long.Start = fast.SampleTime(s.Start, 10)
	if err := p.PutSamples(ctx, 3, fast, &long, 0); err != nil {
		t.Fatal(err)
	}
	frags := flushToBus(t, r, p, 22) // ten frames of ten samples on tracks 1 and 2, two on 3
	bytes, next := map[uint64]int{}, map[uint64]int{}
	for _, f := range frags {
		for i, b := range f.blocks {
			d := desc
			if b.Track == 3 {
				d = fast
			}
			var got signals.Samples
			if err := codecs.DecodeScalarFrameAt(b.Data, f.times[i], d, &got); err != nil {
				t.Fatalf("track %d: %v", b.Track, err)
			}
			compact := b.Data[0] == byte(codecs.Compact2)
			if wantCompact := b.Track != 2 && got.N <= 128; compact != wantCompact {
				t.Errorf("track %d: a frame of %d samples of codec %d; compact: %v, want %v", b.Track, got.N, b.Data[0], compact, wantCompact)
			}
			origin := origins[b.Track]
			if b.Track == 3 {
				origin = t0 + 100*int64(time.Second)
			}
			if want := d.SampleTime(origin, next[b.Track]); got.Start != want {
				t.Fatalf("track %d: frame at sample %d starts at %d, want %d", b.Track, next[b.Track], got.Start, want)
			}
			for k, v := range got.I16 {
				if want := value(next[b.Track] + k); v != want {
					t.Fatalf("track %d: sample %d is %d, want %d", b.Track, next[b.Track]+k, v, want)
				}
			}
			next[b.Track] += got.N
			if got.N == 10 {
				bytes[b.Track] += len(b.Data)
			}
		}
	}
	if next[1] != 100 || next[2] != 100 || next[3] != 139 {
		t.Fatalf("samples per track: %v", next)
	}
	t.Logf("100 samples in frames of 10: %d bytes compact, %d numeric", bytes[1], bytes[2])
	if bytes[1]*2 > bytes[2] {
		t.Errorf("compact frames take %d bytes, numeric ones %d: want at most half", bytes[1], bytes[2])
	}
}

// flushToBus closes p's open fragment (a rig without an ingester never says
// PERSISTED, so Flush is cut short) and waits until the bus holds frames
// frames; it returns the bus's fragments.
func flushToBus(t *testing.T, r *rig, p *sdk.Producer, frames int) []parsedFragment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_ = p.Flush(ctx)
	cancel()
	var frags []parsedFragment
	eventually(t, 5*time.Second, "fragments", func() bool {
		frags = r.busFragments()
		n := 0
		for _, f := range frags {
			n += len(f.blocks)
		}
		return n == frames
	})
	return frags
}

// A fast track's short frames stay numeric: compact ones decode at a third
// of the speed, which a 1 kHz IMU's volume would feel.
func TestFastTracksStayNumeric(t *testing.T) {
	r := newRig(t, false)
	desc := &signals.Scalar{SampleRate: 1000, SampleType: signals.Int16, Channels: []signals.Channel{{Name: "ax"}, {Name: "ay"}, {Name: "az"}}}
	track, err := sdk.ScalarTrack(1, "imu", desc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sdk.NewProducer(context.Background(), r.client(), sdk.ProducerConfig{Stream: "s", Tracks: []sdk.Track{track}})
	if err != nil {
		t.Fatal(err)
	}
	var s signals.Samples
	s.Reset(signals.Int16, 3, 100)
	for i := range s.I16 {
		s.I16[i] = int16(12000 + i/21 + (i*i)%3) // a compact frame is the smaller here
	}
	s.Start = t0
	if err := p.PutSamples(context.Background(), 1, desc, &s, 0); err != nil {
		t.Fatal(err)
	}
	frags := flushToBus(t, r, p, 1)
	if b := frags[0].blocks[0]; b.Data[0] == byte(codecs.Compact2) {
		t.Fatalf("a 1 kHz frame of 100 samples was made compact")
	}
}
