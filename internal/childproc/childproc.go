// Package childproc runs a program under test as a child process (most
// often the test binary itself, switched into the program by an
// environment variable) and lets the test wait for lines on its stderr and
// for its exit. Only tests import it.
package childproc

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxLines bounds WaitFor's loop: one round per stderr line.
const maxLines = 100_000

// Proc is a started child process whose stderr is read line by line.
type Proc struct {
	Cmd *exec.Cmd

	name   string        // what failure messages call the program
	wait   time.Duration // bound of every wait
	lines  chan string   // stderr, line by line; closed at its end
	exited chan struct{} // closed once cmd.Wait has returned, after stderr ended
	err    error         // cmd.Wait's result, once exited is closed

	mu  sync.Mutex
	all []string // every stderr line so far (the first maxLines), for Stderr
}

// Start starts cmd, as the caller set it up (Args, Env, Stdout; Stderr
// must be unset), and reads its stderr. name is what failure messages call
// the program, and wait bounds WaitFor and Wait. A process still running
// when t ends is killed.
func Start(t testing.TB, name string, wait time.Duration, cmd *exec.Cmd) *Proc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, name: name, wait: wait, lines: make(chan string, 1000), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			if len(p.all) < maxLines {
				p.all = append(p.all, sc.Text())
			}
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // nobody is looking at more lines
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill() // a failed test's leftover; the error says nothing more
			<-p.exited
		}
	})
	return p
}

// Exited is closed once the process has ended and stderr has been read
// to its end; Err is then cmd.Wait's result. For a test that waits itself
// (Wait does it for the others).
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is cmd.Wait's result once Exited is closed.
func (p *Proc) Err() error {
	<-p.exited
	return p.err
}

// Stderr is every line the program has written to stderr so far, also
// those WaitFor and Wait consumed: for checks over the whole output and
// for a failed test's log.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.all, "\n")
}

// WaitFor returns the submatches of the first stderr line matching re; the
// test fails if the program ends or the wait passes first.
func (p *Proc) WaitFor(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.NewTimer(p.wait)
	defer deadline.Stop()
	var seen []string
	for range maxLines {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s ended before printing %v; stderr:\n%s", p.name, re, strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline.C:
			t.Fatalf("no %v within %v; stderr:\n%s", re, p.wait, strings.Join(seen, "\n"))
		}
	}
	t.Fatalf("no %v in %d lines", re, maxLines)
	return nil
}

// WaitForEach waits until each of res has matched a line of stderr from
// now on, in whatever order the lines come (a program's goroutines log in
// an order the scheduler picks), and returns each one's submatches of its
// first matching line, in the order of res. The test fails if the
// program ends or the wait passes first.
func (p *Proc) WaitForEach(t testing.TB, res ...*regexp.Regexp) [][]string {
	t.Helper()
	deadline := time.NewTimer(p.wait)
	defer deadline.Stop()
	got := make([][]string, len(res))
	left := len(res)
	var seen []string
	for range maxLines {
		if left == 0 {
			return got
		}
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s ended before printing all of %v; stderr:\n%s", p.name, res, strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			for i, re := range res {
				if got[i] != nil {
					continue
				}
				if m := re.FindStringSubmatch(line); m != nil {
					got[i] = m
					left--
				}
			}
		case <-deadline.C:
			t.Fatalf("not all of %v within %v; stderr:\n%s", res, p.wait, strings.Join(seen, "\n"))
		}
	}
	if left == 0 {
		return got
	}
	t.Fatalf("not all of %v in %d lines", res, maxLines)
	return nil
}

// Wait returns the exit code and the rest of stderr; the test fails if
// the program has not ended within the wait.
func (p *Proc) Wait(t testing.TB) (int, string) {
	t.Helper()
	deadline := time.NewTimer(p.wait)
	defer deadline.Stop()
	var rest []string
	for open := true; open; {
		select {
		case line, ok := <-p.lines:
			if ok {
				rest = append(rest, line)
			}
			open = ok
		case <-deadline.C:
			t.Fatalf("%s did not exit within %v; stderr:\n%s", p.name, p.wait, strings.Join(rest, "\n"))
		}
	}
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if err := p.err; errors.As(err, &ee) {
			return ee.ExitCode(), strings.Join(rest, "\n")
		}
		if p.err != nil {
			t.Fatal(p.err)
		}
		return 0, strings.Join(rest, "\n")
	case <-deadline.C:
		t.Fatalf("%s did not exit within %v", p.name, p.wait)
		return -1, ""
	}
}

// Stop sends sig and waits for the program to end; the test fails
// (without stopping) unless it exits 0. It returns the rest of stderr.
func (p *Proc) Stop(t testing.TB, sig os.Signal) string {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	code, rest := p.Wait(t)
	if code != 0 {
		t.Errorf("%s exited %d after %v, want 0; stderr:\n%s", p.name, code, sig, rest)
	}
	return rest
}

// Kill ends the program with SIGKILL and waits, within the wait, for it
// to be gone: the kernel has reset its connections, its ports refuse.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(p.wait):
		t.Fatalf("%s did not end within %v after SIGKILL", p.name, p.wait)
	}
}

// Pipes connects cmd's stdin and stdout to the test; call it before
// starting cmd. Closing stdin is how most children are told to end. Read
// what the test needs from stdout before the program ends: once it has,
// Start's goroutine waits for it, which closes stdout.
func Pipes(t testing.TB, cmd *exec.Cmd) (stdin io.WriteCloser, stdout io.ReadCloser) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err = cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	return stdin, stdout
}

// Need returns the path of the program prog, or skips t, saying that prog
// is not installed and then why (where to get it, what is not tested).
func Need(t testing.TB, prog, why string) string {
	t.Helper()
	path, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s is not installed: %s", prog, why)
	}
	return path
}

// AsNobody is the command prefix (setpriv) that runs a program as the
// user nobody, for tests of what another user's process looks like. The
// test is skipped unless it runs as root with setpriv installed.
func AsNobody(t testing.TB) []string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a child as nobody")
	}
	setpriv := Need(t, "setpriv", "no other user's process is run")
	return []string{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
}

// QuietRace is env with GORACE telling a -race child not to wait a second
// at exit for nothing (atexit_sleep_ms=0); GORACE options env already has
// are kept.
func QuietRace(env []string) []string {
	gorace := "atexit_sleep_ms=0"
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			gorace = v + " " + gorace
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GORACE="+gorace)
}

// AsChild, called first in TestMain, turns the test binary into the
// program under test when the environment variable name is "1" (as the
// test's own Self command sets it): it runs program and exits with its
// code. Otherwise it returns and the tests run.
func AsChild(name string, program func() int) {
	if os.Getenv(name) == "1" {
		os.Exit(program())
	}
}

// Self is a command running this test binary again with args and env, for
// a TestMain that turns into the program when it finds its variable in env.
func Self(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = env
	return cmd
}
