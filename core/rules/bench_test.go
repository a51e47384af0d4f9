package rules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"porthole/core/registry"
)

// benchQueries are targets of every kind, most matching nothing (the
// common case: the final rule decides) and some matching rules of list.
func benchQueries(list []Rule, n int) []Query {
	rng := rand.New(rand.NewPCG(5, 6))
	qs := make([]Query, 0, n)
	for len(qs) < n {
		q := Query{Port: 443, Inbound: registry.ProtoConnect}
		switch rng.IntN(6) {
		case 0: // a name under a listed suffix or an exact name
			r := list[rng.IntN(len(list))]
			if r.Kind != KindDomainSuffix && r.Kind != KindDomain {
				continue
			}
			q.Host = "img.static." + r.Value
		case 1:
			q.Host = fmt.Sprintf("unlisted-%d.example.org", rng.IntN(1e6))
		case 2:
			q.Host = fmt.Sprintf("www.Some-Site%d.COM.", rng.IntN(1e6))
		case 3:
			q.Host = fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), rng.IntN(256))
		case 4:
			q.Host = fmt.Sprintf("[2400:%x:%x::1]", rng.IntN(65536), rng.IntN(65536))
		default:
			q.Host = fmt.Sprintf("a.b.c.d.deep%d.cdn.example.net", rng.IntN(1e6))
			q.Port = uint16(1024 + rng.IntN(60000))
		}
		qs = append(qs, q)
	}
	return qs
}

// BenchmarkMatch reports match time per connection at 10, 1,000 and
// 100,000 mixed rules: ns/op over all queries, and p50/p99 over queries
// (each timed over a batch, so the clock's cost is spread), with the
// compiled set's heap size.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 100_000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			list := mixedRules(n, 42)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := Compile(list, Options{})
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
			qs := benchQueries(list, 4096)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				s.Match(ctx, &qs[i&4095])
				i++
			}
			b.StopTimer()
			const batch = 32
			per := make([]float64, 0, len(qs))
			for k := range qs {
				q := &qs[k]
				t0 := time.Now()
				for range batch {
					s.Match(ctx, q)
				}
				per = append(per, float64(time.Since(t0).Nanoseconds())/batch)
			}
			slices.Sort(per)
			b.ReportMetric(per[len(per)/2], "p50-ns")
			b.ReportMetric(per[len(per)*99/100], "p99-ns")
			b.ReportMetric(heap/(1<<20), "set-MiB")
			runtime.KeepAlive(s)
		})
	}
}

// BenchmarkCompile is the cost of building the set (on Apply, on a file's
// reload).
func BenchmarkCompile(b *testing.B) {
	list := mixedRules(100_000, 42)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(list, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseClash is the cost of reading a 100,000-line Clash list.
func BenchmarkParseClash(b *testing.B) {
	text, _ := clashList(100_000)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		_, _ = ParseClash([]byte(text)) // the list has bad lines on purpose
	}
}
