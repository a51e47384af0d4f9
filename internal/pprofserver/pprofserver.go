// Package pprofserver serves Go's profiles (net/http/pprof) on a loopback
// address named by the PORTHOLE_PPROF environment variable, so the
// benchmark can take CPU and allocation profiles of the real binaries.
// Unset, nothing listens. Only loopback addresses are accepted: profiles
// show memory contents such as hostnames and must never leave the machine.
package pprofserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"
)

// EnvVar names the address to listen on, for example 127.0.0.1:6060.
const EnvVar = "PORTHOLE_PPROF"

// ErrNotLoopback is an address that is not on loopback.
var ErrNotLoopback = errors.New("pprof address must be a loopback IP (127.0.0.1 or [::1])")

// Start listens on the address in PORTHOLE_PPROF, if any, and serves the
// profiles until the returned stop is called. With the variable unset it
// returns a stop that does nothing.
func Start(log *slog.Logger) (stop func(), err error) {
	addr := os.Getenv(EnvVar)
	if addr == "" {
		return func() {}, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvVar, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s=%q: %w", EnvVar, addr, ErrNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	handlers := &gate{}
	srv := &http.Server{
		Handler:           loopbackOnly(mux, handlers),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server ended", "err", err)
		}
	}()
	log.Info("serving profiles", "addr", ln.Addr().String(), "env", EnvVar)
	return func() {
		// Close ends the connections, which cancels a running profile's
		// request; then wait for the handlers too.
		if err := srv.Close(); err != nil {
			log.Debug("closing the pprof server", "err", err)
		}
		<-done
		handlers.closeAndWait()
	}, nil
}

// gate counts running handlers so stop can wait for them; once closed it
// lets none start (a request read just before the close), so the count
// never rises while stop waits.
type gate struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *gate) leave() { g.wg.Done() }

func (g *gate) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// loopbackOnly serves requests whose Host is a loopback IP literal: a web
// page the user visits cannot read the profiles by pointing a name of its
// own at 127.0.0.1 (DNS rebinding). Handlers pass through g.
func loopbackOnly(next http.Handler, g *gate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.enter() {
			http.Error(w, "pprof server stopping", http.StatusServiceUnavailable)
			return
		}
		defer g.leave()
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if ip := net.ParseIP(strings.Trim(host, "[]")); ip == nil || !ip.IsLoopback() {
			http.Error(w, "pprof is served to loopback addresses only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
