package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
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
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	c, _, err := x.connect(ctx)
	if err != nil {
		if caller.Err() != nil && !errors.Is(caller.Err(), context.DeadlineExceeded) {
			// The caller gave up (the client went away, was closed by the
			// user or idle, the proxy stopped; each its own cause): that
			// says nothing about the proxy.
			return nil, err
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
