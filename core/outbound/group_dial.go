package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// DialContext dials addr through the exit the policy (or DialInfo.Exit)
// picks. An exit that fails the dial itself (unreachable proxy, tunnel
// down, credentials refused) counts against its health, and the next
// usable exit is tried at once unless the exit was named or picked by
// hand. With no usable exit the dial waits at most the grace for one that
// is reconnecting (a first connect: the dial timeout), then fails with an
// *ExitDownError.
//
// A dial that may answer early (DialInfo.AnswerEarly) does so only where
// no other exit would be tried: a session lost before the exit answers
// then resets a client that was answered already, where a dial that
// waited would have gone on to the next exit.
func (g *Group) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	named := -1
	info := dialInfo(ctx)
	if name := info.Exit; name != "" {
		i, ok := g.names[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownExit, name)
		}
		named = i
	}
	if info.AnswerEarly && named < 0 && g.policy != PolicyManual && len(g.members) > 1 {
		info.AnswerEarly = false
		ctx = WithDialInfo(ctx, info)
	}
	var skip []bool
	for range len(g.members) {
		i, err := g.await(ctx, named, skip)
		if err != nil {
			return nil, err
		}
		m := g.members[i]
		conn, err := m.DialContext(ctx, network, addr)
		if err == nil {
			return conn, nil
		}
		var ef *exitFailure
		if !errors.As(err, &ef) || ctx.Err() != nil {
			return nil, err // the target's answer, or the caller gave up
		}
		m.report(err)
		if named >= 0 || g.policy == PolicyManual {
			return nil, downError(m.status(), err)
		}
		if skip == nil {
			skip = make([]bool, len(g.members))
		}
		skip[i] = true
		g.log.Debug("exit failed a dial; trying the next", "exit", m.status().Name, "err", err)
	}
	return nil, g.noneLeft(skip)
}

// noneLeft is the error when every exit failed a dial.
func (g *Group) noneLeft(skip []bool) error {
	sts := g.statuses()
	g.mu.Lock()
	_, _, want := g.choose(sts, -1, nil)
	g.mu.Unlock()
	return downError(sts[want], nil)
}

// await returns the exit to dial, waiting while one is connecting and
// none is usable.
func (g *Group) await(ctx context.Context, named int, skip []bool) (int, error) {
	var timer *time.Timer
	for {
		sts := g.statuses()
		g.mu.Lock()
		running := g.running
		idx, pending, want := g.pickLocked(sts, named, skip)
		changes := g.changes
		g.mu.Unlock()
		switch {
		case !running:
			return -1, ErrTunnelStopped
		case idx >= 0:
			return idx, nil
		case pending < 0:
			return -1, downError(sts[want], nil)
		}
		if timer == nil {
			wait := g.grace
			if sts[pending].Err == nil {
				wait = g.timeout // a first connect: as long as a dial may take
			}
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-changes:
		case <-timer.C:
			st := g.members[want].status()
			return -1, downError(st, nil)
		case <-ctx.Done():
			return -1, context.Cause(ctx)
		}
	}
}

// downError names the exit, its state and why; err is the dial's own
// failure when there was one.
func downError(st ExitStatus, err error) *ExitDownError {
	if err == nil {
		err = st.Err
	}
	if err == nil && st.State == ExitConnecting {
		err = errors.New("no session yet")
	}
	return &ExitDownError{Name: st.Name, State: st.State, Since: st.Since, Err: err, Retry: st.Retry}
}
