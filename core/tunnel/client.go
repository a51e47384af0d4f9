package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/xid"
)

// State is where a Client is with its exit.
type State uint8

const (
	StateConnecting State = iota // dialling the exit
	StateConnected               // a session is up
	StateWaiting                 // the last attempt failed; waiting to retry
	StateAuthFailed              // the exit refused the token; waiting to retry
	StateClosed                  // Close was called
)

var stateNames = [...]string{
	StateConnecting: "connecting", StateConnected: "connected", StateWaiting: "reconnecting",
	StateAuthFailed: "authentication failed", StateClosed: "closed",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Status is a Client's state for display.
type Status struct {
	State State
	Exit  string        // the exit's URL
	RTT   time.Duration // the session's last round trip; 0 when unknown
	Err   error         // why the last session or attempt ended; nil if none did
	Since time.Time     // when State began
	Retry time.Time     // StateWaiting, StateAuthFailed: when the next attempt starts
	// Sessions counts the sessions made so far, Streams the live streams
	// of the current one.
	Sessions int
	Streams  int
}

// String is the status in one line for people: "connected to wss://… ·
// RTT 12 ms · 3 streams", "authentication failed at wss://…: … · retry in
// 4s".
func (st Status) String() string {
	var b strings.Builder
	switch st.State {
	case StateConnected:
		fmt.Fprintf(&b, "connected to %s", st.Exit)
		if st.RTT > 0 {
			fmt.Fprintf(&b, " · RTT %s", st.RTT.Round(10*time.Microsecond))
		}
		fmt.Fprintf(&b, " · %d streams", st.Streams)
	case StateClosed:
		b.WriteString("not connected")
	default:
		fmt.Fprintf(&b, "%s (%s)", st.State, st.Exit)
		if st.Err != nil {
			fmt.Fprintf(&b, ": %v", st.Err)
		}
		if !st.Retry.IsZero() {
			fmt.Fprintf(&b, " · retry in %s", max(time.Until(st.Retry), 0).Round(100*time.Millisecond))
		}
	}
	return b.String()
}

// ClientConfig configures a Client.
type ClientConfig struct {
	URL     string // ws:// or wss:// URL of the exit
	Token   string
	TLS     *tls.Config   // nil: system roots
	Timeout time.Duration // one connection attempt (TCP, TLS, upgrade); default 15 s
	Session Config        // for each session; OnOpen is not used
	// Backoff between attempts: from MinBackoff, doubling to MaxBackoff,
	// ±20 % jitter, back to MinBackoff after a session that lived
	// StableAfter. Defaults 0.5 s, 30 s, 1 min (PROTOCOL.md §6).
	MinBackoff, MaxBackoff, StableAfter time.Duration
	Logger                              *slog.Logger
}

// Client keeps one session to an exit: it connects at once, reconnects
// with exponential backoff and jitter when the session ends, and opens
// streams on whatever session is current.
//
// Concurrency: one goroutine owns the connection loop and is the only one
// that creates and closes sessions; Open and Status may be called from any
// goroutine. Close is idempotent and returns when the loop and its session
// have ended.
type Client struct {
	cfg ClientConfig
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	sess    *Session      // current session; nil or ended between sessions
	changed chan struct{} // closed and replaced whenever sess or state changes
	status  Status
}

// Check reports what is wrong with the exit URL or token.
func (cfg *ClientConfig) Check() error {
	_, err := cfg.parseURL()
	if err == nil && cfg.Token == "" {
		err = errors.New("tunnel mode needs the exit's token")
	}
	return err
}

func (cfg *ClientConfig) parseURL() (*url.URL, error) { return parseExitURL(cfg.URL) }

// CheckURL reports what is wrong with an exit URL.
func CheckURL(s string) error {
	_, err := parseExitURL(s)
	return err
}

func parseExitURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("exit URL %q: %w", s, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "" {
		return nil, fmt.Errorf("exit URL %q: want ws://host[:port]/path or wss://host[:port]/path", s)
	}
	return u, nil
}

// NewClient checks cfg and starts connecting.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	u, _ := cfg.parseURL() // checked
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Session.OnOpen = nil
	if cfg.Session.Logger == nil {
		cfg.Session.Logger = cfg.Logger
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.With("exit", redactURL(u)),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		status:  Status{State: StateConnecting, Exit: redactURL(u), Since: time.Now()},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.loop()
	return c, nil
}

// redactURL drops user info from a URL meant for logs and the UI.
func redactURL(u *url.URL) string {
	v := *u
	v.User = nil
	return v.String()
}

// Status is the client's current state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status
	if c.sess != nil {
		st.RTT = c.sess.RTT()
		st.Streams = c.sess.NumStreams()
	}
	return st
}

// Ping measures the current session's round trip now (Session.Ping); it
// fails at once, with an error wrapping ErrNoSession, while there is none.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	c.mu.Lock()
	sess, state, last := c.sess, c.status.State, c.status.Err
	c.mu.Unlock()
	if state == StateClosed {
		return 0, ErrClientClosed
	}
	if sess == nil {
		if last == nil {
			return 0, fmt.Errorf("%w (%s)", ErrNoSession, state)
		}
		return 0, fmt.Errorf("%w (%s): %w", ErrNoSession, state, last)
	}
	return sess.Ping(ctx)
}

// Changed is closed at the next change of state (not of RTT or streams);
// call it again for the one after.
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Open opens a stream to target on the current session, waiting for one
// while the client reconnects, until ctx ends; the answer from the exit
// comes later (Stream.WaitOpen). A wait that ends finds an error wrapping
// ErrNoSession and ctx's cause.
func (c *Client) Open(ctx context.Context, id xid.ID, target string, early []byte) (*Stream, error) {
	for {
		c.mu.Lock()
		sess, changed, state, last := c.sess, c.changed, c.status.State, c.status.Err
		c.mu.Unlock()
		switch state {
		case StateClosed:
			return nil, ErrClientClosed
		case StateAuthFailed:
			// Waiting cannot help until the next attempt, seconds away:
			// the client learns at once why its connection fails.
			return nil, fmt.Errorf("%w: %w", ErrNoSession, last)
		}
		if sess != nil {
			st, err := sess.Open(id, target, early)
			if !errors.Is(err, ErrTunnelLost) {
				return st, err
			}
			// The session is ending; the loop will replace it and say so.
		}
		select {
		case <-changed:
		case <-ctx.Done():
			why := "no session yet"
			if last != nil {
				why = "last attempt: " + last.Error()
			}
			// The last error is told, not wrapped: a refused connection to
			// the exit must not read as the target refusing.
			return nil, fmt.Errorf("%w (%s, %s): %w", ErrNoSession, state, why, context.Cause(ctx))
		}
	}
}

// OpenCurrent is Open without the wait: it opens on the current session,
// or fails at once with an error wrapping ErrNoSession when there is none
// (the client is reconnecting) or it is ending. For callers that have
// somewhere else to go (a group of exits) rather than wait for this one.
func (c *Client) OpenCurrent(id xid.ID, target string, early []byte) (*Stream, error) {
	c.mu.Lock()
	sess, state, last := c.sess, c.status.State, c.status.Err
	c.mu.Unlock()
	if state == StateClosed {
		return nil, ErrClientClosed
	}
	if sess != nil {
		st, err := sess.Open(id, target, early)
		if !errors.Is(err, ErrTunnelLost) {
			return st, err
		}
		last = err
	}
	if last == nil {
		return nil, fmt.Errorf("%w (%s)", ErrNoSession, state)
	}
	return nil, fmt.Errorf("%w (%s): %w", ErrNoSession, state, last)
}

// Close ends the current session (its streams end with ErrTunnelLost) and
// stops reconnecting.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// setLocked records a new state and wakes whoever waits for a change.
func (c *Client) setLocked(state State, sess *Session, err error, retry time.Time) {
	c.sess = sess
	c.status.State, c.status.Err, c.status.Retry, c.status.Since = state, err, retry, time.Now()
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Client) set(state State, sess *Session, err error, retry time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(state, sess, err, retry)
}

// loop connects, serves a session until it ends, waits, and again.
func (c *Client) loop() {
	defer close(c.done)
	defer c.set(StateClosed, nil, nil, time.Time{})
	backoff := c.cfg.MinBackoff
	failures := 0 // attempts that failed since the last session came up
	for {
		c.mu.Lock()
		last := c.status.Err
		c.setLocked(StateConnecting, nil, last, time.Time{})
		c.mu.Unlock()
		ws, err := Dial(c.ctx, c.cfg.URL, c.cfg.Token, DialOptions{TLS: c.cfg.TLS, Timeout: c.cfg.Timeout})
		if c.ctx.Err() != nil {
			if err == nil {
				_ = ws.Close() // never used
			}
			return
		}
		if err == nil {
			sess := NewSession(ws, true, c.cfg.Session)
			c.mu.Lock()
			c.status.Sessions++
			c.setLocked(StateConnected, sess, nil, time.Time{})
			c.mu.Unlock()
			c.log.Info("tunnel connected", "after_failures", failures)
			failures = 0
			began := time.Now()
			select {
			case <-sess.Done():
			case <-c.ctx.Done():
			}
			if c.ctx.Err() == nil {
				// Not Connected while the session closes (its close frame
				// may take a second to go out).
				c.set(StateWaiting, nil, sess.Err(), time.Time{})
			}
			_ = sess.Close() // always nil; waits for the session's goroutines
			if c.ctx.Err() != nil {
				return
			}
			err = sess.Err()
			if time.Since(began) >= c.cfg.StableAfter {
				backoff = c.cfg.MinBackoff
			}
		}
		failures++
		state := StateWaiting
		if errors.Is(err, ErrAuthFailed) {
			state = StateAuthFailed
		}
		wait := jitter(backoff)
		backoff = min(2*backoff, c.cfg.MaxBackoff)
		c.set(state, nil, err, time.Now().Add(wait))
		c.logFailure(state, failures, wait, err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
}

// logFailure logs a lost session or failed attempt: at WARN the first time
// and for a refused token, at DEBUG while an outage goes on, so a long
// outage does not flood the log.
func (c *Client) logFailure(state State, failures int, wait time.Duration, err error) {
	level := slog.LevelDebug
	if failures == 1 || state == StateAuthFailed {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "tunnel down; retrying", "state", state, "failures", failures, "retry_in", wait.Round(time.Millisecond), "err", err)
}

// jitter spreads d by ±20 %, so clients that lost the same exit do not
// come back in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
