package inbound

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"porthole/core/outbound"
	"porthole/core/registry"
)

// serveHTTP reads requests until the connection ends: CONNECT becomes a raw
// relay, absolute-URI requests are forwarded (keep-alive, a new target per
// request allowed), origin-form requests get the proxy's own pages.
func (c *clientConn) serveHTTP() error {
	for first := true; ; first = false {
		if !first {
			// Keep-alive: wait for the next request's first byte, then give
			// it the header timeout.
			if err := c.raw.SetReadDeadline(time.Now().Add(c.s.cfg.KeepAliveIdle)); err != nil {
				return err
			}
			c.limiter.limit(c.s.cfg.MaxHeaderBytes)
			if _, err := c.br.Peek(1); err != nil {
				return errKeepAliveEnd(err)
			}
			if err := c.raw.SetReadDeadline(time.Now().Add(c.s.cfg.HeaderTimeout)); err != nil {
				return err
			}
		}
		req, err := http.ReadRequest(c.br)
		if err != nil {
			return c.badRequest(err)
		}
		c.limiter.lift()
		if err := c.raw.SetReadDeadline(time.Time{}); err != nil {
			return err
		}
		if c.rejected {
			return c.httpError(http.StatusServiceUnavailable, "porthole: too many connections; try again later", nil, ErrTooManyConns)
		}
		// Browsers fetch the PAC file directly, without proxy credentials.
		isPAC := !req.URL.IsAbs() && req.Method != http.MethodConnect && req.URL.Path == pacPath
		if c.s.cfg.Auth != nil && !isPAC && !c.s.cfg.Auth.checkProxyAuthorization(req.Header.Get("Proxy-Authorization")) {
			return c.proxyAuthRequired(req)
		}
		var keep bool
		switch {
		case req.Method == http.MethodConnect:
			return c.serveConnect(req)
		case req.URL.IsAbs():
			keep, err = c.forward(req)
		default:
			keep, err = c.servePage(req)
		}
		if err != nil || !keep {
			return err
		}
	}
}

// errKeepAliveEnd turns the usual endings of an idle keep-alive connection
// (the client closed it, or never sent another request) into nil.
func errKeepAliveEnd(err error) error {
	var ne net.Error
	if errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	return err
}

// badRequest answers a request that could not be read, in HTTP when there
// is still someone to answer.
func (c *clientConn) badRequest(err error) error {
	var ne net.Error
	if errors.As(c.limiter.err, &ne) && ne.Timeout() {
		// A request cut off mid-line by the deadline: bufio hands the
		// partial line to the parser as if complete, which then calls it
		// malformed. The timeout is the real story.
		err = c.limiter.err
	}
	switch {
	case errors.Is(err, ErrHeaderTooLarge):
		return c.httpError(http.StatusRequestHeaderFieldsTooLarge, "porthole: request header too large", nil, err)
	case errors.As(err, &ne) && ne.Timeout():
		return c.httpError(http.StatusRequestTimeout, "porthole: timed out reading the request header", nil,
			fmt.Errorf("%w: header not complete in %v", ErrBadRequest, c.s.cfg.HeaderTimeout))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return err // the client left; nobody to answer
	}
	return c.httpError(http.StatusBadRequest, "porthole: malformed HTTP request", nil, fmt.Errorf("%w: %w", ErrBadRequest, err))
}

// httpError answers with a one-line plain-text error, ends the connection
// gracefully (see lingerClose) and returns err for the caller to log once.
// An unread request body is never drained: the client may be sending forever.
func (c *clientConn) httpError(code int, msg string, extra http.Header, err error) error {
	// A client that reads nothing must not hold the handler: the write is
	// bounded too (the connection ends right after).
	if werr := c.raw.SetWriteDeadline(time.Now().Add(c.s.cfg.HeaderTimeout)); werr != nil {
		return err
	}
	writeHTTPError(c.raw, code, msg, extra)
	c.lingerClose()
	return err
}

// Lingering close bounds: how long and how much to read and discard after
// an error response before closing.
const (
	maxLinger      = 2 * time.Second
	maxLingerBytes = 256 << 10
)

// lingerClose ends a connection whose request may still be arriving (an
// unread body, a pipelined request): it half-closes our side so the
// response is delivered, then discards what the client still sends for a
// bounded time and amount, so that closing with unread bytes does not reset
// the connection under the response before the client has read it.
func (c *clientConn) lingerClose() {
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return // the client is gone: nothing to protect
		}
	}
	if err := c.raw.SetReadDeadline(time.Now().Add(min(c.s.cfg.HeaderTimeout, maxLinger))); err != nil {
		return
	}
	// Whatever this returns (EOF, deadline, reset), the connection is
	// closed next; the bytes are of no use.
	_, _ = io.CopyN(io.Discard, c.raw, maxLingerBytes)
}

// writeHTTPError writes a small error response with Connection: close. The
// write may fail if the client left; there is nothing left to do then.
func writeHTTPError(w io.Writer, code int, msg string, extra http.Header) {
	msg = strings.ReplaceAll(msg, "\n", " ") + "\n"
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	fmt.Fprintf(&b, "Content-Length: %d\r\n", len(msg))
	b.WriteString("Connection: close\r\n")
	for k, vs := range extra {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	b.WriteString(msg)
	_, _ = io.WriteString(w, b.String())
}

func (c *clientConn) proxyAuthRequired(req *http.Request) error {
	return c.httpError(http.StatusProxyAuthRequired, "porthole: proxy authentication required",
		http.Header{"Proxy-Authenticate": {`Basic realm="Porthole"`}},
		fmt.Errorf("http: %s %s: %w", req.Method, req.Host, ErrAuthFailed))
}

// dialFailureStatus answers a failed dial: 504 for a timeout, 403 for a target
// that policy refuses, 502 for the rest, with the reason on one line.
func dialFailureStatus(err error) int {
	switch outbound.Classify(err) {
	case outbound.FailTimeout:
		return http.StatusGatewayTimeout
	case outbound.FailDenied:
		return http.StatusForbidden
	}
	return http.StatusBadGateway
}

func dialFailureMessage(target string, err error) string {
	return fmt.Sprintf("porthole: cannot connect to %s: %s (%v)", target, outbound.Classify(err), err)
}

func (c *clientConn) serveConnect(req *http.Request) error {
	// RFC 9110: CONNECT has authority-form: host:port, nothing else.
	target := req.RequestURI
	host, _, err := outbound.SplitTarget(target)
	if err != nil {
		return c.httpError(http.StatusBadRequest, "porthole: "+err.Error(), nil, fmt.Errorf("connect: %w: %w", ErrBadRequest, err))
	}
	if c.up != nil {
		// The connection forwarded plain requests before: that upstream is
		// done, and the tunnel is a connection of its own.
		c.closeUpstream(c.up.upstream, nil)
		c.up = nil
	}
	u, err := c.dial(c.nextID(), registry.ProtoConnect, target, host)
	if err != nil {
		_ = c.httpError(dialFailureStatus(err), dialFailureMessage(target, err), nil, nil) // dial logged it
		return nil
	}
	if _, err := io.WriteString(c.raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		c.closeUpstream(u, err)
		return nil
	}
	c.relayAfterSetup(u)
	return nil
}
