package ui

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"porthole/app"
	"porthole/app/autostart"
	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/core"
	"porthole/core/rules"
	"porthole/core/tunnel"
)

func TestStatusLineForEachState(t *testing.T) {
	cfg := config.Default()
	// The error a taken port gives, built as the net package builds it.
	inUse := fmt.Errorf("starting the proxy: %w", &net.OpError{Op: "listen", Net: "tcp",
		Err: os.NewSyscallError("bind", syscall.EADDRINUSE)})
	for _, tc := range []struct {
		name string
		in   controlsInput
		want string
		icon trayIconKind
	}{
		{"stopped", controlsInput{Status: app.Status{State: app.StateStopped}}, "Stopped", trayIconOff},
		{"starting", controlsInput{Status: app.Status{State: app.StateStarting}}, "Starting…", trayIconDirect},
		{"stopping", controlsInput{Status: app.Status{State: app.StateStopping}}, "Stopping…", trayIconOff},
		{"port in use", controlsInput{Status: app.Status{State: app.StateFailed, Err: inUse}},
			"Error: port 8088 in use", trayIconError},
		{"port in use (core)", controlsInput{Status: app.Status{State: app.StateFailed,
			Err: fmt.Errorf("listen on 127.0.0.1:8088: %w", core.ErrPortInUse)}},
			"Error: port 8088 in use", trayIconError},
		{"other failure", controlsInput{Status: app.Status{State: app.StateFailed,
			Err: errors.New("tunnel mode needs the exit's token\nsecond line")}},
			"Error: tunnel mode needs the exit's token", trayIconError},
		{"running", controlsInput{Status: app.Status{State: app.StateRunning}, Active: 12,
			DownRate: 1.2e6, UpRate: 40e3}, "Running · 12 connections · ↓ 1.2 MB/s ↑ 40 kB/s", trayIconDirect},
		{"one connection", controlsInput{Status: app.Status{State: app.StateRunning}, Active: 1},
			"Running · 1 connection · ↓ 0 B/s ↑ 0 B/s", trayIconDirect},
		{"tunnel up", controlsInput{Status: app.Status{State: app.StateRunning, HasTunnel: true,
			Tunnel: tunnel.Status{State: tunnel.StateConnected}}, Active: 3, DownRate: 999, UpRate: 12345},
			"Running (tunnel up) · 3 connections · ↓ 999 B/s ↑ 12 kB/s", trayIconTunnel},
		{"tunnel reconnecting", controlsInput{Status: app.Status{State: app.StateRunning, HasTunnel: true,
			Tunnel: tunnel.Status{State: tunnel.StateWaiting}}},
			"Running (tunnel reconnecting) · 0 connections · ↓ 0 B/s ↑ 0 B/s", trayIconError},
		{"quitting", controlsInput{Status: app.Status{State: app.StateRunning}, Quitting: true}, "Quitting…", trayIconDirect},
		{"held for the config", controlsInput{Status: app.Status{State: app.StateStopped, ConfigProblem: &config.FileError{
			Path: "/home/u/.config/porthole/config.json", Field: "mode", Line: 3, Column: 3, Err: config.ErrInvalid}}},
			"Not started: config.json line 3 (mode) is wrong", trayIconError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Config = cfg
			v := viewOf(tc.in)
			if v.Status != tc.want {
				t.Errorf("status line %q, want %q", v.Status, tc.want)
			}
			if v.Icon != tc.icon {
				t.Errorf("icon %v, want %v", v.Icon, tc.icon)
			}
		})
	}
}

func TestTrayRate(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0 B/s", 0.4: "0 B/s", 1: "1 B/s", 999: "999 B/s", 999.6: "1.0 kB/s", 1234: "1.2 kB/s",
		9949: "9.9 kB/s", 9951: "10 kB/s", 40e3: "40 kB/s", 1.25e6: "1.2 MB/s", 987e6: "987 MB/s", 3.4e9: "3.4 GB/s",
	} {
		if got := trayRate(in); got != want {
			t.Errorf("trayRate(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestControlsDisabledWithReasons(t *testing.T) {
	running := app.Status{State: app.StateRunning}
	cfg := config.Default()

	v := viewOf(controlsInput{Status: running, Config: cfg,
		SystemProxyProblem: fmt.Errorf("desktop none: %w", sysproxy.ErrUnsupported)})
	if !v.SystemProxyBlocked || !strings.Contains(v.SystemProxy, "not available") || v.SystemProxyOn {
		t.Errorf("unsupported system proxy: %q blocked=%v on=%v", v.SystemProxy, v.SystemProxyBlocked, v.SystemProxyOn)
	}
	// The controller finds out itself (a backend that found nothing to change).
	st := running
	st.SystemProxyErr = fmt.Errorf("setting the system proxy: %w", sysproxy.ErrUnsupported)
	if v := viewOf(controlsInput{Status: st, Config: cfg}); !v.SystemProxyBlocked {
		t.Errorf("Status.SystemProxyErr wrapping ErrUnsupported: %q not blocked", v.SystemProxy)
	}
	st.SystemProxyErr = errors.New("gsettings: no such schema")
	if v := viewOf(controlsInput{Status: st, Config: cfg}); v.SystemProxyBlocked || !strings.Contains(v.SystemProxy, "no such schema") {
		t.Errorf("a failed attempt can be retried and says why: %q blocked=%v", v.SystemProxy, v.SystemProxyBlocked)
	}
	stopped := app.Status{State: app.StateStopped}
	if v := viewOf(controlsInput{Status: stopped, Config: cfg, WantSystemProxy: true}); !v.SystemProxyOn || !strings.Contains(v.SystemProxy, "while running") {
		t.Errorf("wanted while stopped: %q on=%v", v.SystemProxy, v.SystemProxyOn)
	}

	if !v.TunnelBlocked || !strings.Contains(v.TunnelLabel, "exit server") {
		t.Errorf("no exit configured: tunnel %q blocked=%v", v.TunnelLabel, v.TunnelBlocked)
	}
	withExit := cfg
	withExit.Exit = "wss://exit.example/porthole"
	if v := viewOf(controlsInput{Status: running, Config: withExit}); v.TunnelBlocked || v.TunnelLabel != "Tunnel" {
		t.Errorf("exit configured: tunnel %q blocked=%v", v.TunnelLabel, v.TunnelBlocked)
	}
	// Rules mode without an exit: refused while its rules would tunnel
	// (here: none, so the default does), with the reason.
	if !v.RulesBlocked || !strings.Contains(v.RulesLabel, "exit server") || !strings.Contains(v.RulesLabel, "direct match") {
		t.Errorf("no exit, no rules: rules %q blocked=%v", v.RulesLabel, v.RulesBlocked)
	}
	endsDirect := cfg
	endsDirect.Rules = []rules.Rule{{Kind: "domain", Value: "ads.example", Action: "reject"}, {Kind: "match", Action: "direct"}}
	tunnels := cfg
	tunnels.Rules = []rules.Rule{{Kind: "domain", Value: "work.example", Action: "tunnel"}, {Kind: "match", Action: "direct"}}
	for _, tc := range []struct {
		name    string
		cfg     config.Config
		blocked bool
	}{{"ends direct", endsDirect, false}, {"a tunnel rule", tunnels, true}, {"an exit", withExit, false}} {
		if v := viewOf(controlsInput{Status: running, Config: tc.cfg}); v.RulesBlocked != tc.blocked || (v.RulesLabel == "Rules") == tc.blocked {
			t.Errorf("%s: rules %q blocked=%v, want blocked=%v", tc.name, v.RulesLabel, v.RulesBlocked, tc.blocked)
		}
	}

	v = viewOf(controlsInput{Status: running, Config: cfg, AtLogin: true,
		AtLoginErr: fmt.Errorf("/x/porthole.desktop: %w", autostart.ErrNotOurs)})
	if !v.AtLoginBlocked || !v.AtLoginOn || !strings.Contains(v.AtLogin, "did not write") {
		t.Errorf("someone else's autostart entry: %q blocked=%v on=%v", v.AtLogin, v.AtLoginBlocked, v.AtLoginOn)
	}

	for _, s := range []app.State{app.StateStarting, app.StateStopping} {
		if v := viewOf(controlsInput{Status: app.Status{State: s}, Config: cfg}); !v.StartStopBlocked {
			t.Errorf("%v: Start/Stop not blocked", s)
		}
	}
	v = viewOf(controlsInput{Status: running, Config: cfg, Quitting: true})
	if !v.StartStopBlocked || !v.SystemProxyBlocked || !v.AtLoginBlocked {
		t.Errorf("quitting: controls still enabled: %+v", v)
	}
}
