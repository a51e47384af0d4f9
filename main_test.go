package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/internal/childproc"
	"porthole/internal/connecttest"
	"porthole/internal/fetch"
)

// The test binary doubles as porthole: with PORTHOLE_AS_MAIN set it runs
// main's run() on its arguments, so these tests drive the real program as
// a separate process, signals and exit codes included.
func TestMain(m *testing.M) {
	childproc.AsChild("PORTHOLE_AS_MAIN", func() int { return run(os.Args[1:]) })
	// main imports ui, and Fyne's GL driver starts its call queue's
	// goroutine when the package is initialised; it lives as long as the
	// process.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("fyne.io/fyne/v2/internal/async.(*UnboundedChan[...]).processing"))
}

// startPorthole runs porthole with args in fresh, empty HOME and config
// directories.
func startPorthole(t *testing.T, args ...string) *childproc.Proc {
	t.Helper()
	return startPortholeEnv(t, append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir()), args...)
}

// startPortholeEnv runs porthole with args in the environment env; every
// wait for it is bounded by 30 s.
func startPortholeEnv(t *testing.T, env []string, args ...string) *childproc.Proc {
	t.Helper()
	return childproc.Start(t, "porthole", 30*time.Second, childproc.Self(childproc.QuietRace(append(env, "PORTHOLE_AS_MAIN=1")), args...))
}

// helloOrigin serves body to every request on a loopback HTTP server
// until the test ends, and returns its address.
func helloOrigin(t *testing.T, body string) string {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}))
	t.Cleanup(origin.Close)
	return origin.Listener.Addr().String()
}

// stopCleanly stops porthole with Ctrl-C, failing the test (without
// stopping it) if porthole logged an ERROR on the way.
func stopCleanly(t *testing.T, p *childproc.Proc) {
	t.Helper()
	if rest := p.Stop(t, syscall.SIGINT); strings.Contains(rest, "level=ERROR") {
		t.Errorf("ERROR logged during a clean stop:\n%s", rest)
	}
}

var listenRE = regexp.MustCompile(`msg="proxy listening" addr=(\S+)`)

func TestHeadlessServesAndStopsCleanlyOnCtrlC(t *testing.T) {
	originAddr := helloOrigin(t, "hello from origin")

	p := startPorthole(t, "--headless", "--listen", "127.0.0.1:0", "--log-level", "debug")
	addr := p.WaitFor(t, listenRE)[1]

	if body := fetch.Via(t, addr, "http://"+originAddr+"/"); body != "hello from origin" {
		t.Fatalf("through the proxy: %q", body)
	}

	// A live tunnel that must be closed by the shutdown.
	live, br, resp, err := connecttest.Dial(addr, originAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Header) != 0 {
		t.Fatalf("CONNECT: %s, headers %v; want a bare 200", resp.Status, resp.Header)
	}

	stopCleanly(t, p)
	if _, err := br.ReadByte(); err == nil {
		t.Error("the live tunnel was not closed by the shutdown")
	}
}

func TestSecondInstanceOnAPortInUseFailsNamingThePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := startPorthole(t, "--headless", "--listen", ln.Addr().String())
	code, stderr := p.Wait(t)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, port) || !strings.Contains(stderr, "in use") {
		t.Errorf("the message should name port %s and say it is in use:\n%s", port, stderr)
	}
}

func TestVersionAndBadFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--version")
	cmd.Env = append(os.Environ(), "PORTHOLE_AS_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "porthole ") {
		t.Fatalf("--version: %q, %v", out, err)
	}
	for _, args := range [][]string{{"--no-such-flag"}, {"--mode", "sideways"}, {"--listen", "nope"}, {"stray"}, {"--listen", "0.0.0.0:0"}, {"--mode", "tunnel", "--exit", "wss://exit.example/porthole"}, {"--mode", "tunnel", "--exit", "https://exit.example/porthole"}, {"--mode", "tunnel", "--exit", "wss://exit.example/porthole", "--exit-ca", "/nonexistent.pem"}} {
		cmd := exec.CommandContext(ctx, os.Args[0], args...)
		cmd.Env = append(os.Environ(), "PORTHOLE_AS_MAIN=1", "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want 2; output %q", args, err, out)
		}
	}
}
