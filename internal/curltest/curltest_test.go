package curltest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hello" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	defer srv.Close()
	// A proxy variable of the test's own environment must not reach curl.
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	if out, err := Run(t, srv.URL+"/hello"); err != nil || out != "hello" {
		t.Errorf("Run: %q, %v; want \"hello\"", out, err)
	}
	if out, err := Run(t, srv.URL+"/missing"); err == nil {
		t.Errorf("Run of a 404: %q, want an error (--fail)", out)
	}
}
