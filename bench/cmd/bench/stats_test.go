package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestSummarizeMedianMinMax(t *testing.T) {
	for _, c := range []struct {
		in            []float64
		med, min, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		s := &side{Samples: c.in}
		s.summarize()
		if s.Median != c.med || s.Min != c.min || s.Max != c.max {
			t.Errorf("%v: median %v min %v max %v", c.in, s.Median, s.Min, s.Max)
		}
		if s.Samples[0] != c.in[0] {
			t.Errorf("summarize reordered the samples")
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[int]time.Duration{50: 50, 99: 99, 100: 100, 1: 1} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%d = %v, want %v", p, got, want)
		}
	}
	if got := percentile(d[:3], 99); got != 3 {
		t.Errorf("p99 of 3 = %v, want the largest", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis; utime 250, stime 50.
	line := "1234 (we ird) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000 200"
	got, err := parseStatCPU(line)
	if err != nil || math.Abs(got-3) > 1e-9 {
		t.Fatalf("got %v, %v; want 3 s", got, err)
	}
	if _, err := parseStatCPU("1234 (short) S 1"); err == nil {
		t.Fatal("short line accepted")
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Fatal("line without a command name accepted")
	}
}

// TestTargetsJudgeMedians builds a report with a few figures and checks
// the judgement, including a target without figures.
func TestTargetsJudgeMedians(t *testing.T) {
	r := &report{}
	lb := newTable(r, "loopback", "", []pathInfo{{pathDirect, ""}, {pathPorthole, ""}, {pathTunnel, ""}, {pathSmux, ""}}, nil)
	set := func(tb *table, fig, unit string, vals map[string][]float64) {
		f := tb.fig(fig, fig, unit, "%.0f", true)
		for k, v := range vals {
			f.side(k).Samples = v
		}
	}
	set(lb, "download_mbps", "MB/s", map[string][]float64{pathPorthole: {800, 900, 1000}, pathTunnel: {600, 500, 700}, pathSmux: {300}})
	set(lb, "hol_echo_p99_ms", "ms", map[string][]float64{pathTunnel: {9, 2, 3}, pathDirect: {8, 2, 2.5}})
	set(lb, "stall_download_ratio", "×", map[string][]float64{pathTunnel: {0.4, 0.95, 0.5}})
	r.finish()
	byGoal := map[string]target{}
	for _, tg := range r.Targets {
		byGoal[tg.Goal] = tg
	}
	want := map[string]string{
		"Tunnel single-stream download ≥ 1.5× smux-ws":              targetMet, // 600 ÷ 300
		"Tunnel single-stream download ≥ 50% of porthole direct":    targetMet, // 600 ÷ 900
		"Head-of-line: tunnel echo p99 under 4 bulk streams ≤ 5 ms": targetMet, // median 3
		"Tunnel 64-stream aggregate ≥ 1.5× smux-ws":                 targetUnknown,
		// median 3 against 2.5
		"Head-of-line: tunnel echo p99 under 4 bulk streams ≤ direct TCP's": targetMissed,
		// median 0.5
		"A stalled stream in the tunnel costs the download beside it ≤ 10 % (≥ 0.9× alone)": targetMissed,
	}
	for goal, st := range want {
		if got := byGoal[goal]; got.Status != st {
			t.Errorf("%s: %q (%s), want %q", goal, got.Status, got.Measured, st)
		}
	}
	if !strings.Contains(byGoal["Tunnel single-stream download ≥ 1.5× smux-ws"].Measured, "2.00×") {
		t.Errorf("measured: %q", byGoal["Tunnel single-stream download ≥ 1.5× smux-ws"].Measured)
	}
}

// The report's command line names no temporary file of the machine that
// made it.
func TestCommandLineHidesLookupFile(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-out", ".", "-lookup", "/tmp/tmp.X1", "-quick"}, "go run ./cmd/bench -out . -lookup <BenchmarkLookup output> -quick"},
		{[]string{"-lookup=/tmp/tmp.X1"}, "go run ./cmd/bench -lookup=<BenchmarkLookup output>"},
		{[]string{"-only", "idle"}, "go run ./cmd/bench -only idle"},
	} {
		if got := commandLine(tc.args); got != tc.want {
			t.Errorf("commandLine(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
