package inbound_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"porthole/core"
	"porthole/internal/childproc"
	"porthole/internal/connecttest"
)

// BenchmarkAttribution: new CONNECT connections one after another through
// two proxies in the same run, attribution on and off, alternating, with
// the setup latency (dial to 200) of each. Reports conns/s of each, their
// ratio (on/off), p50/p99 and the cache hit rate.
//
// "child": the client is another process (the test binary re-executed),
// as curl or a browser is: its fd numbers repeat from one connection to
// the next and the proxy's own sockets are not in its open files. This is
// the figure users meet. "inprocess": the client is this process, the
// proxy's own (worst for the lookup: every connection adds fds to the
// process searched).
func BenchmarkAttribution(b *testing.B) {
	b.Run("child", func(b *testing.B) { benchAttribution(b, true) })
	b.Run("inprocess", func(b *testing.B) { benchAttribution(b, false) })
}

// benchBatch is how many connections go through one proxy before the
// other takes its turn (the child is told one batch at a time).
const benchBatch = 50

func benchAttribution(b *testing.B, child bool) {
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
	run := inProcessClient
	if child {
		run = childClient(b)
	}
	var lat [2][]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBatch {
		n := min(benchBatch, b.N-i)
		for j, e := range []*core.Engine{on, off} {
			k := j
			if (i/benchBatch)%2 == 1 {
				k = 1 - j // the other one first, every other batch
				e = []*core.Engine{on, off}[k]
			}
			d, err := run(e.Addr().String(), target, n)
			if err != nil {
				b.Fatal(err)
			}
			lat[k] = append(lat[k], d...)
		}
	}
	b.StopTimer()
	rate := func(k int) float64 {
		var total time.Duration
		for _, d := range lat[k] {
			total += d
		}
		return float64(len(lat[k])) / total.Seconds()
	}
	for k, name := range []string{"on", "off"} {
		slices.Sort(lat[k])
		b.ReportMetric(rate(k), "conns/s-"+name)
		b.ReportMetric(float64(lat[k][len(lat[k])/2].Microseconds()), "p50-µs-"+name)
		b.ReportMetric(float64(lat[k][len(lat[k])*99/100].Microseconds()), "p99-µs-"+name)
	}
	b.ReportMetric(rate(0)/rate(1), "ratio")
	b.ReportMetric(100*on.ProcessStats().HitRate(), "hit-%")
}

// setupConn opens one CONNECT tunnel through the proxy at addr and
// returns how long it took to get the 200.
func setupConn(addr, target string) (time.Duration, error) {
	t0 := time.Now()
	c, _, resp, err := connecttest.Dial(addr, target)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("CONNECT: %s", resp.Status)
	}
	return time.Since(t0), nil
}

func inProcessClient(addr, target string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		d, err := setupConn(addr, target)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// benchClientEnv turns the test binary into the benchmark's client.
const benchClientEnv = "PORTHOLE_INBOUND_BENCH_CLIENT"

// childClient starts the client process and returns how to ask it for a
// batch: it is told "addr target n" on stdin and answers with the n setup
// latencies (ns) on one line of stdout.
func childClient(b *testing.B) func(addr, target string, n int) ([]time.Duration, error) {
	cmd := childproc.Self(childproc.QuietRace(append(os.Environ(), benchClientEnv+"=1")), "-test.run=^$")
	stdin, stdout := childproc.Pipes(b, cmd)
	p := childproc.Start(b, "bench client", time.Minute, cmd)
	b.Cleanup(func() {
		_ = stdin.Close() // it exits at the end of its input
		p.Wait(b)
	})
	answers := bufio.NewReader(stdout)
	return func(addr, target string, n int) ([]time.Duration, error) {
		if _, err := fmt.Fprintf(stdin, "%s %s %d\n", addr, target, n); err != nil {
			return nil, err
		}
		line, err := answers.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("bench client: %w", err)
		}
		f := strings.Fields(line)
		if len(f) != n {
			return nil, fmt.Errorf("bench client: %q", line)
		}
		out := make([]time.Duration, n)
		for i, s := range f {
			ns, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bench client: %q", line)
			}
			out[i] = time.Duration(ns)
		}
		return out, nil
	}
}

// benchClient is the child: batches of connections as told on stdin, one
// line of latencies per batch on stdout, until stdin ends.
func benchClient() int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var addr, target string
		var n int
		if _, err := fmt.Sscan(in.Text(), &addr, &target, &n); err != nil || n <= 0 || n > 1<<20 {
			fmt.Fprintln(os.Stderr, "bad request:", in.Text(), err)
			return 2
		}
		d, err := inProcessClient(addr, target, n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var sb strings.Builder
		for i, x := range d {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(strconv.FormatInt(x.Nanoseconds(), 10))
		}
		sb.WriteByte('\n')
		if _, err := io.WriteString(os.Stdout, sb.String()); err != nil {
			return 1
		}
	}
	if in.Err() != nil {
		return 1
	}
	return 0
}
