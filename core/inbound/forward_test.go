package inbound_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/registry"
	"porthole/internal/chantest"
)

// The HTTP forwarding path (forward.go) where it meets a client or a
// target that misbehaves: hang-ups, early answers, unread bodies, kept
// upstreams that die, CONNECT after plain requests. Most began as
// regression tests for what review found (each failed on b14a153~1).

// prompt bounds what must happen "at once" (a close, an error answer): far
// longer than it takes, far shorter than the hang it guards against.
const prompt = 5 * time.Second

// send writes a raw request (or part of one) to the proxy.
func send(t testing.TB, c net.Conn, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing to the proxy: %v", err)
	}
}

// readResponse reads one whole response for method within d.
func readResponse(t testing.TB, c net.Conn, br *bufio.Reader, method string, d time.Duration) (*http.Response, string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s: reading the proxy's answer: %v", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the body: %v", method, err)
	}
	if err := c.SetReadDeadline(deadline()); err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// expectClosedWithin reads until the proxy ends the connection, which it
// must do within d.
func expectClosedWithin(t testing.TB, c net.Conn, r io.Reader, d time.Duration) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed by the proxy within %v", d)
	}
}

// get is a forwarded GET in origin-form's place: absolute URI, Host.
func get(hostport, path string) string {
	return "GET http://" + hostport + path + " HTTP/1.1\r\nHost: " + hostport + "\r\n\r\n"
}

// ioResult is how many bytes an origin's handler moved, and how that
// ended.
type ioResult struct {
	n   int64
	err error
}

// requestOrigin is a raw origin that reads one request on each connection
// and hands it, with the reader it came from, to handle; a connection that
// sends no whole request is closed.
func requestOrigin(t *testing.T, handle func(o *tcpOrigin, c *net.TCPConn, br *bufio.Reader, req *http.Request)) *tcpOrigin {
	return newTCPOrigin(t, "tcp4", func(o *tcpOrigin, c *net.TCPConn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		handle(o, c, br, req)
	})
}

// expectStatus reads the head of the proxy's answer on c, which must have
// status want, and returns its header.
func expectStatus(t *testing.T, c net.Conn, want int) textproto.MIMEHeader {
	t.Helper()
	if err := c.SetReadDeadline(deadline()); err != nil {
		t.Fatal(err)
	}
	code, h, err := readHead(bufio.NewReader(c))
	if err != nil || code != want {
		t.Fatalf("status %d, %v; want %d", code, err, want)
	}
	return h
}

// ---------------------------------------------------------------------------
// 1. A client hanging up mid-download stops the download.

func TestForwardClientHangsUpMidDownload(t *testing.T) {
	t.Parallel()
	const total = 512 << 20
	for _, chunked := range []bool{false, true} {
		name := "content-length"
		if chunked {
			name = "chunked"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, nil)
			results := make(chan ioResult, 1)
			origin := requestOrigin(t, func(o *tcpOrigin, c *net.TCPConn, _ *bufio.Reader, req *http.Request) {
				_ = req.Body.Close()
				head := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(total) + "\r\n\r\n"
				if chunked {
					head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				}
				var sent int64
				_, err := io.WriteString(c, head)
				size := []byte(strconv.FormatInt(int64(len(pattern)), 16) + "\r\n")
				for err == nil && sent < total {
					if chunked {
						bufs := net.Buffers{size, pattern, []byte("\r\n")}
						_, err = bufs.WriteTo(c)
					} else {
						_, err = c.Write(pattern)
					}
					if err == nil {
						sent += int64(len(pattern))
					}
				}
				if err == nil && chunked {
					_, err = io.WriteString(c, "0\r\n\r\n")
				}
				select {
				case results <- ioResult{sent, err}:
				case <-o.done:
				}
			})

			c := v.dial(t)
			local := c.LocalAddr().String()
			send(t, c, get(origin.addr, "/big"))
			br := bufio.NewReader(c)
			code, _, err := readHead(br)
			if err != nil || code != http.StatusOK {
				t.Fatalf("response head: %d, %v", code, err)
			}
			if _, err := io.CopyN(io.Discard, br, 1<<20); err != nil {
				t.Fatalf("reading the first MiB: %v", err)
			}
			_ = c.Close() // unread bytes pending: a reset

			res := chantest.Within(t, prompt, "the origin's writes to fail after the client left", results)
			if res.err == nil {
				t.Fatalf("the origin sent all %d bytes without error: the proxy read them for nobody", res.n)
			}
			if res.n > total/8 {
				t.Errorf("the origin sent %d of %d bytes before its write failed", res.n, total)
			}
			v.events.closedOf(t, 1, byClient(local))
		})
	}
}

// ---------------------------------------------------------------------------
// 2. Error responses and local pages never wait for a request body.

func TestForwardUnreadRequestBody(t *testing.T) {
	t.Parallel()
	short := func(c *core.Config) { c.HeaderTimeout = 300 * time.Millisecond }
	auth := &inbound.Auth{Username: "alice", Password: "s3cret"}

	t.Run("status-page-body-never-sent", func(t *testing.T) {
		t.Parallel()
		v := newEnv(t, short)
		v.noisy = true // the unfinished body is bad input, answered 408 and logged once
		c := v.dial(t)
		send(t, c, "POST / HTTP/1.1\r\nHost: "+v.addr+"\r\nContent-Length: 10\r\n\r\n")
		expectClosedWithin(t, c, c, prompt)
	})

	for _, part := range []int{0, 1000} {
		t.Run(fmt.Sprintf("auth-407-with-%d-of-1000000-bytes", part), func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, func(c *core.Config) { c.Auth = auth })
			v.noisy = true // the refusal is logged
			target := v.origin.Listener.Addr().String()
			c := v.dial(t)
			send(t, c, "POST http://"+target+"/sum HTTP/1.1\r\nHost: "+target+"\r\nContent-Length: 1000000\r\n\r\n"+
				string(pattern[:part]))
			br := bufio.NewReader(c)
			resp, _ := readResponse(t, c, br, http.MethodPost, prompt)
			if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
				t.Fatalf("status %d %v, want 407 with Proxy-Authenticate", resp.StatusCode, resp.Header)
			}
			expectClosedWithin(t, c, br, prompt)
		})
	}

	t.Run("unreachable-target-502", func(t *testing.T) {
		t.Parallel()
		v := newEnv(t, nil)
		v.noisy = true // the failed dial is logged
		target := "127.0.0.1:" + strconv.Itoa(int(closedPort(t)))
		c := v.dial(t)
		send(t, c, "POST http://"+target+"/upload HTTP/1.1\r\nHost: "+target+"\r\nContent-Length: 104857600\r\n\r\n")
		br := bufio.NewReader(c)
		resp, body := readResponse(t, c, br, http.MethodPost, prompt)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "refused") {
			t.Fatalf("status %d %q, want 502 naming the refusal", resp.StatusCode, body)
		}
		expectClosedWithin(t, c, br, prompt)
	})
}

// ---------------------------------------------------------------------------
// 3. A target ending its connection does not end the client's.

// oneShotOrigin answers one request with resp and closes the connection.
func oneShotOrigin(t *testing.T, resp string) *tcpOrigin {
	return requestOrigin(t, func(_ *tcpOrigin, c *net.TCPConn, _ *bufio.Reader, req *http.Request) {
		_ = req.Body.Close()
		_, _ = io.WriteString(c, resp)
	})
}

func TestForwardUpstreamCloseKeepsClient(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, resp string }{
		{"connection-close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"},
		{"http-1.0", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, nil)
			closing := oneShotOrigin(t, tc.resp)
			other := v.origin.Listener.Addr().String()
			c := v.dial(t)
			br := bufio.NewReader(c)
			for i, target := range []string{closing.addr, closing.addr, other, closing.addr} {
				send(t, c, get(target, "/hello"))
				resp, body := readResponse(t, c, br, http.MethodGet, prompt)
				if resp.StatusCode != http.StatusOK || body != "hello" {
					t.Fatalf("request %d to %s: %d %q, want 200 hello", i, target, resp.StatusCode, body)
				}
				if resp.Close {
					t.Fatalf("request %d to %s: the proxy ends the client connection because the target ended its own", i, target)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 4. CONNECT after plain requests: its own record, and the plain one closed.

func TestForwardPlainThenCONNECT(t *testing.T) {
	t.Parallel()
	const idle = time.Second // the registry judges idleness at its 1 s stats tick
	v := newEnv(t, func(c *core.Config) { c.IdleTimeout = idle })
	echo := newTCPOrigin(t, "tcp4", echoHandler)
	c := v.dial(t)
	local := c.LocalAddr().String()
	br := bufio.NewReader(c)

	send(t, c, get(v.origin.Listener.Addr().String(), "/hello"))
	if resp, body := readResponse(t, c, br, http.MethodGet, prompt); resp.StatusCode != http.StatusOK || body != "hello" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	send(t, c, "CONNECT "+echo.addr+" HTTP/1.1\r\nHost: "+echo.addr+"\r\n\r\n")
	if code, _, err := readHead(br); err != nil || code != http.StatusOK {
		t.Fatalf("CONNECT: %d, %v", code, err)
	}

	isConnect := func(i registry.Info) bool { return i.Client == local && i.Proto == registry.ProtoConnect }
	evs := v.events.waitFor(t, "the CONNECT record to open", func(evs []registry.Event) bool {
		return len(eventsOf(evs, registry.KindOpened, isConnect)) > 0
	})
	var httpID, connectID string
	httpClosedAt, connectOpenedAt := -1, -1
	for i, ev := range evs {
		if ev.Conn.Client != local {
			continue
		}
		switch {
		case ev.Kind == registry.KindOpened && ev.Conn.Proto == registry.ProtoHTTP:
			httpID = ev.Conn.ID.String()
		case ev.Kind == registry.KindClosed && ev.Conn.Proto == registry.ProtoHTTP:
			httpClosedAt = i
		case ev.Kind == registry.KindOpened && ev.Conn.Proto == registry.ProtoConnect:
			connectID, connectOpenedAt = ev.Conn.ID.String(), i
		}
	}
	if httpID == "" || httpID == connectID {
		t.Errorf("HTTP record %q, CONNECT record %q: want two different ids", httpID, connectID)
	}
	if httpClosedAt < 0 || httpClosedAt > connectOpenedAt {
		t.Errorf("the HTTP record was not closed when the CONNECT record opened:%s", describeEvents(evs))
	}

	// Bytes flowing through the tunnel all along: never idle, never killed
	// (nor by the plain request's record going idle behind it).
	tun := &bufConn{TCPConn: c, r: br}
	buf, echoed := pattern[:16<<10], make([]byte, 16<<10)
	start := time.Now()
	for n := 0; time.Since(start) < 3*idle+idle/2; n++ {
		if _, err := tun.Write(buf); err != nil {
			t.Fatalf("tunnel broken after %v (%d round trips): write: %v", time.Since(start), n, err)
		}
		if _, err := io.ReadFull(tun, echoed); err != nil {
			t.Fatalf("tunnel broken after %v (%d round trips): read: %v", time.Since(start), n, err)
		}
	}
	if err := tun.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	expectClosedWithin(t, c, tun, prompt)
	rec := v.events.closedOf(t, 1, isConnect)[0]
	if rec.Err != nil {
		t.Errorf("CONNECT record closed with %v, want a clean close", rec.Err)
	}
}

// ---------------------------------------------------------------------------
// 5. A kept upstream found closed: idempotent requests are sent again,
// others are not.

// reqCounter counts the requests an origin read, by "METHOD /path".
type reqCounter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (r *reqCounter) add(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[req.Method+" "+req.URL.Path]++
}

func (r *reqCounter) get(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[key]
}

func TestForwardRetryOnlyIdempotent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		method     string
		readSecond bool // the origin reads the second request, then closes without answering
		wantCode   int
		wantSeen   int // times the origin read the second request
	}{
		// The origin closed the kept connection after its first answer
		// (no Connection: close), before the second request came.
		{"closed-before/GET", http.MethodGet, false, http.StatusOK, 1},
		{"closed-before/POST", http.MethodPost, false, http.StatusBadGateway, 0},
		// The origin read the second request and died: a POST sent again
		// would be processed twice.
		{"closed-after-reading/GET", http.MethodGet, true, http.StatusOK, 2},
		{"closed-after-reading/POST", http.MethodPost, true, http.StatusBadGateway, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, nil)
			seen := &reqCounter{seen: map[string]int{}}
			closed := make(chan struct{}, 4)
			origin := requestOrigin(t, func(o *tcpOrigin, c *net.TCPConn, br *bufio.Reader, req *http.Request) {
				_, _ = io.Copy(io.Discard, req.Body)
				seen.add(req)
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
				if tc.readSecond {
					var err error
					if req, err = http.ReadRequest(br); err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					seen.add(req)
				}
				_ = c.Close()
				select {
				case closed <- struct{}{}:
				case <-o.done:
				}
			})

			c := v.dial(t)
			br := bufio.NewReader(c)
			send(t, c, get(origin.addr, "/first"))
			if resp, body := readResponse(t, c, br, http.MethodGet, prompt); resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("first request: %d %q", resp.StatusCode, body)
			}
			if !tc.readSecond {
				await(t, "the origin to close the kept connection", closed)
			}
			second := tc.method + " http://" + origin.addr + "/second HTTP/1.1\r\nHost: " + origin.addr + "\r\n"
			if tc.method == http.MethodPost {
				second += "Content-Length: 0\r\n"
			}
			send(t, c, second+"\r\n")
			resp, body := readResponse(t, c, br, tc.method, prompt)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("second request: %d %q, want %d", resp.StatusCode, body, tc.wantCode)
			}
			if resp.StatusCode != http.StatusOK {
				expectClosedWithin(t, c, br, prompt)
			}
			_ = c.Close()
			v.stop() // every handler has finished: the origin saw all it will
			if n := seen.get(tc.method + " /second"); n != tc.wantSeen {
				t.Errorf("the origin read the second request %d times, want %d", n, tc.wantSeen)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 6. Closing a forwarded request from the registry opens nothing new.

func TestForwardCloseByIDOnReusedUpstream(t *testing.T) {
	t.Parallel()
	v := newEnv(t, nil)
	arrived := make(chan struct{}, 1)
	mux := originMux()
	mux.HandleFunc("/held", func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		<-r.Context().Done() // answers only when the proxy hangs up
	})
	origin := newOrigin(t, "tcp4", mux)
	target := origin.Listener.Addr().String()
	c := v.dial(t)
	local := c.LocalAddr().String()
	br := bufio.NewReader(c)
	send(t, c, get(target, "/hello"))
	if resp, body := readResponse(t, c, br, http.MethodGet, prompt); resp.StatusCode != http.StatusOK || body != "hello" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	send(t, c, get(target, "/held"))
	await(t, "the held request at the origin", arrived)
	id := v.events.establishedOf(t, 1, byClient(local))[0].ID

	if !v.e.Registry().CloseConn(id) {
		t.Fatalf("CloseConn(%s) = false for a live connection", id)
	}
	expectClosedWithin(t, c, br, prompt)
	v.stop()

	reg := v.e.Registry()
	opened := reg.Totals().Opened
	evs := v.events.waitFor(t, "every record's Opened and Closed", func(evs []registry.Event) bool {
		o := eventsOf(evs, registry.KindOpened, nil)
		return uint64(len(o)) >= opened && len(eventsOf(evs, registry.KindClosed, nil)) >= len(o)
	})
	if o := eventsOf(evs, registry.KindOpened, byClient(local)); len(o) != 1 {
		t.Errorf("%d records opened for the client connection, want 1:%s", len(o), describeEvents(evs))
	}
	cl := eventsOf(evs, registry.KindClosed, byClient(local))
	if len(cl) != 1 {
		t.Fatalf("%d records closed for the client connection, want 1:%s", len(cl), describeEvents(evs))
	}
	if cl[0].ID != id || !errors.Is(cl[0].Err, registry.ErrClosedByUser) {
		t.Errorf("closed record %s with %v, want %s with %v", cl[0].ID, cl[0].Err, id, registry.ErrClosedByUser)
	}
}

// ---------------------------------------------------------------------------
// 7. A client dying mid-upload does not leave the target waiting.

func TestForwardClientDiesMidUpload(t *testing.T) {
	t.Parallel()
	const announced, sent = 10 << 20, 5 << 20
	v := newEnv(t, nil)
	results := make(chan ioResult, 1)
	origin := requestOrigin(t, func(_ *tcpOrigin, _ *net.TCPConn, _ *bufio.Reader, req *http.Request) {
		n, err := io.Copy(io.Discard, req.Body)
		results <- ioResult{n, err} // buffered; one request only
	})
	c := v.dial(t)
	local := c.LocalAddr().String()
	send(t, c, "POST http://"+origin.addr+"/upload HTTP/1.1\r\nHost: "+origin.addr+"\r\nContent-Length: "+
		strconv.Itoa(announced)+"\r\n\r\n")
	if err := writePattern(c, sent); err != nil {
		t.Fatalf("uploading: %v", err)
	}
	_ = c.Close()

	res := chantest.Within(t, prompt, "the origin's read of the body to end after the client died", results)
	if res.err == nil || res.n >= announced {
		t.Errorf("origin read %d bytes, %v; want an error before %d", res.n, res.err, announced)
	}
	v.events.closedOf(t, 1, byClient(local))
}

// ---------------------------------------------------------------------------
// 8. A target that answers early or not at all.

// A target that answers before reading a large upload and closes: the
// response tells the client the connection ends (it cannot go on with an
// unread body behind the response), instead of promising keep-alive.
func TestForwardEarlyAnswerToUploadSaysClose(t *testing.T) {
	v := newEnv(t, nil)
	origin := requestOrigin(t, func(_ *tcpOrigin, c *net.TCPConn, _ *bufio.Reader, _ *http.Request) {
		_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig\n")
		_ = c.Close()
	})
	c := v.dial(t)
	defer c.Close()
	target := fmt.Sprintf("127.0.0.1:%d", origin.port())
	if _, err := fmt.Fprintf(c, "POST http://%s/up HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", target, target, 64<<20); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = c.Write(make([]byte, 1<<20)) }() // part of the body; the rest never comes
	h := expectStatus(t, c, http.StatusRequestEntityTooLarge)
	if !strings.EqualFold(h.Get("Connection"), "close") {
		t.Fatalf("413 with an unread body behind it must say Connection: close; headers %v", h)
	}
}

// A target that closes without answering: the client's 502 comes after the
// record is closed, so nothing shows as live while the proxy lingers.
func TestForwardBadGatewayAfterRecordClosed(t *testing.T) {
	v := newEnv(t, nil)
	v.noisy = true
	origin := requestOrigin(t, func(_ *tcpOrigin, c *net.TCPConn, _ *bufio.Reader, _ *http.Request) {
		_ = c.Close()
	})
	c := v.dial(t)
	defer c.Close()
	target := fmt.Sprintf("127.0.0.1:%d", origin.port())
	if _, err := fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, c, http.StatusBadGateway)
	if live := v.e.Registry().Snapshot().Live; len(live) != 0 {
		t.Fatalf("%d records still live when the 502 arrived: %+v", len(live), live)
	}
}
