package core

import (
	"context"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/rs/xid"

	"porthole/core/outbound"
	"porthole/core/tunnel"
)

// exitList is the configured exits: Exits, or the single Exit of older
// callers as one porthole exit named after its host.
func exitList(cfg Config) []outbound.ExitConfig {
	if len(cfg.Exits) > 0 || cfg.Exit == nil {
		return cfg.Exits
	}
	return []outbound.ExitConfig{{Name: ExitNameFromURL(cfg.Exit.URL), Kind: outbound.KindPorthole, Tunnel: *cfg.Exit}}
}

// ExitNameFromURL is the name an exit gets from its URL: its host
// ("exit" when there is none to read).
func ExitNameFromURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return "exit"
	}
	return u.Hostname()
}

// Exits is the exits' state, with the policy's pick; ok is false without
// exits (direct mode).
func (e *Engine) Exits() (st outbound.GroupState, ok bool) {
	if e.exits == nil {
		return outbound.GroupState{}, false
	}
	return e.exits.State(), true
}

// SubscribeExits returns the exits' state and a watch of its changes (see
// outbound.ExitWatch); nil without exits. The watch ends when the engine
// is closed.
func (e *Engine) SubscribeExits() (outbound.GroupState, *outbound.ExitWatch) {
	if e.exits == nil {
		return outbound.GroupState{}, nil
	}
	return e.exits.Subscribe()
}

// SelectExit makes name the manual pick, at once for new connections.
func (e *Engine) SelectExit(name string) error {
	if e.exits == nil {
		return outbound.ErrNoTunnel
	}
	return e.exits.Select(name)
}

// TestExit measures an exit's latency now.
func (e *Engine) TestExit(ctx context.Context, name string) (time.Duration, error) {
	if e.exits == nil {
		return 0, outbound.ErrNoTunnel
	}
	return e.exits.Test(ctx, name)
}

// DialExit dials addr through the exit name, as a rule naming it would
// (no other exit is tried); "" lets the policy pick. The control API's
// delay test measures an exit with it. The connection is not in the
// registry: it is the app's own, not a client's.
func (e *Engine) DialExit(ctx context.Context, name, network, addr string) (net.Conn, error) {
	if e.exits == nil {
		return nil, outbound.ErrNoTunnel
	}
	return e.exits.DialContext(outbound.WithDialInfo(ctx, outbound.DialInfo{ID: xid.New(), Exit: name}), network, addr)
}

// exitTunnelStatus is the group's state in the tunnel client's terms, for
// callers that know one exit.
func exitTunnelStatus(gs outbound.GroupState, ts func(string) (tunnel.Status, bool)) tunnel.Status {
	var x outbound.ExitStatus
	for _, s := range gs.Exits {
		if s.Active {
			x = s
			break
		}
	}
	if x.Name == "" && len(gs.Exits) > 0 {
		x = gs.Exits[0]
		for _, s := range gs.Exits {
			if s.Selected && gs.Policy == outbound.PolicyManual {
				x = s
			}
		}
	}
	if ts, ok := ts(x.Name); ok {
		return ts
	}
	st := tunnel.Status{Exit: x.URL, RTT: x.Latency, Err: x.Err, Since: x.Since, Retry: x.Retry}
	switch x.State {
	case outbound.ExitUp:
		st.State = tunnel.StateConnected
	case outbound.ExitConnecting:
		st.State = tunnel.StateConnecting
	case outbound.ExitDown:
		st.State = tunnel.StateWaiting
	case outbound.ExitAuthFailed:
		st.State = tunnel.StateAuthFailed
	default:
		st.State = tunnel.StateClosed
	}
	return st
}

// exitsLine is the status page's line: every exit, the one in use first.
func exitsLine(gs outbound.GroupState) string {
	parts := make([]string, 0, len(gs.Exits))
	for _, s := range gs.Exits {
		p := s.String()
		if s.Active {
			p = "✓ " + p
		}
		parts = append(parts, p)
	}
	return "Exits (" + string(gs.Policy) + "): " + strings.Join(parts, "; ")
}
