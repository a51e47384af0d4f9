package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"porthole/app/api"
	"porthole/app/config"
	"porthole/app/logring"
)

// APIOptions is what the control API needs besides the settings.
type APIOptions struct {
	// ConfigPath is the settings file the API's changes (the mode) are
	// saved to, through SaveSettings.
	ConfigPath string
	Logs       *logring.Ring  // feeds /logs; may be nil
	LogLevel   *slog.LevelVar // the app's level, which /configs reads and changes; may be nil
	Version    string
}

// ErrAPINoSecret refuses a control API beyond loopback without a secret.
var ErrAPINoSecret = errors.New("the control API listens beyond this machine and has no secret: set api.secret")

// apiHolder is the Controller's control API server. It is changed by
// StartAPI, syncAPI (after settings change) and stopAPI, never while the
// controller's ops or saveMu are held: closing a server waits for its
// requests, and a request may be waiting for those locks (PATCH mode
// saves the settings).
type apiHolder struct {
	mu      sync.Mutex
	opts    *APIOptions // nil until StartAPI: never serve
	want    config.API  // what runs, or is being started
	started bool        // want was started (successfully or not)
	srv     *api.Server
	addr    string // where srv listens
	err     error  // why the last start failed
	closed  bool
}

// APIStatus is where the control API listens ("" when off or failed) and
// why its last start failed.
type APIStatus struct {
	Addr   string
	Err    error
	Secret string
}

// StartAPI starts the control API as the settings say (api.listen; "" is
// off) and keeps it in step with them from now on. Its error is the
// start's (a port in use wraps api.ErrPortInUse); the proxy is not
// affected, and APIStatus keeps the error for the windows.
func (c *Controller) StartAPI(o APIOptions) error {
	c.api.mu.Lock()
	c.api.opts = &o
	c.api.mu.Unlock()
	return c.syncAPI()
}

// APIStatus is the control API's state now.
func (c *Controller) APIStatus() APIStatus {
	c.api.mu.Lock()
	defer c.api.mu.Unlock()
	return APIStatus{Addr: c.api.addr, Err: c.api.err, Secret: c.api.want.Secret}
}

// syncAPI restarts the API server when its settings changed. Call it
// without ops and saveMu held.
func (c *Controller) syncAPI() error {
	want := c.Config().API
	h := &c.api
	h.mu.Lock()
	if h.opts == nil || h.closed || h.started && h.want == want {
		h.mu.Unlock()
		return nil
	}
	opts := *h.opts
	h.want, h.started = want, true
	old := h.srv
	h.srv, h.addr, h.err = nil, "", nil
	h.mu.Unlock()
	if old != nil {
		if err := old.Close(); err != nil {
			c.log.Debug("control API: closing for new settings", "err", err)
		}
	}
	srv, err := c.newAPIServer(want, opts)
	h.mu.Lock()
	if h.closed || h.want != want || h.srv != nil {
		// Superseded meanwhile by newer settings or Close.
		h.mu.Unlock()
		if srv != nil {
			_ = srv.Close() // never announced: nothing to report
		}
		return nil
	}
	h.srv, h.err = srv, err
	if srv != nil {
		h.addr = srv.Addr().String()
	}
	h.mu.Unlock()
	c.update(func() {}) // windows showing the API's state refresh
	return err
}

// newAPIServer listens per settings; nil, nil when the API is off.
func (c *Controller) newAPIServer(a config.API, o APIOptions) (*api.Server, error) {
	if a.Listen == "" {
		return nil, nil
	}
	if a.Secret == "" && config.APIBeyondLoopback(a.Listen) {
		return nil, fmt.Errorf("%w (listen %s)", ErrAPINoSecret, a.Listen)
	}
	srv := api.New(api.Options{
		Backend:  newAPIBackend(c, o.ConfigPath),
		Logs:     o.Logs,
		LogLevel: o.LogLevel,
		Secret:   a.Secret,
		UIDir:    a.UI,
		Version:  o.Version,
		Log:      c.log,
	})
	if err := srv.Listen(a.Listen); err != nil {
		return nil, errors.Join(err, srv.Close())
	}
	return srv, nil
}

// stopAPI closes the API server for good; it returns when its requests
// have ended. Call it without ops and saveMu held.
func (c *Controller) stopAPI() error {
	h := &c.api
	h.mu.Lock()
	h.closed = true
	srv := h.srv
	h.srv, h.addr = nil, ""
	h.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// PrepareAPISecret gives the control API a secret when the settings have
// none and the API is on: a new random one, saved into the settings file
// (0600) when the file can take it (canSave: it is usable, or missing),
// so dashboards keep working across launches. Only the secret is written
// into the file as it is on disk: flags given for this run stay out of
// it. When it cannot be saved the secret holds for this run and the
// error says why.
func PrepareAPISecret(cfg *config.Config, path string, canSave bool) error {
	if cfg.API.Listen == "" || cfg.API.Secret != "" {
		return nil
	}
	secret, err := NewAPISecret()
	if err != nil {
		return err
	}
	cfg.API.Secret = secret
	if !canSave {
		return errors.New("the config file cannot be used, so the control API's new secret holds for this run only")
	}
	onDisk, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("the control API's secret holds for this run only: %w", err)
	}
	if onDisk.API.Secret != "" {
		cfg.API.Secret = onDisk.API.Secret // another launch saved one meanwhile
		return nil
	}
	onDisk.API.Secret = secret
	if err := config.Save(path, onDisk); err != nil {
		return fmt.Errorf("the control API's secret holds for this run only: %w", err)
	}
	return nil
}

// NewAPISecret is a random secret, 144 bits in URL-safe base64 (it goes
// into dashboard links as is).
func NewAPISecret() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making the control API's secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DefaultDashboardURL is the hosted metacubexd; DashboardURL adds the
// API's address and secret to its setup page's link.
const DefaultDashboardURL = "https://metacubex.github.io/metacubexd/"

// DashboardURL is the link "Open dashboard" opens: the configured
// dashboard (api.dashboard_url, default the hosted metacubexd) at its
// setup page, with hostname, port and secret in the query of its hash
// route, as metacubexd, zashboard and Yacd read them. addr is where the
// API listens.
func DashboardURL(a config.API, addr string) string {
	if addr == "" {
		addr = a.Listen
	}
	host, port := splitHostPort(addr)
	if host == "0.0.0.0" || host == "::" || host == "" {
		host = "127.0.0.1"
	}
	q := url.Values{}
	q.Set("hostname", host)
	q.Set("port", port)
	q.Set("secret", a.Secret)
	base := a.DashboardURL
	if base == "" {
		base = DefaultDashboardURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return base // Validate checked it; keep what the user wrote
	}
	if u.Fragment == "" {
		u.Fragment = "/setup"
	}
	sep := "?"
	if strings.Contains(u.Fragment, "?") {
		sep = "&"
	}
	return u.String() + sep + q.Encode()
}

// splitHostPort is net.SplitHostPort that keeps what it can of a broken
// address.
func splitHostPort(addr string) (host, port string) {
	u, err := url.Parse("//" + addr)
	if err != nil {
		return addr, ""
	}
	return u.Hostname(), u.Port()
}
