package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"porthole/core/registry"
)

// stubBackend is a Backend over a bare registry, for what does not need
// a proxy: the server's own lifecycle and plumbing.
type stubBackend struct{ reg *registry.Registry }

func (b stubBackend) Registry() *registry.Registry { return b.reg }
func (stubBackend) Mode() string                   { return "direct" }
func (stubBackend) SetMode(string) error           { return errors.New("stub") }
func (stubBackend) Listen() string                 { return "127.0.0.1:8088" }
func (stubBackend) Exits() ([]Exit, string)        { return nil, "" }
func (stubBackend) SelectExit(string) error        { return ErrUnknownExit }
func (stubBackend) Rules() []Rule                  { return nil }
func (stubBackend) Delay(context.Context, string, string) (time.Duration, error) {
	return 0, errors.New("stub")
}

func newStub(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	reg := registry.New(registry.Options{})
	t.Cleanup(func() { _ = reg.Close() })
	opts.Backend = stubBackend{reg}
	s := New(opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return s, s.Addr().String()
}

// Close ends the WebSockets and streaming answers it serves and returns
// when their handlers have; later requests get 503.
func TestCloseEndsStreams(t *testing.T) {
	s, addr := newStub(t, Options{})
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/connections?interval=100", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/traffic")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ws.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Snapshots already sent may come first; then the close.
	for range 100 {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the WebSocket did not end at Close")
		}
		break
	}
	// The streaming answer ends too (its body reaches its end or an error).
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("/traffic ended with %v", err)
	}
	rec := &respRecorder{h: http.Header{}}
	s.ServeHTTP(rec, &http.Request{Method: "GET", URL: resp.Request.URL, Header: http.Header{}})
	if rec.status != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d", rec.status)
	}
}

type respRecorder struct {
	h      http.Header
	status int
}

func (r *respRecorder) Header() http.Header         { return r.h }
func (r *respRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *respRecorder) WriteHeader(s int)           { r.status = s }

func TestUIFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>board</h1>"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, addr := newStub(t, Options{UIDir: dir, Secret: "x"})
	defer s.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + addr + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Get("http://" + addr + "/ui/") // no secret: the page itself is public, as in mihomo
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "<h1>board</h1>" {
		t.Errorf("/ui/: %d %q", resp.StatusCode, b)
	}
}

func TestPortInUse(t *testing.T) {
	s, addr := newStub(t, Options{})
	defer s.Close()
	other := New(Options{Backend: s.opts.Backend})
	defer other.Close()
	if err := other.Listen(addr); !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Listen on a taken port: %v", err)
	}
}

func TestLevelsAndHeaders(t *testing.T) {
	for name, l := range clashLevels {
		if back := clashLevels[clashLevel(l)]; back != l && name != "warn" {
			t.Errorf("%s does not round-trip", name)
		}
	}
	if got := allowHeaders([]string{"Authorization, X-A", "x-a, Content-Type"}); got != "Authorization, Content-Type, X-A" {
		t.Errorf("allowHeaders = %q", got)
	}
}
