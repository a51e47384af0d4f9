package outbound

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"porthole/core/tunnel"
)

// loopbackExit serves porthole exit sessions on loopback (no streams are
// opened in these tests); its sessions are closed with the test.
func loopbackExit(t *testing.T) string {
	t.Helper()
	a, err := tunnel.NewAcceptor("tok")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sessions []*tunnel.Session
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := a.Accept(w, r)
		if err != nil {
			return
		}
		s := tunnel.NewSession(ws, false, tunnel.Config{})
		mu.Lock()
		sessions = append(sessions, s)
		mu.Unlock()
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, s := range sessions {
			_ = s.Close() // always nil
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/porthole"
}

// "Test now" of a porthole exit PINGs its session: with the keepalive an
// hour apart, the measure is the test's own, and it becomes the latency
// the status shows.
func TestGroupTestPortholePings(t *testing.T) {
	url := loopbackExit(t)
	g := startGroup(t, GroupConfig{Exits: []ExitConfig{{Name: "p", Kind: KindPorthole,
		Tunnel: tunnel.ClientConfig{URL: url, Token: "tok", Session: tunnel.Config{PingInterval: time.Hour}}}}})
	waitState(t, g, "p", ExitUp)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 { // concurrent tests share the session's PINGs
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, err := g.Test(ctx, "p"); err != nil || d <= 0 {
				t.Errorf("Test = %v, %v", d, err)
			}
		}()
	}
	wg.Wait()
	st := waitState(t, g, "p", ExitUp)
	if st.Latency <= 0 {
		t.Errorf("latency after the test: %v", st.Latency)
	}
}
