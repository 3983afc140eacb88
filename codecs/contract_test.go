package codecs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// TestCodecContract runs every registered codec through what the Codec
// interface promises, so a new codec is held to it by registering.
func TestCodecContract(t *testing.T) {
	for _, c := range Registered() {
		t.Run(c.Name(), func(t *testing.T) { testCodecContract(t, c) })
	}
}

func testCodecContract(t *testing.T, c Codec) {
	for _, st := range signals.SampleTypes() {
		for _, shape := range []struct{ channels, n int }{{1, 0}, {1, 1}, {3, 2560}, {5, 17}} {
			t.Run(fmt.Sprintf("%s/%dx%d", st, shape.channels, shape.n), func(t *testing.T) {
				desc := testDesc(st, shape.channels)
				in := testSamples(st, shape.channels, shape.n, 3)

				// Round trip, bit for bit, appending after existing bytes.
				prefix := []byte("prefix")
				body, err := c.AppendEncoded(append([]byte(nil), prefix...), in)
				if err != nil {
					t.Fatal(err)
				}
				if string(body[:len(prefix)]) != string(prefix) {
					t.Fatal("AppendEncoded overwrote dst")
				}
				body = body[len(prefix):]
				out := &signals.Samples{Start: in.Start}
				if err := c.Decode(body, desc, shape.n, out); err != nil {
					t.Fatal(err)
				}
				sameSamples(t, out, in)

				// Decoding into a used Samples of another shape gives the same.
				reused := testSamples(signals.Float64, 9, 100, 4)
				reused.Start = in.Start
				if err := c.Decode(body, desc, shape.n, reused); err != nil {
					t.Fatal(err)
				}
				sameSamples(t, reused, in)

				// Every truncation is an error, never a panic: each cut of the
				// first and last 512 bytes (headers, tables, the tail of the
				// bit stream), and 256 cuts spread over a longer middle —
				// decoding every cut of a long body is quadratic, and under
				// the race detector took minutes.
				for _, cut := range truncations(len(body)) {
					if err := c.Decode(body[:cut], desc, shape.n, out); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("body cut to %d of %d bytes: %v", cut, len(body), err)
					}
				}
				// Flipped bytes may decode or fail, but never panic.
				for i := 0; i < len(body); i += 1 + len(body)/64 {
					bad := append([]byte(nil), body...)
					bad[i] ^= 0xa5
					_ = c.Decode(bad, desc, shape.n, out)
				}
				// A forged sample count fails without allocating for it.
				fresh := &signals.Samples{}
				if n := allocatedBytes(func() { _ = c.Decode(body, desc, 1<<30, fresh) }); n > 4096 {
					t.Errorf("a forged count of 2³⁰ samples allocated %d bytes", n)
				}
			})
		}
	}
}

// TestCodecFamilies round-trips every registered codec, and Auto, on every
// input family for every sample type, bit for bit, through the codec and
// through a frame: the constant, step and noisy signals sensors send besides
// the random bits TestCodecContract uses.
func TestCodecFamilies(t *testing.T) {
	var ids []ID
	for _, c := range Registered() {
		ids = append(ids, c.ID())
	}
	ids = append(ids, Auto)
	shapes := []struct{ channels, n int }{{1, 1}, {2, 7}, {3, 2560}, {1, 20000}} // 20000: two token blocks
	for _, id := range ids {
		for _, st := range signals.SampleTypes() {
			for _, family := range inputFamilies {
				for _, shape := range shapes {
					t.Run(fmt.Sprintf("%s/%s/%s/%dx%d", id, st, family, shape.channels, shape.n), func(t *testing.T) {
						desc := testDesc(st, shape.channels)
						in := familySamples(family, st, shape.channels, shape.n)
						if id != Auto {
							c, err := Lookup(id)
							if err != nil {
								t.Fatal(err)
							}
							body, err := c.AppendEncoded(nil, in)
							if err != nil {
								t.Fatal(err)
							}
							out := &signals.Samples{Start: in.Start}
							if err := c.Decode(body, desc, shape.n, out); err != nil {
								t.Fatal(err)
							}
							sameSamples(t, out, in)
						}
						frame, err := AppendScalarFrame(nil, desc, in, id)
						if err != nil {
							t.Fatal(err)
						}
						out := &signals.Samples{}
						if err := DecodeScalarFrameAt(frame, floorMillisecond(in.Start), desc, out); err != nil {
							t.Fatal(err)
						}
						sameSamples(t, out, in)
					})
				}
			}
		}
	}
}

// truncations are the lengths a body of n bytes is cut to in the contract:
// every one for short bodies; for long ones every one near both ends and a
// spread of 256 in between.
func truncations(n int) []int {
	const edge, spread = 512, 256
	var out []int
	for cut := 0; cut < n; cut++ {
		if cut < edge || cut >= n-edge {
			out = append(out, cut)
		}
	}
	if mid := n - 2*edge; mid > 0 {
		for k := 0; k < spread; k++ {
			out = append(out, edge+k*mid/spread)
		}
	}
	return out
}
