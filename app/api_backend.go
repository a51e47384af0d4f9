package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"porthole/app/api"
	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/tunnel"
)

// apiBackend is the control API's view of the Controller (api.Backend),
// in Porthole's terms; app/api turns it into Clash's.
//
// Today Porthole has one exit (config.Exit) and the bypass list; the
// several exits and the rules replace exitName, Exits, SelectExit, Delay
// and Rules here, and nothing in app/api.
type apiBackend struct {
	c    *Controller
	path string // the settings file SetMode saves to
}

func newAPIBackend(c *Controller, path string) *apiBackend {
	return &apiBackend{c: c, path: path}
}

func (b *apiBackend) Registry() *registry.Registry { return b.c.Registry() }

func (b *apiBackend) Mode() string { return b.c.Config().Mode }

// SetMode saves the mode through SaveSettings, as the tray's Mode menu
// does: validated, written, applied (the proxy restarts on it).
func (b *apiBackend) SetMode(mode string) error {
	saved, err := b.c.SaveSettings(b.path, func(cfg *config.Config) { cfg.Mode = mode })
	if err != nil {
		return err
	}
	if saved.StartErr != nil {
		return fmt.Errorf("mode %s is saved, but the proxy did not start with it: %w", mode, saved.StartErr)
	}
	return nil
}

// Listen is where the proxy listens, or is set to.
func (b *apiBackend) Listen() string {
	if st := b.c.Status(); st.Addr != "" {
		return st.Addr
	}
	return b.c.Config().Listen
}

// exitName is the one exit's name: its URL's host.
func exitName(exit string) string {
	if u, err := url.Parse(exit); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "exit"
}

func (b *apiBackend) Exits() []api.Exit {
	cfg := b.c.Config()
	if cfg.Exit == "" {
		return nil
	}
	// Alive unless the tunnel is known to be down: a stopped proxy or
	// direct mode has not tried it.
	alive := true
	if st := b.c.Status(); st.HasTunnel {
		alive = st.Tunnel.State == tunnel.StateConnected
	}
	return []api.Exit{{Name: exitName(cfg.Exit), Kind: "Porthole", Alive: alive}}
}

func (b *apiBackend) SelectedExit() string {
	if e := b.c.Config().Exit; e != "" {
		return exitName(e)
	}
	return ""
}

// SelectExit accepts the one exit there is.
func (b *apiBackend) SelectExit(name string) error {
	if name == "" || name != b.SelectedExit() {
		return fmt.Errorf("%w: %q", api.ErrUnknownExit, name)
	}
	return nil
}

// errExitIdle: the exit is only reached through the running proxy in
// tunnel mode, until the exits group can dial one by name.
var errExitIdle = errors.New("the exit is reached only while the proxy runs in tunnel mode")

// Delay times a GET of target: directly for DIRECT, through the proxy for
// the exit (in tunnel mode the proxy sends it through the exit, unless the
// bypass list names the host). The probe is a real connection, so it shows
// in the registry like any other.
func (b *apiBackend) Delay(ctx context.Context, name, target string) (time.Duration, error) {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	switch {
	case name == api.DirectName:
	case name != "" && name == b.SelectedExit():
		st, cfg := b.c.Status(), b.c.Config()
		if st.State != StateRunning || st.Mode != outbound.ModeTunnel || st.Addr == "" {
			return 0, errExitIdle
		}
		proxy := &url.URL{Scheme: "http", Host: proxyAddr(tcpAddr(st.Addr))}
		if cfg.Username != "" {
			proxy.User = url.UserPassword(cfg.Username, cfg.Password)
		}
		tr.Proxy = http.ProxyURL(proxy)
	default:
		return 0, fmt.Errorf("%w: %q", api.ErrUnknownExit, name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // the delay is taken; the body is not the test
	if err := resp.Body.Close(); err != nil {
		return 0, err
	}
	return d, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// tcpAddr wraps a host:port for proxyAddr.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

var _ net.Addr = tcpAddr("")

// Rules is the bypass list as Clash rules, then the final match: what
// Porthole's routing is until the rule set lands.
func (b *apiBackend) Rules() []api.Rule {
	cfg := b.c.Config()
	final := api.DirectName
	if cfg.Mode == string(outbound.ModeTunnel) {
		final = api.GlobalName
	}
	var out []api.Rule
	for _, e := range cfg.Bypass {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		typ := bypassRuleType(e)
		if typ == "DomainSuffix" {
			e = strings.TrimPrefix(strings.TrimPrefix(e, "*"), ".")
		}
		out = append(out, api.Rule{Type: typ, Payload: e, Proxy: api.DirectName})
	}
	return append(out, api.Rule{Type: "Match", Proxy: final})
}

// bypassRuleType is the Clash rule type closest to a bypass entry.
func bypassRuleType(e string) string {
	switch {
	case e == "<local>":
		return "Local"
	case strings.Contains(e, "/"):
		return "IPCIDR"
	case strings.HasPrefix(e, "*.") || strings.HasPrefix(e, "."):
		return "DomainSuffix"
	}
	if net.ParseIP(strings.Trim(e, "[]")) != nil {
		return "IPCIDR"
	}
	return "Domain"
}
