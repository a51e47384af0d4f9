package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profiler takes profiles of porthole and porthole-exit through their
// net/http/pprof servers (PORTHOLE_PPROF) and writes them, with the
// heads of `go tool pprof -top`, to its directory.
type profiler struct {
	dir    string
	length time.Duration
	mu     sync.Mutex
	files  []profileFile
}

type profileFile struct {
	path, kind, what string
}

func newProfiler(dir string, d time.Duration) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return &profiler{dir: dir, length: d}, nil
}

// busy takes a CPU profile of each process while work runs again and
// again until the profiles are done.
func (pr *profiler) busy(label string, procs []*proc, work func() error) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for _, p := range procs {
		wg.Go(func() {
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.pprof, int(pr.length.Seconds()))
			pr.fetch(url, label, p.name, "cpu", fmt.Sprintf("CPU, %v of %s", pr.length, label))
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if err := work(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", label, err)
			<-done
			return
		}
	}
}

// memory takes the heap (in use), allocation and goroutine profiles of
// each process, and its runtime.MemStats: an idle connection's RSS is
// mostly its goroutines' stacks (MemStats' Stack) and its heap objects.
func (pr *profiler) memory(label string, procs []*proc) {
	for _, p := range procs {
		for _, kind := range []string{"heap", "allocs", "goroutine"} {
			url := fmt.Sprintf("http://%s/debug/pprof/%s", p.pprof, kind)
			pr.fetch(url, label, p.name, kind, kind+" at "+label)
		}
		pr.fetch(fmt.Sprintf("http://%s/debug/pprof/heap?debug=1", p.pprof), label, p.name, memstatsKind, "runtime.MemStats at "+label)
	}
}

// memstatsKind is the text heap profile, kept for its runtime.MemStats.
const memstatsKind = "memstats"

func (pr *profiler) fetch(url, label, procName, kind, what string) {
	ext := ".pb.gz"
	if kind == memstatsKind {
		ext = ".txt"
	}
	file := filepath.Join(pr.dir, fmt.Sprintf("%s-%s-%s%s", label, procName, kind, ext))
	client := http.Client{Timeout: pr.length + 30*time.Second}
	err := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, resp.Body)
		return errors.Join(err, f.Close())
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: profile %s of %s: %v\n", kind, procName, err)
		return
	}
	fmt.Fprintf(os.Stderr, "bench: profile written: %s\n", file)
	pr.mu.Lock()
	pr.files = append(pr.files, profileFile{file, kind, procName + ": " + what})
	pr.mu.Unlock()
}

// profileTopLines is how much of each `go tool pprof -top` goes into
// profile.md.
const profileTopLines = 25

// writeSummary writes profile.md: for each profile, the head of
// `go tool pprof -top` (heap: in-use bytes; allocs: allocated bytes).
func (pr *profiler) writeSummary() error {
	var b strings.Builder
	b.WriteString("# Profiles\n\nHeads of `go tool pprof -top` for each profile in this directory; open one with `go tool pprof -http=: FILE`.\n")
	for _, f := range pr.files {
		if f.kind == memstatsKind {
			if err := memstatsSummary(&b, f); err != nil {
				return err
			}
			continue
		}
		args := []string{"tool", "pprof", "-top", "-nodecount=" + fmt.Sprint(profileTopLines)}
		switch f.kind {
		case "heap":
			args = append(args, "-sample_index=inuse_space")
		case "allocs":
			args = append(args, "-sample_index=alloc_space")
		}
		out, err := exec.Command("go", append(args, f.path)...).CombinedOutput()
		fmt.Fprintf(&b, "\n## %s\n\n`%s`\n\n```\n", f.what, filepath.Base(f.path))
		if err != nil {
			fmt.Fprintf(&b, "go tool pprof: %v\n", err)
		}
		b.Write(out)
		b.WriteString("```\n")
	}
	path := filepath.Join(pr.dir, "profile.md")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", path)
	return nil
}

// memstatsSummary writes the runtime.MemStats lines of a text heap
// profile (those starting with "# ") to b.
func memstatsSummary(b *strings.Builder, f profileFile) error {
	text, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	fmt.Fprintf(b, "\n## %s\n\n`%s`\n\n```\n", f.what, filepath.Base(f.path))
	for line := range strings.Lines(string(text)) {
		if strings.HasPrefix(line, "# ") && !strings.HasPrefix(line, "# runtime.MemStats") {
			b.WriteString(strings.TrimPrefix(line, "# "))
		}
	}
	b.WriteString("```\n")
	return nil
}
