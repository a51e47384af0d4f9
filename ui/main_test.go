package ui

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"porthole/app"
	"porthole/app/config"
	"porthole/app/logring"
	"porthole/app/sysproxy"
	"porthole/internal/childproc"
	"porthole/internal/pprofserver"
)

// uiChildEnv makes the test binary run the real GUI (Run with a real
// controller) instead of the tests: one Fyne app per process, and the GL
// driver, the tray and Xvfb only ever in a child process. The parent tests
// drive that child from outside (D-Bus, X screenshots, signals).
const uiChildEnv = "PORTHOLE_UI_CHILD"

func TestMain(m *testing.M) {
	childproc.AsChild(uiChildEnv, runUIChild)
	goleak.VerifyTestMain(m,
		// Fyne's GL driver starts its call queue's goroutine when the
		// package is initialised; it lives as long as the process.
		goleak.IgnoreAnyFunction("fyne.io/fyne/v2/internal/async.(*UnboundedChan[...]).processing"),
	)
}

// uiChildExitsEnv, if set, is a JSON list of exits the child runs tunnel
// mode over (manual policy).
const uiChildExitsEnv = "PORTHOLE_UI_EXITS"

// runUIChild is the child's main: a controller on a free loopback port
// with the settings in $PORTHOLE_UI_CONFIG, no system proxy backend (the
// tests must not change the machine's proxy settings), and Run.
func runUIChild() int {
	logs := logring.New(logring.Options{Level: slog.LevelInfo})
	log := slog.New(logring.Tee(logs, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	path := os.Getenv("PORTHOLE_UI_CONFIG")
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	if exits := os.Getenv(uiChildExitsEnv); exits != "" {
		// Tunnel mode over these exits, picked by hand (tray_exits tests).
		if err := json.Unmarshal([]byte(exits), &cfg.Exits); err != nil {
			fmt.Fprintln(os.Stderr, "ui child:", uiChildExitsEnv, err)
			return 2
		}
		cfg.Mode, cfg.ExitPolicy, cfg.Bypass = "tunnel", "manual", []string{}
	}
	if err := config.Save(path, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ui child:", err)
		return 2
	}
	stopPprof, err := pprofserver.Start(log) // PORTHOLE_PPROF, for profiling the GUI by hand
	if err != nil {
		fmt.Fprintln(os.Stderr, "ui child:", err)
		return 2
	}
	defer stopPprof()
	ctl := app.NewController(cfg, nil, log)
	if os.Getenv(uiChildHeadlessEnv) == "1" {
		return runCoreOnly(ctl, log)
	}
	show, windows := childCommands(log)
	err = Run(ctl, Options{
		ConfigPath:         path,
		Log:                log,
		Version:            "test",
		SystemProxyProblem: fmt.Errorf("test child: %w", sysproxy.ErrUnsupported),
		ShowRequests:       show,
		Logs:               logs,
		testWindows:        windows,
	})
	if err != nil {
		log.Error("ui child", "err", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, runReturnedNil)
	return 0
}

// childCommands reads the parent test's commands from stdin, one per
// line: "show" (what a second launch asks for), "hide" (the connections
// window's close button), "settings" (Settings…), "close-settings" (its close button), "logs"
// (Logs…), "apps" (the connections window's Apps tab).
func childCommands(log *slog.Logger) (show <-chan struct{}, windows <-chan testWindowRequest) {
	s, w := make(chan struct{}, 1), make(chan testWindowRequest, 4)
	go func() { // lives as long as the child process
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			switch cmd := strings.TrimSpace(sc.Text()); cmd {
			case "show":
				s <- struct{}{}
			case "hide":
				w <- testHideConnections
			case "settings":
				w <- testShowSettings
			case "logs":
				w <- testShowLogs
			case "close-settings":
				w <- testCloseSettings
			case "apps":
				w <- testShowApps
			default:
				log.Error("ui child: unknown command", "cmd", cmd)
			}
		}
	}()
	return s, w
}

// uiChildHeadlessEnv makes the child run the same controller without any
// GUI, until SIGTERM: the baseline TestGUICPU subtracts.
const uiChildHeadlessEnv = "PORTHOLE_UI_CHILD_HEADLESS"

func runCoreOnly(ctl *app.Controller, log *slog.Logger) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(term)
	if err := ctl.Start(); err != nil {
		log.Error("ui child", "err", err)
		return 1
	}
	<-term
	if err := ctl.Close(); err != nil {
		log.Error("ui child", "err", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, runReturnedNil)
	return 0
}
