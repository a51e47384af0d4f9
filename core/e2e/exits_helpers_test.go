package e2e

// The surroundings of the several-exits tests (exits_test.go): the real
// porthole-exit program built and run as child processes, relays on
// loopback that delay or count what crosses them, and an engine in tunnel
// mode over a list of exits.

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/tunnel"
	"porthole/internal/childproc"
)

// leakCheck, called first in a test, checks after every other cleanup
// (child processes included) that no goroutine is left.
func leakCheck(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			goleak.VerifyNone(t)
		}
	})
}

// buildExitProgram builds cmd/porthole-exit into the test's temporary
// directory (the build cache makes it quick after the first).
func buildExitProgram(t *testing.T) string {
	t.Helper()
	gobin := childproc.Need(t, "go", "no go command to build porthole-exit with")
	bin := filepath.Join(t.TempDir(), "porthole-exit")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "porthole/cmd/porthole-exit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building porthole-exit: %v\n%s", err, out)
	}
	return bin
}

var exitListeningRE = regexp.MustCompile(`msg="porthole-exit listening" url=(\S+)`)

// exitProc is one porthole-exit process.
type exitProc struct {
	bin, tokenFile string
	addr           string // host:port, kept across restarts
	url            string
	proc           *childproc.Proc
}

// startExitProc runs porthole-exit on a free loopback port with the test
// token, allowed to reach the test's loopback origins.
func startExitProc(t *testing.T, bin string) *exitProc {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(e2eToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	x := &exitProc{bin: bin, tokenFile: tokenFile, addr: "127.0.0.1:0"}
	x.start(t)
	return x
}

// start runs the program on x.addr (its first port, after a kill).
func (x *exitProc) start(t *testing.T) {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTHOLE_TOKEN=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(x.bin, "--listen", x.addr, "--token-file", x.tokenFile, "--allow-private", "--log-level", "info")
	cmd.Env = env
	x.proc = childproc.Start(t, "porthole-exit", e2eTimeout, cmd)
	x.url = x.proc.WaitFor(t, exitListeningRE)[1]
	x.addr = strings.TrimSuffix(strings.TrimPrefix(x.url, "ws://"), e2ePath)
}

// portholeExit is the engine's configuration of a porthole exit at url:
// quick reconnects and pings, so a test waits little for either.
func portholeExit(name, url, token string) outbound.ExitConfig {
	return outbound.ExitConfig{Name: name, Kind: outbound.KindPorthole, Tunnel: tunnel.ClientConfig{
		URL: url, Token: token,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		Session: tunnel.Config{PingInterval: 100 * time.Millisecond},
	}}
}

// withPing is x with pings every d (a porthole exit).
func withPing(x outbound.ExitConfig, d time.Duration) outbound.ExitConfig {
	x.Tunnel.Session.PingInterval = d
	return x
}

// upstreamExit is the engine's configuration of an upstream proxy exit.
func upstreamExit(name string, kind outbound.Kind, url, user, pass string) outbound.ExitConfig {
	return outbound.ExitConfig{Name: name, Kind: kind, Upstream: outbound.UpstreamConfig{
		URL: url, Username: user, Password: pass,
		ProbeInterval: 200 * time.Millisecond, MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
	}}
}

// newExitsEnv starts the origins and an engine in tunnel mode over exits
// (the exits themselves are the test's), without waiting for them.
func newExitsEnv(t *testing.T, policy outbound.Policy, exits ...outbound.ExitConfig) *e2eEnv {
	t.Helper()
	v := newOriginsEnv(t)
	logger, logs := newCapturedLogger()
	eng := startEngine(t, core.Config{
		Listen:      "127.0.0.1:0",
		Mode:        outbound.ModeTunnel,
		Bypass:      []string{}, // nothing goes direct, loopback included
		Exits:       exits,
		ExitPolicy:  policy,
		DialTimeout: 5 * time.Second,
		Logger:      logger,
	})
	v.eng, v.reg, v.logs = eng, eng.Registry(), logs
	v.ev = watchRegistry(t, v.reg)
	return v
}

// waitExits waits, on the engine's watch of the exits, until cond holds.
func waitExits(t *testing.T, v *e2eEnv, what string, cond func(outbound.GroupState) bool) outbound.GroupState {
	t.Helper()
	st, w := v.eng.SubscribeExits()
	if w == nil {
		t.Fatal("the engine has no exits")
	}
	defer w.Close()
	deadline := time.NewTimer(e2eTimeout)
	defer deadline.Stop()
	for range 100000 {
		if cond(st) {
			return st
		}
		select {
		case next, ok := <-w.C:
			if !ok {
				t.Fatalf("exits watch ended: %v", w.Err())
			}
			st = next
		case <-deadline.C:
			t.Fatalf("exits not %s within %v: %s", what, e2eTimeout, exitsText(st))
		}
	}
	t.Fatalf("exits not %s", what)
	return st
}

func exitsText(st outbound.GroupState) string {
	parts := []string{"active=" + st.Active}
	for _, x := range st.Exits {
		parts = append(parts, x.String())
	}
	return strings.Join(parts, "; ")
}

// exitIs is a waitExits condition: the exit name is in state s.
func exitIs(name string, s outbound.ExitState) func(outbound.GroupState) bool {
	return func(st outbound.GroupState) bool {
		for _, x := range st.Exits {
			if x.Name == name {
				return x.State == s
			}
		}
		return false
	}
}

// allUp is a waitExits condition: every exit is usable.
func allUp(st outbound.GroupState) bool {
	for _, x := range st.Exits {
		if x.State != outbound.ExitUp {
			return false
		}
	}
	return len(st.Exits) > 0
}

// closedExits waits until n records to target have closed and counts them
// by the exit that carried them (the client may see its answer before
// the record closes).
func closedExits(v *e2eEnv, target string, n int) map[string]int {
	var by map[string]int
	v.ev.wait(e2eTimeout, func() bool { // called with v.ev.mu held
		by = map[string]int{}
		total := 0
		for _, info := range v.ev.closed {
			if info.Target == target {
				by[info.Exit]++
				total++
			}
		}
		return total >= n
	})
	return by
}

// lastClosed waits for the record of the connection from laddr to target
// to close and returns it.
func lastClosed(t *testing.T, v *e2eEnv, laddr, target string) registry.Info {
	t.Helper()
	info, err := v.ev.settle(laddr, target)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// ---- Relays ----

// tcpRelay forwards loopback connections to a target, each direction's
// bytes held for the current delay, and counts the connections it took.
type tcpRelay struct {
	addr     string
	to       string
	delay    atomic.Int64 // nanoseconds, one way
	accepted atomic.Int64

	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startRelay(t *testing.T, to string, oneWay time.Duration) *tcpRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRelay{addr: ln.Addr().String(), to: to, ln: ln}
	r.delay.Store(int64(oneWay))
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *tcpRelay) setDelay(d time.Duration) { r.delay.Store(int64(d)) }

func (r *tcpRelay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		u, err := net.Dial("tcp", r.to)
		if err != nil {
			_ = c.Close() // the target is down: so is the relay's client
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, u)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(u, c)
		go r.pipe(c, u)
	}
}

// pipe copies src to dst, each chunk delivered delay after it was read
// (in order: a chunk never overtakes the one before).
type chunk struct {
	b   []byte
	due time.Time
}

func (r *tcpRelay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d) // the delay is the point of this relay
			}
			if _, err := dst.Write(c.b); err != nil {
				break
			}
		}
		_ = dst.Close() // one way ended: end both, as a crash would
		for range q {   // let the reader finish
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(time.Duration(r.delay.Load()))}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	_ = src.Close() // ended
}

func (r *tcpRelay) close() {
	_ = r.ln.Close() // ends accept
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.Close() // ends the pipes
	}
	r.mu.Unlock()
	r.wg.Wait()
}
