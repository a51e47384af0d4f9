package inbound

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"porthole/core/outbound"
)

// maxPageBody is how much of a request body to a local page we read before
// giving up on keeping the connection.
const maxPageBody = 64 << 10

// pacPath is where the proxy auto-config file is served.
const pacPath = "/proxy.pac"

// servePage answers requests addressed to the proxy itself (origin-form):
// a small status page at / and a PAC file at /proxy.pac.
func (c *clientConn) servePage(req *http.Request) (keep bool, err error) {
	// Nobody else will read this body, and a page has no registry record
	// whose idle timeout would end a stuck exchange: bound reading the
	// body and writing the answer in size and in time.
	deadline := time.Now().Add(c.s.cfg.HeaderTimeout)
	if err := c.raw.SetDeadline(deadline); err != nil {
		return false, err
	}
	n, err := io.Copy(io.Discard, io.LimitReader(req.Body, maxPageBody+1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return false, c.httpError(http.StatusRequestTimeout, "porthole: timed out reading the request body", nil,
			fmt.Errorf("%w: body to %s not complete in %v", ErrBadRequest, req.URL.Path, c.s.cfg.HeaderTimeout))
	case err != nil:
		return false, err
	case n > maxPageBody:
		return false, c.httpError(http.StatusRequestEntityTooLarge, "porthole: request body too large for a proxy page", nil,
			fmt.Errorf("%w: body to %s over %d bytes", ErrBadRequest, req.URL.Path, maxPageBody))
	}
	keep = !req.Close && req.ProtoAtLeast(1, 1)
	code, ctype, body := http.StatusOK, "text/html; charset=utf-8", ""
	switch req.URL.Path {
	case "/":
		body = c.statusPage()
	case pacPath:
		ctype = "application/x-ns-proxy-autoconfig"
		body = c.s.cfg.Router.PAC(proxyHost(req, c))
	default:
		code, ctype, body = http.StatusNotFound, "text/plain; charset=utf-8", "porthole: no such page; this is a proxy, try / or /proxy.pac\n"
	}
	h := http.Header{
		"Content-Type":   {ctype},
		"Content-Length": {strconv.Itoa(len(body))},
		"Cache-Control":  {"no-store"},
	}
	if !keep {
		h.Set("Connection", "close")
	}
	bw, err := c.writeHead(&http.Response{StatusCode: code}, h)
	if err != nil {
		return false, err
	}
	if req.Method != http.MethodHead {
		if _, err := bw.WriteString(body); err != nil {
			return false, err
		}
	}
	if err := bw.Flush(); err != nil {
		return false, err
	}
	return keep, c.raw.SetWriteDeadline(time.Time{})
}

// proxyHost is the address clients reach us at: the Host they used if it
// is a well-formed host:port (it goes into a script), else our local address.
func proxyHost(req *http.Request, c *clientConn) string {
	if _, _, err := outbound.SplitTarget(req.Host); err == nil {
		return req.Host
	}
	return c.raw.LocalAddr().String()
}

func (c *clientConn) statusPage() string {
	t := c.s.cfg.Registry.Totals()
	extra := ""
	if c.s.cfg.Status != nil {
		extra = "<p>" + html.EscapeString(c.s.cfg.Status()) + "</p>\n"
	}
	return fmt.Sprintf(`<!doctype html>
<html><head><meta charset="utf-8"><title>Porthole</title></head>
<body style="font-family: sans-serif">
<h1>Porthole is running</h1>
<p>Mode: %s &middot; %d active connections &middot; %d since start &middot; &uarr; %d bytes &darr; %d bytes</p>
%s<p>Point a browser or a terminal at this address as an HTTP or SOCKS5 proxy, or use the <a href="/proxy.pac">PAC file</a>.</p>
</body></html>
`, html.EscapeString(string(c.s.cfg.Router.Mode())), t.Active, t.Opened, t.Up, t.Down, extra)
}
