// Porthole: a tray proxy. This file only wires the command line to the app;
// see app/ for everything else.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"porthole/app"
	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/internal/pprofserver"
	"porthole/ui"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	opts, err := app.ParseArgs(args, os.Stderr)
	if errors.Is(err, app.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		return 2
	}
	if opts.Version {
		fmt.Println("porthole", version)
		return 0
	}
	level, err := config.ParseLogLevel(opts.Config.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		return 2
	}
	if opts.PrintEnv {
		fmt.Print(terminalEnv(opts.Config))
		return 0
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	stopPprof, err := pprofserver.Start(log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		return 2
	}
	defer stopPprof()
	// Before anything else: a system proxy a crashed run left pointing at
	// a port nobody listens on leaves the user without internet.
	sys, sysProblem := app.NewSystemProxy(opts.ConfigPath, log)
	if _, err := sys.Repair(); err != nil {
		log.Error("could not put back the system proxy a previous run left set", "err", err)
		if opts.RestoreSystemProxy {
			return 1
		}
	}
	if opts.RestoreSystemProxy {
		return 0 // Repair logged what it put back, if anything
	}
	if opts.ConfigProblem != nil {
		log.Warn("config file not used", "err", opts.ConfigProblem)
	}
	if err := app.CheckSettings(opts.Config, log); err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		return 2
	}
	if !opts.Headless {
		why := noDisplay()
		if why == "" {
			return runGUI(opts, sys, sysProblem, log)
		}
		log.Info(why + ", so no tray or window can show: running headless (Ctrl-C stops)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := opts.Config
	cfg.SystemProxy = opts.SystemProxy
	ctl := app.NewController(cfg, sys, log)
	if err := app.RunHeadless(ctx, ctl, log, stop); err != nil {
		log.Error("porthole failed", "err", err)
		return 1
	}
	return 0
}

// runGUI runs the tray (or the main window) until the user quits.
func runGUI(opts app.Options, sys *sysproxy.Manager, sysProblem error, log *slog.Logger) int {
	cfg := opts.Config
	cfg.SystemProxy = opts.SystemProxy
	ctl := app.NewController(cfg, sys, log)
	err := ui.Run(ctl, ui.Options{
		ConfigPath:         opts.ConfigPath,
		ConfigProblem:      opts.ConfigProblem,
		Version:            version,
		Log:                log,
		SystemProxyProblem: sysProblem,
	})
	if err != nil {
		log.Error("porthole failed", "err", err)
		return 1
	}
	return 0
}

// noDisplay says why no window can open, or "" when one can. Windows and
// macOS always have a display; elsewhere X11 or Wayland must be named.
func noDisplay() string {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return ""
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return "no display ($DISPLAY and $WAYLAND_DISPLAY are empty)"
	}
	return ""
}

// terminalEnv is what --print-env prints: the shell form, or PowerShell's
// on Windows.
func terminalEnv(cfg config.Config) string {
	if runtime.GOOS == "windows" {
		return sysproxy.TerminalEnvPowerShell(cfg.Listen, cfg.Bypass) + "\n"
	}
	return sysproxy.TerminalEnv(cfg.Listen, cfg.Bypass) + "\n"
}
