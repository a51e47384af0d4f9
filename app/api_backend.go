package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"porthole/app/api"
	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/rules"
)

// apiBackend is the control API's view of the Controller (api.Backend),
// in Porthole's terms; app/api turns it into Clash's. The exits are the
// Controller's (exits.go), the rules the compiled list of rules.go behind
// the bypass list, and every change goes through SaveSettings.
type apiBackend struct {
	c    *Controller
	path string // the settings file SetMode and SelectExit save to
}

func newAPIBackend(c *Controller, path string) *apiBackend {
	return &apiBackend{c: c, path: path}
}

func (b *apiBackend) Registry() *registry.Registry { return b.c.Registry() }

func (b *apiBackend) Mode() string { return b.c.Config().Mode }

// SetMode saves the mode through SaveSettings, as the tray's Mode menu
// does: validated, written, applied (the proxy restarts on it). Rules
// mode that would tunnel without an exit is refused there
// (config.CheckRulesExit): a dashboard's "rule" would otherwise break
// every connection of a direct-mode user (no exit, no rules yet).
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

// clashKind is an exit's kind as mihomo names adapter types.
func clashKind(k outbound.Kind) string {
	switch k {
	case outbound.KindHTTP:
		return "Http"
	case outbound.KindSOCKS5:
		return "Socks5"
	}
	return "Porthole"
}

// exitNow is the exit GLOBAL shows as chosen: where the policy sends new
// tunnelled connections, or the manual pick while none is usable (and
// while the exits are not running).
func exitNow(st outbound.GroupState) string {
	if st.Active != "" {
		return st.Active
	}
	return st.Selected
}

func (b *apiBackend) Exits() ([]api.Exit, string) {
	st := b.c.Exits()
	out := make([]api.Exit, 0, len(st.Exits))
	for _, x := range st.Exits {
		e := api.Exit{Name: x.Name, Kind: clashKind(x.Kind),
			Alive: x.State != outbound.ExitDown && x.State != outbound.ExitAuthFailed}
		if x.State == outbound.ExitUp {
			e.Latency = x.Latency
		}
		out = append(out, e)
	}
	return out, exitNow(st)
}

// SelectExit makes name the manual pick (exit_selected, saved and taken
// at once). Under the fastest and failover policies the policy picks:
// choosing what it already uses is fine, anything else is refused with
// the reason, as the tray's Exits submenu is greyed (switching the policy
// would restart the proxy, which a click in a dashboard should not).
func (b *apiBackend) SelectExit(name string) error {
	st := b.c.Exits()
	now := exitNow(st)
	if name == api.DirectName {
		if len(st.Exits) == 0 {
			return nil // GLOBAL holds DIRECT alone
		}
		return fmt.Errorf("%w: DIRECT is the direct mode (PATCH /configs {\"mode\": \"direct\"})", api.ErrNotSelectable)
	}
	if !slices.ContainsFunc(st.Exits, func(x outbound.ExitStatus) bool { return x.Name == name }) {
		return fmt.Errorf("%w: %q", api.ErrUnknownExit, name)
	}
	if name == now {
		return nil
	}
	if st.Policy != outbound.PolicyManual {
		return fmt.Errorf("%w: the exit policy is %s, which picks the exit by itself; set exit_policy to manual to choose one",
			api.ErrNotSelectable, st.Policy)
	}
	return b.c.SelectExit(b.path, name)
}

// errExitsIdle: the exits run only while the proxy does, in tunnel or
// rules mode.
var errExitsIdle = errors.New("the exits run only while the proxy runs in tunnel or rules mode")

// Delay times a GET of target: directly for DIRECT, through the named
// exit alone for an exit (the dial a rule naming it makes; no other exit
// is tried). The time is the whole request: connect, the exit's open, TLS
// for https, the answer's header. The probe is the app's own connection:
// it is not in the registry.
func (b *apiBackend) Delay(ctx context.Context, name, target string) (time.Duration, error) {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	if name != api.DirectName {
		exits, _ := b.Exits()
		if !slices.ContainsFunc(exits, func(e api.Exit) bool { return e.Name == name }) {
			return 0, fmt.Errorf("%w: %q", api.ErrUnknownExit, name)
		}
		b.c.mu.Lock()
		eng := b.c.eng
		b.c.mu.Unlock()
		if eng == nil {
			return 0, errExitsIdle
		}
		if _, ok := eng.Exits(); !ok {
			return 0, errExitsIdle
		}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return eng.DialExit(ctx, name, network, addr)
		}
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

// Rules is what decides a connection in the mode in use, in order: in
// direct mode nothing but the final match; in tunnel mode the bypass list
// (direct), then everything through GLOBAL; in rules mode the bypass list,
// then the rule list as compiled (the config's rules, then the rules
// file's), then the default when no match rule ends the list.
func (b *apiBackend) Rules() []api.Rule {
	cfg := b.c.Config()
	if cfg.Mode == string(outbound.ModeDirect) {
		return []api.Rule{{Type: "Match", Proxy: api.DirectName, Size: -1}}
	}
	bypass := cfg.Bypass
	if bypass == nil {
		bypass = outbound.DefaultBypass // as the engine reads it
	}
	var out []api.Rule
	for _, e := range bypass {
		if r, ok := bypassRule(e); ok {
			out = append(out, r)
		}
	}
	if cfg.Mode != string(outbound.ModeRules) {
		return append(out, api.Rule{Type: "Match", Proxy: api.GlobalName, Size: -1})
	}
	set := b.ruleSet(cfg)
	if set == nil { // the settings' rules do not compile and nothing runs: the default alone
		return append(out, api.Rule{Type: "Match", Proxy: api.GlobalName, Size: -1})
	}
	final := false
	for i, r := range set.Rules() {
		cr := api.ClashRule(r)
		if r.Kind == rules.KindRuleSet {
			cr.Size = len(set.Expand(i))
		}
		final = final || r.Kind == rules.KindMatch
		out = append(out, cr)
	}
	if !final {
		def := set.Default()
		out = append(out, api.Rule{Type: "Match", Proxy: api.ProxyOf(def.Action, def.Exit), Size: -1})
	}
	return out
}

// ruleSet is the rule set in use: the running engine's, else the
// settings' compiled (nil when they do not compile).
func (b *apiBackend) ruleSet(cfg config.Config) *rules.Set {
	b.c.mu.Lock()
	eng := b.c.eng
	b.c.mu.Unlock()
	if eng != nil {
		return eng.Rules()
	}
	set, _, _ := CompileRules(cfg)
	return set
}

// bypassRule is a bypass entry as the Clash rule that matches the same:
// a name exactly, a suffix, a prefix (an address is a /32 or /128), and
// "<local>" (names without a dot) as mihomo's one-label wildcard.
func bypassRule(raw string) (api.Rule, bool) {
	e := strings.ToLower(strings.TrimSpace(raw))
	r := api.Rule{Proxy: api.DirectName, Size: -1}
	switch {
	case e == "":
		return r, false
	case e == "<local>":
		r.Type, r.Payload = "DomainWildcard", "*"
	case strings.Contains(e, "/"):
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return r, false // the engine refuses it: nothing runs with it
		}
		r.Type, r.Payload = "IPCIDR", p.Masked().String()
	default:
		if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
			a = a.Unmap()
			r.Type, r.Payload = "IPCIDR", netip.PrefixFrom(a, a.BitLen()).String()
			break
		}
		name, suffix := strings.CutPrefix(e, "*.")
		if !suffix {
			name, suffix = strings.CutPrefix(e, ".")
		}
		r.Type, r.Payload = "Domain", strings.TrimSuffix(name, ".")
		if suffix {
			r.Type = "DomainSuffix"
		}
	}
	return r, true
}
