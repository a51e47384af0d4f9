package e2e

// The engine under test and its surroundings: the tunnel dialer whose
// blackhole host never connects, starting and closing the engine, and the
// fixture the lifecycle tests share.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/registry"
)

// lcBlackholeDialer is the engine's tunnel dialer: the blackhole host never
// connects (see lcBlackhole).
type lcBlackholeDialer struct{}

var errUnexpectedTunnelTarget = errors.New("test tunnel dialer: unexpected target")

func (lcBlackholeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch addr {
	case lcBlackholeForever:
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	case lcBlackholeTimeout:
		t := time.NewTimer(rand.N(5 * time.Millisecond))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		case <-t.C:
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.ErrDeadlineExceeded}
		}
	}
	return nil, fmt.Errorf("%w %s", errUnexpectedTunnelTarget, addr)
}

// newLifecycleEngine starts an engine on a free loopback port. It runs in
// tunnel mode only so that the blackhole host has a dialer that hangs:
// loopback targets match the bypass list and take the real direct dialer.
func newLifecycleEngine(t *testing.T, logger *slog.Logger) *core.Engine {
	t.Helper()
	return startEngine(t, core.Config{
		Listen: "127.0.0.1:0",
		Mode:   outbound.ModeTunnel,
		Bypass: []string{"127.0.0.0/8"},
		Tunnel: lcBlackholeDialer{},
		Logger: logger,
	})
}

// startEngine makes and starts an engine with cfg, closed at cleanup.
func startEngine(t *testing.T, cfg core.Config) *core.Engine {
	t.Helper()
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	if err := eng.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { closeEngine(t, eng) })
	return eng
}

// closeEngine closes the engine and fails (with every goroutine's stack) if
// that does not return in time.
func closeEngine(t *testing.T, eng *core.Engine) {
	t.Helper()
	returnsWithin(t, "engine Close", eng.Close)
}

// returnsWithin calls f, fails the test if f returns an error, and fails it
// (with every goroutine's stack) if f does not return within lcDrainTimeout.
func returnsWithin(t *testing.T, what string, f func() error) {
	t.Helper()
	if !within(lcDrainTimeout, func() {
		if err := f(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}) {
		t.Fatalf("%s did not return within %v\n%s", what, lcDrainTimeout, goroutineDump())
	}
}

// within runs f and reports whether it returned within d. If it did not,
// f's goroutine is left running (the test is failing anyway).
func within(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func goroutineDump() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// lcFixture is what a lifecycle test runs against: an origin, an engine in
// front of it that logs into logs, and a subscription watching its registry.
type lcFixture struct {
	logs   *lcLogs
	origin *lcOrigin
	eng    *core.Engine
	reg    *registry.Registry
	ev     *lcEvents
}

func newFixture(t *testing.T) *lcFixture {
	t.Helper()
	logger, logs := newCapturedLogger()
	origin := newOrigin(t)
	eng := newLifecycleEngine(t, logger)
	reg := eng.Registry()
	return &lcFixture{logs: logs, origin: origin, eng: eng, reg: reg, ev: watchRegistry(t, reg)}
}

// run returns a scenario runner for the engine's current address.
func (f *lcFixture) run() *lcRun {
	return &lcRun{proxy: f.eng.Addr().String(), reg: f.reg, origin: f.origin, ev: f.ev}
}

// finish closes everything and makes the final checks: a consistent event
// stream in which every connection closed for an expected reason, no ERROR
// log record, and (if nothing failed so far) no goroutine left behind.
func (f *lcFixture) finish(t *testing.T) {
	t.Helper()
	closeEngine(t, f.eng)
	<-f.ev.done // the registry's Close ends the subscription
	f.ev.check(t)
	f.origin.close()
	f.logs.check(t)
	if !t.Failed() {
		goleak.VerifyNone(t)
	}
}
