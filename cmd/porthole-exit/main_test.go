package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/xid"
	"go.uber.org/goleak"

	"porthole/core/tunnel"
	"porthole/internal/chantest"
	"porthole/internal/childproc"
	"porthole/internal/curltest"
	"porthole/internal/fetch"
	"porthole/internal/filetest"
	"porthole/internal/logcapture"
	"porthole/internal/origin"
	"porthole/internal/testcert"
)

// The test binary doubles as porthole-exit: with PORTHOLE_EXIT_AS_MAIN set
// it runs main() on its arguments, so these tests drive the real program
// as a separate process, signals and exit codes included.
func TestMain(m *testing.M) {
	childproc.AsChild("PORTHOLE_EXIT_AS_MAIN", func() int {
		main() // exits
		return 0
	})
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for the program; the tests never sleep to
// synchronise.
const wait = 30 * time.Second

const testToken = "cmd-test-token"

var discard = slog.New(slog.DiscardHandler)

var listeningRE = regexp.MustCompile(`msg="porthole-exit listening" url=(\S+)`)

// ---------------------------------------------------------------------------
// parse and run, in process.

func TestParse(t *testing.T) {
	o, err := parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := options{listen: "127.0.0.1:9443", path: "/porthole", logLevel: "info", maxStreams: 4096, maxSessions: 1024, budgetMiB: 256, dialTimeout: 10 * time.Second}
	if o != want {
		t.Errorf("defaults: %+v, want %+v", o, want)
	}
	o, err = parse([]string{"--listen", ":8443", "--path", "/tunnel", "--token-file", "tok", "--tls-cert", "c.pem", "--tls-key", "k.pem",
		"--allow-private", "--max-streams", "3", "--max-sessions", "4", "--max-session-memory", "5", "--dial-timeout", "2s", "--log-level", "debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = options{listen: ":8443", path: "/tunnel", tokenFile: "tok", cert: "c.pem", key: "k.pem", logLevel: "debug", allowPrivate: true,
		maxStreams: 3, maxSessions: 4, budgetMiB: 5, dialTimeout: 2 * time.Second}
	if o != want {
		t.Errorf("all flags: %+v, want %+v", o, want)
	}
	for _, args := range [][]string{
		{"--tls-cert", "c.pem"},
		{"--tls-key", "k.pem"},
		{"extra"},
		{"--path", "tunnel"},
		{"--max-streams", "0"},
		{"--max-sessions", "0"},
		{"--max-session-memory", "0"},
		{"--dial-timeout", "soon"},
		{"--bogus"},
	} {
		var stderr bytes.Buffer
		if _, err := parse(args, &stderr); err == nil {
			t.Errorf("parse(%q) accepted it", args)
		}
	}
	if _, err := parse([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parse(-h): %v, want flag.ErrHelp", err)
	}
}

// waitLine returns the submatches of the first match of re in what run
// wrote to out, failing after wait.
func waitLine(t *testing.T, out *logcapture.Sink, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	out.Await(t, wait, re.String(), func(data []byte) bool {
		m = re.FindStringSubmatch(string(data))
		return m != nil
	})
	return m
}

// runResult is run's outcome.
type runResult struct {
	code           int
	stdout, stderr string
	released       int
}

// runNow runs run to its end with a context that is never cancelled.
func runNow(t *testing.T, args ...string) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	var released int
	code := run(t.Context(), args, &stdout, &stderr, func() { released++ })
	return runResult{code, stdout.String(), stderr.String(), released}
}

func TestRunVersionAndHelp(t *testing.T) {
	r := runNow(t, "--version")
	if r.code != 0 || r.stdout != "porthole-exit dev\n" || r.stderr != "" {
		t.Errorf("--version: %+v, want exit 0 and \"porthole-exit dev\"", r)
	}
	r = runNow(t, "--help")
	if r.code != 0 || !strings.Contains(r.stderr, "Usage: porthole-exit") || !strings.Contains(r.stderr, "-allow-private") {
		t.Errorf("--help: %+v, want exit 0 and the usage on stderr", r)
	}
}

// TestRunUsageErrors: bad command lines exit 2 with a message that names
// what is wrong, before anything listens.
func TestRunUsageErrors(t *testing.T) {
	t.Setenv("PORTHOLE_TOKEN", "")
	token := filetest.Write(t, "token", testToken+"\n")
	empty := filetest.Write(t, "empty", " \n\nsecond line is not read\n")
	junk := filetest.Write(t, "junk.pem", "not a certificate")
	for _, c := range []struct {
		name string
		args []string
		says string // a fragment the message must contain
	}{
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"argument", []string{"--token-file", token, "serve"}, `"serve"`},
		{"no token", []string{"--listen", "127.0.0.1:0"}, "PORTHOLE_TOKEN"},
		{"empty token file", []string{"--token-file", empty}, "empty"},
		{"missing token file", []string{"--token-file", filepath.Join(t.TempDir(), "nope")}, "--token-file"},
		{"cert without key", []string{"--token-file", token, "--tls-cert", junk}, "--tls-key"},
		{"key without cert", []string{"--token-file", token, "--tls-key", junk}, "--tls-cert"},
		{"bad certificate", []string{"--token-file", token, "--tls-cert", junk, "--tls-key", junk}, "TLS certificate"},
		{"bad log level", []string{"--token-file", token, "--log-level", "loud"}, "loud"},
		{"bad path", []string{"--token-file", token, "--path", "porthole"}, "--path"},
		{"no streams", []string{"--token-file", token, "--max-streams", "0"}, "--max-streams"},
	} {
		r := runNow(t, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.says) || r.stdout != "" || r.released != 0 {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit 2 and a message with %q", c.name, r.code, r.stderr, r.stdout, c.says)
		}
	}
}

func TestRunPortTaken(t *testing.T) {
	t.Setenv("PORTHOLE_TOKEN", testToken)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := runNow(t, "--listen", ln.Addr().String())
	if r.code != 1 || !strings.Contains(r.stderr, "cannot listen") || !strings.Contains(r.stderr, ln.Addr().String()) {
		t.Errorf("listening on a taken port: exit %d, stderr %q; want exit 1 naming the address", r.code, r.stderr)
	}
}

// TestRunServesUntilCancelled: run serves the tunnel (token from
// PORTHOLE_TOKEN) and /healthz, logs each stream with its id at DEBUG,
// and when its context ends it calls release once, says "stopping", ends
// the sessions and returns 0.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Setenv("PORTHOLE_TOKEN", testToken)
	tg := origin.Echo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := logcapture.NewSink(), logcapture.NewSink()
	var released atomic.Int32
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--listen", "127.0.0.1:0", "--allow-private", "--log-level", "debug", "--max-streams", "1", "--max-sessions", "1"},
			stdout, stderr, func() { released.Add(1) })
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped { // a failed test: end run before the leak check
			cancel()
			<-code
		}
	})
	url := waitLine(t, stderr, listeningRE)[1]
	if !strings.HasPrefix(url, "ws://127.0.0.1:") || !strings.HasSuffix(url, "/porthole") {
		t.Fatalf("listening on %q", url)
	}
	base := "http://" + strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/porthole")
	if status, body := get(t, base+"/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 \"ok\"", status, body)
	}
	if status, _ := get(t, base+"/elsewhere"); status != http.StatusNotFound {
		t.Errorf("/elsewhere: %d, want 404", status)
	}
	if status, _ := get(t, base+"/porthole"); status != http.StatusUnauthorized {
		t.Errorf("GET /porthole without a token: %d, want 401", status)
	}

	client := newClient(t, url, nil)
	st := openStream(t, client, tg)
	echoChecked(t, st, 256<<10)
	waitLine(t, stderr, regexp.MustCompile(`level=DEBUG msg="stream closed" session=\S+ stream=`+st.ID().String()))

	// Its stream has ended (logged above): room for one more, not two.
	st2 := openStream(t, client, tg) // left open: the stop must end it
	var oe *tunnel.OpenError
	if err := openResult(t, client, tg); !errors.As(err, &oe) || oe.Code != tunnel.CodeOverloaded {
		t.Errorf("a second stream with --max-streams 1: %v, want OPEN_FAIL overloaded", err)
	}
	// One session at most: a second client is turned away.
	dialCtx, cancelDial := context.WithTimeout(t.Context(), wait)
	defer cancelDial()
	_, err := tunnel.Dial(dialCtx, url, testToken, tunnel.DialOptions{Timeout: wait})
	if !errors.Is(err, websocket.ErrBadHandshake) || errors.Is(err, tunnel.ErrAuthFailed) {
		t.Errorf("a second session with --max-sessions 1: %v, want a refused upgrade", err)
	}

	cancel()
	c := chantest.Within(t, wait, "run's return after its context ended", code)
	stopped = true
	if c != 0 {
		t.Errorf("run returned %d after its context ended, want 0; stderr:\n%s", c, stderr)
	}
	if n := released.Load(); n != 1 {
		t.Errorf("release called %d times, want 1", n)
	}
	if !strings.Contains(stderr.String(), `msg=stopping`) {
		t.Errorf("no \"stopping\" in the log:\n%s", stderr)
	}
	if err := st2.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if _, err := st2.Read(make([]byte, 1)); !errors.Is(err, tunnel.ErrTunnelLost) {
		t.Errorf("a stream open at the stop: %v, want ErrTunnelLost", err)
	}
	if stdout.String() != "" {
		t.Errorf("stdout: %q, want nothing", stdout)
	}
}

// get fetches url with no proxy and no kept-alive connection.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return fetch.Get(t, &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: wait}, url)
}

// ---------------------------------------------------------------------------
// The tunnel side: a reconnecting client and a loopback echo target.

func newClient(t *testing.T, url string, tlsCfg *tls.Config) *tunnel.Client {
	t.Helper()
	c, err := tunnel.NewClient(tunnel.ClientConfig{URL: url, Token: testToken, TLS: tlsCfg, Timeout: wait, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Client.Close: %v", err)
		}
	})
	return c
}

func openStream(t *testing.T, c *tunnel.Client, target string) *tunnel.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	st, err := c.Open(ctx, xid.New(), target, nil)
	if err != nil {
		t.Fatalf("Open %s: %v", target, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Stream.Close: %v", err)
		}
	})
	if err := st.WaitOpen(ctx); err != nil {
		t.Fatalf("opening a stream to %s: %v", target, err)
	}
	return st
}

// openResult opens a stream to target and returns how its opening ended
// (WaitOpen's error: nil, or the exit's OPEN_FAIL); the stream is closed
// at cleanup.
func openResult(t *testing.T, c *tunnel.Client, target string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	st, err := c.Open(ctx, xid.New(), target, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // its opening is what the test checks
	return st.WaitOpen(ctx)
}

// echoChecked sends n random bytes through st to an echo target while
// reading the echo, half-closes, and checks the echo (SHA-256) and its EOF.
func echoChecked(t *testing.T, st *tunnel.Stream, n int) {
	t.Helper()
	if err := st.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := st.Write(data)
		if err == nil {
			err = st.CloseWrite()
		}
		wrote <- err
	}()
	h := sha256.New()
	got, err := io.Copy(h, st)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if sum := sha256.Sum256(data); got != int64(n) || !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("the echo of %d bytes came back as %d bytes, or other bytes", n, got)
	}
}

// ---------------------------------------------------------------------------
// The program as a process.

// proc is porthole-exit running as a child process; stdout is its
// standard output.
type proc struct {
	*childproc.Proc
	stdout bytes.Buffer
}

// childEnv is this process's environment without PORTHOLE_TOKEN, plus extra.
// Under -race the child would wait a second at exit for nothing
// (atexit_sleep_ms): that is turned off, the caller's GORACE kept.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTHOLE_TOKEN=") && !strings.HasPrefix(kv, "PORTHOLE_EXIT_AS_MAIN=") {
			env = append(env, kv)
		}
	}
	return append(childproc.QuietRace(append(env, "PORTHOLE_EXIT_AS_MAIN=1")), extra...)
}

func startExit(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{}
	cmd := childproc.Self(env, args...)
	cmd.Stdout = &p.stdout
	p.Proc = childproc.Start(t, "porthole-exit", wait, cmd)
	return p
}

func TestBinaryUsage(t *testing.T) {
	p := startExit(t, childEnv(), "--version")
	if code, stderr := p.Wait(t); code != 0 || p.stdout.String() != "porthole-exit dev\n" || stderr != "" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want 0 and \"porthole-exit dev\"", code, p.stdout.String(), stderr)
	}
	token := filetest.Write(t, "token", testToken)
	empty := filetest.Write(t, "empty", "\n")
	for _, c := range []struct {
		name string
		env  []string
		args []string
		says string
	}{
		{"unknown flag", childEnv("PORTHOLE_TOKEN=" + testToken), []string{"--bogus"}, "bogus"},
		{"no token", childEnv(), []string{"--listen", "127.0.0.1:0"}, "PORTHOLE_TOKEN"},
		{"empty token file", childEnv(), []string{"--token-file", empty}, "empty"},
		{"cert without key", childEnv(), []string{"--token-file", token, "--tls-cert", token}, "--tls-key"},
	} {
		p := startExit(t, c.env, c.args...)
		if code, stderr := p.Wait(t); code != 2 || !strings.Contains(stderr, c.says) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and a message with %q", c.name, code, stderr, c.says)
		}
	}
}

func TestBinaryPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startExit(t, childEnv("PORTHOLE_TOKEN="+testToken), "--listen", ln.Addr().String())
	if code, stderr := p.Wait(t); code != 1 || !strings.Contains(stderr, "cannot listen") {
		t.Errorf("listening on a taken port: exit %d, stderr %q; want 1", code, stderr)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir, and returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c := testcert.New(t, "porthole-exit test", net.IPv4(127, 0, 0, 1))
	return c.WriteCert(t, dir), c.WriteKey(t, dir), c.Pool()
}

// curl runs curl with args (no proxy, bounded time) and returns its
// standard output.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	path := curltest.Need(t)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-sS", "--noproxy", "*", "--max-time", "20"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v; stderr: %s", args, err, stderr.String())
	}
	return string(out)
}

// TestBinaryServesWSS: porthole-exit with its own certificate serves wss;
// a tunnel.Client trusting that certificate carries data through it;
// curl gets 200 "ok" from /healthz and 401 from the tunnel path with a
// wrong token; SIGINT stops it with exit 0 and "stopping" in its log.
func TestBinaryServesWSS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := origin.Echo(t)
	p := startExit(t, childEnv(), "--listen", "127.0.0.1:0", "--token-file", tokenFile,
		"--tls-cert", certFile, "--tls-key", keyFile, "--allow-private", "--path", "/tunnel")
	url := p.WaitFor(t, listeningRE)[1]
	if !strings.HasPrefix(url, "wss://127.0.0.1:") || !strings.HasSuffix(url, "/tunnel") {
		t.Fatalf("listening on %q, want wss://127.0.0.1:PORT/tunnel", url)
	}
	https := "https" + strings.TrimPrefix(url, "wss")

	// Without trusting the certificate, no tunnel.
	_, err := tunnel.Dial(t.Context(), url, testToken, tunnel.DialOptions{Timeout: wait})
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Errorf("dialling without trusting the certificate: %v, want x509.UnknownAuthorityError", err)
	}

	client := newClient(t, url, &tls.Config{RootCAs: pool})
	echoChecked(t, openStream(t, client, tg), 1<<20)
	open := openStream(t, client, tg) // left open: the stop must end it

	if out := curl(t, "--cacert", certFile, "-w", "|%{http_code}", strings.TrimSuffix(https, "/tunnel")+"/healthz"); out != "ok\n|200" {
		t.Errorf("curl /healthz: %q, want \"ok\\n\" and 200", out)
	}
	upgradeHeaders := []string{"-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
		"-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H", "Sec-WebSocket-Protocol: " + tunnel.Version}
	args := append([]string{"--cacert", certFile, "-o", os.DevNull, "-w", "%{http_code}", "-H", "Authorization: Bearer wrong"}, upgradeHeaders...)
	if code := curl(t, append(args, https)...); code != "401" {
		t.Errorf("curl on the tunnel path with a wrong token: %s, want 401", code)
	}

	rest := p.Stop(t, os.Interrupt)
	if !strings.Contains(rest, "msg=stopping") {
		t.Errorf("no \"stopping\" after SIGINT; stderr:\n%s", rest)
	}
	if err := open.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if _, err := open.Read(make([]byte, 1)); !errors.Is(err, tunnel.ErrTunnelLost) {
		t.Errorf("a stream open at the stop: %v, want ErrTunnelLost", err)
	}
}

// TestBinaryDeniesPrivateTargetsAndStopsOnSIGTERM: without
// --allow-private the exit refuses a loopback target (OPEN_FAIL denied),
// takes its token from PORTHOLE_TOKEN, and stops on SIGTERM with exit 0.
func TestBinaryDeniesPrivateTargetsAndStopsOnSIGTERM(t *testing.T) {
	tg := origin.Echo(t)
	p := startExit(t, childEnv("PORTHOLE_TOKEN="+testToken), "--listen", "127.0.0.1:0")
	url := p.WaitFor(t, listeningRE)[1]
	client := newClient(t, url, nil)
	var oe *tunnel.OpenError
	if err := openResult(t, client, tg); !errors.As(err, &oe) || oe.Code != tunnel.CodeDenied {
		t.Errorf("a loopback target without --allow-private: %v, want OPEN_FAIL denied", err)
	}

	if rest := p.Stop(t, syscall.SIGTERM); !strings.Contains(rest, "msg=stopping") {
		t.Errorf("after SIGTERM: stderr:\n%s\nwant \"stopping\"", rest)
	}
}
