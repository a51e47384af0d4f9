package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"porthole/app/logring"
)

// Options configure a Server.
type Options struct {
	Backend Backend
	// Logs feeds /logs; nil: the stream stays silent.
	Logs *logring.Ring
	// LogLevel is the app's log level, which /configs reads and PATCH
	// log-level changes (for the running app only, as mihomo does); nil:
	// fixed at info.
	LogLevel *slog.LevelVar
	// Secret is required from every caller (Bearer, or ?token= on a
	// WebSocket upgrade); "" asks for none, which the app never does.
	Secret string
	// UIDir is a folder holding a built dashboard, served at /ui/; "":
	// none.
	UIDir   string
	Version string // Porthole's; /version says "porthole-" + Version
	Log     *slog.Logger
}

// Server is the control API as an http.Handler, and optionally its own
// listener (Listen).
//
// Concurrency: ServeHTTP is safe from any goroutine. Close ends every
// stream (WebSocket or streaming HTTP), closes the listener if Listen
// opened one, and returns when every request it was serving has ended;
// later requests get 503. Close is idempotent.
type Server struct {
	opts   Options
	secret [sha256.Size]byte
	router http.Handler
	mem    *memSampler
	hist   *delays
	conns  *connCache

	ctx    context.Context // cancelled by Close: streams end
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	reqs   sync.WaitGroup // requests in ServeHTTP, hijacked ones included
	srv    *http.Server
	ln     net.Listener
	served chan struct{} // closed when srv.Serve has returned
}

// New returns a Server over opts.Backend.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, mem: newMemSampler(), hist: newDelays(), conns: newConnCache()}
	s.secret = sha256.Sum256([]byte(opts.Secret))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.router = s.routes()
	return s
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(cors) // before auth: a preflight carries no secret
	r.Group(func(r chi.Router) {
		r.Use(s.auth)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"hello": "porthole"})
		})
		r.Get("/version", s.version)
		r.Get("/logs", s.logs)
		r.Get("/traffic", s.traffic)
		r.Get("/memory", s.memory)
		r.Route("/configs", func(r chi.Router) {
			r.Get("/", s.getConfigs)
			r.Patch("/", s.patchConfigs)
		})
		r.Route("/proxies", func(r chi.Router) {
			r.Get("/", s.getProxies)
			r.Get("/{name}", s.getProxy)
			r.Put("/{name}", s.putProxy)
			r.Get("/{name}/delay", s.proxyDelay)
		})
		r.Route("/group", func(r chi.Router) {
			r.Get("/", s.getGroups)
			r.Get("/{name}", s.getGroup)
			r.Get("/{name}/delay", s.groupDelay)
		})
		r.Get("/providers/proxies", emptyProviders)
		r.Get("/providers/rules", emptyProviders)
		r.Get("/rules", s.getRules)
		r.Route("/connections", func(r chi.Router) {
			r.Get("/", s.getConnections)
			r.Delete("/", s.closeAll)
			r.Delete("/{id}", s.closeOne)
		})
		r.Get("/porthole/connections/closed", s.closedConnections)
		r.Get("/porthole/events", s.events)
	})
	if s.opts.UIDir != "" {
		files := http.StripPrefix("/ui", http.FileServer(http.Dir(s.opts.UIDir)))
		r.Get("/ui", http.RedirectHandler("/ui/", http.StatusTemporaryRedirect).ServeHTTP)
		r.Get("/ui/*", files.ServeHTTP)
	}
	return r
}

// ServeHTTP serves one request; after Close it answers 503.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "Porthole is stopping")
		return
	}
	s.reqs.Add(1)
	s.mu.Unlock()
	defer s.reqs.Done()
	// Streams end when the client goes or the server closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	s.router.ServeHTTP(w, r.WithContext(ctx))
}

// ErrPortInUse wraps a Listen failure because the address is taken.
var ErrPortInUse = errors.New("address already in use")

// Listen serves the API on addr until Close. A taken port is an error
// wrapping ErrPortInUse that names the address.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if isAddrInUse(err) {
			return fmt.Errorf("control API: listen on %s: %w (is another Porthole or Clash running?)", addr, ErrPortInUse)
		}
		return fmt.Errorf("control API: listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.closed || s.srv != nil {
		s.mu.Unlock()
		_ = ln.Close() // never served: nothing to report
		return errors.New("control API: already listening or closed")
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelDebug),
	}
	s.served = make(chan struct{})
	srv, served := s.srv, s.served
	s.mu.Unlock()
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Log.Error("control API stopped serving", "err", err)
		}
	}()
	s.opts.Log.Info("control API listening", "addr", ln.Addr().String())
	return nil
}

// Addr is where Listen listens; nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close ends the streams and the listener, and waits for every request.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.reqs.Wait()
		return nil
	}
	s.closed = true
	srv, served := s.srv, s.served
	s.mu.Unlock()
	s.cancel()
	var err error
	if srv != nil {
		// Close, not Shutdown: the streams are ending anyway, and
		// hijacked WebSockets are waited for below.
		err = srv.Close()
		<-served
	}
	s.reqs.Wait()
	return err
}

// auth lets a request through with the secret: "Authorization: Bearer
// SECRET", or "?token=SECRET" on a WebSocket upgrade (a browser cannot set
// headers there). The comparison takes the same time whatever the guess.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Secret == "" || s.authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		writeError(w, http.StatusUnauthorized, "Unauthorized")
	})
}

func (s *Server) authorized(r *http.Request) bool {
	if websocket.IsWebSocketUpgrade(r) {
		if token := r.URL.Query().Get("token"); token != "" {
			return s.secretIs(token)
		}
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && scheme == "Bearer" && s.secretIs(token)
}

// secretIs compares digests, so neither the content nor the length of
// the secret shows in the time taken.
func (s *Server) secretIs(guess string) bool {
	g := sha256.Sum256([]byte(guess))
	return subtle.ConstantTimeCompare(g[:], s.secret[:]) == 1
}

// cors answers preflights (before auth: they carry no secret) and marks
// every answer as readable from any origin: the dashboards are web pages
// on other origins (the hosted metacubexd), and the secret is what
// guards the API. Access-Control-Allow-Private-Network lets a public page
// reach this loopback address (Chrome's Private Network Access).
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", "*")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
			r.Header.Get("Access-Control-Request-Method") != ""
		if !preflight {
			next.ServeHTTP(w, r)
			return
		}
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Values("Access-Control-Request-Headers")))
		if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
			h.Add("Vary", "Access-Control-Request-Private-Network")
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		h.Set("Access-Control-Max-Age", "300")
		w.WriteHeader(http.StatusOK)
	})
}

// allowHeaders is Authorization and Content-Type, and whatever else the
// preflight asked for.
func allowHeaders(asked []string) string {
	out := []string{"Authorization", "Content-Type"}
	seen := map[string]bool{"authorization": true, "content-type": true}
	for _, line := range asked {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.TrimSpace(name)
			if name == "" || seen[strings.ToLower(name)] {
				continue
			}
			seen[strings.ToLower(name)] = true
			out = append(out, name)
		}
	}
	return strings.Join(out, ", ")
}

// httpError is mihomo's error body.
type httpError struct {
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, httpError{Message: msg})
}

// errBadRequest is mihomo's message for a body or query it cannot read.
const errBadRequest = "Body invalid"

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded: this is a bug, not the client's.
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // a client gone: nothing to tell it
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Meta    bool   `json:"meta"`
		Version string `json:"version"`
	}{true, "porthole-" + s.opts.Version})
}
