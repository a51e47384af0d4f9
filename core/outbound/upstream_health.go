package outbound

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// An upstream proxy's health: the state the group reads, the probe loop
// that keeps it, and what dials report. See upstreamExit's concurrency
// note.

func (x *upstreamExit) status() ExitStatus {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.st
}

func (x *upstreamExit) changed() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.changes
}

// setLocked records a new state and wakes the watchers; the caller holds
// x.mu.
func (x *upstreamExit) setLocked(state ExitState, latency time.Duration, err error, retry time.Time) {
	old := x.st
	x.st.State, x.st.Err, x.st.Retry = state, err, retry
	if latency > 0 {
		x.st.Latency = latency
	}
	if state != old.State {
		x.st.Since = time.Now()
	}
	if state != old.State || latency > 0 && latency != old.Latency || !errors.Is(err, old.Err) || retry != old.Retry {
		close(x.changes)
		x.changes = make(chan struct{})
	}
}

// report counts a dial's exit failure: the exit is down (or refused the
// credentials) now, and the prober retries after the backoff. Reports
// while already down only refresh the reason: each does not start a probe.
func (x *upstreamExit) report(err error) {
	var ef *exitFailure
	auth := errors.As(err, &ef) && ef.auth
	x.mu.Lock()
	if x.st.State == ExitStopped {
		x.mu.Unlock()
		return
	}
	state := ExitDown
	if auth {
		state = ExitAuthFailed
	}
	wasUp := x.st.State == ExitUp || x.st.State == ExitConnecting
	retry := x.st.Retry
	if wasUp || retry.IsZero() {
		retry = time.Now().Add(jitter(x.backoff))
	}
	x.setLocked(state, 0, err, retry)
	x.mu.Unlock()
	if wasUp {
		x.log.Warn("exit down", "err", err, "retry_at", retry.Format(time.TimeOnly))
		select {
		case x.kick <- struct{}{}:
		default: // a kick is pending already
		}
	}
}

// sawHealthy records that a dial went through: the proxy works, whatever
// the last probe said.
func (x *upstreamExit) sawHealthy() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.st.State != ExitUp && x.st.State != ExitStopped {
		x.backoff = x.cfg.MinBackoff
		x.setLocked(ExitUp, 0, nil, time.Time{})
	}
}

func (x *upstreamExit) start() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel, x.done = cancel, make(chan struct{})
	x.backoff = x.cfg.MinBackoff
	x.setLocked(ExitConnecting, 0, nil, time.Time{})
	go x.probeLoop(ctx, x.done)
	return nil
}

func (x *upstreamExit) stop() error {
	x.mu.Lock()
	cancel, done := x.cancel, x.done
	x.cancel, x.done = nil, nil
	x.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	<-done
	x.mu.Lock()
	x.setLocked(ExitStopped, 0, nil, time.Time{})
	x.mu.Unlock()
	return nil
}

// probeLoop probes the proxy at once, then every ProbeInterval while it
// is healthy and after a doubling backoff while it is not. A dial's
// report of a failure moves the next probe to the backoff.
func (x *upstreamExit) probeLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		wait := x.probeOnce(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-x.kick:
			t.Stop()
			x.mu.Lock()
			wait := time.Until(x.st.Retry)
			x.mu.Unlock()
			t = time.NewTimer(max(wait, 0))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// probeOnce probes and records the outcome; it returns the wait before
// the next probe.
func (x *upstreamExit) probeOnce(ctx context.Context) time.Duration {
	rtt, err := x.probe(ctx)
	if ctx.Err() != nil {
		return 0 // stopping
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err == nil {
		if x.st.State != ExitUp && x.st.State != ExitConnecting {
			x.log.Info("exit up again", "latency", rtt)
		}
		x.backoff = x.cfg.MinBackoff
		x.setLocked(ExitUp, rtt, nil, time.Time{})
		return x.cfg.ProbeInterval
	}
	state := ExitDown
	var ef *exitFailure
	if errors.As(err, &ef) && ef.auth {
		state = ExitAuthFailed
	}
	wait := jitter(x.backoff)
	x.backoff = min(2*x.backoff, x.cfg.MaxBackoff)
	if x.st.State == ExitUp || x.st.State == ExitConnecting || state == ExitAuthFailed && x.st.State != ExitAuthFailed {
		x.log.Warn("exit down", "state", state, "err", err, "retry_in", wait.Round(time.Millisecond))
	} else {
		x.log.Debug("exit still down", "state", state, "err", err, "retry_in", wait.Round(time.Millisecond))
	}
	x.setLocked(state, 0, err, time.Now().Add(wait))
	return wait
}

// probe connects to the proxy and runs the probe exchange; the latency is
// the TCP connect's.
func (x *upstreamExit) probe(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	c, rtt, err := x.connect(ctx)
	if err != nil {
		return 0, &exitFailure{err: fmt.Errorf("cannot reach the proxy %s: %w", x.addr, err)}
	}
	defer c.Close() // a probe's connection carries nothing
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := withDeadline(ctx, c, func() error { return x.probeShake(c) }); err != nil {
		var ef *exitFailure
		if !errors.As(err, &ef) {
			err = &exitFailure{err: err}
		}
		return 0, err
	}
	return rtt, nil
}

// test probes now, records the outcome and returns the latency.
func (x *upstreamExit) test(ctx context.Context) (time.Duration, error) {
	x.mu.Lock()
	running := x.done != nil
	x.mu.Unlock()
	if !running {
		return 0, ErrTunnelStopped
	}
	rtt, err := x.probe(ctx)
	if ctx.Err() != nil {
		return 0, err
	}
	if err != nil {
		x.report(err)
		return 0, err
	}
	x.mu.Lock()
	x.backoff = x.cfg.MinBackoff
	x.setLocked(ExitUp, rtt, nil, time.Time{})
	x.mu.Unlock()
	return rtt, nil
}

// jitter spreads d by ±20 %, so probes of exits that failed together do
// not come back in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
