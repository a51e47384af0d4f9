//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/internal/childproc"
	"porthole/internal/connecttest"
)

// An idle connection's goroutine waits in the relay with only a few
// small frames above the poller's (relay.Relay, inbound's handle, the
// exit's serveStream), and every deep step of its setup runs on a warm
// goroutine: it so keeps the smallest stack, 2 KiB, where one frame too
// many doubles it to 4 KiB for as long as the connection lives. These
// tests open idle connections through the engine and read the stacks'
// total (runtime.MemStats.StackInuse) before and after: the origin and
// the clients hold no goroutine per connection, so the growth is the
// proxy's. Linux only: elsewhere the direction that moved bytes does
// not park (two goroutines per idle connection), and the smallest stack
// differs. They run in a child process, this package's tests built
// without the race detector, with GODEBUG=adaptivestackstart=0, where every goroutine starts with the
// smallest stack rather than the runtime's running average of the
// stacks it saw: there a goroutine that grew shows as grown.
const (
	// idleStackConns is large beside what the runtime keeps of goroutines
	// that ended (their stacks, up to 64 per P, for the next ones).
	idleStackConns = 1024
	smallStack     = 2 << 10
)

// TestIdleConnectionsKeepSmallStacks runs its cases in the child (see
// inSmallStackChild).
func TestIdleConnectionsKeepSmallStacks(t *testing.T) {
	if !inSmallStackChild(t) {
		return
	}
	// Direct mode, the client having sent a few bytes (the direction that
	// carried them parks and its goroutine ends), the target nothing. One
	// goroutine per connection.
	t.Run("direct", func(t *testing.T) {
		logger, _ := newCapturedLogger()
		eng := startEngine(t, core.Config{Listen: "127.0.0.1:0", Mode: outbound.ModeDirect, Logger: logger})
		checkIdleStacks(t, eng.Addr().String(), eng.Registry(), []byte("IDLE\n"), smallStack*3/2)
	})
	// Tunnel mode, the tunnel client and the exit in this process, nothing
	// sent either way: the exit relays bytes from the client on the
	// stream's own goroutine, which grows then. Two goroutines per
	// connection, one at each end.
	t.Run("tunnel", func(t *testing.T) {
		v := newE2E(t, e2eOptions{})
		checkIdleStacks(t, v.proxy(), v.reg, nil, 2*smallStack+smallStack*3/4)
	})
}

// checkIdleStacks opens idleStackConns connections through proxy to
// an origin that only accepts, writes first on each, and fails unless the
// stacks grew by less than most bytes per connection while every one of
// them is open in reg.
func checkIdleStacks(t *testing.T, proxy string, reg *registry.Registry, first []byte, most uint64) {
	o := newHoldOrigin(t)
	// The warm goroutines and the tunnel's grow once, on the first.
	warm, _, resp, err := connecttest.Dial(proxy, o.addr())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	_ = warm.Close() // its end says nothing here
	o.wait(t, 1)
	before := stackInuse()
	conns := make([]net.Conn, 0, idleStackConns)
	defer func() {
		for _, c := range conns {
			_ = c.Close() // ending the test's own connections
		}
	}()
	for range idleStackConns {
		c, _, resp, err := connecttest.Dial(proxy, o.addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT: %s", resp.Status)
		}
		if first != nil {
			if _, err := c.Write(first); err != nil {
				t.Fatal(err)
			}
		}
	}
	o.wait(t, 1+idleStackConns)
	// The direction that moved bytes lingers before it parks
	// (relay.parkAfter), a record answered early is open once the exit
	// answered: poll, bounded. Measured while every connection is open
	// and relayed: one that ended early would cost nothing.
	var per uint64
	var open int
	ok := poll(func() bool {
		per = (stackInuse() - before) / idleStackConns
		open = 0
		for _, c := range reg.Snapshot().Live {
			if c.State == registry.StateOpen {
				open++
			}
		}
		return per < most && open == 1+idleStackConns
	})
	if open != 1+idleStackConns { // the first, half-closed, is relayed still
		t.Fatalf("%d connections open in the registry, want %d", open, 1+idleStackConns)
	}
	if !ok {
		t.Fatalf("an idle connection costs %d bytes of stack (at most %d expected): a goroutine of it grew past %d bytes", per, most, smallStack)
	}
	t.Logf("stack per idle connection: %d bytes", per)
}

// smallStackGODEBUG is the child's setting; smallStackChildEnv marks
// the child.
const (
	smallStackGODEBUG  = "adaptivestackstart=0"
	smallStackChildEnv = "PORTHOLE_E2E_STACK_CHILD"
)

// inSmallStackChild reports whether t runs in the child (go on with the
// test). In the parent it builds this package's tests without the race
// detector (whose instrumentation makes every frame larger: the property
// is the shipped binaries'), runs t alone in it, reports its outcome and
// returns false.
func inSmallStackChild(t *testing.T) bool {
	if os.Getenv(smallStackChildEnv) != "" {
		return true
	}
	if testing.Short() {
		t.Skip("builds this package's tests a second time")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max < 5*idleStackConns {
		t.Skipf("needs %d open files (limit %d, %v)", 5*idleStackConns, lim.Max, err)
	}
	gobin := childproc.Need(t, "go", "no go command to build the tests without the race detector")
	bin := filepath.Join(t.TempDir(), "e2e.test")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, gobin, "test", "-c", "-o", bin, "porthole/core/e2e")
	build.Env = append(os.Environ(), "GOFLAGS=") // no -race, no -cover: the shipped binaries' frames
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the tests: %v\n%s", err, out)
	}
	godebug := smallStackGODEBUG
	if g := os.Getenv("GODEBUG"); g != "" {
		godebug = g + "," + godebug
	}
	cmd := exec.CommandContext(ctx, bin, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug, smallStackChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a child process: %v\n%s", t.Name(), err, out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "stack per idle connection") {
			t.Log(strings.TrimSpace(line))
		}
	}
	return false
}

func stackInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// holdOrigin accepts connections and holds them, reading nothing, with no
// goroutine per connection.
type holdOrigin struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newHoldOrigin(t *testing.T) *holdOrigin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &holdOrigin{ln: ln, done: make(chan struct{})}
	go o.accept()
	t.Cleanup(o.close)
	return o
}

func (o *holdOrigin) addr() string { return o.ln.Addr().String() }

func (o *holdOrigin) accept() {
	defer close(o.done)
	for {
		c, err := o.ln.Accept()
		if err != nil {
			return // closed
		}
		o.mu.Lock()
		o.conns = append(o.conns, c)
		o.mu.Unlock()
	}
}

// wait waits until n connections were accepted.
func (o *holdOrigin) wait(t *testing.T, n int) {
	t.Helper()
	pollUntil(t, fmt.Sprintf("%d connections at the origin", n), func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.conns) >= n
	})
}

func (o *holdOrigin) close() {
	_ = o.ln.Close() // ends accept
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.conns {
		_ = c.Close()
	}
}
