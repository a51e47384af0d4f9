package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/rules"
	"porthole/internal/connecttest"
	"porthole/internal/origin"
)

// BenchmarkConnectSetup is one proxied connection per op: dial the proxy,
// CONNECT to a loopback echo origin, one byte there and back, close. With
// -benchmem it shows what setting up a connection costs the whole process
// (client, proxy and origin sides together).
func BenchmarkConnectSetup(b *testing.B) {
	benchConnectSetup(b, core.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
}

// BenchmarkConnectSetupRules compares connection setup in direct mode
// and in rules mode with 100,000 rules that the target misses until the
// last (every kind is looked up): two engines side by side, connections
// alternating between them, so both see the same machine load. It reports
// each one's conn/s and their ratio.
func BenchmarkConnectSetupRules(b *testing.B) {
	echo := origin.Echo(b)
	set, err := rules.Compile(benchRules(100_000), rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	direct := benchEngine(b, core.Config{Listen: "127.0.0.1:0", Bypass: []string{}, Logger: quiet})
	ruled := benchEngine(b, core.Config{Listen: "127.0.0.1:0", Mode: outbound.ModeRules, Rules: set, Bypass: []string{}, Logger: quiet})
	var took [2][]float64 // per connection, µs
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		eng := []*core.Engine{direct, ruled}[i%2]
		t0 := time.Now()
		connectOnce(b, eng.Addr().String(), echo)
		took[i%2] = append(took[i%2], float64(time.Since(t0).Microseconds()))
	}
	b.StopTimer()
	if len(took[1]) == 0 {
		return
	}
	// Medians: a neighbour's burst on a shared machine moves means, not
	// medians. conn/s is 1/median of the sequential setup time.
	d, r := median(took[0]), median(took[1])
	b.ReportMetric(1e6/d, "direct-conn/s")
	b.ReportMetric(1e6/r, "rules100k-conn/s")
	b.ReportMetric(d/r, "ratio")
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

func benchEngine(b *testing.B, cfg core.Config) *core.Engine {
	eng, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() }) // the benchmark is over; a close error says nothing about it
	return eng
}

// connectOnce is one proxied connection: CONNECT, one byte there and
// back, close.
func connectOnce(b *testing.B, proxy, target string) {
	c, br, resp, err := connecttest.Dial(proxy, target)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("CONNECT: %s", resp.Status)
	}
	one := []byte{'x'}
	if _, err := c.Write(one); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(br, one); err != nil {
		b.Fatal(err)
	}
}

// benchRules is n rules of the kinds real lists have (suffixes, names,
// keywords, v4 and v6 prefixes, ports) that no loopback target matches,
// then a final rule sending the rest direct.
func benchRules(n int) []rules.Rule {
	list := make([]rules.Rule, 0, n)
	for i := 0; len(list) < n-1; i++ {
		var r rules.Rule
		switch i % 10 {
		case 0, 1, 2, 3, 4:
			r = rules.Rule{Kind: rules.KindDomainSuffix, Value: fmt.Sprintf("site%d.example", i)}
		case 5, 6:
			r = rules.Rule{Kind: rules.KindDomain, Value: fmt.Sprintf("www.host%d.test", i)}
		case 7:
			r = rules.Rule{Kind: rules.KindDomainKeyword, Value: fmt.Sprintf("kw%dx", i)}
		case 8:
			r = rules.Rule{Kind: rules.KindIPCIDR, Value: fmt.Sprintf("%d.%d.%d.0/24", 1+i%200, (i/200)%256, (i/51200)%256)}
		default:
			r = rules.Rule{Kind: rules.KindIPCIDR, Value: fmt.Sprintf("2001:db8:%x::/48", i%65536)}
		}
		r.Action = []string{rules.ActionTunnel, rules.ActionReject}[i%2]
		list = append(list, r)
	}
	return append(list, rules.Rule{Kind: rules.KindMatch, Action: rules.ActionDirect})
}

func benchConnectSetup(b *testing.B, cfg core.Config) {
	target := origin.Echo(b)
	eng, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	proxy := eng.Addr().String()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		connectOnce(b, proxy, target)
	}
}
