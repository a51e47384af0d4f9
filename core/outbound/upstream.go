package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"
)

// Defaults of an upstream proxy's health probe.
const (
	DefaultProbeInterval = 15 * time.Second
	defaultMinBackoff    = 500 * time.Millisecond
	defaultMaxBackoff    = 30 * time.Second
)

// UpstreamConfig configures an upstream proxy exit (KindHTTP, KindSOCKS5).
type UpstreamConfig struct {
	Name string
	Kind Kind
	// URL is http://host:port or https://host:port (TLS to the proxy) for
	// KindHTTP, socks5://host:port (or socks5h://) for KindSOCKS5. User
	// info in the URL is used when Username is empty.
	URL                string
	Username, Password string
	// TLS is for an https:// proxy: nil trusts the system roots; the
	// server name is the URL's host unless set.
	TLS *tls.Config
	// Timeout bounds one dial through the proxy, its handshake included;
	// default DefaultDialTimeout.
	Timeout time.Duration
	// ProbeInterval is how often a healthy proxy is probed (connect and a
	// handshake); failed probes back off from MinBackoff doubling to
	// MaxBackoff. Defaults 15 s, 0.5 s, 30 s.
	ProbeInterval, MinBackoff, MaxBackoff time.Duration
	Logger                                *slog.Logger
}

// upstreamExit dials through an upstream proxy, one proxy connection per
// proxied connection, and keeps the proxy's health with a probe.
//
// Concurrency: DialContext, status, changed, report and test are safe
// from any goroutine. start and stop are called by the group, serialised;
// stop waits for the prober and is idempotent.
type upstreamExit struct {
	cfg       UpstreamConfig
	addr      string // host:port of the proxy
	tls       *tls.Config
	redacted  string
	log       *slog.Logger
	handshake func(ctx context.Context, conn net.Conn, target string) (net.Conn, error)
	// probeShake is the probe's exchange after connecting: it must learn
	// whether the proxy takes our credentials without reaching out.
	probeShake func(conn net.Conn) error

	mu      sync.Mutex
	st      ExitStatus
	changes chan struct{} // closed and replaced at every change of state
	backoff time.Duration
	kick    chan struct{} // capacity 1: a dial saw the proxy fail
	cancel  context.CancelFunc
	done    chan struct{}
}

func newUpstream(cfg UpstreamConfig) (*upstreamExit, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("proxy URL: %w", err)
	}
	if u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("proxy URL %q: want %s://host:port", redact(u), u.Scheme)
	}
	if cfg.Username == "" && u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDialTimeout
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(defaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	x := &upstreamExit{
		cfg:      cfg,
		addr:     u.Host,
		redacted: redact(u),
		changes:  make(chan struct{}),
		kick:     make(chan struct{}, 1),
		backoff:  cfg.MinBackoff,
	}
	x.log = cfg.Logger.With("exit", cfg.Name)
	switch {
	case cfg.Kind == KindHTTP && (u.Scheme == "http" || u.Scheme == "https"):
		if u.Scheme == "https" {
			x.tls = tlsFor(cfg.TLS, u.Hostname())
		}
		x.handshake, x.probeShake = x.httpConnect, x.httpProbe
	case cfg.Kind == KindSOCKS5 && (u.Scheme == "socks5" || u.Scheme == "socks5h"):
		if len(cfg.Username) > 255 || len(cfg.Password) > 255 {
			return nil, errors.New("SOCKS5 username and password: at most 255 bytes each")
		}
		x.handshake, x.probeShake = x.socks5Connect, x.socks5Probe
	default:
		return nil, fmt.Errorf("proxy URL %q: a %s exit wants %s", redact(u), cfg.Kind, schemesOf(cfg.Kind))
	}
	x.st = ExitStatus{Name: cfg.Name, Kind: cfg.Kind, URL: x.redacted, State: ExitStopped, Since: time.Now()}
	return x, nil
}

func schemesOf(k Kind) string {
	if k == KindSOCKS5 {
		return "socks5://host:port"
	}
	return "http://host:port or https://host:port"
}

func redact(u *url.URL) string {
	v := *u
	v.User = nil
	return v.String()
}

func tlsFor(base *tls.Config, host string) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c
}

// connect opens a connection to the proxy itself (TCP, then TLS for an
// https:// proxy) and returns it with the time the TCP connect took.
func (x *upstreamExit) connect(ctx context.Context) (net.Conn, time.Duration, error) {
	var d net.Dialer
	began := time.Now()
	c, err := d.DialContext(ctx, "tcp", x.addr)
	if err != nil {
		return nil, 0, err
	}
	rtt := time.Since(began)
	if x.tls == nil {
		return c, rtt, nil
	}
	tc := tls.Client(c, x.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close() // the handshake's error is the one to tell
		return nil, 0, fmt.Errorf("TLS to the proxy: %w", err)
	}
	return tc, rtt, nil
}

// DialContext connects to the proxy and asks it for addr. A failure to
// reach the proxy or a refusal of our credentials is the exit's failure
// (an *exitFailure, and the health goes down at once); the proxy's answer
// about the target is returned as it is (*UpstreamHTTPError,
// *SOCKS5ReplyError).
func (x *upstreamExit) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" {
		return nil, fmt.Errorf("%s exit: network %q: only tcp", x.cfg.Kind, network)
	}
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	c, _, err := x.connect(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
			return nil, err // the caller gave up: says nothing about the proxy
		}
		err = &exitFailure{err: fmt.Errorf("cannot reach the proxy %s: %w", x.addr, err)}
		x.report(err)
		return nil, err
	}
	// An abort (or the timeout) during the handshake closes the socket,
	// which ends a blocked read at once.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	conn, err := x.handshake(ctx, c, addr)
	if !stop() {
		// The abort closed c: whatever the handshake got, it is gone.
		if err == nil {
			err = context.Cause(ctx)
		}
	}
	if err != nil {
		_ = c.Close() // failed handshake; its error is the one to tell
		if ctx.Err() != nil {
			// The caller gave up, or the answer took the whole dial
			// timeout: an HTTP proxy answers a CONNECT only once the
			// target answered it, so a slow target is no sign of a dead
			// proxy (the probe watches that). Not the exit's failure.
			return nil, fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		var ef *exitFailure
		if errors.As(err, &ef) {
			x.report(err)
		}
		return nil, err
	}
	x.sawHealthy()
	return x.named(conn), nil
}

// named wraps a proxy connection so that it names its exit.
func (x *upstreamExit) named(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &tcpConn{TCPConn: tc, name: x.cfg.Name}
	}
	return &namedConn{Conn: c, name: x.cfg.Name}
}

// tcpConn is a plain proxy connection naming its exit. Bare gives the
// socket back, so inbound relays socket to socket (splice on Linux).
type tcpConn struct {
	*net.TCPConn
	name string
}

func (c *tcpConn) ExitName() string { return c.name }
func (c *tcpConn) Bare() net.Conn   { return c.TCPConn }

// namedConn is a TLS or buffered proxy connection naming its exit.
type namedConn struct {
	net.Conn
	name string
}

func (c *namedConn) ExitName() string { return c.name }

// CloseWrite half-closes (relay's half-close): TLS sends close_notify.
func (c *namedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Bare is the socket under a group's connection when relaying may use it
// directly (a plain proxy connection: after the handshake the bytes are
// the target's), else c itself. The exit's name is read before.
func Bare(c net.Conn) net.Conn {
	if b, ok := c.(interface{ Bare() net.Conn }); ok {
		return b.Bare()
	}
	return c
}

// withDeadline runs a handshake step with the context's deadline on the
// socket, and clears it after.
func withDeadline(ctx context.Context, c net.Conn, f func() error) error {
	if d, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(d); err != nil {
			return err
		}
	}
	if err := f(); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

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
