package signals

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// refSampleTime is the definition of SampleTime in exact rational arithmetic:
// start + round_half_away(i × 10⁹ / rate), with ok false when it leaves int64.
func refSampleTime(rate float64, start int64, i int64) (int64, bool) {
	x := new(big.Rat).SetInt64(i)
	x.Mul(x, big.NewRat(1e9, 1))
	x.Quo(x, new(big.Rat).SetFloat64(rate))
	neg := x.Sign() < 0
	x.Abs(x)
	x.Add(x, big.NewRat(1, 2))
	off := new(big.Int).Quo(x.Num(), x.Denom()) // floor(|x| + ½)
	if neg {
		off.Neg(off)
	}
	off.Add(off, big.NewInt(start))
	return off.Int64(), off.IsInt64()
}

var testRates = []float64{25600, 44100, 48000, 1, 0.1, 1.0 / 3, 12.34, 2.5e6, MaxSampleRate, MinSampleRate, 1.0 / 86400}

func TestSampleTimeExact(t *testing.T) {
	indexes := []int64{0, 1, 2, 3, 7, 1000, 2559, 2560, 44099, 44100, 1e6 + 7, 1e9, 1e9 + 1, 1 << 40, 1<<53 + 1, math.MaxInt64,
		-1, -2, -2560, -1e9, math.MinInt64}
	starts := []int64{0, 1_700_000_000_123_456_789, -1_000_000_007, math.MaxInt64 - 10, math.MinInt64 + 10}
	for _, rate := range testRates {
		d := &Scalar{SampleRate: rate, SampleType: Float32, Channels: []Channel{{"a", ""}}}
		for _, start := range starts {
			for _, i := range indexes {
				if int64(int(i)) != i {
					continue // 32-bit int
				}
				want, ok := refSampleTime(rate, start, i)
				if !ok {
					want = math.MaxInt64
					if i < 0 {
						want = math.MinInt64
					}
				}
				if got := d.SampleTime(start, int(i)); got != want {
					t.Errorf("rate %v: SampleTime(%d, %d) = %d, want %d", rate, start, i, got, want)
				}
			}
		}
	}
}

// Ties round away from zero: at 25.6 kHz the period is exactly 39062.5 ns.
func TestSampleTimeRoundsHalfAway(t *testing.T) {
	d := vib3()
	for i, want := range map[int]int64{1: 39063, 2: 78125, 3: 117188, -1: -39063, -3: -117188} {
		if got := d.SampleTime(0, i); got != want {
			t.Errorf("SampleTime(0, %d) = %d, want %d", i, got, want)
		}
	}
}

// A producer stamps every block from a running index; the test walks 10⁹
// samples in blocks of varying size and checks that (1) every block start is the
// exact time of its index, so nothing drifts, (2) consecutive blocks are
// Contiguous, and (3) a reader that knows only a block's start is within 1 ns of
// the producer's sample times.
func TestSampleTimeContiguity(t *testing.T) {
	const total = 1_000_000_000
	tests := []struct {
		name string
		rate float64
		t0   int64 // chosen so that t0 + 10⁹ samples fits in int64
	}{
		{"25.6kHz", 25600, 1_700_000_000_123_456_789},
		{"44.1kHz", 44100, 1_700_000_000_123_456_789},
		{"1Hz", 1, 1_700_000_000_123_456_789},
		{"0.1Hz", 0.1, -5_000_000_000_000_000_000}, // 10⁹ samples span 317 years
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Scalar{SampleRate: tt.rate, SampleType: Float32, Channels: []Channel{{"a", ""}}}
			rng := rand.New(rand.NewPCG(1, uint64(tt.rate*10)))
			var (
				idx       int // the producer's running index
				prevStart int64
				prevN     int
				chained   = tt.t0 // what a producer that chains block starts would stamp
				blocks    int
			)
			for idx < total {
				n := min(1+rng.IntN(5120), total-idx)
				start := d.SampleTime(tt.t0, idx)
				if blocks%997 == 0 {
					if want, _ := refSampleTime(tt.rate, tt.t0, int64(idx)); start != want {
						t.Fatalf("block %d: start %d, exact %d", blocks, start, want)
					}
				}
				if blocks > 0 && !d.Contiguous(prevStart, prevN, start) {
					t.Fatalf("block %d at index %d: start %d not contiguous with %d + %d samples (%d)",
						blocks, idx, start, prevStart, prevN, d.SampleTime(prevStart, prevN))
				}
				for _, j := range []int{1, n / 2, n - 1} {
					reader, producer := d.SampleTime(start, j), d.SampleTime(tt.t0, idx+j)
					if diff := reader - producer; diff < -1 || diff > 1 {
						t.Fatalf("block %d sample %d: reader %d, producer %d", blocks, j, reader, producer)
					}
				}
				prevStart, prevN = start, n
				chained = d.SampleTime(chained, n)
				idx += n
				blocks++
			}
			end := d.SampleTime(tt.t0, idx)
			if want, _ := refSampleTime(tt.rate, tt.t0, total); end != want {
				t.Fatalf("end %d, exact %d", end, want)
			}
			t.Logf("%d blocks; chaining block starts would have drifted %d ns", blocks, chained-end)
		})
	}
}

// The claim in the package documentation: deriving each block's start from the
// previous one drifts about 150 µs over 10⁹ samples of 44.1 kHz in 2560-sample
// blocks, which is why producers keep a running index.
func TestChainedStartsDrift(t *testing.T) {
	d := &Scalar{SampleRate: 44100, SampleType: Float32, Channels: []Channel{{"a", ""}}}
	const n, blocks = 2560, 1_000_000_000 / 2560
	chained := int64(0)
	for range blocks {
		chained = d.SampleTime(chained, n)
	}
	drift := chained - d.SampleTime(0, n*blocks)
	if drift < 140_000 || drift > 160_000 {
		t.Errorf("chained starts drifted %d ns, the documentation says about 150 µs", drift)
	}
}

func TestSampleTimesMatchesSampleTime(t *testing.T) {
	starts := []int64{0, 1_700_000_000_123_456_789, -7, math.MaxInt64 - 1_000_000_000, math.MinInt64}
	for _, rate := range testRates {
		d := &Scalar{SampleRate: rate, SampleType: Int16, Channels: []Channel{{"a", ""}}}
		for _, start := range starts {
			for _, n := range []int{0, 1, 2, 3, 2560, 44101} {
				prefix := []int64{42, 43}
				got := d.SampleTimes(prefix[:2:2], start, n)
				if len(got) != 2+n || got[0] != 42 || got[1] != 43 {
					t.Fatalf("rate %v start %d n %d: prefix lost or wrong length %d", rate, start, n, len(got))
				}
				for i, g := range got[2:] {
					if want := d.SampleTime(start, i); g != want {
						t.Fatalf("rate %v start %d: SampleTimes[%d] = %d, SampleTime = %d", rate, start, i, g, want)
					}
				}
			}
		}
	}
}

func TestSampleTimeInvalidRate(t *testing.T) {
	for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), 1e300, 1e-300, 2e9} {
		d := &Scalar{SampleRate: rate}
		if got := d.SampleTime(5, 0); got != 5 && !math.IsInf(rate, 0) {
			t.Errorf("rate %v: SampleTime(5, 0) = %d", rate, got)
		}
		for _, i := range []int{1, -1, math.MaxInt, math.MinInt} {
			_ = d.SampleTime(5, i) // must not panic
		}
		_ = d.SampleTimes(nil, 5, 10)
		_ = d.Contiguous(0, 10, 100)
	}
}

func TestContiguous(t *testing.T) {
	d := &Scalar{SampleRate: 44100, SampleType: Float32, Channels: []Channel{{"a", ""}}}
	const start = 1_700_000_000_000_000_000
	end := d.SampleTime(start, 2560)
	for _, tt := range []struct {
		next int64
		want bool
	}{{end, true}, {end + 1, true}, {end - 1, true}, {end + 2, false}, {end - 2, false}, {start, false}, {math.MaxInt64, false}} {
		if got := d.Contiguous(start, 2560, tt.next); got != tt.want {
			t.Errorf("Contiguous(next=end%+d) = %v", tt.next-end, got)
		}
	}
	// Near the end of time the expected start saturates; neither side overflows.
	if !d.Contiguous(math.MaxInt64-10, 2560, math.MaxInt64) || d.Contiguous(math.MinInt64, 1, math.MaxInt64) {
		t.Error("Contiguous at the int64 bounds")
	}
}

func BenchmarkSampleTime(b *testing.B) {
	d := &Scalar{SampleRate: 44100, SampleType: Float32, Channels: []Channel{{"a", ""}}}
	var sink int64
	for i := 0; b.Loop(); i++ {
		sink += d.SampleTime(1_700_000_000_000_000_000, i)
	}
	_ = sink
}

func BenchmarkSampleTimes(b *testing.B) {
	d := &Scalar{SampleRate: 44100, SampleType: Float32, Channels: []Channel{{"a", ""}}}
	dst := make([]int64, 0, 2560)
	b.SetBytes(2560 * 8)
	for b.Loop() {
		dst = d.SampleTimes(dst[:0], 1_700_000_000_000_000_000, 2560)
	}
}
