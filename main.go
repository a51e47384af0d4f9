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
	"syscall"

	"porthole/app"
	"porthole/app/config"
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if opts.ConfigProblem != nil {
		log.Warn("config file not used", "err", opts.ConfigProblem)
	}
	if !opts.Headless {
		log.Info("the tray GUI is not part of this version yet; running headless (Ctrl-C stops)")
	}
	eng, err := app.NewEngine(opts.Config, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.RunHeadless(ctx, eng, log, stop); err != nil {
		log.Error("porthole failed", "err", err)
		return 1
	}
	return 0
}
