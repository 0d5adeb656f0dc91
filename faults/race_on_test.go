//go:build race

package faults

// raceEnabled is true when the race detector is on; it allows at most 8128
// live goroutines, too few for the connection flood.
const raceEnabled = true
