package e2e

// The connection-lifecycle races once reported in an earlier WebSocket
// tunnelling proxy, provoked: many clients opening and closing proxied
// connections as fast as they can, ending them every way a connection can
// end, while a subscription watches the registry. See
// docs/ARCHITECTURE.md, "Lifecycle rules", for the bugs they guard
// against.
//
// The files: lifecycle_test.go (the tests and their bounds),
// lifecycle_engine_test.go (the engine under test and the shared fixture),
// lifecycle_origin_test.go (the origin server), lifecycle_clients_test.go
// (the hand-written clients), lifecycle_pattern_test.go (the byte stream
// they move), lifecycle_run_test.go and lifecycle_scenarios_test.go (the
// cycles), lifecycle_events_test.go (the registry as the subscription sees
// it) and lifecycle_logs_test.go (the captured log).

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/core"
	"porthole/core/inbound"
)

const (
	// lcCycleTimeout bounds one client cycle (every read and write of it)
	// and every wait for an event. Generous: a noisy 2-core machine under
	// the race detector is slow, but nothing here should take seconds.
	lcCycleTimeout = 30 * time.Second
	// lcDrainTimeout bounds the waits at the end of a test.
	lcDrainTimeout = 60 * time.Second

	// lcBlackhole is a host the test's tunnel dialer never connects to:
	// port 1 dials until the dial is cancelled, port 2 times out by itself
	// after a few milliseconds. Loopback cannot hang a TCP handshake; this
	// is how the test gets a connection that is still dialling.
	lcBlackhole        = "blackhole.invalid"
	lcBlackholeForever = lcBlackhole + ":1"
	lcBlackholeTimeout = lcBlackhole + ":2"
)

func TestLifecycleOpenCloseLoop(t *testing.T) {
	cycles := 2000
	if testing.Short() {
		cycles = 500
	}
	const clients = 10
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d cycles, %d clients", seed, cycles, clients)

	f := newFixture(t)
	reg, ev := f.reg, f.ev
	x := f.run()

	var (
		next     atomic.Int64
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failures.Load() < 10 {
				i := next.Add(1) - 1
				if i >= int64(cycles) {
					return
				}
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				k := pickKind(r)
				if err := x.cycle(r, k); err != nil {
					failures.Add(1)
					t.Errorf("cycle %d (%s): %v", i, k, err)
				}
			}
		}()
	}
	if !within(lcDrainTimeout*3, wg.Wait) {
		t.Fatalf("clients did not finish\n%s", goroutineDump())
	}

	// Every connection the proxy saw ends, by events, not by waiting.
	if !ev.drained(lcDrainTimeout) {
		o, c := ev.counts()
		t.Errorf("after the clients finished: %d Opened, %d Closed within %v", o, c, lcDrainTimeout)
	}
	snap := reg.Snapshot()
	if len(snap.Live) != 0 || snap.Totals.Active != 0 {
		t.Errorf("live map not empty: %d live, Totals.Active %d", len(snap.Live), snap.Totals.Active)
		for i, info := range snap.Live {
			if i == 10 {
				break
			}
			t.Errorf("  live: %s %s %s → %s, state %s", info.ID, info.Proto, info.Client, info.Target, info.State)
		}
	}
	opened, closed := ev.counts()
	if snap.Totals.Opened != uint64(opened) {
		t.Errorf("Totals.Opened %d, Opened events %d", snap.Totals.Opened, opened)
	}
	var kinds strings.Builder
	for k := range lcNumKinds {
		fmt.Fprintf(&kinds, " %s=%d", k, x.perKind[k].Load())
	}
	t.Logf("cycles:%s", kinds.String())
	t.Logf("connections: %d opened, %d closed (%s); exact transfers %d, interrupted by CloseAll %d, closed by id %d",
		opened, closed, ev.reasons(), x.exact.Load(), x.interrupts.Load(), x.closedByID.Load())
	if failures.Load() == 0 {
		if x.exact.Load() < int64(cycles)/10 {
			t.Errorf("only %d transfers completed with exact counts: the test proves little", x.exact.Load())
		}
		if x.closedByID.Load() == 0 {
			t.Errorf("no CloseConn found its connection live")
		}
	}

	f.finish(t)
}

// TestStopDuringTraffic stops the engine while connections stream, dial and
// arrive, then starts it again.
func TestStopDuringTraffic(t *testing.T) {
	const (
		streams  = 12 // echo connections moving bytes both ways
		dialling = 4  // connections whose dial never finishes
		churners = 4  // clients opening connections (and keeping them) as fast as they can
		perChurn = 50
	)
	f := newFixture(t)
	eng, reg, ev, origin := f.eng, f.reg, f.ev, f.origin
	proxy := eng.Addr().String()

	var (
		wg      sync.WaitGroup
		flowing sync.WaitGroup
		mu      sync.Mutex
		errs    []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i := range streams {
		wg.Add(1)
		flowing.Add(1)
		go func() {
			defer wg.Done()
			once := sync.OnceFunc(flowing.Done)
			defer once()
			c, err := openTunnel(proxy, lcProto(i%2), origin.echo)
			if err != nil {
				fail(fmt.Errorf("stream %d: %w", i, err))
				return
			}
			defer c.conn.Close()
			wres := startPatternWriter(c, 1<<30)
			buf := make([]byte, 32<<10)
			var got int64
			for range 1 << 20 { // bounded; ends when the proxy stops
				n, err := c.br.Read(buf)
				if !isPattern(buf[:n], got) {
					fail(fmt.Errorf("stream %d: wrong bytes at %d", i, got))
					break
				}
				got += int64(n)
				if got >= 64<<10 {
					once()
				}
				if err != nil {
					if timedOut(err) {
						fail(fmt.Errorf("stream %d: timed out: %w", i, err))
					}
					break
				}
			}
			_ = c.conn.Close()
			if w := <-wres; timedOut(w.err) {
				fail(fmt.Errorf("stream %d writer: %w", i, w.err))
			}
		}()
	}
	for i := range dialling {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialProxy(proxy, lcProto(i%2))
			if err != nil {
				fail(err)
				return
			}
			defer c.conn.Close()
			if err := c.request(lcBlackholeForever); err != nil {
				fail(fmt.Errorf("dialling %d: %w", i, err))
				return
			}
			if err := c.reply(); timedOut(err) || err == nil {
				fail(fmt.Errorf("dialling %d: reply after stop: %v", i, err))
			}
		}()
	}
	if !within(lcDrainTimeout, flowing.Wait) {
		t.Fatalf("streams did not start")
	}
	if !ev.wait(lcDrainTimeout, func() bool { return ev.openedTo(lcBlackholeForever) == dialling }) {
		t.Fatalf("the dialling connections were not registered")
	}
	// Churners open connections to the silent target and keep them, while
	// Stop runs: some are refused, some are registered as Stop begins.
	start := make(chan struct{})
	var churnOK atomic.Int64
	for i := range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []*lcClient
			defer func() {
				for _, c := range held {
					_ = c.conn.Close()
				}
			}()
			<-start
			for range perChurn {
				c, err := openTunnel(proxy, lcProto(i%2), origin.hang)
				if c != nil {
					held = append(held, c)
				}
				if err != nil {
					if timedOut(err) {
						fail(fmt.Errorf("churner %d: %w", i, err))
					}
					return // the proxy stopped
				}
				churnOK.Add(1)
			}
		}()
	}
	close(start)
	if !ev.wait(lcDrainTimeout, func() bool { return ev.openedTo(origin.hang) >= 2*churners }) {
		t.Fatalf("the churners got no connection through")
	}
	returnsWithin(t, "Stop", eng.Stop)
	// Stop returned: every handler is gone, so the registry has nothing live.
	if snap := reg.Snapshot(); len(snap.Live) != 0 || snap.Totals.Active != 0 {
		t.Errorf("after Stop: %d live connections, Totals.Active %d", len(snap.Live), snap.Totals.Active)
	}
	if eng.Addr() != nil {
		t.Errorf("Addr after Stop: %v", eng.Addr())
	}
	if err := eng.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if !within(lcDrainTimeout, wg.Wait) {
		t.Fatalf("clients did not end after Stop\n%s", goroutineDump())
	}
	for _, err := range errs {
		t.Error(err)
	}
	if !ev.drained(lcDrainTimeout) {
		o, c := ev.counts()
		t.Fatalf("after Stop: %d Opened, %d Closed events", o, c)
	}
	ev.mu.Lock()
	stoppedIDs := make([]xid.ID, 0, len(ev.closed))
	for id, info := range ev.closed {
		if !errors.Is(info.Err, inbound.ErrStopped) {
			t.Errorf("connection %s (%s → %s) closed with reason %v, want %v", id, info.Client, info.Target, info.Err, inbound.ErrStopped)
		}
		stoppedIDs = append(stoppedIDs, id)
	}
	ev.mu.Unlock()
	if len(stoppedIDs) < streams+dialling {
		t.Errorf("only %d connections closed by Stop", len(stoppedIDs))
	}
	t.Logf("stopped %d connections (%d churned in)", len(stoppedIDs), churnOK.Load())

	// Start again on the same engine: it serves, and the registry kept its
	// history.
	if err := eng.Start(); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := eng.Start(); !errors.Is(err, core.ErrRunning) {
		t.Errorf("second Start: %v, want ErrRunning", err)
	}
	x := f.run()
	for i := range 4 {
		r := rand.New(rand.NewPCG(uint64(i), 1))
		if err := x.normal(r, lcProto(i%2)); err != nil {
			t.Errorf("after restart: %v", err)
		}
	}
	if x.exact.Load() != 4 {
		t.Errorf("after restart: %d of 4 transfers complete", x.exact.Load())
	}
	snap := reg.Snapshot()
	kept := map[xid.ID]bool{}
	for _, info := range snap.Closed {
		kept[info.ID] = true
	}
	for _, id := range stoppedIDs {
		if !kept[id] {
			t.Errorf("history lost %s across Stop/Start", id)
			break
		}
	}
	if want := uint64(len(stoppedIDs) + 4); snap.Totals.Opened != want {
		t.Errorf("Totals.Opened %d, want %d", snap.Totals.Opened, want)
	}

	f.finish(t)
}

// TestSecondEngineSamePort: a taken port is ErrPortInUse, and the message
// names the port.
func TestSecondEngineSamePort(t *testing.T) {
	logger, logs := newCapturedLogger()
	first, err := core.New(core.Config{Listen: "127.0.0.1:0", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEngine(t, first) })
	addr := first.Addr().String()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}

	second, err := core.New(core.Config{Listen: addr, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEngine(t, second) })
	err = second.Start()
	if !errors.Is(err, core.ErrPortInUse) {
		t.Fatalf("second engine on %s: %v, want ErrPortInUse", addr, err)
	}
	if !strings.Contains(err.Error(), port) {
		t.Errorf("error %q does not name port %s", err, port)
	}
	if second.Addr() != nil {
		t.Errorf("failed engine has an address: %v", second.Addr())
	}
	if err := second.Stop(); err != nil {
		t.Errorf("Stop of a never started engine: %v", err)
	}
	// The first engine is untouched.
	if first.Addr() == nil || first.Addr().String() != addr {
		t.Errorf("first engine's address changed: %v", first.Addr())
	}
	closeEngine(t, second)
	closeEngine(t, first)
	logs.check(t)
}
