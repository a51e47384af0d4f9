package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a running porthole or porthole-exit process listening on a free
// loopback port. Stop sends SIGINT and waits (bounded) for it to exit.
type proc struct {
	name   string // for messages and log prefixes
	cmd    *exec.Cmd
	addr   string
	logs   *lineWatch
	exited chan struct{} // closed when Wait returns
	err    error         // Wait's result, valid after exited is closed
	pprof  string        // address of its net/http/pprof server, if any
}

// procSpec says how to start a proc.
type procSpec struct {
	name  string
	bin   string
	args  []string
	env   []string // added to the bench's environment, after scrubbing
	addr  string   // where the process listens; waited for
	ready string   // if set, also wait for a log line containing it
	dir   string   // removed after the process exited
	pprof bool     // serve profiles (PORTHOLE_PPROF) on a free loopback port
}

const (
	startTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
)

// scrubbedEnv is the bench's environment without variables that would
// change what is measured (a user's token or window knob).
func scrubbedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PORTHOLE_TOKEN" || k == "PORTHOLE_TUNNEL_MAX_WINDOW" || k == "PORTHOLE_PPROF" || k == "PORTHOLE_NO_PROCESS_LOOKUP" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func startProc(spec procSpec) (*proc, error) {
	cmd := exec.Command(spec.bin, spec.args...)
	cmd.Env = append(scrubbedEnv(), spec.env...)
	var pprofAddr string
	if spec.pprof {
		var err error
		if pprofAddr, err = freePort(); err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "PORTHOLE_PPROF="+pprofAddr)
	}
	logs := newLineWatch(os.Stderr, "["+spec.name+"] ", spec.ready)
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		if spec.dir != "" {
			os.RemoveAll(spec.dir)
		}
		return nil, fmt.Errorf("%s: start %s: %w", spec.name, spec.bin, err)
	}
	p := &proc{name: spec.name, cmd: cmd, addr: spec.addr, logs: logs, exited: make(chan struct{}), pprof: pprofAddr}
	go func() {
		p.err = cmd.Wait()
		if spec.dir != "" {
			os.RemoveAll(spec.dir)
		}
		close(p.exited)
	}()
	if err := p.waitReady(spec.ready != ""); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// startPorthole starts `porthole --headless` in direct mode, allowing
// idleMaxStream connections.
func startPorthole(bin string, pprof bool) (*proc, error) {
	return startPortholeSpec("porthole", bin, pprof, "warn", nil)
}

func startPortholeSpec(name, bin string, pprof bool, logLevel string, env []string) (*proc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgDir, err := portholeDir("porthole-bench-", map[string]string{
		"config.json": fmt.Sprintf(`{"max_conns": %d}`+"\n", idleMaxStream),
	})
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(cfgDir, "config.json")
	return startProc(procSpec{
		name:  name,
		bin:   bin,
		args:  []string{"--headless", "--config", cfg, "--listen", addr, "--mode", "direct", "--log-level", logLevel},
		env:   append([]string{"XDG_CONFIG_HOME=" + cfgDir}, env...),
		addr:  addr,
		dir:   cfgDir,
		pprof: pprof,
	})
}

// portholeDir is a new config dir for a porthole under measurement,
// holding files (name: content) and nothing else: the user's own config
// (tunnel mode, system proxy, ...) stays out of the measurement. Nothing is
// left behind on an error.
func portholeDir(prefix string, files map[string]string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("proxy: config dir: %w", err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("proxy: %s: %w", name, err)
		}
	}
	return dir, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before porthole binds it; on loopback that is unlikely enough.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startSelf starts the bench binary's own subcommand args (the
// subcommand and its flags) as the process name, with -listen on a free
// loopback address; it is ready when it listens there and has logged
// ready.
func startSelf(name, ready string, args ...string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%s: find the bench binary: %w", name, err)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	return startProc(procSpec{name: name, bin: self, args: append(args, "-listen", addr), addr: addr, ready: ready})
}

// waitReady waits until the process accepts connections and, with
// logLine, has logged its ready line.
func (p *proc) waitReady(logLine bool) error {
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s: %s before listening on %s", p.name, p.exitDesc(), p.addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not listening on %s after %v: %w", p.name, p.addr, startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !logLine {
		return nil
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-p.logs.seen:
		return nil
	case <-p.exited:
		return fmt.Errorf("%s: %s before logging %q", p.name, p.exitDesc(), p.logs.marker)
	case <-t.C:
		return fmt.Errorf("%s: no %q in its log after %v", p.name, p.logs.marker, startTimeout)
	}
}

// Stop sends SIGINT, waits up to stopTimeout, then kills. It returns how
// the process ended: "exit 0", "exit 3", "signal: interrupt",
// "killed after 10s". Calling it again returns the same.
func (p *proc) Stop() string {
	select {
	case <-p.exited:
	default:
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
			fmt.Fprintf(os.Stderr, "bench: %s: SIGINT: %v\n", p.name, err)
		}
		if !exitedWithin(p.exited, stopTimeout) {
			if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				fmt.Fprintf(os.Stderr, "bench: %s: kill: %v\n", p.name, err)
			}
			<-p.exited
			return fmt.Sprintf("killed after %v", stopTimeout)
		}
	}
	return p.exitDesc()
}

// exitedWithin reports whether exited is closed within d.
func exitedWithin(exited <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-exited:
		return true
	case <-t.C:
		return false
	}
}

// exitDesc describes how the process ended; call after exited is closed.
func (p *proc) exitDesc() string {
	if p.err == nil {
		return "exit 0"
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal: " + ws.Signal().String()
		}
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return p.err.Error()
}

// rssBytes reads VmRSS of the process from /proc.
func (p *proc) rssBytes() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("%s: read rss: %w", p.name, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: parse VmRSS %q: %w", p.name, v, err)
		}
		return kb << 10, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("%s: read rss: %w", p.name, err)
	}
	return 0, fmt.Errorf("%s: no VmRSS in /proc/%d/status", p.name, p.cmd.Process.Pid)
}

// lineWatch passes a process's output on to out, a line at a time with a
// prefix, and closes seen at the first line that contains marker.
type lineWatch struct {
	out    io.Writer
	prefix string
	marker string
	seen   chan struct{}

	mu      sync.Mutex
	partial []byte
	found   bool
	keep    []string // the last lines that mention stoppedLine
}

// kept returns the lines that mentioned stoppedLine (porthole's stop line,
// which carries its counters), at most a few.
func (w *lineWatch) kept() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.keep...)
}

// maxLine bounds a line kept while waiting for its end.
const maxLine = 64 << 10

func newLineWatch(out io.Writer, prefix, marker string) *lineWatch {
	return &lineWatch{out: out, prefix: prefix, marker: marker, seen: make(chan struct{})}
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 && len(w.partial) < maxLine {
			break
		}
		if i < 0 {
			i = len(w.partial) - 1
		}
		line := w.partial[:i+1]
		if !w.found && w.marker != "" && bytes.Contains(line, []byte(w.marker)) {
			w.found = true
			close(w.seen)
		}
		if bytes.Contains(line, []byte(stoppedLine)) {
			w.keep = append(w.keep[max(0, len(w.keep)-3):], string(line))
		}
		// The bench's stderr is the console: a failed write there is not
		// the child's problem, and must not block it.
		_, _ = fmt.Fprintf(w.out, "%s%s", w.prefix, line)
		w.partial = w.partial[i+1:]
	}
	// Keep the remainder in a fresh slice so the buffer does not grow.
	w.partial = append([]byte(nil), w.partial...)
	return len(p), nil
}

// newToken writes a random token to dir/token (mode 0600) and returns its
// path.
func newToken(dir string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return path, nil
}
