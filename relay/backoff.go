package relay

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay before reconnect attempt n (0-based): exponential
// from min to max with jitter in [d/2, d), so that edges restarted together
// do not reconnect to the broker in lockstep.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return time.Duration(half + rand.Int64N(half))
}
