package ui

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/app"
	"porthole/app/config"
	"porthole/internal/connecttest"
	"porthole/internal/fetch"
	"porthole/internal/filetest"
	"porthole/internal/freeport"
)

// heldConn is an HTTP CONNECT tunnel through the proxy.
type heldConn struct {
	net.Conn
	r *bufio.Reader
}

// connectVia opens a CONNECT tunnel to target through the proxy at proxy.
func connectVia(t *testing.T, proxy, target string) heldConn {
	t.Helper()
	c, br, resp, err := connecttest.Dial(proxy, target)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		t.Fatalf("CONNECT %s through %s: %s", target, proxy, resp.Status)
	}
	// What the test then does over it is bounded too.
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return heldConn{c, br}
}

// get sends one request over the tunnel and returns the body.
func (h heldConn) get(t *testing.T, target string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Write(h); err != nil {
		t.Fatalf("writing over the held tunnel: %v", err)
	}
	resp, err := http.ReadResponse(h.r, req)
	if err != nil {
		t.Fatalf("reading over the held tunnel: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestSettingsApplySavesAndRestartsOnlyForListen(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := settingsEnv(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello through porthole")
	}))
	defer origin.Close()
	ctl := app.NewController(loopbackConfig(), nil, testLogger(t))
	defer func() { _ = ctl.Close() }()
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	first := ctl.Status().Addr
	s, done := openSettings(t, ctl, path)

	// A setting the engine does not depend on: saved, no restart, so a
	// tunnel opened before Apply still carries a request after it.
	held := connectVia(t, first, origin.Listener.Addr().String())
	defer func() { _ = held.Close() }()
	retype(s.form.history, "500")
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	if body := held.get(t, origin.URL); body != "hello through porthole" {
		t.Errorf("through the tunnel opened before Apply: %q", body)
	}
	filetest.Mode(t, path, 0o600)
	want, problems := s.form.values().config()
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want.API = loopbackConfig().API // not in the form: kept as it was
	if want.API.Listen == "" {
		t.Fatal("the control API's settings were dropped")
	}
	got, err := config.Load(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load read back %+v, %v; want %+v", got, err, want)
	}
	if !reflect.DeepEqual(ctl.Config(), want) {
		t.Errorf("controller config %+v, want %+v", ctl.Config(), want)
	}
	if a := ctl.Status().Addr; a != first {
		t.Errorf("history changed and the proxy moved from %s to %s; it should not restart", first, a)
	}
	if !strings.Contains(s.status.Text, "next launch") || !strings.Contains(s.status.Text, first) {
		t.Errorf("status %q should say the history applies at the next launch and where the proxy listens", s.status.Text)
	}

	// The listen port: saved and the proxy moves there, carrying traffic.
	_, port, _ := net.SplitHostPort(freeport.Loopback(t))
	retype(s.form.listenPort, port)
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	moved := ctl.Status()
	if moved.State != app.StateRunning || moved.Addr != "127.0.0.1:"+port {
		t.Fatalf("after Apply of port %s: status %+v", port, moved)
	}
	if body := fetch.Via(t, moved.Addr, origin.URL); body != "hello through porthole" {
		t.Errorf("through the moved proxy: %q", body)
	}
	if c, err := net.Dial("tcp", first); err == nil {
		_ = c.Close()
		t.Errorf("the old address %s still accepts connections", first)
	}
	if got, err := config.Load(path); err != nil || got.Listen != "127.0.0.1:"+port {
		t.Errorf("file after the move: listen %q, %v", got.Listen, err)
	}
}
