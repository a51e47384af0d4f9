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
	Date        string    `json:"date"`
	NProc       int       `json:"nproc"`
	GoVersion   string    `json:"go_version"`
	Binary      string    `json:"porthole_binary"`
	CPU         string    `json:"cpu"`
	Kernel      string    `json:"kernel"`
	Commit      string    `json:"commit"`
	Quick       bool      `json:"quick"`
	Runs        int       `json:"runs"`
	SizeBytes   int64     `json:"size_bytes"`
	ProxyExits  []string  `json:"proxy_exits"`
	Figures     []*figure `json:"figures"`
	hadFailures bool
}

// figure is one measured quantity for both paths.
type figure struct {
	Key          string   `json:"key"`
	Name         string   `json:"name"`
	Unit         string   `json:"unit"`
	HigherBetter bool     `json:"higher_is_better"`
	Direct       side     `json:"direct"`
	Porthole     side     `json:"porthole"`
	Ratio        *float64 `json:"ratio_porthole_over_direct,omitempty"`
	format       string
}

// side is the result of one path: samples and their summary, an error, or
// not applicable.
type side struct {
	NA      bool      `json:"not_applicable,omitempty"`
	Samples []float64 `json:"samples,omitempty"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Error   string    `json:"error,omitempty"`
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

func (r *report) finish() {
	for _, f := range r.Figures {
		f.Direct.summarize()
		f.Porthole.summarize()
		if f.Direct.Error != "" || f.Porthole.Error != "" {
			r.hadFailures = true
		}
		if len(f.Direct.Samples) > 0 && len(f.Porthole.Samples) > 0 && f.Direct.Median != 0 {
			ratio := f.Porthole.Median / f.Direct.Median
			f.Ratio = &ratio
		}
	}
}

func newReport(bin string, quick bool, runs int, size int64) *report {
	return &report{
		Date:      time.Now().UTC().Format(time.RFC3339),
		NProc:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Binary:    binaryInfo(bin),
		CPU:       cpuModel(),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		Commit:    gitCommit(),
		Quick:     quick,
		Runs:      runs,
		SizeBytes: size,
	}
}

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
	fmt.Fprintf(&b, "# Porthole benchmark: direct TCP vs. porthole direct mode\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", r.Date)
	fmt.Fprintf(&b, "- Commit: %s\n", r.Commit)
	fmt.Fprintf(&b, "- CPU: %s, nproc %d\n", r.CPU, r.NProc)
	fmt.Fprintf(&b, "- Kernel: %s\n", r.Kernel)
	fmt.Fprintf(&b, "- Go: bench %s; porthole binary %s\n", r.GoVersion, r.Binary)
	fmt.Fprintf(&b, "- Mode: %s, %d run(s) per figure, transfer size %d MiB\n", mode, r.Runs, r.SizeBytes>>20)
	fmt.Fprintf(&b, "- Porthole exits (SIGINT at the end): %s\n\n", strings.Join(r.ProxyExits, "; "))
	b.WriteString("Loopback only (127.0.0.1). Porthole is reached with HTTP CONNECT on its mixed port. ")
	b.WriteString("Each cell is the median of the runs, with (min–max). MB = 10⁶ bytes. ")
	b.WriteString("Ratio is porthole ÷ direct; ↑ means higher is better, ↓ lower is better.\n\n")
	b.WriteString("| figure | unit | | direct TCP | porthole direct mode | porthole ÷ direct |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		arrow := "↓"
		if f.HigherBetter {
			arrow = "↑"
		}
		ratio := "–"
		if f.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *f.Ratio)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Name, f.Unit, arrow,
			f.Direct.cell(f.format), f.Porthole.cell(f.format), ratio)
	}
	b.WriteString(`
How each figure is made:
- Downloads/uploads: one connection, the origin sends (or receives) the transfer size; timed from the command to the last byte (upload: to the origin's "OK").
- 8 parallel streams: 8 connections opened first, then the transfer size split evenly over them at once; aggregate throughput.
- Connection figures: connect (+ CONNECT for porthole), send one byte through an echo, read it back, close; 1,000 one after another, and 2,000 by 32 concurrent workers. Latency covers the whole exchange.
- RSS per idle connection: a fresh porthole process, VmRSS before and after opening 2,000 idle proxied connections, difference ÷ 2,000.
`)
	return b.String()
}

func (s side) cell(format string) string {
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
