package replicate

import (
	"context"

	"golang.org/x/time/rate"
)

// rateCap holds the replicator's sending to a number of bytes per second,
// over all streams together: the uplink is one link, whatever is on it.
// nil is no cap.
type rateCap struct {
	lim   *rate.Limiter
	burst int
}

// newRateCap caps at bytesPerSecond (≤ 0: no cap, nil). The bucket holds a
// twentieth of a second's bytes (at least 16 KiB), so that the rate holds
// over any second and a fragment larger than the bucket is paced in pieces
// rather than sent at line rate and paid for afterwards.
func newRateCap(bytesPerSecond int64) *rateCap {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := int(max(bytesPerSecond/20, 16<<10))
	return &rateCap{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), burst), burst: burst}
}

// wait blocks until n more bytes may be sent, or ctx ends.
func (c *rateCap) wait(ctx context.Context, n int) error {
	if c == nil {
		return nil
	}
	for n > 0 {
		k := min(n, c.burst)
		if err := c.lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
