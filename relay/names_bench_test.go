package relay

import (
	"strings"
	"testing"
)

// Benchmarks of the broker mapping that every subscription and every push
// goes through: client topic → routing key, user name ↔ header, and the
// destination rule shared by edges and pushsvc. Run with:
//
//	go test -run '^$' -bench . -benchmem ./relay/

func BenchmarkTopicDestination(b *testing.B) {
	for _, d := range []string{"/topic/greetings", "/topic/news/sports.football~live", "/topic/" + strings.Repeat("a.b/", 60) + "z"} {
		name := d
		if len(name) > 40 {
			name = "long"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = TopicDestination(d)
			}
		})
	}
}

func BenchmarkUserHeader(b *testing.B) {
	for _, u := range []string{"alice", "alice/bob#1 *ü"} {
		enc := EncodeUser(u)
		b.Run("encode/"+enc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = EncodeUser(u)
			}
		})
		b.Run("decode/"+enc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeUser(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidateDestination(b *testing.B) {
	for _, d := range []string{"/topic/greetings", "/queue/orders.eu-west/2026/06"} {
		b.Run(d, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := ValidateDestination(d, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
