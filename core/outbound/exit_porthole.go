package outbound

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"porthole/core/tunnel"
)

// portholeExit is a Porthole exit server in a group: its Tunnel (one
// session, kept connected while the proxy runs), its health read from the
// tunnel client's status, the session's PING round trip as its latency.
//
// Concurrency: as Tunnel's; status keeps "down since" under mu.
type portholeExit struct {
	name string
	t    *Tunnel

	mu        sync.Mutex
	downSince time.Time // when the exit stopped being usable; zero while up
}

func newPortholeExit(name string, cfg tunnel.ClientConfig, timeout time.Duration) (*portholeExit, error) {
	t, err := NewTunnel(cfg, timeout)
	if err != nil {
		return nil, err
	}
	// The group waits for a session itself (DefaultGrace) and only dials
	// an exit that has one; a session lost between the two must not hold
	// the dial for a reconnect.
	t.noWait = true
	return &portholeExit{name: name, t: t}, nil
}

func (p *portholeExit) start() error { return p.t.Start() }
func (p *portholeExit) stop() error  { return p.t.Stop() }

// changed is the tunnel client's change channel; nil (never ready) while
// stopped.
func (p *portholeExit) changed() <-chan struct{} {
	p.t.mu.Lock()
	c := p.t.client
	p.t.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Changed()
}

func (p *portholeExit) status() ExitStatus {
	ts := p.t.Status()
	st := ExitStatus{Name: p.name, Kind: KindPorthole, URL: ts.Exit, Err: ts.Err, Since: ts.Since, Retry: ts.Retry}
	if st.URL == "" {
		st.URL = p.t.cfg.URL
	}
	switch ts.State {
	case tunnel.StateConnected:
		st.State, st.Latency = ExitUp, ts.RTT
	case tunnel.StateConnecting:
		st.State = ExitConnecting
	case tunnel.StateWaiting:
		st.State = ExitDown
	case tunnel.StateAuthFailed:
		st.State = ExitAuthFailed
	default:
		st.State = ExitStopped
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case st.State == ExitUp || st.State == ExitStopped:
		p.downSince = time.Time{}
	case st.Err == nil:
		// The first attempt: connecting since it began, not down.
	case p.downSince.IsZero():
		p.downSince = ts.Since
		st.Since = ts.Since
	default:
		// Reconnecting flips between waiting and connecting: the outage
		// began with the first of them.
		st.Since = p.downSince
	}
	return st
}

// test measures the round trip now: a PING on the live session, whose
// PONG also updates the latency the status shows.
func (p *portholeExit) test(ctx context.Context) (time.Duration, error) {
	st := p.status()
	if st.State != ExitUp {
		return 0, &ExitDownError{Name: p.name, State: st.State, Since: st.Since, Err: st.Err, Retry: st.Retry}
	}
	d, err := p.t.Ping(ctx)
	if err != nil {
		// The session ended under the ping: the exit is down now, as its
		// status (read again) says.
		if st := p.status(); st.State != ExitUp && ctx.Err() == nil {
			return 0, &ExitDownError{Name: p.name, State: st.State, Since: st.Since, Err: st.Err, Retry: st.Retry}
		}
		return 0, err
	}
	return d, nil
}

// report does nothing: the tunnel client notices a lost session itself.
func (p *portholeExit) report(error) {}

// DialContext opens a stream; a tunnel that is down (or dies during the
// open) is the exit's failure. Its streams end with "exit lost: NAME" when
// the session dies.
func (p *portholeExit) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	st, sent, early, err := p.t.open(ctx, network, addr)
	if err != nil {
		// No session, or the session died while the exit was answering
		// the open: the exit's failure, and the group tries the next.
		if errors.Is(err, tunnel.ErrNoSession) || errors.Is(err, tunnel.ErrTunnelLost) && ctx.Err() == nil {
			return nil, &exitFailure{err: err, auth: errors.Is(err, tunnel.ErrAuthFailed)}
		}
		return nil, err
	}
	c := &tunnelConn{Stream: st, name: p.name}
	if early {
		c.early, c.sent = p.t, sent
	}
	return c, nil
}

// tunnelConn is a tunnel stream that names its exit, and whose ending by
// a lost session reads "exit lost: NAME" (an *ExitLostError). The
// stream's other methods (CloseWrite, WaitRead, Abort, Reset) are its own.
type tunnelConn struct {
	*tunnel.Stream
	name string
	// early is the tunnel whose dial returned before the exit answered
	// (DialInfo.AnswerEarly), and sent when its OPEN went out (mono):
	// Settle records the answer there.
	early *Tunnel
	sent  int64
}

// Early says whether c's dial returned before its exit answered it (see
// DialInfo.AnswerEarly): its client may have its answer already, and
// Settle waits for the exit's.
func Early(c net.Conn) bool {
	tc, ok := c.(*tunnelConn)
	return ok && tc.early != nil
}

// Settle waits for the exit's answer to a connection whose dial returned
// before it (Early), and returns the address the exit connected to, or
// why the open failed: the exit's refusal (an *tunnel.OpenError), the
// stream's or the session's end, or ctx's. Any other connection was
// answered when it was dialled: its remote address at once. The wait ends
// by itself too: the dial's timeout bounds the exit's answer.
func Settle(ctx context.Context, c net.Conn) (string, error) {
	tc, ok := c.(*tunnelConn)
	if !ok || tc.early == nil {
		return c.RemoteAddr().String(), nil
	}
	err := tc.WaitOpen(ctx)
	tc.early.answered(tc.Stream, tc.sent, err)
	if err != nil {
		return "", tc.lost(err)
	}
	return tc.RemoteAddr().String(), nil
}

func (c *tunnelConn) ExitName() string { return c.name }

func (c *tunnelConn) lost(err error) error {
	if err != nil && errors.Is(err, tunnel.ErrTunnelLost) {
		return &ExitLostError{Name: c.name, Err: err}
	}
	return err
}

func (c *tunnelConn) Read(b []byte) (int, error) {
	n, err := c.Stream.Read(b)
	return n, c.lost(err)
}

func (c *tunnelConn) Write(b []byte) (int, error) {
	n, err := c.Stream.Write(b)
	return n, c.lost(err)
}

func (c *tunnelConn) WaitRead() error { return c.lost(c.Stream.WaitRead()) }

func (c *tunnelConn) WriteUnreadTo(w io.Writer) (int64, error, error) {
	n, werr, rerr := c.Stream.WriteUnreadTo(w)
	return n, werr, c.lost(rerr)
}
