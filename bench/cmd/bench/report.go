package main

import (
	"bufio"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// report is everything written to report.md and report.json.
type report struct {
	Date       string   `json:"date"`
	NProc      int      `json:"nproc"`
	GoVersion  string   `json:"go_version"`
	Binary     string   `json:"porthole_binary"`
	ExitBinary string   `json:"exit_binary"`
	CPU        string   `json:"cpu"`
	Kernel     string   `json:"kernel"`
	Commit     string   `json:"commit"`
	Quick      bool     `json:"quick"`
	Runs       int      `json:"runs"`
	SizeBytes  int64    `json:"size_bytes"`
	Command    string   `json:"command"`
	Duration   string   `json:"duration"`
	Extra      string   `json:"extra_proxy,omitempty"`
	RTTms      float64  `json:"rtt_ms"`
	ProcExits  []string `json:"process_exits"`
	Targets    []target `json:"targets"`
	Tables     []*table `json:"tables"`

	hadFailures bool
}

// table is a set of figures measured over the same ordered list of paths
// (the columns of report.md), with ratios between pairs of paths.
type table struct {
	Key     string     `json:"key"`
	Title   string     `json:"title"`
	Paths   []pathInfo `json:"paths"`
	Ratios  []ratioDef `json:"ratios,omitempty"`
	Figures []*figure  `json:"figures"`
	intro   string     // markdown paragraph under the title
	notes   string     // markdown after the table
}

// pathInfo names one way of reaching the origin.
type pathInfo struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// ratioDef is a ratio column: Num's median ÷ Den's median.
type ratioDef struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Num  string `json:"numerator"`
	Den  string `json:"denominator"`
}

// figure is one measured quantity over every path of its table.
type figure struct {
	Key          string             `json:"key"`
	Name         string             `json:"name"`
	Unit         string             `json:"unit"`
	HigherBetter bool               `json:"higher_is_better"`
	Expect       string             `json:"expected,omitempty"`
	Sides        []*side            `json:"paths"`            // in the table's path order
	Ratios       map[string]float64 `json:"ratios,omitempty"` // by ratioDef.Key
	format       string
}

// side is the result of one path: samples and their summary, an error, or
// not applicable.
type side struct {
	Path    string    `json:"path"`
	NA      bool      `json:"not_applicable,omitempty"`
	Samples []float64 `json:"samples,omitempty"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Error   string    `json:"error,omitempty"`
}

func newTable(r *report, key, title string, paths []pathInfo, ratios []ratioDef) *table {
	t := &table{Key: key, Title: title, Paths: paths, Ratios: ratios}
	r.Tables = append(r.Tables, t)
	return t
}

// fig adds a figure to t; only (path keys) limits it to some paths, the
// others are "n/a".
func (t *table) fig(key, name, unit, format string, higher bool, only ...string) *figure {
	f := &figure{Key: key, Name: name, Unit: unit, HigherBetter: higher, format: format}
	for _, p := range t.Paths {
		s := &side{Path: p.Key}
		s.NA = len(only) > 0 && !slices.Contains(only, p.Key)
		f.Sides = append(f.Sides, s)
	}
	t.Figures = append(t.Figures, f)
	return f
}

// side is f's result for path key, nil if the table has no such path.
func (f *figure) side(key string) *side {
	for _, s := range f.Sides {
		if s.Path == key {
			return s
		}
	}
	return nil
}

func (s *side) summarize() {
	if len(s.Samples) == 0 {
		return
	}
	v := slices.Clone(s.Samples)
	slices.Sort(v)
	s.Min, s.Max = v[0], v[len(v)-1]
	if len(v)%2 == 1 {
		s.Median = v[len(v)/2]
	} else {
		s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
}

func (s *side) ok() bool { return !s.NA && s.Error == "" && len(s.Samples) > 0 }

func (r *report) finish() {
	for _, t := range r.Tables {
		for _, f := range t.Figures {
			for _, s := range f.Sides {
				s.summarize()
				if s.Error != "" {
					r.hadFailures = true
				}
			}
			for _, rd := range t.Ratios {
				num, den := f.side(rd.Num), f.side(rd.Den)
				if num == nil || den == nil || !num.ok() || !den.ok() || den.Median == 0 {
					continue
				}
				if f.Ratios == nil {
					f.Ratios = map[string]float64{}
				}
				f.Ratios[rd.Key] = num.Median / den.Median
			}
		}
	}
	r.evalTargets(r.RTTms)
}

func newReport(bin, exitBin string, quick bool, runs int, size int64) *report {
	return &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		NProc:      runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		Binary:     binaryInfo(bin),
		ExitBinary: binaryInfo(exitBin),
		CPU:        cpuModel(),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		Commit:     gitCommit(),
		Command:    commandLine(os.Args[1:]),
		Quick:      quick,
		Runs:       runs,
		SizeBytes:  size,
	}
}

// commandLine is how the report says it was made: the arguments as given,
// but for -lookup's file, which make bench writes to a temporary path of
// this machine (it holds `go test -bench BenchmarkLookup`'s output).
func commandLine(args []string) string {
	out := []string{"go run ./cmd/bench"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-lookup" || a == "--lookup":
			out = append(out, a, lookupPlaceholder)
			i++ // its value
		case strings.HasPrefix(a, "-lookup=") || strings.HasPrefix(a, "--lookup="):
			out = append(out, a[:strings.IndexByte(a, '=')+1]+lookupPlaceholder)
		default:
			out = append(out, a)
		}
	}
	return strings.Join(out, " ")
}

const lookupPlaceholder = "<BenchmarkLookup output>"

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "unknown"
	}
	return string(b)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// binaryInfo says which Go built the measured binary and from which revision.
func binaryInfo(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown"
	}
	s := info.GoVersion
	s += revision(info)
	return s
}

func revision(info *debug.BuildInfo) string {
	var rev, dirty string
	for _, kv := range info.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value[:min(len(kv.Value), 12)]
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return ", revision " + rev + dirty
}

func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(j, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.markdown()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (r *report) markdown() string {
	var b strings.Builder
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# Porthole benchmark: direct TCP, Porthole direct and tunnel modes, yamux and smux over WebSocket\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", r.Date)
	fmt.Fprintf(&b, "- Commit: %s\n", r.Commit)
	fmt.Fprintf(&b, "- CPU: %s, nproc %d\n", r.CPU, r.NProc)
	fmt.Fprintf(&b, "- Kernel: %s\n", r.Kernel)
	fmt.Fprintf(&b, "- Go: bench %s; porthole binary %s; porthole-exit binary %s\n", r.GoVersion, r.Binary, r.ExitBinary)
	fmt.Fprintf(&b, "- Mode: %s, %d run(s) per figure, loopback transfer size %d MiB\n", mode, r.Runs, r.SizeBytes>>20)
	fmt.Fprintf(&b, "- Command (in bench/): `%s`\n", r.Command)
	fmt.Fprintf(&b, "- Duration: %s\n", r.Duration)
	if r.Extra != "" {
		fmt.Fprintf(&b, "- Extra proxy (BENCH_EXTRA_NAME): %s\n", r.Extra)
	}
	fmt.Fprintf(&b, "- Process exits (SIGINT at the end): %s\n", strings.Join(r.ProcExits, "; "))
	b.WriteString("\nLoopback only (127.0.0.1); every process runs on the same cores as the load generator. ")
	b.WriteString("Each cell is the median of the runs, with (min–max). MB = 10⁶ bytes. ")
	b.WriteString("↑ means higher is better, ↓ lower is better. Ratios divide medians of the same run. ")
	b.WriteString("The chart (report.png) shows the main figures.\n")
	r.targetsMarkdown(&b)
	b.WriteString("\n![main figures](report.png)\n")
	for _, t := range r.Tables {
		t.markdown(&b)
	}
	return b.String()
}

func (t *table) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## %s\n\n", t.Title)
	if t.intro != "" {
		b.WriteString(t.intro + "\n\n")
	}
	expect := slices.ContainsFunc(t.Figures, func(f *figure) bool { return f.Expect != "" })
	b.WriteString("| figure | unit | |")
	sep := "|---|---|---|"
	for _, p := range t.Paths {
		fmt.Fprintf(b, " %s |", p.Name)
		sep += "---|"
	}
	for _, rd := range t.Ratios {
		fmt.Fprintf(b, " %s |", rd.Name)
		sep += "---|"
	}
	if expect {
		b.WriteString(" expected |")
		sep += "---|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, f := range t.Figures {
		arrow := "↓"
		if f.HigherBetter {
			arrow = "↑"
		}
		fmt.Fprintf(b, "| %s | %s | %s |", f.Name, f.Unit, arrow)
		for _, s := range f.Sides {
			fmt.Fprintf(b, " %s |", s.cell(f.format))
		}
		for _, rd := range t.Ratios {
			ratio := "–"
			if v, ok := f.Ratios[rd.Key]; ok {
				ratio = fmt.Sprintf("%.2f", v)
			}
			fmt.Fprintf(b, " %s |", ratio)
		}
		if expect {
			fmt.Fprintf(b, " %s |", f.Expect)
		}
		b.WriteString("\n")
	}
	if t.notes != "" {
		b.WriteString("\n" + t.notes)
	}
}

func (s *side) cell(format string) string {
	switch {
	case s.NA:
		return "n/a"
	case s.Error != "":
		return "error: " + strings.ReplaceAll(s.Error, "|", "\\|")
	case len(s.Samples) == 0:
		return "–"
	case len(s.Samples) == 1:
		return fmt.Sprintf(format, s.Median)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.Median, s.Min, s.Max)
}
