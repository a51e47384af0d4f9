// Command bench compares direct TCP, Porthole's direct and tunnel modes,
// and two reference tunnels (hashicorp/yamux and xtaci/smux with their
// defaults over a gorilla WebSocket, behind the same kind of HTTP CONNECT
// front) on loopback, then over an emulated 50 ms round trip, and writes
// report.md, report.json and report.png. Linux only (it reads /proc).
//
//	go run ./cmd/bench -porthole ../bin/porthole -exit ../bin/porthole-exit [-quick] [-out .] [-profile out/prof]
//
// The same binary is also the reference tunnels' processes and the idle
// figures' origin (subcommands refclient, refserver, origin), so that
// their memory and CPU are their own.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// onlySetup (-only setup) measures only the loopback table's connection
// figures (and, with -profile, the tunnel's connection-rate profile);
// onlyIdle (-only idle) only its idle-memory figures; onlyHOL (-only hol)
// only its head-of-line and stalled-stream figures (one stream hurting
// another on the same path).
const (
	onlySetup = "setup"
	onlyIdle  = "idle"
	onlyHOL   = "hol"
)

// onlyPart says whether only names a part of the loopback table.
func onlyPart(only string) bool {
	return only == onlySetup || only == onlyIdle || only == onlyHOL
}

// skipExperiment says whether -only leaves the loopback table's experiment
// name out.
func skipExperiment(only, name string) bool {
	switch only {
	case onlySetup:
		return !strings.HasSuffix(name, " connections")
	case onlyIdle:
		return name != "idle rss"
	case onlyHOL:
		return name != "head-of-line" && name != "stalled stream"
	}
	return false
}

const (
	parallelStreams = 8
	manyStreams     = 64
	concWorkers     = 32
)

// Paths of the main table, in column order.
const (
	pathDirect   = "direct"
	pathPlain    = "plain"
	pathPorthole = "porthole"
	pathTunnel   = "tunnel"
	pathYamux    = "yamux"
	pathSmux     = "smux"
	pathExtra    = "extra"
)

// path is one way of reaching the origin; procs are its processes, whose
// CPU time is measured: [client] or [client, exit/server].
type path struct {
	pathInfo
	dial  dialFunc
	procs []*proc
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
	holFor            time.Duration
	seqConns          int // connections one after another
	concConns         int // connections by concWorkers workers
	rtt               time.Duration
	only              string
	profile           string // directory for profiles; empty: none
	profileFor        time.Duration
	lookup            string // output of the procinfo lookup benchmark; empty: none
}

// subcommand runs one of the processes the bench starts from its own
// binary (startSelf), when args name one.
func subcommand(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch sub := args[0]; sub {
	case "refclient", "refserver":
		return refCommand(sub, args[1:]), true
	case "origin":
		return originCommand(args[1:]), true
	case "plainconnect":
		return plainCommand(args[1:]), true
	}
	return 0, false
}

func main() {
	if code, ok := subcommand(os.Args[1:]); ok {
		os.Exit(code)
	}
	var o options
	flag.StringVar(&o.bin, "porthole", "../bin/porthole", "path of the porthole binary to measure")
	flag.StringVar(&o.exitBin, "exit", "../bin/porthole-exit", "path of the porthole-exit binary to measure")
	flag.StringVar(&o.out, "out", ".", "directory for report.md, report.json and report.png")
	flag.BoolVar(&o.quick, "quick", false, "1 run per figure and smaller transfers")
	flag.IntVar(&o.runs, "runs", 0, "runs per figure (default 3, or 1 with -quick)")
	flag.DurationVar(&o.rtt, "rtt", 50*time.Millisecond, "round trip of the emulated long link")
	flag.StringVar(&o.only, "only", "", "measure only this table: loopback, rules, rtt or attribution (default all); setup, idle, hol: the loopback table's connection, idle-memory or head-of-line and stalled-stream figures alone; exits: exits-report.md")
	flag.StringVar(&o.lookup, "lookup", "", "file with the output of `go test -bench BenchmarkLookup ./core/procinfo/`, for the lookup table")
	flag.StringVar(&o.profile, "profile", "", "directory for CPU and memory profiles of porthole and porthole-exit (and profile.md)")
	flag.DurationVar(&o.profileFor, "profile-for", 10*time.Second, "length of each CPU profile")
	flag.Parse()

	o.size, o.holFor, o.seqConns, o.concConns = 1<<30, 5*time.Second, 1000, 2000
	if o.quick {
		o.size, o.holFor, o.seqConns, o.concConns = 256<<20, 2*time.Second, 500, 1000
	}
	if o.runs <= 0 {
		o.runs = 3
		if o.quick {
			o.runs = 1
		}
	}
	if o.rtt <= 0 || o.profileFor < time.Second {
		fmt.Fprintln(os.Stderr, "bench: -rtt must be positive and -profile-for at least 1s")
		os.Exit(2)
	}
	switch o.only {
	case "", "loopback", "rules", "rtt", "attribution", onlySetup, onlyIdle, onlyHOL, "exits":
	default:
		fmt.Fprintln(os.Stderr, "bench: -only takes loopback, rules, rtt, attribution, setup, idle, hol or exits")
		os.Exit(2)
	}
	if o.only == "exits" {
		// Its own report (exits-report.md), beside the main one.
		if err := runExits(o); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	start := time.Now()
	raiseNofile(true)
	rep := newReport(o.bin, o.exitBin, o.quick, o.runs, o.size)
	rep.RTTms = float64(o.rtt) / float64(time.Millisecond)
	extra, err := startExtra()
	if err != nil {
		return err
	}
	if extra != nil {
		defer extra.Stop()
		rep.Extra = extra.name
	}
	var prof *profiler
	if o.profile != "" {
		if prof, err = newProfiler(o.profile, o.profileFor); err != nil {
			return err
		}
	}
	if o.only == "" || o.only == "loopback" || onlyPart(o.only) {
		if err := runMain(o, rep, extra, prof); err != nil {
			return err
		}
	}
	if o.only == "" || o.only == "rules" {
		if err := runRules(o, rep); err != nil {
			return err
		}
	}
	if o.only == "" || o.only == "attribution" {
		if err := runAttribution(o, rep); err != nil {
			return err
		}
		if o.lookup != "" {
			if err := addLookupTable(rep, o.lookup); err != nil {
				return err
			}
		}
	}
	var rttErr error
	if o.only == "" || o.only == "rtt" {
		// A failure to set the long link up keeps the loopback table.
		if rttErr = runRTT(o, rep); rttErr != nil && len(rep.Tables) == 0 {
			return rttErr
		}
	}
	rep.Duration = time.Since(start).Round(time.Second).String()
	rep.finish()
	if err := rep.write(o.out); err != nil {
		return err
	}
	if err := writeChart(rep, o.out); err != nil {
		fmt.Fprintln(os.Stderr, "bench: chart:", err)
	}
	if prof != nil {
		if err := prof.writeSummary(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: profiles:", err)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s/report.md, report.json and report.png in %s\n", o.out, rep.Duration)
	if rttErr != nil {
		return fmt.Errorf("round-trip table: %w", rttErr)
	}
	if rep.hadFailures {
		return fmt.Errorf("some figures failed; see the report")
	}
	return nil
}

// runMain measures the main table: every figure over every path, on
// plain loopback. The long-lived processes serve every figure but the
// idle ones, which start fresh processes.
func runMain(o options, rep *report, extra *extraProxy, prof *profiler) error {
	orig, err := startOrigin()
	if err != nil {
		return err
	}
	defer orig.Close()
	var st stack
	defer st.stop(rep, "main ")
	p, err := startPorthole(o.bin, false)
	if err != nil {
		return err
	}
	st.addProc(p)
	tun, err := startTunnel(o.exitBin, 0, prof != nil)
	if err != nil {
		return err
	}
	st.add(tun.Stop)
	client, err := tun.addClient(o.bin, "porthole-tunnel", prof != nil)
	if err != nil {
		return err
	}
	plain, err := startPlain()
	if err != nil {
		return err
	}
	st.addProc(plain)
	refs := map[string]*refSetup{}
	for _, mux := range []string{muxYamux, muxSmux} {
		r, err := startRef(mux, 0)
		if err != nil {
			return err
		}
		st.add(r.Stop)
		refs[mux] = r
	}

	infos := []pathInfo{
		{pathDirect, "direct TCP"},
		{pathPlain, "plain CONNECT"},
		{pathPorthole, "porthole direct"},
		{pathTunnel, "porthole tunnel"},
		{pathYamux, "yamux-ws"},
		{pathSmux, "smux-ws"},
	}
	if extra != nil {
		infos = append(infos, pathInfo{pathExtra, extra.name})
	}
	t := newTable(rep, "loopback", "Loopback: direct TCP, Porthole, and the reference tunnels", infos,
		[]ratioDef{
			{"porthole_over_plain", "porthole direct ÷ plain CONNECT", pathPorthole, pathPlain},
			{"tunnel_over_porthole", "tunnel ÷ porthole direct", pathTunnel, pathPorthole},
			{"tunnel_over_yamux", "tunnel ÷ yamux-ws", pathTunnel, pathYamux},
			{"tunnel_over_smux", "tunnel ÷ smux-ws", pathTunnel, pathSmux},
		})
	t.intro = mainIntro
	t.notes = mainNotes(o)
	paths := []path{
		{t.Paths[0], directDialer(orig.addr()), nil},
		{t.Paths[1], connectDialer(plain.addr, orig.addr()), []*proc{plain}},
		{t.Paths[2], connectDialer(p.addr, orig.addr()), []*proc{p}},
		{t.Paths[3], connectDialer(client.addr, orig.addr()), []*proc{client, tun.exit}},
		{t.Paths[4], connectDialer(refs[muxYamux].client.addr, orig.addr()), []*proc{refs[muxYamux].client, refs[muxYamux].server}},
		{t.Paths[5], connectDialer(refs[muxSmux].client.addr, orig.addr()), []*proc{refs[muxSmux].client, refs[muxSmux].server}},
	}
	if extra != nil {
		paths = append(paths, path{t.Paths[6], connectDialer(extra.addr, orig.addr()), nil})
	}
	for _, e := range mainExperiments(t, rep, o, prof) {
		if skipExperiment(o.only, e.name) {
			continue
		}
		runExperiment(e, paths, o.runs)
	}
	if prof != nil {
		if !onlyPart(o.only) {
			prof.busy("tunnel-download", paths[3].procs, func() error {
				_, err := download(paths[3].dial, o.size)
				return err
			})
		}
		prof.busy("tunnel-connrate", paths[3].procs, func() error {
			_, _, _, err := connRate(paths[3].dial, o.concConns, concWorkers)
			return err
		})
	}
	return nil
}

// stack stops what was started, last first, and records how each process
// ended.
type stack []func() []string

func (s *stack) add(stop func() []string) { *s = append(*s, stop) }

// addProc stops p with the others, its exit reported under its name.
func (s *stack) addProc(p *proc) {
	s.add(func() []string { return []string{p.name + ": " + p.Stop()} })
}

func (s *stack) stop(rep *report, prefix string) {
	for i := len(*s) - 1; i >= 0; i-- {
		rep.ProcExits = append(rep.ProcExits, prefixed(prefix, (*s)[i]())...)
	}
	*s = nil
}

func prefixed(prefix string, s []string) []string {
	for i := range s {
		s[i] = prefix + s[i]
	}
	return s
}

// runExperiment measures e over every path, o.runs times, the paths
// interleaved so that a noisy moment of the machine hits them alike.
func runExperiment(e experiment, paths []path, runs int) {
	start := time.Now()
	for i := range runs {
		for _, p := range paths {
			measureOnce(e, p, i, runs)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %v\n", e.name, time.Since(start).Round(100*time.Millisecond))
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
		fmt.Fprintf(os.Stderr, "bench: %-55s %-9s run %d/%d: "+f.format+" %s\n",
			f.Name, p.Key, i+1, runs, vals[k], f.Unit)
	}
}

// nofileLimit is the open-file limit after raiseNofile.
var nofileLimit uint64

// raiseNofile lifts the open-file limit to the hard limit: 10,000 idle
// proxied connections need 10,000 descriptors here, and as many or twice
// as many in the proxy, which inherits the limit. (Go raises its own soft
// limit at start but restores the original for children; an explicit
// Setrlimit is inherited.)
func raiseNofile(warn bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "bench: getrlimit:", err)
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "bench: setrlimit:", err)
	}
	nofileLimit = lim.Cur
	if most := uint64(idleSteps[len(idleSteps)-1]); warn && lim.Cur < most+1000 {
		fmt.Fprintf(os.Stderr, "bench: warning: open-file limit %d may be too low for %d idle connections\n", lim.Cur, most)
	}
}
