package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// The attribution table prices program attribution (which program opened
// each connection): the same porthole binary twice, with attribution on
// and off (PORTHOLE_NO_PROCESS_LOOKUP=1), new connections through each in
// the same run, interleaved; then the proxy's own counters (cache hit
// rate) and, from `go test -bench BenchmarkLookup ./core/procinfo/` (the
// -lookup file), the cost of one lookup with other sockets open.
const (
	pathAttrOn    = "attr-on"
	pathAttrOff   = "attr-off"
	pathLookup1k  = "lookup-1k"
	pathLookup10k = "lookup-10k"

	// attrRuns is the least number of runs of each figure, and
	// attrScale how many times the loopback table's connections each run
	// makes: the ratio is a few per cent, within a run's noise on a
	// shared machine, so it wants more and longer samples than the other
	// tables (about a minute in all; -quick keeps the loopback table's sizes).
	attrRuns  = 7
	attrScale = 3
)

func runAttribution(o options, rep *report) error {
	orig, err := startOrigin()
	if err != nil {
		return err
	}
	defer orig.Close()
	on, err := startPortholeAs("porthole-attr-on", o.bin, "info", nil)
	if err != nil {
		return err
	}
	stopped := false
	stopOn := func() {
		if !stopped {
			stopped = true
			rep.ProcExits = append(rep.ProcExits, "attribution porthole-attr-on: "+on.Stop())
		}
	}
	defer stopOn()
	off, err := startPortholeAs("porthole-attr-off", o.bin, "info", []string{"PORTHOLE_NO_PROCESS_LOOKUP=1"})
	if err != nil {
		return err
	}
	defer func() { rep.ProcExits = append(rep.ProcExits, "attribution porthole-attr-off: "+off.Stop()) }()

	t := newTable(rep, "attribution", "Program attribution: what it costs",
		[]pathInfo{{pathAttrOn, "porthole direct, attribution on"}, {pathAttrOff, "attribution off"}},
		[]ratioDef{{"on_over_off", "on ÷ off", pathAttrOn, pathAttrOff}})
	t.intro = "The same porthole binary twice, in direct mode: one finds the program behind every connection (the default), " +
		"the other runs with PORTHOLE_NO_PROCESS_LOOKUP=1. The bench process is the client, so every lookup finds a " +
		"program seen before (the bench) on a new socket: the common case of a browser opening its next connection. " +
		"Each figure alternates the two proxies run by run."
	figs := func(key, name string) []*figure {
		return []*figure{
			t.fig(key+"_per_sec", name+": rate", "conn/s", "%.0f", true),
			t.fig(key+"_p50_ms", name+": latency p50", "ms", "%.3f", false),
			t.fig(key+"_p99_ms", name+": latency p99", "ms", "%.3f", false),
		}
	}
	seqConns, concConns := o.seqConns, o.concConns
	if !o.quick {
		seqConns, concConns = attrScale*seqConns, attrScale*concConns
	}
	seq := figs("attr_seq_conn", thousands(seqConns)+" sequential connections")
	conc := figs("attr_conc_conn", fmt.Sprintf("%s connections, %d workers", thousands(concConns), concWorkers))
	paths := []path{
		{t.Paths[0], connectDialer(on.addr, orig.addr()), []*proc{on}},
		{t.Paths[1], connectDialer(off.addr, orig.addr()), []*proc{off}},
	}
	three := func(a, b, c float64, err error) ([]float64, error) { return []float64{a, b, c}, err }
	experiments := []experiment{
		{name: "attribution, sequential connections", figures: seq,
			run: func(p path) ([]float64, error) { return three(connRate(p.dial, seqConns, 1)) }},
		{name: "attribution, concurrent connections", figures: conc,
			run: func(p path) ([]float64, error) { return three(connRate(p.dial, concConns, concWorkers)) }},
	}
	runs := max(o.runs, attrRuns)
	for _, e := range experiments {
		for i := range runs {
			// Every other run the other proxy first: a warm-up or a
			// drifting machine favours neither.
			order := []path{paths[0], paths[1]}
			if i%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, p := range order {
				measureOnce(e, p, i, runs)
			}
		}
	}
	stopOn()
	notes := "How each figure is made: as in the loopback table (connect, CONNECT, one byte through the echo, close; " +
		"latency from the dial to the byte back).\n"
	if st, ok := lookupStats(on.logs.kept()); ok {
		notes += fmt.Sprintf("\nThe attributing proxy's own counters at its stop: %s lookups, %s found a program, "+
			"%s of them from the cache without a scan of every process (hit rate %.2f %%), %s answered on the "+
			"connection's own goroutine, %s full scans; %s cache hits took their exec check from a lookup begun after "+
			"their accept instead of reading the executable link again.\n",
			thousands(int(st["lookups"])), thousands(int(st["found"])), thousands(int(st["cache_hits"])),
			100*st["cache_hits"]/max(st["found"], 1), thousands(int(st["quick"])), thousands(int(st["full_scans"])),
			thousands(int(st["shared_exec_checks"])))
	} else {
		notes += "\nThe attributing proxy logged no lookup counters at its stop.\n"
	}
	t.notes = notes
	return nil
}

// startPortholeAs is startPorthole with a name, a log level and extra
// environment.
func startPortholeAs(name, bin, logLevel string, env []string) (*proc, error) {
	return startPortholeSpec(name, bin, false, logLevel, env)
}

// stoppedLine is the porthole log line that carries the lookup counters.
const stoppedLine = "proxy stopped"

var logAttr = regexp.MustCompile(`\b(lookups|found|cache_hits|quick|full_scans|shared_exec_checks)=(\d+)`)

// lookupStats reads the counters of porthole's "proxy stopped" line.
func lookupStats(lines []string) (map[string]float64, bool) {
	for _, l := range lines {
		if !strings.Contains(l, stoppedLine) {
			continue
		}
		st := map[string]float64{}
		for _, m := range logAttr.FindAllStringSubmatch(l, -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err == nil {
				st[m[1]] = v
			}
		}
		if _, ok := st["lookups"]; ok {
			return st, true
		}
	}
	return nil, false
}

// benchLine is one result line of `go test -bench BenchmarkLookup`:
// "BenchmarkLookup/1000/child-2  N  ns/op  V cpu-ms/1000  V p50-µs  V p99-µs ...".
var benchLine = regexp.MustCompile(`^BenchmarkLookup/(\d+)/(\w+)(?:-\d+)?\s+\d+\s+(.*)$`)

// addLookupTable reads the Go benchmark's output (file) into a table of
// its own: the cost of one lookup with 1,000 and 10,000 other sockets open.
func addLookupTable(rep *report, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("lookup benchmark: %w", err)
	}
	defer f.Close()
	t := newTable(rep, "lookup", "Program attribution: one lookup",
		[]pathInfo{{pathLookup1k, "1,000 other sockets open"}, {pathLookup10k, "10,000 other sockets open"}}, nil)
	t.intro = "From `go test -bench BenchmarkLookup ./core/procinfo/`: one lookup of a connection's program while this " +
		"many other sockets are open (held by the benchmark process). \"seen\": the client is another process the " +
		"cache knows (what a proxy meets: curl, a browser); \"own\": the client is the benchmark process itself, whose " +
		"open files are the other sockets; \"cold\": a fresh cache, so one scan of every process's open files (the " +
		"first connection of a program)."
	modes := []struct{ key, name string }{{"child", "seen"}, {"warm", "own"}, {"cold", "cold"}}
	figs := map[string][3]*figure{}
	for _, m := range modes {
		figs[m.key] = [3]*figure{
			t.fig("lookup_"+m.key+"_p50_us", "Lookup, "+m.name+": p50", "µs", "%.1f", false),
			t.fig("lookup_"+m.key+"_p99_us", "Lookup, "+m.name+": p99", "µs", "%.1f", false),
			t.fig("lookup_"+m.key+"_cpu_ms_per_1000", "Lookup, "+m.name+": CPU per 1,000", "ms", "%.2f", false),
		}
	}
	units := []string{"p50-µs", "p99-µs", "cpu-ms/1000"}
	s := bufio.NewScanner(f)
	found := false
	for s.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(s.Text()))
		if m == nil {
			continue
		}
		pathKey := map[string]string{"1000": pathLookup1k, "10000": pathLookup10k}[m[1]]
		fs, ok := figs[m[2]]
		if pathKey == "" || !ok {
			continue
		}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			for k, u := range units {
				if fields[i+1] == u {
					fs[k].side(pathKey).Samples = append(fs[k].side(pathKey).Samples, v)
					found = true
				}
			}
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("lookup benchmark: %w", err)
	}
	if !found {
		return fmt.Errorf("lookup benchmark: no BenchmarkLookup results in %s", file)
	}
	return nil
}
