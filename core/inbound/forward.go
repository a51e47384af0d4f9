package inbound

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/xid"

	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/relay"
)

// httpUpstream is the connection an HTTP client's absolute-URI requests are
// forwarded on; it is kept while the client asks for the same target.
type httpUpstream struct {
	*upstream
	br *bufio.Reader // reads responses through the counting wrapper
	cw countingConn
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

// forward sends one absolute-URI request to its target and the response
// back. It reports whether the client connection may carry another request.
func (c *clientConn) forward(req *http.Request) (keep bool, err error) {
	if req.URL.Scheme != "http" {
		return false, c.httpError(req, http.StatusBadRequest,
			"porthole: only http:// URLs can be forwarded; https goes through CONNECT",
			fmt.Errorf("forward %s: %w", req.URL.Scheme, ErrBadRequest))
	}
	target := req.URL.Host
	if req.URL.Port() == "" {
		target = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	host, _, err := outbound.SplitTarget(target)
	if err != nil {
		return false, c.httpError(req, http.StatusBadRequest, "porthole: "+err.Error(), fmt.Errorf("forward: %w: %w", ErrBadRequest, err))
	}
	clientClose := req.Close || !req.ProtoAtLeast(1, 1)
	req.Close = false // the upstream connection is ours to keep or not
	if req.Header.Get("User-Agent") == "" {
		req.Header["User-Agent"] = []string{""} // else net/http adds its own
	}
	removeHopByHop(req.Header)

	if c.up != nil && c.up.target != target {
		c.closeUpstream(c.up.upstream, nil)
		c.up = nil
	}
	for attempt := 0; ; attempt++ {
		reused := c.up != nil
		if c.up == nil {
			if err := c.openHTTPUpstream(target, host); err != nil {
				_ = req.Body.Close() // dropped with the connection
				writeHTTPError(c.raw, dialFailureStatus(err), dialFailureMessage(target, err), nil)
				return false, nil // dial logged it
			}
		}
		keep, retry, err := c.exchange(req, reused && attempt == 0)
		if retry {
			// A kept-alive upstream the server had closed meanwhile: the
			// request was idempotent and nothing reached the client yet.
			c.closeUpstream(c.up.upstream, nil)
			c.up = nil
			continue
		}
		if err != nil || !keep {
			c.closeUpstream(c.up.upstream, err)
			c.up = nil
			return false, nil
		}
		return !clientClose, nil
	}
}

func (c *clientConn) openHTTPUpstream(target, host string) error {
	id := xid.New()
	if !c.idUsed {
		id, c.idUsed = c.id, true
	}
	u, err := c.dial(id, registry.ProtoHTTP, target, host)
	if err != nil {
		return err
	}
	cw := countingConn{Conn: u.conn, rec: u.rec}
	c.up = &httpUpstream{upstream: u, cw: cw, br: bufio.NewReader(cw)}
	return nil
}

// exchange writes req upstream while reading the response (a server may
// answer before the body is sent: 100-continue, early errors), and streams
// the response to the client. keep says the upstream may serve another
// request; retry that the request can be sent again on a new connection.
func (c *clientConn) exchange(req *http.Request, mayRetry bool) (keep, retry bool, err error) {
	up := c.up
	written := make(chan error, 1)
	go func() { written <- req.Write(up.cw) }()

	resp, err := c.readFinalResponse(up, req)
	if err != nil {
		c.socks.remove(up.conn) // unblocks a writer stuck on the upstream
		werr := c.joinWriter(written)
		if mayRetry && req.Body == http.NoBody && relay.Expected(err) && relay.Expected(werr) {
			return false, true, nil
		}
		writeHTTPError(c.raw, http.StatusBadGateway, fmt.Sprintf("porthole: %s did not answer: %v", up.target, err), nil)
		return false, false, err
	}
	keep, err = c.writeResponse(req, resp)
	if err != nil {
		c.socks.remove(up.conn)
		_ = c.joinWriter(written) // the response error is the one to report
		return false, false, err
	}
	if werr := c.joinWriter(written); werr != nil {
		return false, false, werr
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return false, false, c.relayUpgraded(up)
	}
	return keep && !resp.Close, false, nil
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
// informational responses (100 Continue, 103 Early Hints) to the client.
func (c *clientConn) readFinalResponse(up *httpUpstream, req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(up.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if _, err := c.writeHead(resp, resp.Header); err != nil {
			return nil, err
		}
	}
}

// writeResponse streams resp to the client, re-framing the body for this
// hop, and flushing as bytes arrive (no holding a trickling response). It
// reports whether the client connection can carry another request.
func (c *clientConn) writeResponse(req *http.Request, resp *http.Response) (keep bool, err error) {
	defer resp.Body.Close()
	h := resp.Header
	upgrade := removeHopByHop(h) != "" && resp.StatusCode == http.StatusSwitchingProtocols
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || upgrade
	chunked := false
	keep = !upgrade
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
	if err := copyBody(bw, resp.Body, chunked); err != nil {
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
	if c.bw == nil {
		c.bw = bufio.NewWriterSize(c.raw, 4096)
	}
	bw := c.bw
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

// copyBody copies a response body, flushing after every read.
func copyBody(bw *bufio.Writer, body io.Reader, chunked bool) error {
	bp := relay.GetBuffer()
	defer relay.PutBuffer(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if chunked {
				if _, err := fmt.Fprintf(bw, "%x\r\n", n); err != nil {
					return err
				}
			}
			if _, err := bw.Write(buf[:n]); err != nil {
				return err
			}
			if chunked {
				if _, err := bw.WriteString("\r\n"); err != nil {
					return err
				}
			}
			if err := bw.Flush(); err != nil {
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

// relayUpgraded turns the connection into a raw relay after 101 Switching
// Protocols, first passing on what each side's reader already buffered.
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
