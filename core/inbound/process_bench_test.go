package inbound_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"porthole/core"
)

// BenchmarkAttribution: new CONNECT connections one after another through
// two proxies in the same run, attribution on and off, alternating, with
// the setup latency (dial to 200) of each. Reports conns/s of each, their
// ratio (on/off), p50/p99 and the cache hit rate.
func BenchmarkAttribution(b *testing.B) {
	origin := newTCPOrigin(b, "tcp4", echoHandler)
	target := fmt.Sprintf("127.0.0.1:%d", origin.port())
	start := func(off bool) *core.Engine {
		e, err := core.New(core.Config{Listen: "127.0.0.1:0", NoProcessLookup: off})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = e.Close() })
		return e
	}
	on, off := start(false), start(true)
	setup := func(addr string) time.Duration {
		t0 := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(resp, err)
		}
		return time.Since(t0)
	}
	var lat [2][]time.Duration
	var total [2]time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j, e := range []*core.Engine{on, off} {
			if i%2 == 1 {
				e = []*core.Engine{off, on}[j]
			}
			k := j
			if i%2 == 1 {
				k = 1 - j
			}
			d := setup(e.Addr().String())
			lat[k] = append(lat[k], d)
			total[k] += d
		}
	}
	b.StopTimer()
	rate := func(k int) float64 { return float64(len(lat[k])) / total[k].Seconds() }
	for k, name := range []string{"on", "off"} {
		slices.Sort(lat[k])
		b.ReportMetric(rate(k), "conns/s-"+name)
		b.ReportMetric(float64(lat[k][len(lat[k])/2].Microseconds()), "p50-µs-"+name)
		b.ReportMetric(float64(lat[k][len(lat[k])*99/100].Microseconds()), "p99-µs-"+name)
	}
	b.ReportMetric(rate(0)/rate(1), "ratio")
	b.ReportMetric(100*on.ProcessStats().HitRate(), "hit-%")
}
