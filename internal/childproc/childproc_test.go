package childproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childVar turns the test binary into the child; its value is what the
// child does (see child).
const childVar = "CHILDPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if does := os.Getenv(childVar); does != "" {
		os.Exit(child(does, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// child is the program the tests run: "print" writes its arguments after
// the first as stderr lines and exits with the code the first names;
// "cat" copies stdin to stdout; "hang" sleeps until killed; "until-interrupt" says ready, waits for
// SIGINT and exits 0.
func child(does string, args []string) int {
	switch does {
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			return 1
		}
		return 0
	case "hang":
		time.Sleep(time.Hour)
	case "until-interrupt":
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		fmt.Fprintln(os.Stderr, "ready")
		<-c
		fmt.Fprintln(os.Stderr, "stopping")
		return 0
	}
	var code int
	fmt.Sscan(args[0], &code)
	for _, a := range args[1:] {
		fmt.Fprintln(os.Stderr, a)
	}
	return code
}

// startChild runs child(does, args) in a child process.
func startChild(t *testing.T, does string, args ...string) *Proc {
	return Start(t, "child", 30*time.Second, Self(QuietRace(append(os.Environ(), childVar+"="+does)), args...))
}

func TestWaitForAndWait(t *testing.T) {
	p := startChild(t, "print", "3", "starting", "ready port=42", "bye")
	if m := p.WaitFor(t, regexp.MustCompile(`ready port=(\d+)`)); m[1] != "42" {
		t.Errorf("WaitFor: %q, want port 42", m)
	}
	if code, rest := p.Wait(t); code != 3 || rest != "bye" {
		t.Errorf("Wait: %d %q, want 3 \"bye\"", code, rest)
	}
	if all := p.Stderr(); all != "starting\nready port=42\nbye" {
		t.Errorf("Stderr: %q, want every line", all)
	}
}

// TestWaitForEachInAnyOrder: lines that come in the other order than
// asked are all found, each regexp's first match.
func TestWaitForEachInAnyOrder(t *testing.T) {
	p := startChild(t, "print", "0", "tunnel up", "listening port=42", "tunnel up again", "bye")
	m := p.WaitForEach(t, regexp.MustCompile(`listening port=(\d+)`), regexp.MustCompile(`tunnel (up.*)`))
	if m[0][1] != "42" || m[1][1] != "up" {
		t.Errorf("WaitForEach: %q", m)
	}
	if code, rest := p.Wait(t); code != 0 || rest != "tunnel up again\nbye" {
		t.Errorf("Wait: %d %q, want the lines after the last match", code, rest)
	}
}

func TestPipes(t *testing.T) {
	cmd := Self(QuietRace(append(os.Environ(), childVar+"=cat")))
	stdin, stdout := Pipes(t, cmd)
	p := Start(t, "child", 30*time.Second, cmd)
	if _, err := io.WriteString(stdin, "through\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "through\n" {
		t.Fatalf("cat: stdout %q, %v", line, err)
	}
	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.Wait(t); code != 0 {
		t.Errorf("cat: exit %d at the end of its input", code)
	}
}

func TestStop(t *testing.T) {
	p := startChild(t, "until-interrupt")
	p.WaitFor(t, regexp.MustCompile(`^ready$`))
	if rest := p.Stop(t, os.Interrupt); rest != "stopping" {
		t.Errorf("Stop: rest of stderr %q, want \"stopping\"", rest)
	}

	p = startChild(t, "hang")
	ft := &fakeT{TB: t}
	ft.run(func() { p.Stop(ft, os.Kill) })
	if !ft.failed {
		t.Error("Stop of a program killed by its signal did not fail the test")
	}
}

// Kill returns once the program is gone, whose Wait then failed.
func TestKill(t *testing.T) {
	p := startChild(t, "hang")
	p.Kill(t)
	select {
	case <-p.Exited():
	default:
		t.Fatal("Kill returned while the child still runs")
	}
	var ee *exec.ExitError
	if err := p.Err(); !errors.As(err, &ee) {
		t.Errorf("the killed child's Wait: %v, want an *exec.ExitError", err)
	}
}

// Need finds an installed program and skips where there is none.
func TestNeed(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got := Need(t, self, "the test binary"); got != self {
		t.Errorf("Need(%q) = %q", self, got)
	}
	ft := &fakeT{TB: t}
	ft.run(func() { Need(ft, "porthole-no-such-program", "it is made up") })
	if !ft.skipped || ft.failed {
		t.Errorf("Need of a missing program: skipped %v, failed %v; want a skip", ft.skipped, ft.failed)
	}
}

// fakeT records a failure or a skip instead of failing or skipping the
// test it wraps.
type fakeT struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatal(...any)          { f.failed = true; runtime.Goexit() }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }
func (f *fakeT) Skipf(string, ...any)  { f.skipped = true; runtime.Goexit() }

// run runs fn in its own goroutine, so a Fatal ends fn only.
func (f *fakeT) run(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// A child still running when the test ends is killed at cleanup.
func TestLeftoverIsKilled(t *testing.T) {
	var p *Proc
	t.Run("leaves", func(t *testing.T) {
		p = startChild(t, "hang")
	})
	select {
	case <-p.Exited():
	default:
		t.Fatal("the child still runs after its test ended")
	}
	if p.Err() == nil {
		t.Error("the killed child's Wait reported no error")
	}
}

// AsChild returns when its variable is not set.
func TestAsChildReturns(t *testing.T) {
	t.Setenv("CHILDPROC_TEST_UNSET", "")
	ran := false
	AsChild("CHILDPROC_TEST_UNSET", func() int { ran = true; return 0 })
	if ran {
		t.Error("AsChild ran the program without its variable")
	}
}

func TestQuietRace(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"A=1"}, []string{"A=1", "GORACE=atexit_sleep_ms=0"}},
		{[]string{"GORACE=halt_on_error=1", "B=2"}, []string{"B=2", "GORACE=halt_on_error=1 atexit_sleep_ms=0"}},
	} {
		if got := QuietRace(c.in); !slices.Equal(got, c.want) {
			t.Errorf("QuietRace(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
