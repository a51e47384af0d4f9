// Package fetch makes the HTTP requests tests check a proxy or a server
// with: one GET, its status and its whole body, the test failing when the
// request does not complete. Only tests import it.
package fetch

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Timeout bounds Via's requests.
const Timeout = 10 * time.Second

// Get GETs target with c and returns the status and the whole body.
func Get(t testing.TB, c *http.Client, target string) (status int, body string) {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", target, err)
	}
	return resp.StatusCode, string(b)
}

// Via GETs target through the HTTP proxy at proxy (host:port) on a
// connection of its own, and returns the body.
func Via(t testing.TB, proxy, target string) string {
	t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})}
	defer tr.CloseIdleConnections()
	_, body := Get(t, &http.Client{Transport: tr, Timeout: Timeout}, target)
	return body
}
