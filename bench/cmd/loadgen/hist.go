package main

import (
	"math"
	"sync/atomic"
	"time"
)

// hist is a lock-free latency histogram: 1 µs buckets up to 1 ms, then
// buckets 1% apart up to about 100 s. Quantiles are accurate to a bucket.
type hist struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
	n      atomic.Uint64
}

const (
	histLinear  = 1000 // 0..999 µs, one bucket each
	histGrowth  = 1.01
	histBuckets = histLinear + 1200 // 1 ms × 1.01^1200 ≈ 150 s
)

var histLogGrowth = math.Log(histGrowth)

func histIndex(us int64) int {
	if us < histLinear {
		return int(max(us, 0))
	}
	i := histLinear + int(math.Log(float64(us)/histLinear)/histLogGrowth)
	return min(i, histBuckets-1)
}

// histUpper returns the upper bound of bucket i in µs.
func histUpper(i int) float64 {
	if i < histLinear {
		return float64(i + 1)
	}
	return histLinear * math.Pow(histGrowth, float64(i-histLinear+1))
}

func (h *hist) record(d time.Duration) {
	us := d.Microseconds()
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// quantile returns the q-quantile in milliseconds.
func (h *hist) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return histUpper(i) / 1000
		}
	}
	return h.maxMs()
}

func (h *hist) maxMs() float64 { return float64(h.max.Load()) / 1e6 }

// latency is the summary written to the results.
type latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *hist) summary() latency {
	return latency{Count: h.n.Load(), P50: h.quantile(0.5), P99: h.quantile(0.99), P999: h.quantile(0.999), Max: h.maxMs()}
}
