package codecs

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/signals"
)

// The benchmark block: 100 ms of 3-axis vibration at 25.6 kHz, float32.
const (
	benchChannels = 3
	benchN        = 2560
	benchBytes    = benchChannels * benchN * 4 // raw sample bytes per frame
)

func benchFrame() []byte {
	desc := testDesc(signals.Float32, benchChannels)
	frame, err := AppendScalarFrame(nil, desc, testSamples(signals.Float32, benchChannels, benchN, 1), Plain)
	if err != nil {
		panic(err)
	}
	return frame
}

// reportVsPeer times the standard library's decoder of the same body
// (encoding/binary.Decode into a []float32) in the same process for about
// 200 ms, and reports its time per frame over ours: above 1 means faster than
// the peer. (testing.Benchmark cannot run inside a benchmark.)
func reportVsPeer(b *testing.B, body []byte) {
	b.StopTimer()
	ours := float64(b.Elapsed()) / float64(b.N)
	dst := make([]float32, benchChannels*benchN)
	var n int
	start := time.Now()
	for ; time.Since(start) < 200*time.Millisecond; n++ {
		if _, err := binary.Decode(body, binary.LittleEndian, dst); err != nil {
			b.Fatal(err)
		}
	}
	peer := float64(time.Since(start)) / float64(n)
	b.ReportMetric(peer/ours, "x_binary.Decode")
}

// BenchmarkPlainDecode reports MB/s of raw samples decoded from a frame, for
// the whole frame path, the codec alone and the portable (big-endian host)
// loop, against encoding/binary.Decode and a bare memmove (the ceiling).
func BenchmarkPlainDecode(b *testing.B) {
	desc := testDesc(signals.Float32, benchChannels)
	frame := benchFrame()
	body := frame[ScalarHeaderSize:]
	c, _ := Lookup(Plain)

	b.Run("frame", func(b *testing.B) {
		s := &signals.Samples{}
		b.SetBytes(benchBytes)
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeScalarFrame(frame, desc, s); err != nil {
				b.Fatal(err)
			}
		}
		reportVsPeer(b, body)
	})
	b.Run("codec", func(b *testing.B) {
		s := &signals.Samples{}
		b.SetBytes(benchBytes)
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Decode(body, desc, benchN, s); err != nil {
				b.Fatal(err)
			}
		}
		reportVsPeer(b, body)
	})
	b.Run("portable", func(b *testing.B) {
		dst := make([]float32, benchChannels*benchN)
		b.SetBytes(benchBytes)
		b.ReportAllocs()
		for b.Loop() {
			decodeLEPortable(dst, body)
		}
		reportVsPeer(b, body)
	})
	b.Run("peer=binary.Decode", func(b *testing.B) {
		dst := make([]float32, benchChannels*benchN)
		b.SetBytes(benchBytes)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := binary.Decode(body, binary.LittleEndian, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("peer=memmove", func(b *testing.B) {
		dst := make([]byte, benchBytes)
		b.SetBytes(benchBytes)
		for b.Loop() {
			copy(dst, body)
		}
	})
}

// BenchmarkPlainEncode reports MB/s of raw samples encoded into a reused
// buffer, with the frame size per frame beside it.
func BenchmarkPlainEncode(b *testing.B) {
	desc := testDesc(signals.Float32, benchChannels)
	s := testSamples(signals.Float32, benchChannels, benchN, 1)
	buf := make([]byte, 0, ScalarHeaderSize+benchBytes)
	b.Run("frame", func(b *testing.B) {
		b.SetBytes(benchBytes)
		b.ReportAllocs()
		var err error
		for b.Loop() {
			if buf, err = AppendScalarFrame(buf[:0], desc, s, Plain); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/frame")
	})
	b.Run("portable", func(b *testing.B) {
		b.SetBytes(benchBytes)
		b.ReportAllocs()
		for b.Loop() {
			buf = appendLEPortable(buf[:0], s.F32)
		}
	})
}
