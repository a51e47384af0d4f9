// Command bench compares direct TCP with a connection through Porthole's
// mixed port in direct mode, on loopback, and writes report.md and
// report.json. Linux only (it reads /proc).
//
//	go run ./cmd/bench -porthole ../bin/porthole [-quick] [-out .]
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
)

const (
	parallelStreams = 8
	seqConns        = 1000
	concConns       = 2000
	concWorkers     = 32
	idleConns       = 2000
)

// experiment produces the values of its figures (in order) for one run
// over one path.
type experiment struct {
	name         string
	figures      []*figure
	portholeOnly bool
	run          func(dial dialFunc) ([]float64, error)
}

func main() {
	bin := flag.String("porthole", "../bin/porthole", "path of the porthole binary to measure")
	out := flag.String("out", ".", "directory for report.md and report.json")
	quick := flag.Bool("quick", false, "1 run per figure and 256 MiB transfers")
	runs := flag.Int("runs", 0, "runs per figure (default 3, or 1 with -quick)")
	flag.Parse()

	size := int64(1 << 30)
	if *quick {
		size = 256 << 20
	}
	if *runs <= 0 {
		*runs = 3
		if *quick {
			*runs = 1
		}
	}
	if err := run(*bin, *out, *quick, *runs, size); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin, out string, quick bool, runs int, size int64) error {
	raiseNofile()
	o, err := startOrigin()
	if err != nil {
		return err
	}
	defer o.Close()
	p, err := startProxy(bin)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.Stop()
		}
	}()

	rep := newReport(bin, quick, runs, size)
	dialers := map[string]dialFunc{
		"direct":   directDialer(o.addr()),
		"porthole": connectDialer(p.addr, o.addr()),
	}
	for _, e := range experiments(rep, bin, o, size) {
		for i := range runs {
			for _, mode := range []string{"direct", "porthole"} {
				measureOnce(e, mode, dialers[mode], i, runs)
			}
		}
	}
	stopped = true
	rep.ProxyExits = append(rep.ProxyExits, "main: "+p.Stop())
	rep.finish()
	if err := rep.write(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s/report.md and report.json\n", out)
	if rep.hadFailures {
		return fmt.Errorf("some figures failed; see the report")
	}
	return nil
}

func measureOnce(e experiment, mode string, dial dialFunc, i, runs int) {
	sideOf := func(f *figure) *side {
		if mode == "direct" {
			return &f.Direct
		}
		return &f.Porthole
	}
	if mode == "direct" && e.portholeOnly {
		for _, f := range e.figures {
			f.Direct.NA = true
		}
		return
	}
	vals, err := e.run(dial)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s %s run %d/%d: %v\n", e.name, mode, i+1, runs, err)
		for _, f := range e.figures {
			if s := sideOf(f); s.Error == "" {
				s.Error = err.Error()
			}
		}
		return
	}
	for k, f := range e.figures {
		sideOf(f).Samples = append(sideOf(f).Samples, vals[k])
		fmt.Fprintf(os.Stderr, "bench: %-45s %-8s run %d/%d: "+f.format+" %s\n",
			f.Name, mode, i+1, runs, vals[k], f.Unit)
	}
}

func experiments(rep *report, bin string, o *origin, size int64) []experiment {
	fig := func(key, name, unit, format string, higher bool) *figure {
		f := &figure{Key: key, Name: name, Unit: unit, HigherBetter: higher, format: format}
		rep.Figures = append(rep.Figures, f)
		return f
	}
	connFigures := func(key, name string) []*figure {
		return []*figure{
			fig(key+"_per_sec", name+": rate", "conn/s", "%.0f", true),
			fig(key+"_p50_ms", name+": latency p50", "ms", "%.3f", false),
			fig(key+"_p99_ms", name+": latency p99", "ms", "%.3f", false),
		}
	}
	one := func(v float64, err error) ([]float64, error) { return []float64{v}, err }
	three := func(a, b, c float64, err error) ([]float64, error) { return []float64{a, b, c}, err }
	return []experiment{
		{
			name:    "download",
			figures: []*figure{fig("download_mbps", "Single-stream download", "MB/s", "%.0f", true)},
			run:     func(d dialFunc) ([]float64, error) { return one(download(d, size)) },
		},
		{
			name:    "upload",
			figures: []*figure{fig("upload_mbps", "Single-stream upload", "MB/s", "%.0f", true)},
			run:     func(d dialFunc) ([]float64, error) { return one(upload(d, size)) },
		},
		{
			name:    "parallel download",
			figures: []*figure{fig("parallel8_download_mbps", "8-stream download (aggregate)", "MB/s", "%.0f", true)},
			run: func(d dialFunc) ([]float64, error) {
				return one(parallelDownload(d, parallelStreams, size))
			},
		},
		{
			name:    "sequential connections",
			figures: connFigures("seq_conn", "1,000 sequential connections"),
			run:     func(d dialFunc) ([]float64, error) { return three(connRate(d, seqConns, 1)) },
		},
		{
			name:    "concurrent connections",
			figures: connFigures("conc_conn", "2,000 connections, 32 workers"),
			run: func(d dialFunc) ([]float64, error) {
				return three(connRate(d, concConns, concWorkers))
			},
		},
		{
			name:         "idle rss",
			figures:      []*figure{fig("idle_rss_kib_per_conn", "RSS per idle connection (2,000)", "KiB", "%.1f", false)},
			portholeOnly: true,
			run: func(dialFunc) ([]float64, error) {
				v, exit, err := idleRSS(bin, o, idleConns)
				if exit != "" {
					rep.ProxyExits = append(rep.ProxyExits, "idle: "+exit)
				}
				return []float64{v}, err
			},
		},
	}
}

// raiseNofile lifts the open-file limit to the hard limit: 2,000 idle
// proxied connections need about 4,000 descriptors here and as many in the
// proxy, which inherits the limit. (Go raises its own soft limit at start
// but restores the original for children; an explicit Setrlimit is kept.)
func raiseNofile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "bench: getrlimit:", err)
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "bench: setrlimit:", err)
	}
	if lim.Cur < 2*idleConns+1000 {
		fmt.Fprintf(os.Stderr, "bench: warning: open-file limit %d may be too low for %d idle connections\n", lim.Cur, idleConns)
	}
}
