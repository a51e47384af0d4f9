package outbound

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/xid"

	"porthole/core/tunnel"
)

// DialInfo is what a dial is for, carried in its context: the tunnel
// dialer uses it, the direct one ignores it.
type DialInfo struct {
	// ID is the registry's id of the connection; the tunnel uses it as the
	// stream id, so the exit logs the id the inspector shows.
	ID xid.ID
	// SpeaksFirst says the caller writes before it reads and learns of a
	// failed open from its first Read (plain HTTP forwarding): the dial
	// returns before the exit answers, and the first bytes travel as DATA
	// right behind the OPEN (early data) instead of one round trip later.
	SpeaksFirst bool
	// AnswerEarly says the caller may answer its client before the exit
	// answers the OPEN and learn of a refusal from the relay (CONNECT and
	// SOCKS, whose client is then reset): for a target this exit opened
	// recently (see proven) the dial returns at once, and Settle gives the
	// exit's answer when it comes.
	AnswerEarly bool
	// Exit is the exit a rule named for the connection; "" lets the
	// exits' policy pick (see Group).
	Exit string
}

type dialInfoKey struct{}

// WithDialInfo returns ctx carrying info for the dialer.
func WithDialInfo(ctx context.Context, info DialInfo) context.Context {
	return context.WithValue(ctx, dialInfoKey{}, info)
}

func dialInfo(ctx context.Context) DialInfo {
	info, _ := ctx.Value(dialInfoKey{}).(DialInfo)
	return info
}

// Tunnel dials through one WebSocket session to the exit server: a
// tunnel.Client, connected by Start and closed by Stop (the engine does
// both), so the exit sees no session while the proxy is stopped.
//
// Concurrency: open, Status and Ping are safe from any goroutine; Start
// and Stop are serialised and idempotent.
type Tunnel struct {
	cfg     tunnel.ClientConfig
	timeout time.Duration
	// noWait: a dial without a session fails at once instead of waiting
	// for the reconnect (a Group's exit: the group has others to try).
	noWait bool

	// proven is the targets the exit opened recently.
	proven proven

	mu     sync.Mutex
	client *tunnel.Client
}

// NewTunnel checks cfg and returns a stopped tunnel dialer. timeout bounds
// each dial, a wait for the session included; <= 0 means
// DefaultDialTimeout.
func NewTunnel(cfg tunnel.ClientConfig, timeout time.Duration) (*Tunnel, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	return &Tunnel{cfg: cfg, timeout: timeout}, nil
}

// Start connects to the exit (in the background; dials wait for it).
func (t *Tunnel) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != nil {
		return nil
	}
	c, err := tunnel.NewClient(t.cfg)
	if err != nil {
		return err
	}
	t.client = c
	return nil
}

// Stop closes the session; its streams end with tunnel.ErrTunnelLost.
func (t *Tunnel) Stop() error {
	t.mu.Lock()
	c := t.client
	t.client = nil
	t.mu.Unlock()
	if c == nil {
		return nil
	}
	err := c.Close()
	t.proven.reset() // and the ended session it holds
	return err
}

// Status is the tunnel client's state; State is StateClosed when stopped.
func (t *Tunnel) Status() tunnel.Status {
	t.mu.Lock()
	c := t.client
	t.mu.Unlock()
	if c == nil {
		return tunnel.Status{State: tunnel.StateClosed}
	}
	return c.Status()
}

// Ping measures the session's round trip now (tunnel.Client.Ping).
func (t *Tunnel) Ping(ctx context.Context) (time.Duration, error) {
	t.mu.Lock()
	c := t.client
	t.mu.Unlock()
	if c == nil {
		return 0, ErrTunnelStopped
	}
	return c.Ping(ctx)
}

// open opens a stream to addr. It waits for the exit's answer, so that a
// refusal (an *tunnel.OpenError) reaches the client in its own protocol,
// unless the context's DialInfo says the caller speaks first, or may
// answer early and the exit opened addr recently: then it returns at once
// (early), and the answer comes to the stream's first Read or to Settle.
//
// sent is when the OPEN was queued, for Settle's record of the answer.
func (t *Tunnel) open(ctx context.Context, network, addr string) (st *tunnel.Stream, sent int64, early bool, err error) {
	if network != "tcp" {
		return nil, 0, false, fmt.Errorf("tunnel: network %q: only tcp", network)
	}
	t.mu.Lock()
	c := t.client
	t.mu.Unlock()
	if c == nil {
		return nil, 0, false, ErrTunnelStopped
	}
	info := dialInfo(ctx)
	if info.ID.IsZero() {
		info.ID = xid.New()
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	sent = mono()
	if t.noWait {
		st, err = c.OpenCurrent(info.ID, addr, nil)
	} else {
		st, err = c.Open(ctx, info.ID, addr, nil)
	}
	if err != nil {
		return nil, 0, false, err
	}
	if info.SpeaksFirst || info.AnswerEarly && t.proven.has(st.Session(), addr, sent) {
		// The dial's timeout still bounds the wait for the exit's answer,
		// which the caller learns later.
		if d, ok := ctx.Deadline(); ok {
			st.ExpireOpen(time.Until(d))
		}
		return st, sent, info.AnswerEarly, nil
	}
	err = st.WaitOpen(ctx)
	t.answered(st, sent, err)
	if err != nil {
		_ = st.Reset() // always nil; tells the exit to stop dialling
		return nil, 0, false, err
	}
	return st, sent, false, nil
}

// answered records the exit's answer to st's OPEN, sent at sent: an
// OPEN_OK vouches for the next connection to its target, a refusal takes
// that back. A refusal for the exit's own reasons (overloaded) takes it
// back too: it costs the next client one wait. Other endings (the session
// lost, the caller gone) say nothing of the target.
func (t *Tunnel) answered(st *tunnel.Stream, sent int64, err error) {
	var oe *tunnel.OpenError
	switch {
	case err == nil:
		t.proven.add(st.Session(), st.Target(), sent, mono())
	case errors.As(err, &oe):
		t.proven.forget(st.Session(), st.Target(), mono())
	}
}
