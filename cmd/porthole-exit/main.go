// porthole-exit is Porthole's exit server: it accepts tunnel sessions from
// Porthole clients over WebSocket (plain, for use behind a TLS reverse
// proxy, or wss with its own certificate) and connects their streams to
// the internet.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"porthole/core/exit"
	"porthole/core/tunnel"
	"porthole/internal/loglevel"
	"porthole/internal/pprofserver"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, stop))
}

// options is the command line.
type options struct {
	listen, path, tokenFile, cert, key, logLevel string
	allowPrivate, version                        bool
	maxStreams, maxSessions                      int
	budgetMiB                                    int
	dialTimeout                                  time.Duration
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("porthole-exit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9443", "address to listen on")
	fs.StringVar(&o.path, "path", "/porthole", "URL path of the tunnel endpoint")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the token clients must present (or set PORTHOLE_TOKEN)")
	fs.StringVar(&o.cert, "tls-cert", "", "PEM certificate chain: serve wss:// (with --tls-key)")
	fs.StringVar(&o.key, "tls-key", "", "PEM private key for --tls-cert")
	fs.BoolVar(&o.allowPrivate, "allow-private", false, "let clients reach loopback, private, link-local and this server's own addresses")
	fs.IntVar(&o.maxStreams, "max-streams", 4096, "streams one session may have open")
	fs.IntVar(&o.budgetMiB, "max-session-memory", 256, "MiB of receive buffers one session may hold")
	fs.IntVar(&o.maxSessions, "max-sessions", 1024, "concurrent sessions (clients)")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "timeout of one connection to a target, DNS included")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug (one line per stream), info (one per session), warn or error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: porthole-exit --token-file FILE [flags]\n\nPorthole's exit server.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	case (o.cert == "") != (o.key == ""):
		return o, errors.New("--tls-cert and --tls-key go together")
	case !strings.HasPrefix(o.path, "/"):
		return o, fmt.Errorf("--path %q must start with /", o.path)
	case o.maxStreams < 1, o.maxSessions < 1, o.budgetMiB < 1:
		return o, errors.New("--max-streams, --max-sessions and --max-session-memory must be at least 1")
	}
	return o, nil
}

// run serves until ctx ends; release is called then, so a second signal
// ends the process at once. Exit codes: 0 stopped, 1 failure, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, release func()) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "porthole-exit:", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "porthole-exit", version)
		return 0
	}
	level, err := loglevel.Parse(o.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "porthole-exit:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	stopPprof, err := pprofserver.Start(log)
	if err != nil {
		fmt.Fprintln(stderr, "porthole-exit:", err)
		return 2
	}
	defer stopPprof()
	token, err := readToken(o.tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "porthole-exit:", err)
		return 2
	}
	var tlsCfg *tls.Config
	if o.cert != "" {
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			fmt.Fprintln(stderr, "porthole-exit: loading the TLS certificate:", err)
			return 2
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := exit.New(exit.Config{
		Token:        token,
		AllowPrivate: o.allowPrivate,
		DialTimeout:  o.dialTimeout,
		Session:      tunnel.Config{MaxStreams: o.maxStreams, Budget: int64(o.budgetMiB) << 20},
		MaxSessions:  o.maxSessions,
		Logger:       log,
	})
	if err != nil {
		fmt.Fprintln(stderr, "porthole-exit:", err)
		return 2
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Error("cannot listen", "addr", o.listen, "err", err)
		_ = srv.Close() // always nil
		return 1
	}
	scheme := "ws"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "wss"
	} else if host, _, err := net.SplitHostPort(o.listen); err == nil && !isLoopback(host) {
		log.Warn("serving plain ws:// beyond loopback: the token and all traffic cross the network unencrypted; use --tls-cert/--tls-key or a TLS reverse proxy")
	}
	hs := &http.Server{
		Handler:           mux(o.path, srv),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,                                   // keep-alive health checks; tunnels are hijacked
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS handshake noise
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("porthole-exit listening", "url", fmt.Sprintf("%s://%s%s", scheme, ln.Addr(), o.path),
		"allow_private", o.allowPrivate, "version", version)
	select {
	case err = <-served:
		log.Error("stopped serving", "err", err)
		_ = srv.Close() // always nil
		return 1
	case <-ctx.Done():
	}
	release()
	log.Info("stopping", "sessions", srv.Sessions())
	// Hijacked WebSockets are not the http.Server's: close it (listener and
	// idle connections), then end the sessions.
	err = hs.Close()
	<-served
	_ = srv.Close() // always nil; waits for every session
	if err != nil {
		log.Error("closing the listener", "err", err)
		return 1
	}
	return 0
}

// mux serves the tunnel on path and a health check on /healthz for load
// balancers; everything else is 404.
func mux(path string, tunnel http.Handler) http.Handler {
	m := http.NewServeMux()
	m.Handle(path, tunnel)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n") // a health checker that left needs no answer
	})
	return m
}

// readToken takes PORTHOLE_TOKEN or the first line of file.
func readToken(file string) (string, error) {
	if t := strings.TrimSpace(os.Getenv("PORTHOLE_TOKEN")); t != "" {
		return t, nil
	}
	if file == "" {
		return "", errors.New("a token is required: --token-file FILE or PORTHOLE_TOKEN")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("--token-file: %s is empty", file)
	}
	return line, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
