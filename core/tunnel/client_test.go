package tunnel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/internal/chantest"
	"porthole/internal/freeport"
)

// The reconnecting client against real exits on loopback: exits that die,
// TCP connections cut under load, exits that go silent, a wrong token,
// outages while streams are being opened, and Close at every stage.

const flowThreshold = 512 << 10 // bytes each flow moves before the loss: beyond one window

// connectedWith is a waitStatus condition: connected, n sessions so far.
func connectedWith(n int) func(Status) bool {
	return func(s Status) bool { return s.State == StateConnected && s.Sessions == n }
}

func notConnected(s Status) bool { return s.State != StateConnected }

// waitLoss waits for the client to notice that its session ended, with
// cause (wrapped in ErrTunnelLost), and returns the status that schedules
// the next attempt. The client may say StateWaiting before it knows when
// it will retry (while the old session closes); both statuses must carry
// the cause.
func waitLoss(t *testing.T, c *Client, cause error) Status {
	t.Helper()
	check := func(st Status) {
		t.Helper()
		if st.State != StateWaiting || !errors.Is(st.Err, ErrTunnelLost) || !errors.Is(st.Err, cause) {
			t.Fatalf("after the loss: %s, want %v with %v", fmtStatus(st), StateWaiting, cause)
		}
		if st.Streams != 0 {
			t.Errorf("after the loss: %s, want no streams", fmtStatus(st))
		}
	}
	st := waitStatus(t, c, 5*time.Second, "the client to notice the loss", notConnected)
	check(st)
	if st.Retry.IsZero() {
		st = waitStatus(t, c, 5*time.Second, "the retry to be scheduled", func(s Status) bool { return s.State != StateWaiting || !s.Retry.IsZero() })
		check(st)
	}
	if !st.Retry.After(st.Since) {
		t.Errorf("after the loss: retry at %v, since %v", st.Retry, st.Since)
	}
	return st
}

// echoRoundTrips runs n echo round trips of size bytes at once on c.
func echoRoundTrips(t *testing.T, c *Client, n, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := echoRoundTrip(ctx, c, size, byte(i)); err != nil {
				errs <- fmt.Errorf("round trip %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// waitSessionEnd waits for an exit session to end and checks why.
func waitSessionEnd(t *testing.T, s *Session, d time.Duration) {
	t.Helper()
	chantest.Within(t, d, "the end of the exit's session after the client's", s.Done())
	if !errors.Is(s.Err(), ErrTunnelLost) {
		t.Errorf("the exit's session ended with %v, want ErrTunnelLost", s.Err())
	}
}

// nextSession is the next exit session to start.
func nextSession(t *testing.T, e *testExit) *Session {
	t.Helper()
	return chantest.Within(t, 5*time.Second, "an exit session's start", e.up)
}

// The exit dies mid-transfer (listener, sessions and sockets at once):
// every stream ends with ErrTunnelLost in both directions, with every byte
// before the loss intact; the client says it is waiting and why; an exit
// started again on the same address gets a second session that carries
// data.
func TestClientExitKilledMidTransfer(t *testing.T) {
	e := newTestExit(t, "tok", exitEcho)
	addr := e.address()
	// The first retry waits 240-360 ms: time to see StateWaiting before the
	// next failed attempt replaces the error.
	c := newTestClient(t, ClientConfig{URL: e.url(), Token: "tok", MinBackoff: 300 * time.Millisecond, MaxBackoff: 600 * time.Millisecond})
	waitStatus(t, c, 5*time.Second, "the first session", connectedWith(1))

	flows := startFlows(t, c, 4, flowThreshold)
	waitProgress(t, flows, 10*time.Second)
	if st := c.Status(); st.Streams != 4 {
		t.Errorf("status during the transfer: %s, want 4 streams", fmtStatus(st))
	}
	e.kill()
	// The status first: the client moves on while the flows are checked.
	waitLoss(t, c, ErrTunnelLost)
	checkFlowsLost(t, flows, flowThreshold, 5*time.Second)

	e.start(addr)
	st := waitStatus(t, c, 5*time.Second, "a second session on the restarted exit", connectedWith(2))
	if st.Err != nil {
		t.Errorf("connected, yet the status has error %v", st.Err)
	}
	echoRoundTrips(t, c, 3, 1<<20)
}

// The WebSocket's TCP connection is cut under load by a relay in between:
// streams end with ErrTunnelLost, the exit's session ends too, and the
// client reconnects through the relay.
func TestClientTCPCutUnderLoad(t *testing.T) {
	e := newTestExit(t, "tok", exitEcho)
	r := newTCPRelay(t, e.address())
	c := newTestClient(t, ClientConfig{URL: r.url(), Token: "tok", MinBackoff: 300 * time.Millisecond, MaxBackoff: 600 * time.Millisecond})
	waitStatus(t, c, 5*time.Second, "the first session", connectedWith(1))
	exitSess := nextSession(t, e)

	flows := startFlows(t, c, 4, flowThreshold)
	waitProgress(t, flows, 10*time.Second)
	if n := r.cut(); n != 2 {
		t.Fatalf("the relay held %d sockets, want 2 (one WebSocket)", n)
	}
	waitLoss(t, c, ErrTunnelLost) // first: the client moves on meanwhile
	checkFlowsLost(t, flows, flowThreshold, 5*time.Second)
	waitSessionEnd(t, exitSess, 5*time.Second)
	waitStatus(t, c, 5*time.Second, "a second session through the relay", connectedWith(2))
	if n := r.numAccepted(); n != 2 {
		t.Errorf("the relay carried %d connections, want 2", n)
	}
	echoRoundTrips(t, c, 3, 1<<20)
}

// An exit that upgrades and then says nothing (never writes; never reads,
// or reads and never answers) is declared dead after three ping intervals,
// its streams end with ErrSessionDead, and the client tries again. An exit
// that answers, with the same interval, stays up.
func TestClientSilentExitDeclaredDead(t *testing.T) {
	const ping = 100 * time.Millisecond
	cfg := func(url string) ClientConfig {
		// Retries 160-240 ms apart: time to see each loss.
		return ClientConfig{URL: url, Token: "tok", Session: Config{PingInterval: ping}, MinBackoff: 200 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	}
	for _, tc := range []struct {
		name string
		mode exitMode
	}{{"never reads", exitSilent}, {"reads, never answers", exitReader}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestExit(t, "tok", tc.mode)
			c := newTestClient(t, cfg(e.url()))
			up := waitStatus(t, c, 5*time.Second, "the first session", connectedWith(1))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := c.Open(ctx, xid.New(), "echo:1", []byte("hello?"))
			if err != nil {
				t.Fatal(err)
			}

			down := waitLoss(t, c, ErrSessionDead)
			if lived := down.Since.Sub(up.Since); lived < 3*ping || lived > 3*time.Second {
				t.Errorf("declared dead after %v, want after three intervals of %v (and soon after)", lived, ping)
			}
			if err := st.WaitOpen(ctx); !errors.Is(err, ErrSessionDead) {
				t.Errorf("a stream of the silent session ended with %v, want ErrSessionDead", err)
			}
			if err := st.Close(); err != nil {
				t.Errorf("Close of a stream of the dead session: %v", err)
			}
			waitStatus(t, c, 5*time.Second, "a second attempt", connectedWith(2))
			if n := e.numAttempts(); n != 2 {
				t.Errorf("%d upgrade requests, want 2", n)
			}
		})
	}
	t.Run("answers", func(t *testing.T) {
		e := newTestExit(t, "tok", exitEcho)
		c := newTestClient(t, cfg(e.url()))
		waitStatus(t, c, 5*time.Second, "the first session", connectedWith(1))
		changed := c.Changed()
		select {
		case <-changed:
			t.Fatalf("an answering session changed state: %s", fmtStatus(c.Status()))
		case <-time.After(10 * ping): // the window watched, not a synchronisation
		}
		if st := c.Status(); st.RTT <= 0 || st.Sessions != 1 {
			t.Errorf("after ten ping intervals: %s, RTT %v", fmtStatus(st), st.RTT)
		}
		echoRoundTrips(t, c, 1, 64<<10)
	})
}

// A wrong token: StateAuthFailed with ErrAuthFailed, and the retries follow
// the exponential backoff instead of hammering the exit.
func TestClientWrongTokenBacksOff(t *testing.T) {
	const (
		minB   = 50 * time.Millisecond
		maxB   = 400 * time.Millisecond
		window = 1500 * time.Millisecond
	)
	e := newTestExit(t, "right", exitEcho)
	t0 := time.Now()
	c := newTestClient(t, ClientConfig{URL: e.url(), Token: "wrong", MinBackoff: minB, MaxBackoff: maxB})
	st := waitStatus(t, c, 5*time.Second, "the refusal", func(s Status) bool { return s.State == StateAuthFailed })
	if !errors.Is(st.Err, ErrAuthFailed) || st.Sessions != 0 {
		t.Fatalf("after a wrong token: %s, want ErrAuthFailed and no session", fmtStatus(st))
	}
	if w := st.Retry.Sub(st.Since); w <= 0 || w > maxB*12/10 {
		t.Errorf("the first retry waits %v, want within (0, %v]", w, maxB*12/10)
	}
	// Open does not wait out a refusal: it says why at once (or, caught
	// during a retry, at the next refusal), long before its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opened := time.Now()
	if _, err := c.Open(ctx, xid.New(), "echo:1", nil); !errors.Is(err, ErrNoSession) || !errors.Is(err, ErrAuthFailed) {
		t.Errorf("Open with a wrong token: %v, want ErrNoSession and ErrAuthFailed", err)
	}
	if d := time.Since(opened); d > 2*time.Second {
		t.Errorf("Open with a wrong token took %v", d)
	}

	// Watch the window: every failure is the refusal, and nothing connects.
	end := time.NewTimer(time.Until(t0.Add(window)))
	defer end.Stop()
watch:
	for range 10_000 {
		changed := c.Changed()
		s := c.Status()
		switch {
		case s.State == StateConnected, s.State == StateWaiting:
			t.Fatalf("with a wrong token: %s", fmtStatus(s))
		case s.State == StateAuthFailed && !errors.Is(s.Err, ErrAuthFailed):
			t.Fatalf("auth failed, with error %v", s.Err)
		}
		select {
		case <-changed:
		case <-end.C:
			break watch
		}
	}

	attempts := e.attemptsBefore(t0.Add(window))
	// Waits of 50, 100, 200, 400, 400 ms ±20 %: at most 7 attempts fit.
	if n := len(attempts); n < 3 || n > 8 {
		t.Fatalf("%d upgrade attempts in %v, want 3 to 8", n, window)
	}
	// Each gap at least grows as the backoff does; half the jittered
	// minimum leaves room for a slow handshake before it.
	for i := 1; i < len(attempts); i++ {
		nominal := min(minB<<(i-1), maxB)
		if gap := attempts[i].Sub(attempts[i-1]); gap < nominal*4/10 {
			t.Errorf("attempt %d came %v after the one before, want at least %v", i+1, gap, nominal*4/10)
		}
	}
	t.Logf("%d attempts in %v", len(attempts), window)
}

// Open while the exit is down waits until its deadline, then says
// ErrNoSession with the deadline; an exit that comes back while Open waits
// gets the stream.
func TestClientOpenWaitsDuringOutage(t *testing.T) {
	addr := freeport.Loopback(t)
	e := newStoppedExit(t, "tok", exitEcho)
	c := newTestClient(t, ClientConfig{URL: "ws://" + addr + "/porthole", Token: "tok", MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	t0 := time.Now()
	_, err := c.Open(ctx, xid.New(), "echo:1", nil)
	waited := time.Since(t0)
	cancel()
	if !errors.Is(err, ErrNoSession) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open with the exit down: %v, want ErrNoSession and DeadlineExceeded", err)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Open with the exit down: %v wraps the exit's refusal, which would read as the target's", err)
	}
	if waited < 250*time.Millisecond {
		t.Errorf("Open gave up after %v, before its deadline", waited)
	}
	if st := c.Status(); st.State == StateConnected || st.Err == nil {
		t.Errorf("with the exit down: %s", fmtStatus(st))
	}

	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	probe := newOpenProbe(ctx)
	type opened struct {
		st  *Stream
		err error
	}
	res := make(chan opened, 1)
	go func() {
		st, err := c.Open(probe, xid.New(), "echo:1", []byte("early"))
		res <- opened{st, err}
	}()
	select {
	case <-probe.waiting: // Open found no session and waits
	case r := <-res:
		t.Fatalf("Open returned without waiting: %v", r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("Open never started waiting")
	}
	e.start(addr)
	r := chantest.Within(t, 6*time.Second, "Open's return", res)
	if r.err != nil {
		t.Fatalf("Open across the exit's return: %v", r.err)
	}
	data := append([]byte("early"), make([]byte, 300<<10)...)
	if err := echoOn(r.st, data, len("early")); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestClientClose(t *testing.T) {
	t.Run("twice, then Open", func(t *testing.T) {
		e := newTestExit(t, "tok", exitEcho)
		c := newTestClient(t, ClientConfig{URL: e.url(), Token: "tok"})
		waitStatus(t, c, 5*time.Second, "the session", connectedWith(1))
		exitSess := nextSession(t, e)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if st := c.Status(); st.State != StateClosed || st.Streams != 0 || st.Sessions != 1 {
			t.Errorf("after Close: %s", fmtStatus(st))
		}
		if _, err := c.Open(context.Background(), xid.New(), "echo:1", nil); !errors.Is(err, ErrClientClosed) {
			t.Errorf("Open after Close: %v, want ErrClientClosed", err)
		}
		waitSessionEnd(t, exitSess, 5*time.Second)
	})

	t.Run("during the reconnect wait", func(t *testing.T) {
		c := newTestClient(t, ClientConfig{URL: "ws://" + freeport.Loopback(t) + "/porthole", Token: "tok", MinBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second})
		waitStatus(t, c, 5*time.Second, "the wait", func(s Status) bool { return s.State == StateWaiting })
		probe := newOpenProbe(context.Background())
		res := make(chan error, 1)
		go func() {
			_, err := c.Open(probe, xid.New(), "echo:1", nil)
			res <- err
		}()
		chantest.Within(t, 5*time.Second, "Open's wait for a session", probe.waiting)
		closeWithin(t, c, 2*time.Second, nil)
		if err := chantest.Within(t, 2*time.Second, "the end of an Open waiting with no deadline at Close", res); !errors.Is(err, ErrClientClosed) {
			t.Errorf("an Open waiting at Close: %v, want ErrClientClosed", err)
		}
	})

	t.Run("during the handshake", func(t *testing.T) {
		s := newStallServer(t)
		c := newTestClient(t, ClientConfig{URL: s.url(), Token: "tok", Timeout: 20 * time.Second})
		// The client waits for an answer that never comes.
		chantest.Within(t, 5*time.Second, "the client's upgrade request", s.requested)
		if st := c.Status(); st.State != StateConnecting {
			t.Fatalf("in the handshake: %s", fmtStatus(st))
		}
		closeWithin(t, c, 2*time.Second, s.close)
	})

	t.Run("with live streams", func(t *testing.T) {
		e := newTestExit(t, "tok", exitEcho)
		c := newTestClient(t, ClientConfig{URL: e.url(), Token: "tok"})
		waitStatus(t, c, 5*time.Second, "the session", connectedWith(1))
		exitSess := nextSession(t, e)
		flows := startFlows(t, c, 3, flowThreshold)
		waitProgress(t, flows, 10*time.Second)
		closeWithin(t, c, 5*time.Second, nil)
		checkFlowsLost(t, flows, flowThreshold, 5*time.Second)
		waitSessionEnd(t, exitSess, 5*time.Second)
		if st := c.Status(); st.State != StateClosed || st.Streams != 0 {
			t.Errorf("after Close: %s", fmtStatus(st))
		}
	})
}

// closeWithin closes c and fails if that takes longer than d; unblock,
// if set, then lets a stuck Close finish so the test can end.
func closeWithin(t *testing.T, c *Client, d time.Duration, unblock func()) {
	t.Helper()
	closed := make(chan error, 1)
	t0 := time.Now()
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(d):
		if unblock != nil {
			unblock()
		}
		<-closed
		t.Fatalf("Close took %v, want under %v", time.Since(t0), d)
	}
	if st := c.Status(); st.State != StateClosed {
		t.Errorf("after Close: %s", fmtStatus(st))
	}
}

// The backoff goes back to MinBackoff after a session that lived
// StableAfter, and not after a shorter one.
func TestClientBackoffResetsAfterStableSession(t *testing.T) {
	const (
		minB   = 20 * time.Millisecond
		maxB   = 640 * time.Millisecond
		stable = 400 * time.Millisecond
	)
	addr := freeport.Loopback(t)
	e := newStoppedExit(t, "tok", exitEcho)
	c := newTestClient(t, ClientConfig{URL: "ws://" + addr + "/porthole", Token: "tok", MinBackoff: minB, MaxBackoff: maxB, StableAfter: stable})
	wait := func(s Status) time.Duration { return s.Retry.Sub(s.Since) }

	// Failures double the wait: 20, 40, 80, 160, 320 ms (±20 %).
	waitStatus(t, c, 5*time.Second, "a wait of the fifth failure", func(s Status) bool {
		if s.State == StateWaiting && wait(s) > maxB*12/10 {
			t.Fatalf("a wait of %v, beyond MaxBackoff", wait(s))
		}
		return s.State == StateWaiting && wait(s) >= 250*time.Millisecond
	})
	e.start(addr)
	up := waitStatus(t, c, 5*time.Second, "the first session", connectedWith(1))
	nextSession(t, e) // the client may see the upgrade before the exit has its session

	// A short session: the backoff goes on from where it was.
	if n := e.dropSessions(); n != 1 {
		t.Fatalf("dropped %d exit sessions, want 1", n)
	}
	down := waitLoss(t, c, ErrTunnelLost)
	if lived := down.Since.Sub(up.Since); lived >= stable {
		t.Fatalf("the short session lived %v, not under StableAfter: the machine is too slow for this test", lived)
	}
	if wait(down) < 450*time.Millisecond {
		t.Fatalf("after a short session: %s, waiting %v; want the backoff kept (about %v)", fmtStatus(down), wait(down), maxB)
	}

	// A stable session: the backoff starts again from MinBackoff.
	up = waitStatus(t, c, 5*time.Second, "the second session", connectedWith(2))
	nextSession(t, e)
	changed := c.Changed()
	select {
	case <-changed:
		t.Fatalf("the second session did not last: %s", fmtStatus(c.Status()))
	case <-time.After(stable + 50*time.Millisecond): // the session's age is the point
	}
	// The exit goes away for good, so the waits after the reset, 20, 40,
	// 80, 160 ms, all stay well below the 640 ms kept after a short
	// session, however late this goroutine looks at them.
	e.kill()
	down = waitStatus(t, c, 5*time.Second, "a retry after the stable session", func(s Status) bool {
		return s.State == StateWaiting && !s.Retry.IsZero()
	})
	if lived := down.Since.Sub(up.Since); lived < stable {
		t.Fatalf("the stable session lived only %v", lived)
	}
	if limit := 8 * minB * 12 / 10; wait(down) > limit {
		t.Fatalf("after a stable session: %s, waiting %v; want the backoff reset (at most %v)", fmtStatus(down), wait(down), limit)
	}
	e.start(addr)
	waitStatus(t, c, 5*time.Second, "the third session", connectedWith(3))
}

// Dial gives up at once when its context ends during an upgrade the exit
// never answers, not at the handshake timeout (gorilla/websocket heeds the
// context only while connecting TCP).
func TestDialCanceledDuringUpgrade(t *testing.T) {
	s := newStallServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() {
		ws, err := Dial(ctx, s.url(), "tok", DialOptions{Timeout: 20 * time.Second})
		if err == nil {
			_ = ws.Close() // cannot happen: nobody answers
		}
		res <- err
	}()
	chantest.Within(t, 5*time.Second, "Dial's upgrade request", s.requested)
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial canceled during the upgrade: %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		s.close() // lets Dial end so the test can
		<-res
		t.Fatal("Dial ignored its context during the upgrade")
	}
}
