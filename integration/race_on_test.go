//go:build race

package integration

// raceEnabled is true when the race detector is on; it allows at most 8128
// live goroutines, too few for the connect storm.
const raceEnabled = true
