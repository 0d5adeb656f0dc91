package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestPushsvcGC checks that the pushsvc role collects garbage at GOGC=400
// unless the environment sets GOGC, which then wins.
func TestPushsvcGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	t.Setenv("GOGC", "150") // restored when the test ends
	setPushsvcGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: GC percent %d, want the runtime's own (100 here)", got)
	}

	os.Unsetenv("GOGC")
	setPushsvcGC()
	if got := debug.SetGCPercent(100); got != pushsvcGCPercent {
		t.Errorf("without GOGC: GC percent %d, want %d", got, pushsvcGCPercent)
	}
}
