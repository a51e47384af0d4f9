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
// each process: an idle connection's RSS is mostly its goroutines' stacks
// and its heap objects.
func (pr *profiler) memory(label string, procs []*proc) {
	for _, p := range procs {
		for _, kind := range []string{"heap", "allocs", "goroutine"} {
			url := fmt.Sprintf("http://%s/debug/pprof/%s", p.pprof, kind)
			pr.fetch(url, label, p.name, kind, kind+" at "+label)
		}
	}
}

func (pr *profiler) fetch(url, label, procName, kind, what string) {
	file := filepath.Join(pr.dir, fmt.Sprintf("%s-%s-%s.pb.gz", label, procName, kind))
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
