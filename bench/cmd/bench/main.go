// Command bench compares direct TCP with connections through Porthole's
// mixed port in direct mode and in tunnel mode (a porthole client process,
// a WebSocket, a porthole-exit process), on loopback, then measures tunnel
// mode over an emulated 50 ms round trip, and writes report.md and
// report.json. Linux only (it reads /proc).
//
//	go run ./cmd/bench -porthole ../bin/porthole -exit ../bin/porthole-exit [-quick] [-out .]
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

const (
	parallelStreams = 8
	seqConns        = 1000
	concConns       = 2000
	concWorkers     = 32
	idleConns       = 2000
)

// Paths of the main table, in column order.
const (
	pathDirect   = "direct"
	pathPorthole = "porthole"
	pathTunnel   = "tunnel"
)

// path is one way of reaching the origin.
type path struct {
	pathInfo
	dial dialFunc
}

// experiment produces the values of its figures (in order) for one run
// over one path; values of figures that are n/a for the path are ignored.
type experiment struct {
	name    string
	figures []*figure
	run     func(p path) ([]float64, error)
}

// options is the command line.
type options struct {
	bin, exitBin, out string
	quick             bool
	runs              int
	size              int64
	rtt               time.Duration
	only              string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "porthole", "../bin/porthole", "path of the porthole binary to measure")
	flag.StringVar(&o.exitBin, "exit", "../bin/porthole-exit", "path of the porthole-exit binary to measure")
	flag.StringVar(&o.out, "out", ".", "directory for report.md and report.json")
	flag.BoolVar(&o.quick, "quick", false, "1 run per figure and smaller transfers")
	flag.IntVar(&o.runs, "runs", 0, "runs per figure (default 3, or 1 with -quick)")
	flag.DurationVar(&o.rtt, "rtt", 50*time.Millisecond, "round trip of the emulated long link")
	flag.StringVar(&o.only, "only", "", "measure only this table: loopback or rtt (default both)")
	flag.Parse()

	o.size = 1 << 30
	if o.quick {
		o.size = 256 << 20
	}
	if o.runs <= 0 {
		o.runs = 3
		if o.quick {
			o.runs = 1
		}
	}
	if o.rtt <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -rtt must be positive")
		os.Exit(2)
	}
	if o.only != "" && o.only != "loopback" && o.only != "rtt" {
		fmt.Fprintln(os.Stderr, "bench: -only takes loopback or rtt")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	raiseNofile()
	rep := newReport(o.bin, o.exitBin, o.quick, o.runs, o.size)
	if o.only != "rtt" {
		if err := runMain(o, rep); err != nil {
			return err
		}
	}
	var rttErr error
	if o.only != "loopback" {
		// A failure to set the long link up keeps the loopback table.
		if rttErr = runRTT(o, rep); rttErr != nil && len(rep.Tables) == 0 {
			return rttErr
		}
	}
	rep.finish()
	if err := rep.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s/report.md and report.json\n", o.out)
	if rttErr != nil {
		return fmt.Errorf("round-trip table: %w", rttErr)
	}
	if rep.hadFailures {
		return fmt.Errorf("some figures failed; see the report")
	}
	return nil
}

// runMain measures the main table: every figure over direct TCP, porthole
// direct mode and porthole tunnel mode, on plain loopback.
func runMain(o options, rep *report) error {
	orig, err := startOrigin()
	if err != nil {
		return err
	}
	defer orig.Close()
	p, err := startPorthole(o.bin)
	if err != nil {
		return err
	}
	defer func() {
		if p != nil {
			p.Stop()
		}
	}()
	tun, err := startTunnel(o.exitBin, 0)
	if err != nil {
		return err
	}
	defer func() {
		if tun != nil {
			tun.Stop()
		}
	}()
	client, err := tun.addClient(o.bin, "porthole-tunnel")
	if err != nil {
		return err
	}

	t := newTable(rep, "loopback", "Loopback: direct TCP, porthole direct mode, porthole tunnel mode",
		[]pathInfo{
			{pathDirect, "direct TCP"},
			{pathPorthole, "porthole direct"},
			{pathTunnel, "porthole tunnel"},
		},
		[]ratioDef{
			{"porthole_over_direct", "porthole ÷ direct TCP", pathPorthole, pathDirect},
			{"tunnel_over_porthole", "tunnel ÷ porthole direct", pathTunnel, pathPorthole},
		})
	t.intro = "Porthole is reached with HTTP CONNECT on its mixed port. In tunnel mode each connection is a stream of the " +
		"client's one WebSocket session to a porthole-exit process on the same machine, which connects to the origin " +
		"(client process → WebSocket → exit process → origin)."
	t.notes = mainNotes
	paths := []path{
		{t.Paths[0], directDialer(orig.addr())},
		{t.Paths[1], connectDialer(p.addr, orig.addr())},
		{t.Paths[2], connectDialer(client.addr, orig.addr())},
	}
	for _, e := range mainExperiments(t, rep, o, orig) {
		for i := range o.runs {
			for _, pth := range paths {
				measureOnce(e, pth, i, o.runs)
			}
		}
	}
	rep.ProcExits = append(rep.ProcExits, "main porthole: "+p.Stop())
	p = nil
	rep.ProcExits = append(rep.ProcExits, prefixed("main tunnel ", tun.Stop())...)
	tun = nil
	return nil
}

func prefixed(prefix string, s []string) []string {
	for i := range s {
		s[i] = prefix + s[i]
	}
	return s
}

func measureOnce(e experiment, p path, i, runs int) {
	applies := false
	for _, f := range e.figures {
		applies = applies || !f.side(p.Key).NA
	}
	if !applies {
		return
	}
	vals, err := e.run(p)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s %s run %d/%d: %v\n", e.name, p.Key, i+1, runs, err)
		for _, f := range e.figures {
			if s := f.side(p.Key); !s.NA && s.Error == "" {
				s.Error = err.Error()
			}
		}
		return
	}
	for k, f := range e.figures {
		s := f.side(p.Key)
		if s.NA {
			continue
		}
		s.Samples = append(s.Samples, vals[k])
		fmt.Fprintf(os.Stderr, "bench: %-55s %-12s run %d/%d: "+f.format+" %s\n",
			f.Name, p.Key, i+1, runs, vals[k], f.Unit)
	}
}

func mainExperiments(t *table, rep *report, o options, orig *origin) []experiment {
	connFigures := func(key, name string) []*figure {
		return []*figure{
			t.fig(key+"_per_sec", name+": rate", "conn/s", "%.0f", true),
			t.fig(key+"_p50_ms", name+": latency p50", "ms", "%.3f", false),
			t.fig(key+"_p99_ms", name+": latency p99", "ms", "%.3f", false),
		}
	}
	one := func(v float64, err error) ([]float64, error) { return []float64{v}, err }
	three := func(a, b, c float64, err error) ([]float64, error) { return []float64{a, b, c}, err }
	return []experiment{
		{
			name:    "download",
			figures: []*figure{t.fig("download_mbps", "Single-stream download", "MB/s", "%.0f", true)},
			run:     func(p path) ([]float64, error) { return one(download(p.dial, o.size)) },
		},
		{
			name:    "upload",
			figures: []*figure{t.fig("upload_mbps", "Single-stream upload", "MB/s", "%.0f", true)},
			run:     func(p path) ([]float64, error) { return one(upload(p.dial, o.size)) },
		},
		{
			name:    "parallel download",
			figures: []*figure{t.fig("parallel8_download_mbps", "8-stream download (aggregate)", "MB/s", "%.0f", true)},
			run: func(p path) ([]float64, error) {
				return one(parallelDownload(p.dial, parallelStreams, o.size))
			},
		},
		{
			name:    "sequential connections",
			figures: connFigures("seq_conn", "1,000 sequential connections"),
			run:     func(p path) ([]float64, error) { return three(connRate(p.dial, seqConns, 1)) },
		},
		{
			name:    "concurrent connections",
			figures: connFigures("conc_conn", "2,000 connections, 32 workers"),
			run: func(p path) ([]float64, error) {
				return three(connRate(p.dial, concConns, concWorkers))
			},
		},
		{
			name: "idle rss",
			figures: []*figure{
				t.fig("idle_rss_kib_per_conn", "RSS per idle connection: porthole (tunnel: the client)", "KiB", "%.1f", false,
					pathPorthole, pathTunnel),
				t.fig("idle_rss_exit_kib_per_conn", "RSS per idle connection: porthole-exit", "KiB", "%.1f", false,
					pathTunnel),
			},
			run: func(p path) ([]float64, error) {
				v, exits, err := idleRSSOf(p.Key, o, orig)
				rep.ProcExits = append(rep.ProcExits, prefixed("idle ", exits)...)
				return v, err
			},
		},
	}
}

// idleRSSOf measures RSS per idle connection in fresh processes of the
// path: [porthole] or [client, exit].
func idleRSSOf(pathKey string, o options, orig *origin) (kib []float64, exits []string, err error) {
	switch pathKey {
	case pathPorthole:
		p, err := startPorthole(o.bin)
		if err != nil {
			return nil, nil, err
		}
		defer func() { exits = append(exits, "porthole: "+p.Stop()) }()
		v, err := idleRSS(orig, idleConns, connectDialer(p.addr, orig.addr()), p)
		if err != nil {
			return nil, nil, err
		}
		return []float64{v[0], 0}, nil, nil
	case pathTunnel:
		tun, err := startTunnel(o.exitBin, 0)
		if err != nil {
			return nil, nil, err
		}
		defer func() { exits = append(exits, tun.Stop()...) }()
		c, err := tun.addClient(o.bin, "porthole-tunnel")
		if err != nil {
			return nil, nil, err
		}
		kib, err := idleRSS(orig, idleConns, connectDialer(c.addr, orig.addr()), c, tun.exit)
		return kib, nil, err
	}
	return nil, nil, fmt.Errorf("idle rss: no processes for path %q", pathKey)
}

const mainNotes = `How each figure is made:
- Downloads/uploads: one connection, the origin sends (or receives) the transfer size; timed from the command to the last byte (upload: to the origin's "OK").
- 8 parallel streams: 8 connections opened first, then the transfer size split evenly over them at once; aggregate throughput.
- Connection figures: connect (+ CONNECT for porthole), send one byte through an echo, read it back, close; 1,000 one after another, and 2,000 by 32 concurrent workers. Latency covers the whole exchange.
- RSS per idle connection: fresh processes, VmRSS before and after opening 2,000 idle proxied connections, difference ÷ 2,000. In tunnel mode both the client and the exit are measured (the exit holds the connections to the origin); the 2,000 are streams of one tunnel session.
`

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
