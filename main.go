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
	"path/filepath"
	"runtime"
	"syscall"

	"porthole/app"
	"porthole/app/config"
	"porthole/app/instance"
	"porthole/app/logring"
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
		if opts.ConfigProblem != nil {
			refuseBrokenConfig(opts.ConfigProblem)
			return 2
		}
		fmt.Print(terminalEnv(opts.Config))
		return 0
	}
	// The log ring (the Logs window, the API's /logs) sits beside stderr
	// and shares its level, which the API may change while running.
	logLevel := new(slog.LevelVar)
	logLevel.Set(level)
	logs := logring.New(logring.Options{Level: logLevel})
	log := slog.New(logring.Tee(logs, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})))
	gui := false
	if !opts.Headless && !opts.RestoreSystemProxy {
		why := noDisplay()
		gui = why == ""
		if !gui {
			log.Info(why + ", so no tray or window can show: running headless (Ctrl-C stops)")
		}
	}
	// Fail closed: the defaults may send traffic another way than the
	// file says (direct instead of tunnel). Only the GUI can ask the user.
	if opts.ConfigProblem != nil && !gui && !opts.RestoreSystemProxy {
		refuseBrokenConfig(opts.ConfigProblem)
		return 2
	}
	// A second desktop app for the same config only shows the first one's
	// connections window, and touches nothing else.
	var showRequests <-chan struct{}
	quitting := func() {}
	if gui {
		inst, err := acquireInstance(opts.ConfigPath, log)
		if errors.Is(err, instance.ErrRunning) {
			log.Info("Porthole is already running: its connections window was brought to the front")
			return 0
		}
		if inst != nil {
			quitting = func() {
				if err := inst.Close(); err != nil {
					log.Debug("single instance: closing", "err", err)
				}
			}
			defer quitting() // Close is idempotent
			showRequests = inst.Show()
		}
	}
	// After the instance check: a second launch must reach the first
	// rather than fail on the profiling port.
	stopPprof, err := pprofserver.Start(log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		return 2
	}
	defer stopPprof()
	// Before the proxy starts: a system proxy a crashed run left pointing
	// at a port nobody listens on leaves the user without internet. (One
	// a running Porthole set is locked and left alone.)
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
		log.Warn("the config file cannot be used; the proxy stays stopped until you choose Start with defaults", "err", opts.ConfigProblem)
	}
	if opts.ConfigWarning != nil {
		log.Warn("the config file holds settings this Porthole does not know; they are ignored", "err", opts.ConfigWarning)
	}
	if err := app.CheckSettings(opts.Config, log); err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		return 2
	}
	if err := app.PrepareAPISecret(&opts.Config, opts.ConfigPath, opts.ConfigProblem == nil); err != nil {
		log.Warn("control API secret", "err", err)
	}
	apiOpts := app.APIOptions{ConfigPath: opts.ConfigPath, Logs: logs, LogLevel: logLevel, Version: version}
	if gui {
		return runGUI(opts, sys, sysProblem, showRequests, quitting, log, apiOpts)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := opts.Config
	cfg.SystemProxy = opts.SystemProxy
	ctl := app.NewController(cfg, sys, log)
	if err := ctl.StartAPI(apiOpts); err != nil {
		log.Warn("the control API did not start; the proxy runs anyway", "err", err)
	}
	if err := app.RunHeadless(ctx, ctl, log, stop); err != nil {
		log.Error("porthole failed", "err", err)
		return 1
	}
	return 0
}

// refuseBrokenConfig tells why porthole does not start (the error names
// the file, the field and its line) and what to do.
func refuseBrokenConfig(problem error) {
	fmt.Fprintln(os.Stderr, "porthole:", problem)
	fmt.Fprintln(os.Stderr, "porthole: not starting on the defaults in its place, which may send traffic another way than the file says; fix the file, or move it away to start on the defaults")
}

// runGUI runs the tray (or the main window) until the user quits.
func runGUI(opts app.Options, sys *sysproxy.Manager, sysProblem error, show <-chan struct{}, quitting func(), log *slog.Logger, apiOpts app.APIOptions) int {
	cfg := opts.Config
	cfg.SystemProxy = opts.SystemProxy
	ctl := app.NewController(cfg, sys, log)
	if err := ctl.StartAPI(apiOpts); err != nil {
		log.Warn("the control API did not start; the proxy runs anyway", "err", err)
	}
	err := ui.Run(ctl, ui.Options{
		ConfigPath:         opts.ConfigPath,
		ConfigProblem:      opts.ConfigProblem,
		ConfigWarning:      opts.ConfigWarning,
		Version:            version,
		Log:                log,
		SystemProxyProblem: sysProblem,
		ShowRequests:       show,
		Quitting:           quitting,
		Logs:               apiOpts.Logs,
	})
	if err != nil {
		log.Error("porthole failed", "err", err)
		return 1
	}
	return 0
}

// acquireInstance makes this the desktop app for the config file, or
// returns instance.ErrRunning after asking the running one to show itself.
// Where single instance cannot work, the app runs anyway (nil, nil).
func acquireInstance(configPath string, log *slog.Logger) (*instance.Instance, error) {
	// One file under any spelling: absolute, through symlinks if it exists.
	key, err := filepath.Abs(configPath)
	if err != nil {
		key = configPath
	}
	if real, err := filepath.EvalSymlinks(key); err == nil {
		key = real
	}
	inst, err := instance.Acquire(key, log)
	if err != nil && !errors.Is(err, instance.ErrRunning) {
		log.Warn("cannot tell whether Porthole is already running; starting anyway", "err", err)
		return nil, nil
	}
	return inst, err
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
