package ui

import (
	"fmt"
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"porthole/app"
	"porthole/app/config"
	"porthole/app/sysproxy"
)

// uiChildEnv makes the test binary run the real GUI (Run with a real
// controller) instead of the tests: one Fyne app per process, and the GL
// driver, the tray and Xvfb only ever in a child process. The parent tests
// drive that child from outside (D-Bus, X screenshots, signals).
const uiChildEnv = "PORTHOLE_UI_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(uiChildEnv) == "1" {
		os.Exit(runUIChild())
	}
	goleak.VerifyTestMain(m,
		// Fyne's GL driver starts its call queue's goroutine when the
		// package is initialised; it lives as long as the process.
		goleak.IgnoreAnyFunction("fyne.io/fyne/v2/internal/async.(*UnboundedChan[...]).processing"),
	)
}

// runUIChild is the child's main: a controller on a free loopback port
// with the settings in $PORTHOLE_UI_CONFIG, no system proxy backend (the
// tests must not change the machine's proxy settings), and Run.
func runUIChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	path := os.Getenv("PORTHOLE_UI_CONFIG")
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	if err := config.Save(path, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ui child:", err)
		return 2
	}
	ctl := app.NewController(cfg, nil, log)
	err := Run(ctl, Options{
		ConfigPath:         path,
		Log:                log,
		Version:            "test",
		SystemProxyProblem: fmt.Errorf("test child: %w", sysproxy.ErrUnsupported),
	})
	if err != nil {
		log.Error("ui child", "err", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, runReturnedNil)
	return 0
}
