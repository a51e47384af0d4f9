package fetch

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	}))
	defer srv.Close()
	if status, body := Get(t, srv.Client(), srv.URL+"/x"); status != http.StatusTeapot || body != "body of /x" {
		t.Errorf("Get: %d %q", status, body)
	}
}

// TestVia: the request goes to the proxy, in the absolute form.
func TestVia(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err.Error()
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			done <- err.Error()
			return
		}
		done <- req.RequestURI
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nproxy")
	}()
	if body := Via(t, ln.Addr().String(), "http://origin.example/path"); body != "proxy" {
		t.Errorf("Via: %q", body)
	}
	if uri := <-done; uri != "http://origin.example/path" {
		t.Errorf("the proxy was asked for %q", uri)
	}
}
