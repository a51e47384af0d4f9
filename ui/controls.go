package ui

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unicode/utf8"

	"porthole/app"
	"porthole/app/autostart"
	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/tunnel"
)

// controlsInput is what the tray menu and the main window are drawn from:
// the controller's state plus what the GUI knows besides it. The watcher
// gathers it off the Fyne thread.
type controlsInput struct {
	Status app.Status
	Config config.Config
	Active int // live connections
	// UpRate and DownRate are bytes per second, from the difference of the
	// registry's totals between two ticks.
	UpRate, DownRate float64
	// Busiest is the program that moved the most bytes over the last
	// registry tick ("" when none did, or it is not known); renewed with
	// the speeds.
	Busiest string
	// SystemProxyProblem is why no system proxy can be set on this desktop
	// (Options.SystemProxyProblem); nil when it can.
	SystemProxyProblem error
	// WantSystemProxy is the user's choice, remembered while the proxy is
	// stopped (Status.SystemProxy is only true while it is set).
	WantSystemProxy bool
	// AtLogin and AtLoginErr are autostart.Enabled's answer.
	AtLogin    bool
	AtLoginErr error
	Quitting   bool
	// FileNote is what the GUI says about the config file besides a
	// problem the controller holds for (Status.ConfigProblem): unknown
	// fields, or where a file that could not be used was moved.
	FileNote string
	// Exits is the exits' state (Controller.Exits).
	Exits outbound.GroupState

	totalsUp, totalsDown int64 // the registry's byte totals, for the speeds
}

// controlsView is what the tray menu and the main window show. It is
// comparable: the watcher redraws only when it changed, so an idle
// Porthole does not rebuild its tray menu (and every D-Bus client's copy
// of it) each second.
type controlsView struct {
	Status string // "Running · 12 connections · ↓ 1.2 MB/s ↑ 40 kB/s · firefox"
	Icon   trayIconKind
	// Problem is the whole story of a config file that cannot be used,
	// while the proxy is held stopped for it; FileNote is a lesser note
	// about the file. The main window shows them; the tray's status line
	// and a notification stand in for them there.
	Problem  string
	FileNote string

	Running          bool   // Start/Stop stops
	StartStop        string // its label
	StartStopBlocked bool   // starting, stopping or quitting

	SystemProxy        string // the label, with the reason when it cannot be used
	SystemProxyOn      bool
	SystemProxyBlocked bool

	Mode          outbound.Mode
	ModeLabel     string // "Mode: Direct"
	TunnelLabel   string
	TunnelBlocked bool // no exit server configured
	RulesLabel    string
	RulesBlocked  bool // no exit server, and the rules would tunnel (config.CheckRulesExit)
	// ModeBlocked: the proxy is held for a config file that cannot be
	// used; a mode (or system proxy) click would replace that file with
	// the defaults piecemeal, so only Start with defaults and Settings…
	// decide about it.
	ModeBlocked bool

	AtLogin        string
	AtLoginOn      bool
	AtLoginBlocked bool

	Exits exitsView // the tray's Exits submenu

	Quitting bool
}

// viewOf is the whole presentation logic of the controls, kept free of
// Fyne so that it is tested on plain values.
func viewOf(in controlsInput) controlsView {
	st, cfg := in.Status, in.Config
	v := controlsView{
		Status:   statusLine(in),
		Icon:     iconOf(st),
		Mode:     outbound.Mode(cfg.Mode),
		Quitting: in.Quitting,
	}

	v.Running = st.State == app.StateRunning || st.State == app.StateStarting
	v.StartStop = "Start"
	switch {
	case v.Running:
		v.StartStop = "Stop"
	case st.ConfigProblem != nil:
		v.StartStop = "Start with defaults"
		v.Problem = "Porthole did not start: " + st.ConfigProblem.Error() +
			". The defaults may send your traffic another way than the file says. Fix the file and start Porthole again, or choose Start with defaults (the file is then moved aside and kept)."
	}
	v.FileNote = in.FileNote
	if st.RulesProblem != nil {
		note := "The rules file changed but cannot be used; the rules in use stay: " + shortError(st.RulesProblem, 200)
		v.FileNote = strings.TrimSpace(v.FileNote + " " + note)
	}
	v.StartStopBlocked = in.Quitting || st.State == app.StateStarting || st.State == app.StateStopping

	switch {
	case in.SystemProxyProblem != nil || errors.Is(st.SystemProxyErr, sysproxy.ErrUnsupported):
		v.SystemProxy = "System proxy: not available on this desktop (use Copy terminal env)"
		v.SystemProxyBlocked = true
	case st.SystemProxyErr != nil:
		v.SystemProxy = "System proxy: failed: " + shortError(st.SystemProxyErr, 60)
	case st.State != app.StateRunning && in.WantSystemProxy:
		v.SystemProxy = "System proxy (set while running)"
		v.SystemProxyOn = true
	default:
		v.SystemProxy = "System proxy"
		v.SystemProxyOn = st.SystemProxy
	}
	held := st.ConfigProblem != nil && !v.Running
	v.SystemProxyBlocked = v.SystemProxyBlocked || in.Quitting || held
	v.ModeBlocked = held

	v.ModeLabel = "Mode: Direct"
	switch v.Mode {
	case outbound.ModeTunnel:
		v.ModeLabel = "Mode: Tunnel"
	case outbound.ModeRules:
		v.ModeLabel = "Mode: Rules"
	}
	v.TunnelLabel = "Tunnel"
	if v.Mode != outbound.ModeDirect { // direct mode uses no exit: no submenu
		v.Exits = exitsViewOf(in.Exits)
	}
	if len(cfg.ExitList()) == 0 {
		v.TunnelLabel = "Tunnel (set an exit server in Settings…)"
		v.TunnelBlocked = true
	}
	// Rules mode needs an exit only when its rules would tunnel; the
	// config's own rules are known here, a rules file's only when it is
	// read (the switch itself then refuses, with a notification).
	v.RulesLabel = "Rules"
	if v.Mode != outbound.ModeRules && cfg.CheckRulesExit(nil, cfg.RulesFile == "") != nil {
		v.RulesLabel = "Rules (set an exit server, or end the rules with a direct match, in Settings…)"
		v.RulesBlocked = true
	}

	v.AtLogin = "Start at login"
	v.AtLoginOn = in.AtLogin
	switch {
	case errors.Is(in.AtLoginErr, autostart.ErrNotOurs):
		v.AtLogin = "Start at login (an entry Porthole did not write is in the way)"
		v.AtLoginBlocked = true
	case in.AtLoginErr != nil:
		v.AtLogin = "Start at login: unavailable: " + shortError(in.AtLoginErr, 50)
		v.AtLoginBlocked = true
	}
	v.AtLoginBlocked = v.AtLoginBlocked || in.Quitting
	return v
}

// statusLine is the first line of the tray menu.
func statusLine(in controlsInput) string {
	st := in.Status
	if in.Quitting {
		return "Quitting…"
	}
	switch st.State {
	case app.StateStarting:
		return "Starting…"
	case app.StateStopping:
		return "Stopping…"
	case app.StateStopped:
		if st.ConfigProblem != nil {
			return "Not started: " + configProblemShort(st.ConfigProblem)
		}
		return "Stopped"
	case app.StateFailed:
		return "Error: " + startProblem(st.Err, in.Config.Listen)
	}
	running := "Running"
	if st.HasTunnel {
		running = "Running (tunnel " + tunnelWord(st.Tunnel.State) + ")"
	}
	conns := fmt.Sprintf("%d connections", in.Active)
	if in.Active == 1 {
		conns = "1 connection"
	}
	line := fmt.Sprintf("%s · %s · ↓ %s ↑ %s", running, conns, trayRate(in.DownRate), trayRate(in.UpRate))
	// Who is busiest, only while something moves: a name beside "0 B/s"
	// would be yesterday's news.
	if in.Busiest != "" && (in.DownRate >= 0.5 || in.UpRate >= 0.5) {
		line += " · " + in.Busiest
	}
	return line
}

// tunnelWord is the tunnel's state in a word or two. The RTT and stream
// count of tunnel.Status.String are left out: they change every second and
// would rebuild the menu each time.
func tunnelWord(s tunnel.State) string {
	if s == tunnel.StateConnected {
		return "up"
	}
	return s.String()
}

// iconOf picks the tray icon: off, direct, tunnel, or error when the proxy
// failed, cannot reach its exit, or is held stopped by a config file that
// cannot be used.
func iconOf(st app.Status) trayIconKind {
	switch st.State {
	case app.StateFailed:
		return trayIconError
	case app.StateStopped:
		if st.ConfigProblem != nil { // held stopped: something is wrong
			return trayIconError
		}
	case app.StateRunning, app.StateStarting:
		if !st.HasTunnel {
			return trayIconDirect
		}
		if s := st.Tunnel.State; s == tunnel.StateWaiting || s == tunnel.StateAuthFailed {
			return trayIconError
		}
		return trayIconTunnel
	}
	return trayIconOff
}

// configProblemShort names a config file that cannot be used in a few
// words, for the tray's status line: "config.json line 3 (mode) is wrong".
func configProblemShort(err error) string {
	var fe *config.FileError
	if !errors.As(err, &fe) {
		return shortError(err, 70)
	}
	s := filepath.Base(fe.Path)
	if fe.Line > 0 {
		s += fmt.Sprintf(" line %d", fe.Line)
	}
	if fe.Field != "" {
		s += " (" + fe.Field + ")"
	}
	return s + " is wrong"
}

// startProblem says why the proxy did not start, briefly: the common case
// of a taken port by its number.
func startProblem(err error, listen string) string {
	if errors.Is(err, core.ErrPortInUse) || errors.Is(err, syscall.EADDRINUSE) {
		if _, port, perr := net.SplitHostPort(listen); perr == nil && port != "" {
			return "port " + port + " in use"
		}
		return "the address is in use"
	}
	if err == nil {
		return "unknown"
	}
	return shortError(err, 70)
}

// shortError is err's first line cut to at most max characters, for a
// menu label; the log and the details keep the whole text.
func shortError(err error, max int) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// trayRate is a speed in decimal units, as the tray's status line shows
// it ("1.2 MB/s", "40 kB/s"): two significant digits where the
// inspector's formatRate keeps three, so the one-line status stays short
// and does not flicker in its last digit every second.
func trayRate(bytesPerSec float64) string {
	if bytesPerSec < 0.5 {
		return "0 B/s"
	}
	units := []string{"B/s", "kB/s", "MB/s", "GB/s", "TB/s"}
	v, i := bytesPerSec, 0
	for v >= 999.5 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i == 0 || v >= 9.95 {
		return fmt.Sprintf("%.0f %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// terminalEnvText is what Copy terminal env puts on the clipboard: the
// POSIX shell line, or PowerShell's on Windows.
func terminalEnvText(addr string, bypass []string) string {
	if runtime.GOOS == "windows" {
		return sysproxy.TerminalEnvPowerShell(addr, bypass)
	}
	return sysproxy.TerminalEnv(addr, bypass)
}
