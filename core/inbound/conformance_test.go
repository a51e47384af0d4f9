package inbound_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/registry"
)

// Conformance: real clients (net/http, golang.org/x/net/proxy, hand-written
// SOCKS4, curl) through a real engine on loopback to origins written here.

func TestHTTPForwardGET(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	c, _ := v.httpClient(t)
	resp, body, _, local := tracedGet(t, c, http.MethodGet, v.origin.URL+"/host", nil)
	if resp.StatusCode != http.StatusOK || string(body) != v.origin.Listener.Addr().String() {
		t.Fatalf("GET /host: %d %q, want 200 %q", resp.StatusCode, body, v.origin.Listener.Addr())
	}
	est := v.events.establishedOf(t, 1, byClient(local))[0]
	if est.Proto != registry.ProtoHTTP || est.Target != v.origin.Listener.Addr().String() || est.Route != registry.RouteDirect {
		t.Errorf("record: proto %s target %s route %s", est.Proto, est.Target, est.Route)
	}
}

// Several requests on one client connection, to several targets, and back.
func TestHTTPKeepAliveSeveralTargets(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	origins := []*httptest.Server{v.origin, newOrigin(t, "tcp4", originMux()), newOrigin(t, "tcp4", originMux())}
	c, _ := v.httpClient(t)
	order := []int{0, 1, 2, 0, 1, 1, 2}
	var first string
	for i, o := range order {
		resp, body, reused, local := tracedGet(t, c, http.MethodGet, origins[o].URL+"/host", nil)
		if resp.StatusCode != http.StatusOK || string(body) != origins[o].Listener.Addr().String() {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if i == 0 {
			first = local
		} else if !reused || local != first {
			t.Fatalf("request %d to origin %d: reused=%v on %s, want the connection %s again", i, o, reused, local, first)
		}
	}
	// One client connection; a new upstream record at each change of
	// target: 0,1,2,0,1,1,2 makes six.
	v.stop()
	v.events.closedOf(t, 6, byClient(first))
	ests := eventsOf(v.events.snapshot(), registry.KindEstablished, byClient(first))
	if len(ests) != 6 {
		t.Errorf("%d upstream records on the client connection, want 6", len(ests))
	}
}

func TestHTTPPostUpload(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	c, _ := v.httpClient(t)
	const size = 8 << 20
	body := bytes.Repeat(pattern, size/len(pattern))
	want := fmt.Sprintf("%x %d", sha256.Sum256(body), size)
	for _, chunked := range []bool{false, true} {
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // hides the length: Transfer-Encoding: chunked
		}
		req, err := http.NewRequest(http.MethodPost, v.origin.URL+"/sum", r)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST (chunked=%v): %v", chunked, err)
		}
		got, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(got) != want {
			t.Fatalf("POST (chunked=%v): %d %q %v, want %q", chunked, resp.StatusCode, got, err, want)
		}
	}
}

func TestHTTPChunkedResponse(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	origin := newOrigin(t, "tcp4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		h := sha256.New()
		for i := range 64 {
			chunk := pattern[i*10000 : (i+1)*10000]
			_, _ = w.Write(chunk)
			h.Write(chunk)
			_ = http.NewResponseController(w).Flush()
		}
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
	}))
	c, _ := v.httpClient(t)
	resp, err := c.Get(origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, pattern[:640000]) {
		t.Fatalf("body: %d bytes, not what the origin sent", len(body))
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("framing: length %d, transfer-encoding %v; want chunked", resp.ContentLength, resp.TransferEncoding)
	}
	if got, want := resp.Trailer.Get("X-Sum"), fmt.Sprintf("%x", sha256.Sum256(body)); got != want {
		t.Errorf("trailer X-Sum %q, want %q", got, want)
	}
}

// A trickling response reaches the client as it comes: the client reads the
// first chunk while the origin is still waiting to send the second.
func TestStreamingTrickle(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	chunk1, chunk2 := []byte("first chunk\n"), []byte("second chunk\n")
	var mu sync.Mutex
	releases := map[string]chan struct{}{}
	release := func(key string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if releases[key] == nil {
			releases[key] = make(chan struct{})
		}
		return releases[key]
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(chunk1)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release(r.URL.Query().Get("k")):
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(chunk2)
	})
	plain := newOrigin(t, "tcp4", h)
	tlsOrigin := httptest.NewTLSServer(h)
	t.Cleanup(tlsOrigin.Close)
	t.Cleanup(func() { // let handlers finish before the origins close
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range releases {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
	})
	hc, _ := v.httpClient(t)
	tr := tlsOrigin.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(v.proxyURL())
	t.Cleanup(tr.CloseIdleConnections)
	tc := &http.Client{Transport: tr, Timeout: waitTimeout}

	for _, tc := range []struct {
		name string
		c    *http.Client
		url  string
	}{
		{"forward", hc, plain.URL + "/?k=forward"},
		{"connect", tc, tlsOrigin.URL + "/?k=connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.c.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := make(chan error, 1)
			buf := make([]byte, len(chunk1))
			go func() {
				_, err := io.ReadFull(resp.Body, buf)
				got <- err
			}()
			if err := await(t, "the first chunk while the origin holds the second", got); err != nil {
				t.Fatalf("reading the first chunk: %v", err)
			}
			if !bytes.Equal(buf, chunk1) {
				t.Fatalf("first chunk %q", buf)
			}
			close(release(tc.name))
			rest, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(rest, chunk2) {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

// Responses without a body keep the framing right: the next request on the
// same connection works.
func TestHTTPBodylessResponses(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	mux := originMux()
	mux.HandleFunc("/resource", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", "12345")
		_, _ = w.Write(bytes.Repeat([]byte("x"), 12345))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	origin := newOrigin(t, "tcp4", mux)
	c, _ := v.httpClient(t)

	_, _, _, first := tracedGet(t, c, http.MethodGet, origin.URL+"/hello", nil)
	steps := []struct {
		method, path string
		hdr          http.Header
		code         int
		length       int64
	}{
		{http.MethodHead, "/resource", nil, 200, 12345},
		{http.MethodGet, "/empty", nil, 204, 0},
		{http.MethodGet, "/resource", http.Header{"If-None-Match": {`"v1"`}}, 304, 0},
		{http.MethodGet, "/resource", nil, 200, 12345},
	}
	for _, s := range steps {
		resp, body, reused, local := tracedGet(t, c, s.method, origin.URL+s.path, s.hdr)
		if resp.StatusCode != s.code {
			t.Fatalf("%s %s: status %d, want %d", s.method, s.path, resp.StatusCode, s.code)
		}
		if s.method == http.MethodHead {
			if resp.ContentLength != s.length || len(body) != 0 {
				t.Errorf("HEAD: Content-Length %d, body %d bytes; want %d and none", resp.ContentLength, len(body), s.length)
			}
		} else if int64(len(body)) != s.length {
			t.Errorf("%s %s: body %d bytes, want %d", s.method, s.path, len(body), s.length)
		}
		if !reused || local != first {
			t.Errorf("%s %s: not on the kept-alive client connection (reused=%v)", s.method, s.path, reused)
		}
		if s.code == 304 && resp.Header.Get("ETag") != `"v1"` {
			t.Errorf("304 lost its ETag: %v", resp.Header)
		}
	}
}

func TestHTTPExpectContinue(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	mux := originMux()
	mux.HandleFunc("/reject", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no thanks", http.StatusForbidden) // without reading the body
	})
	origin := newOrigin(t, "tcp4", mux)
	c, tr := v.httpClient(t)
	// Long enough that the body is only sent because 100 Continue came.
	tr.ExpectContinueTimeout = waitTimeout

	body := pattern[:256<<10]
	post := func(path string) (*http.Response, string, bool) {
		var got100 bool
		trace := &httptrace.ClientTrace{Got100Continue: func() { got100 = true }}
		req, err := http.NewRequest(http.MethodPost, origin.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		req.Header.Set("Expect", "100-continue")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return resp, string(b), got100
	}
	resp, got, got100 := post("/sum")
	if want := fmt.Sprintf("%x %d", sha256.Sum256(body), len(body)); resp.StatusCode != 200 || got != want {
		t.Fatalf("POST /sum: %d %q, want %q", resp.StatusCode, got, want)
	}
	if !got100 {
		t.Errorf("the client never saw 100 Continue")
	}
	resp, _, got100 = post("/reject")
	if resp.StatusCode != http.StatusForbidden || got100 {
		t.Errorf("POST /reject: %d, got100=%v; want 403 without 100", resp.StatusCode, got100)
	}
	getOK(t, c, origin.URL+"/hello", "hello")
}

// An Upgrade (101) turns the forwarded request into a raw relay both ways.
func TestHTTPUpgrade(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "porthole-echo" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "upgrade headers lost: "+fmt.Sprint(r.Header), http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: porthole-echo\r\n\r\nWELCOME\n")
		if brw.Flush() != nil {
			return
		}
		_, _ = io.Copy(conn, brw) // echo until the client is done
	})
	origin := newOrigin(t, "tcp4", mux)
	c, _ := v.httpClient(t)
	c.Timeout = 0 // a client timeout hides the 101 body's Write
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, origin.URL+"/upgrade", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "porthole-echo")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %q, want 101", resp.StatusCode, b)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body is %T, not writable", resp.Body)
	}
	defer rwc.Close()
	welcome := make([]byte, 8)
	if _, err := io.ReadFull(rwc, welcome); err != nil || string(welcome) != "WELCOME\n" {
		t.Fatalf("greeting %q, %v", welcome, err)
	}
	payload := pattern[:1<<20]
	wrote := make(chan error, 1)
	go func() {
		_, err := rwc.Write(payload)
		wrote <- err
	}()
	echo := make([]byte, len(payload))
	if _, err := io.ReadFull(rwc, echo); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := await(t, "the upgraded write", wrote); err != nil {
		t.Fatalf("writing over the upgraded connection: %v", err)
	}
	if !bytes.Equal(echo, payload) {
		t.Fatal("echo differs from what was sent")
	}
}

func TestCONNECTNetHTTP(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	origin := httptest.NewTLSServer(originMux())
	t.Cleanup(origin.Close)
	tr := origin.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(v.proxyURL())
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: waitTimeout}
	_, body, _, local := tracedGet(t, c, http.MethodGet, origin.URL+"/hello", nil)
	if string(body) != "hello" {
		t.Fatalf("body %q", body)
	}
	_, _, reused, _ := tracedGet(t, c, http.MethodGet, origin.URL+"/hello", nil)
	if !reused {
		t.Errorf("second request did not reuse the tunnel")
	}
	est := v.events.establishedOf(t, 1, byClient(local))[0]
	if est.Proto != registry.ProtoConnect || est.Target != origin.Listener.Addr().String() {
		t.Errorf("record: %s %s", est.Proto, est.Target)
	}
}

// A raw CONNECT with the first bytes in the same packet as the request.
func TestCONNECTRaw(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	origin := newTCPOrigin(t, "tcp4", echoHandler)
	c := v.connect(t, origin.addr, []byte("early "))
	if _, err := c.Write([]byte("bytes")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("early bytes"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "early bytes" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}
	rec := v.events.closedOf(t, 1, byClient(c.LocalAddr().String()))[0]
	if rec.Proto != registry.ProtoConnect || rec.Up != 11 || rec.Down != 11 || rec.Err != nil {
		t.Errorf("record: %s up %d down %d err %v; want connect 11 11 nil", rec.Proto, rec.Up, rec.Down, rec.Err)
	}
}

func TestSOCKS5(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	c := v.socksHTTPClient(t)
	port := v.origin.Listener.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name, host, network string
	}{
		{"ipv4", "127.0.0.1", "tcp4"},
		{"ipv6", "::1", "tcp6"},
		{"domain", "localhost", "tcp4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := port
			if tc.network == "tcp6" {
				if !hasIPv6() {
					t.Skip("no IPv6 loopback")
				}
				p = newOrigin(t, "tcp6", originMux()).Listener.Addr().(*net.TCPAddr).Port
			}
			target := net.JoinHostPort(tc.host, strconv.Itoa(p))
			_, body, _, local := tracedGet(t, c, http.MethodGet, "http://"+target+"/host", nil)
			if string(body) != target {
				t.Fatalf("origin saw Host %q, want %q", body, target)
			}
			est := v.events.establishedOf(t, 1, byClient(local))[0]
			if est.Proto != registry.ProtoSOCKS5 || est.Target != target {
				t.Errorf("record: %s %s, want socks5 %s", est.Proto, est.Target, target)
			}
		})
	}
}

// Username/password, right and wrong, for SOCKS5 and for the HTTP front.
func TestProxyAuth(t *testing.T) {
	t.Parallel()
	auth := &inbound.Auth{Username: "alice", Password: "s3cret"}
	v := newEnv(t, func(c *core.Config) { c.Auth = auth })
	v.noisy = true // wrong passwords are logged; counted below
	target := v.origin.Listener.Addr().String()
	wrong := 0

	t.Run("socks5", func(t *testing.T) {
		for _, a := range []*proxy.Auth{{User: "alice", Password: "wrong"}, {User: "bob", Password: "s3cret"}, nil} {
			// nil: the client offers no username/password method at all.
			pd, err := proxy.SOCKS5("tcp", v.addr, a, &net.Dialer{Timeout: waitTimeout})
			if err != nil {
				t.Fatal(err)
			}
			if c, err := pd.(proxy.ContextDialer).DialContext(t.Context(), "tcp", target); err == nil {
				_ = c.Close()
				t.Fatalf("SOCKS5 with %+v: connected, want refused", a)
			}
			wrong++
			v.checkHealthy(t) // with the right password
		}
	})
	t.Run("http", func(t *testing.T) {
		for _, u := range []*inbound.Auth{nil, {Username: "alice", Password: "nope"}} {
			tr := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
				p := v.proxyURL()
				p.User = nil
				if u != nil {
					p.User = url.UserPassword(u.Username, u.Password)
				}
				return p, nil
			}}
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr, Timeout: waitTimeout}).Get(v.origin.URL + "/hello")
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
				t.Fatalf("without the password: %d %v, want 407 with Proxy-Authenticate", resp.StatusCode, resp.Header)
			}
			wrong++
			v.checkHealthy(t)
		}
	})
	v.logs.waitConnRecords(t, wrong, slog.LevelInfo)
	v.stop()
	recs := v.logs.connRecords(slog.LevelInfo)
	var refused int
	for _, r := range recs {
		if errors.Is(r.errAttr(), inbound.ErrAuthFailed) {
			refused++
			if r.Level != slog.LevelInfo && r.Level != slog.LevelWarn {
				t.Errorf("auth failure logged at %s", r.Level)
			}
		}
	}
	if refused != wrong {
		t.Errorf("%d auth failures logged, want %d:\n%s", refused, wrong, recordList(v.logs.connRecords(slog.LevelDebug)))
	}
}

func TestSOCKS4(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	port := uint16(v.origin.Listener.Addr().(*net.TCPAddr).Port)
	cases := []struct {
		name   string
		ip     [4]byte
		host   string
		target string
	}{
		{"socks4", [4]byte{127, 0, 0, 1}, "", fmt.Sprintf("127.0.0.1:%d", port)},
		{"socks4a", [4]byte{0, 0, 0, 1}, "localhost", fmt.Sprintf("localhost:%d", port)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, rep := v.socks4(t, 0x01, tc.ip, port, tc.host)
			if rep != 0x5A {
				t.Fatalf("reply %#x, want 0x5a (granted)", rep)
			}
			if _, err := io.WriteString(c, "GET /host HTTP/1.1\r\nHost: "+tc.target+"\r\nConnection: close\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(c.r, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || string(body) != tc.target {
				t.Fatalf("response %d %q %v", resp.StatusCode, body, err)
			}
			expectClosed(t, c) // the origin closed; the proxy passes that on
			_ = c.Close()      // and the relay ends when this side is done too
			rec := v.events.closedOf(t, 1, byClient(c.LocalAddr().String()))[0]
			if rec.Proto != registry.ProtoSOCKS4 || rec.Target != tc.target {
				t.Errorf("record: %s %s, want socks4 %s", rec.Proto, rec.Target, tc.target)
			}
		})
	}
}

// Large transfers through CONNECT and SOCKS5 arrive intact, and the
// registry counts exactly the bytes that crossed.
func TestLargeTransfers(t *testing.T) {
	t.Parallel()
	down, up := int64(256<<20), int64(64<<20)
	if testing.Short() {
		down, up = 16<<20, 4<<20
	}
	v := newEnv(t, nil)
	origin := newTCPOrigin(t, "tcp4", bulkHandler)
	deadline := time.Now().Add(10 * time.Minute)

	t.Run("group", func(t *testing.T) {
		t.Run("connect", func(t *testing.T) {
			t.Parallel()
			c := v.connect(t, origin.addr, nil)
			if err := c.SetDeadline(deadline); err != nil {
				t.Fatal(err)
			}
			wrote, read := bulkExchange(t, c, down, up)
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
			rec := v.events.closedOf(t, 1, byClient(c.LocalAddr().String()))[0]
			if rec.Up != wrote || rec.Down != read || rec.Err != nil {
				t.Errorf("record: up %d down %d err %v; want %d %d nil", rec.Up, rec.Down, rec.Err, wrote, read)
			}
		})
		t.Run("socks5", func(t *testing.T) {
			t.Parallel()
			c, err := v.socksDialer(t, nil).DialContext(t.Context(), "tcp", origin.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(deadline); err != nil {
				t.Fatal(err)
			}
			wrote, read := bulkExchange(t, c, down, up)
			local := c.LocalAddr().String()
			_ = c.Close()
			rec := v.events.closedOf(t, 1, byClient(local))[0]
			if rec.Up != wrote || rec.Down != read {
				t.Errorf("record: up %d down %d; want %d %d", rec.Up, rec.Down, wrote, read)
			}
		})
	})
}

// A client that half-closes after its request still gets the whole
// response; an origin that half-closes first still gets the whole request.
func TestHalfClose(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	// Reads to EOF, then answers with the size and sum of what it read.
	answerAtEOF := newTCPOrigin(t, "tcp4", func(o *tcpOrigin, c *net.TCPConn) {
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d %x", n, h.Sum(nil))
	})
	// Says goodbye and half-closes first, then reads to EOF.
	origins := make(chan int64, 4)
	byeFirst := newTCPOrigin(t, "tcp4", func(o *tcpOrigin, c *net.TCPConn) {
		if _, err := io.WriteString(c, "bye"); err != nil {
			return
		}
		if err := c.CloseWrite(); err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c)
		select {
		case origins <- n:
		case <-o.done:
		}
	})
	req := pattern[:300<<10]
	want := fmt.Sprintf("%d %x", len(req), sha256.Sum256(req))

	type halfCloser interface {
		io.ReadWriter
		CloseWrite() error
	}
	dialers := []struct {
		name string
		dial func(t *testing.T, o *tcpOrigin) halfCloser
	}{
		{"connect", func(t *testing.T, o *tcpOrigin) halfCloser { return v.connect(t, o.addr, nil) }},
		{"socks5", func(t *testing.T, o *tcpOrigin) halfCloser {
			c, rep := v.socks5Raw(t, socks5ConnectIPv4([4]byte{127, 0, 0, 1}, o.port()))
			if rep != 0 {
				t.Fatalf("SOCKS5 reply %#x", rep)
			}
			return c
		}},
		{"socks4", func(t *testing.T, o *tcpOrigin) halfCloser {
			c, rep := v.socks4(t, 0x01, [4]byte{127, 0, 0, 1}, o.port(), "")
			if rep != 0x5A {
				t.Fatalf("SOCKS4 reply %#x", rep)
			}
			return c
		}},
	}
	for _, d := range dialers {
		t.Run(d.name+"/client-first", func(t *testing.T) {
			c := d.dial(t, answerAtEOF)
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != want {
				t.Fatalf("response %q, %v; want %q", got, err, want)
			}
		})
		t.Run(d.name+"/origin-first", func(t *testing.T) {
			c := d.dial(t, byeFirst)
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "bye" {
				t.Fatalf("read %q, %v; want bye then EOF", got, err)
			}
			// The origin stopped writing; the other direction goes on.
			if _, err := c.Write(req); err != nil {
				t.Fatalf("writing after the origin's half-close: %v", err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if n := await(t, "the origin to read to EOF", origins); n != int64(len(req)) {
				t.Fatalf("origin read %d bytes, want %d", n, len(req))
			}
		})
	}
}

func TestLocalPages(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: waitTimeout}
	base := "http://" + v.addr
	pages := []struct {
		path, ctype, contains string
		code                  int
	}{
		{"/", "text/html; charset=utf-8", "Porthole is running", 200},
		{"/proxy.pac", "application/x-ns-proxy-autoconfig", "FindProxyForURL", 200},
		{"/nope", "text/plain; charset=utf-8", "no such page", 404},
	}
	var first string
	for i, p := range pages {
		resp, body, reused, local := tracedGet(t, c, http.MethodGet, base+p.path, nil)
		if resp.StatusCode != p.code || resp.Header.Get("Content-Type") != p.ctype || !strings.Contains(string(body), p.contains) {
			t.Errorf("GET %s: %d %q %q", p.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if p.path == "/proxy.pac" && !strings.Contains(string(body), v.addr) {
			t.Errorf("PAC does not name the proxy %s:\n%s", v.addr, body)
		}
		if i == 0 {
			first = local
		} else if !reused || local != first {
			t.Errorf("GET %s: not kept alive", p.path)
		}
	}
}

// A body to a proxy page that stops half-way gets 408, in HTTP.
func TestPageBodyTimeoutAnswers408(t *testing.T) {
	v := newEnv(t, func(c *core.Config) { c.HeaderTimeout = 300e6 })
	v.noisy = true
	c := v.dial(t)
	defer c.Close()
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: proxy\r\nContent-Length: 10\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, c, http.StatusRequestTimeout)
}

// The PAC file needs no proxy credentials; the rest of the proxy does.
func TestPACWithoutCredentials(t *testing.T) {
	t.Parallel()
	v := newEnv(t, func(c *core.Config) { c.Auth = &inbound.Auth{Username: "alice", Password: "s3cret"} })
	v.noisy = true // the 407 is logged
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: waitTimeout}

	resp, body, _, _ := tracedGet(t, hc, http.MethodGet, "http://"+v.addr+"/proxy.pac", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "FindProxyForURL") {
		t.Errorf("PAC without credentials: %d %q, want 200 with the script", resp.StatusCode, body)
	}
	resp, _, _, _ = tracedGet(t, hc, http.MethodGet, "http://"+v.addr+"/", nil)
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Errorf("status page without credentials: %d, want 407", resp.StatusCode)
	}
}
