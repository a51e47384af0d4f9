package inbound

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/xid"

	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/relay"
	"porthole/core/tunnel"
)

// Bounds on what a target may send before its response body.
const (
	maxResponseHeaderBytes = 1 << 20
	maxInformational       = 8 // 1xx responses before the final one
)

// httpUpstream is the connection an HTTP client's absolute-URI requests are
// forwarded on; it is kept while the client asks for the same target and
// the target keeps it alive.
type httpUpstream struct {
	*upstream
	limiter *headerLimiter // caps response headers
	br      *bufio.Reader  // reads responses through the counting wrapper
	cw      countingConn
}

// responseWriter is what writing forwarded responses to the client takes:
// the header writer and the parts of a chunk's writev. It is made at the
// first response, so a CONNECT or SOCKS connection, which never forwards
// one, does not carry it.
type responseWriter struct {
	bw        *bufio.Writer
	chunkSize [18]byte
	chunk     [3][]byte
	vec       net.Buffers
}

// countingConn counts what crosses the upstream socket: writes are up,
// reads are down. Only the forwarding path uses it; the relay counts itself.
type countingConn struct {
	net.Conn
	rec *registry.Conn
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.AddDown(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.rec.AddUp(int64(n))
	return n, err
}

// bodyWatch passes a request body to the upstream writer; if the client
// fails in the middle of it, the upstream is closed at once instead of
// leaving the target waiting for the rest. It records whether the body was
// read to its end, which decides whether the client connection can go on.
type bodyWatch struct {
	r     io.Reader
	onErr func()
	size  int64 // Content-Length, or -1 (chunked)
	read  atomic.Int64
	eof   atomic.Bool
	err   error // the client's read error; read after the writer is joined
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	switch {
	case errors.Is(err, io.EOF):
		b.eof.Store(true)
	case err != nil:
		b.err = err
		b.onErr()
	}
	return n, err
}

// Close does not drain what is left of the body (net/http's would, from a
// client that may be slow or endless): a body not read to its end means the
// client connection closes, with a lingering close.
func (b *bodyWatch) Close() error { return nil }

// done reports whether the whole body was read (always, without a body).
// A body of known length is done when its last byte was read, which is
// before the target can have it, so a response never races this.
func (b *bodyWatch) done() bool {
	return b == nil || b.eof.Load() || (b.size >= 0 && b.read.Load() >= b.size)
}

// hopHeaders are meaningful for one connection only and never forwarded.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop deletes hop-by-hop headers, those named in Connection
// included, and returns the protocol asked for in an Upgrade (WebSocket over
// plain HTTP), which it keeps.
func removeHopByHop(h http.Header) (upgrade string) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			f = textproto.TrimString(f)
			if strings.EqualFold(f, "upgrade") {
				upgrade = h.Get("Upgrade")
				continue
			}
			if f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	if upgrade != "" {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", upgrade)
	}
	return upgrade
}

// idempotent methods may be sent again on a fresh connection when a kept
// upstream turns out to be closed (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// nextID is the id of the next record this client connection opens: the
// connection's own id the first time (so its log lines match), a new one
// after.
func (c *clientConn) nextID() xid.ID {
	if !c.idUsed {
		c.idUsed = true
		return c.id
	}
	return xid.New()
}

// forward sends one absolute-URI request to its target and the response
// back. It reports whether the client connection may carry another request.
func (c *clientConn) forward(req *http.Request) (keep bool, err error) {
	if req.URL.Scheme != "http" {
		return false, c.httpError(http.StatusBadRequest,
			"porthole: only http:// URLs can be forwarded; https goes through CONNECT", nil,
			fmt.Errorf("forward %s: %w", req.URL.Scheme, ErrBadRequest))
	}
	target := req.URL.Host
	if req.URL.Port() == "" {
		target = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	host, _, err := outbound.SplitTarget(target)
	if err != nil {
		return false, c.httpError(http.StatusBadRequest, "porthole: "+err.Error(), nil, fmt.Errorf("forward: %w: %w", ErrBadRequest, err))
	}
	clientClose := req.Close || !req.ProtoAtLeast(1, 1)
	req.Close = false // the upstream connection is ours to keep or not
	if req.Header.Get("User-Agent") == "" {
		req.Header["User-Agent"] = []string{""} // else net/http adds its own
	}
	removeHopByHop(req.Header)
	req.Header.Add("Via", viaValue(req.ProtoMajor, req.ProtoMinor))

	if c.up != nil && c.up.target != target {
		c.closeUpstream(c.up.upstream, nil)
		c.up = nil
	}
	for attempt := 0; ; attempt++ {
		reused := c.up != nil
		if c.up == nil {
			if err := c.openHTTPUpstream(target, host); err != nil {
				_ = c.httpError(dialFailureStatus(err), dialFailureMessage(target, err), nil, nil) // dial logged it
				return false, nil
			}
		}
		res := c.exchange(req, clientClose, reused && attempt == 0)
		if res.retry {
			// A kept upstream the target had closed meanwhile: nothing
			// reached the client and the request can be sent again.
			c.closeUpstream(c.up.upstream, nil)
			c.up = nil
			continue
		}
		if res.err != nil || !res.upstreamKeep {
			c.closeUpstream(c.up.upstream, res.err)
			c.up = nil
		}
		if res.failStatus != 0 {
			// After the record is closed: the lingering close may take a
			// while and the upstream is gone already.
			_ = c.httpError(res.failStatus, res.failMessage, nil, nil) // closeUpstream logged it
			return false, nil
		}
		return res.clientKeep, nil // false whenever the client side failed
	}
}

func (c *clientConn) openHTTPUpstream(target, host string) error {
	u, err := c.dial(c.nextID(), registry.ProtoHTTP, target, host)
	if err != nil {
		return err
	}
	cw := countingConn{Conn: u.conn, rec: u.rec}
	lim := &headerLimiter{r: cw}
	lim.lift()
	c.up = &httpUpstream{upstream: u, cw: cw, limiter: lim, br: bufio.NewReader(lim)}
	return nil
}

// exchangeResult says what one request/response exchange left behind.
type exchangeResult struct {
	clientKeep   bool   // the client connection may carry another request
	upstreamKeep bool   // the upstream may carry another request
	retry        bool   // send the request again on a new upstream
	err          error  // why the upstream must be closed
	failStatus   int    // answer the client with this status (502, or a failed open's), once the upstream is closed
	failMessage  string // and this text
}

// exchange writes req upstream while reading the response (a server may
// answer before the body is sent: 100-continue, early errors), and streams
// the response to the client.
func (c *clientConn) exchange(req *http.Request, clientClose, mayRetry bool) exchangeResult {
	up := c.up
	var body *bodyWatch
	if req.Body != http.NoBody {
		body = &bodyWatch{r: req.Body, size: req.ContentLength, onErr: func() { c.socks.remove(up.conn) }}
		req.Body = body
	}
	written := make(chan error, 1)
	go func() { written <- req.Write(up.cw) }()
	c.proc.Start() // while the target answers (once per connection)

	resp, informed, err := c.readFinalResponse(up, req)
	if err != nil {
		c.socks.remove(up.conn) // unblocks a writer stuck on the upstream
		werr := c.joinWriter(written)
		if mayRetry && !informed && c.ctx.Err() == nil && body == nil && idempotent(req.Method) &&
			relay.Expected(err) && relay.Expected(werr) {
			return exchangeResult{retry: true}
		}
		res := exchangeResult{err: err}
		var refused *tunnel.OpenError
		switch {
		case c.ctx.Err() != nil || informed:
		case errors.As(err, &refused):
			// The exit could not reach the target: the request went with
			// the OPEN, so the dial's failure shows up here.
			res.failStatus, res.failMessage = dialFailureStatus(err), dialFailureMessage(up.target, err)
		default:
			res.failStatus, res.failMessage = http.StatusBadGateway, fmt.Sprintf("porthole: no valid response from %s: %v", up.target, err)
		}
		return res
	}
	// A request body still arriving when the response starts may never be
	// read to its end (the target did not want it): then the response must
	// already say Connection: close.
	clientKeep, err := c.writeResponse(req, resp, clientClose || !body.done())
	if err != nil {
		c.socks.remove(up.conn) // first: closing the body must not drain it
		_ = resp.Body.Close()   // its error is that of the closed socket
		_ = c.joinWriter(written)
		return exchangeResult{err: err}
	}
	// The body is at EOF (or there is none): closing it reads nothing.
	if err := resp.Body.Close(); err != nil {
		_ = c.joinWriter(written)
		return exchangeResult{err: err}
	}
	if werr := c.joinWriter(written); werr != nil {
		if body != nil && body.err != nil {
			// The client stopped sending its body (net/http hides the
			// cause in a type without Unwrap): its error is the reason.
			return exchangeResult{err: body.err}
		}
		// The response is out and complete: the target answered and then
		// stopped taking the rest of the request. Its socket is done, but
		// the exchange ended as the target meant it to.
		up.logAt(slog.LevelDebug, "target stopped reading the request after answering", "err", werr)
		return exchangeResult{clientKeep: clientKeep && body.done()}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return exchangeResult{err: c.relayUpgraded(up)}
	}
	return exchangeResult{clientKeep: clientKeep, upstreamKeep: !resp.Close}
}

// joinWriter waits for the goroutine sending the request. Normally it has
// finished by the time the response has; if it is still reading a body
// from the client (the server answered without wanting it, or failed), the
// client gets HeaderTimeout to finish, then the connection is closed.
func (c *clientConn) joinWriter(written <-chan error) error {
	select {
	case err := <-written:
		return err
	default:
	}
	t := time.NewTimer(c.s.cfg.HeaderTimeout)
	defer t.Stop()
	select {
	case err := <-written:
		return err
	case <-t.C:
		c.socks.close()
		<-written
		return fmt.Errorf("request body still arriving after the response: %w", os.ErrDeadlineExceeded)
	}
}

// readFinalResponse reads responses until a final one, passing 1xx
// informational responses (100 Continue, 103 Early Hints) to HTTP/1.1
// clients (RFC 9110 §15.2: never to HTTP/1.0 ones). Headers are bounded in
// size and 1xx responses in number.
// informed reports whether anything was written to the client (then the
// request cannot be retried, and a 502 would come too late).
func (c *clientConn) readFinalResponse(up *httpUpstream, req *http.Request) (resp *http.Response, informed bool, err error) {
	for i := 0; ; i++ {
		up.limiter.limit(maxResponseHeaderBytes)
		resp, err := http.ReadResponse(up.br, req)
		up.limiter.lift()
		if errors.Is(err, ErrHeaderTooLarge) {
			return nil, informed, fmt.Errorf("%w: response header over %d bytes", ErrBadResponse, maxResponseHeaderBytes)
		}
		if err != nil {
			return nil, informed, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, informed, nil
		}
		if i == maxInformational {
			return nil, informed, fmt.Errorf("%w: more than %d informational responses", ErrBadResponse, maxInformational)
		}
		if req.ProtoAtLeast(1, 1) {
			removeHopByHop(resp.Header)
			informed = true
			if _, err := c.writeHead(resp, resp.Header); err != nil {
				return nil, informed, err
			}
		}
	}
}

// writeResponse streams resp to the client, re-framing the body for this
// hop and passing bytes on as they arrive (no holding a trickling
// response). It reports whether the client connection can carry another
// request; when it cannot, the response says Connection: close.
func (c *clientConn) writeResponse(req *http.Request, resp *http.Response, clientClose bool) (keep bool, err error) {
	h := resp.Header
	upgrade := removeHopByHop(h) != "" && resp.StatusCode == http.StatusSwitchingProtocols
	h.Add("Via", viaValue(resp.ProtoMajor, resp.ProtoMinor))
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || upgrade
	chunked := false
	keep = !upgrade && !clientClose
	if !noBody {
		h.Del("Content-Length")
		switch {
		case resp.ContentLength >= 0:
			h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		case req.ProtoAtLeast(1, 1):
			chunked = true
			h.Set("Transfer-Encoding", "chunked")
			if len(resp.Trailer) > 0 {
				h.Set("Trailer", strings.Join(sortedKeys(resp.Trailer), ", "))
			}
		default:
			keep = false // HTTP/1.0 client: the end of the body is the close
		}
	}
	if !keep && !upgrade {
		h.Set("Connection", "close")
	}
	bw, err := c.writeHead(resp, h)
	if err != nil || noBody {
		return keep, err
	}
	if err := c.copyBody(resp.Body, chunked); err != nil {
		return false, err
	}
	if chunked {
		if _, err := bw.WriteString("0\r\n"); err != nil {
			return false, err
		}
		if err := resp.Trailer.Write(bw); err != nil {
			return false, err
		}
		if _, err := bw.WriteString("\r\n"); err != nil {
			return false, err
		}
	}
	return keep, bw.Flush()
}

// writeHead writes a status line and headers and flushes them.
func (c *clientConn) writeHead(resp *http.Response, h http.Header) (*bufio.Writer, error) {
	if c.out == nil {
		c.out = &responseWriter{bw: bufio.NewWriterSize(c.raw, 4096)}
	}
	bw := c.out.bw
	status := resp.Status
	if status == "" {
		status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	}
	if _, err := bw.WriteString("HTTP/1.1 " + status + "\r\n"); err != nil {
		return nil, err
	}
	if err := h.Write(bw); err != nil {
		return nil, err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return nil, err
	}
	return bw, bw.Flush()
}

// copyBody copies a response body straight to the client socket, each read
// as it arrives; chunked, each read is one chunk written with one writev.
func (c *clientConn) copyBody(body io.Reader, chunked bool) error {
	bp := relay.GetBuffer()
	defer relay.PutBuffer(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			var err error
			if chunked {
				// The parts live in the connection, so the writev costs no
				// allocation per chunk.
				o := c.out // writeHead made it
				size := append(strconv.AppendUint(o.chunkSize[:0], uint64(n), 16), '\r', '\n')
				o.chunk = [3][]byte{size, buf[:n], crlf}
				o.vec = o.chunk[:]
				_, err = o.vec.WriteTo(c.raw)
				o.chunk = [3][]byte{} // not to keep the pooled buffer alive
				o.vec = nil
			} else {
				_, err = c.raw.Write(buf[:n])
			}
			if err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

var crlf = []byte("\r\n")

// viaValue names this hop for the Via header (RFC 9110 §7.6.3), with the
// protocol version of the message received.
func viaValue(major, minor int) string {
	if major == 0 {
		major, minor = 1, 1
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor) + " porthole"
}

// relayUpgraded turns the connection into a raw relay after 101 Switching
// Protocols, first passing on what the upstream reader already buffered.
func (c *clientConn) relayUpgraded(up *httpUpstream) error {
	if n := up.br.Buffered(); n > 0 {
		b, err := up.br.Peek(n)
		if err != nil {
			return err
		}
		if _, err := c.raw.Write(b); err != nil { // already counted as read
			return err
		}
	}
	return c.relay(up.upstream)
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
