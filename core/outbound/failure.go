package outbound

import (
	"context"
	"errors"
	"net"

	"porthole/core/tunnel"
)

// Failure is what kind of dial failure an error is, so the inbound side can
// answer in the client's protocol (HTTP 502/504, SOCKS reply codes).
type Failure uint8

const (
	FailOther        Failure = iota // anything else
	FailCanceled                    // the connection was aborted or the proxy stopped: nobody to answer
	FailTimeout                     // dial or DNS timed out
	FailRefused                     // the target answered with a reset
	FailUnreachable                 // no route to the host or network
	FailNotFound                    // the name does not resolve
	FailDenied                      // refused by policy
	FailTunnelDown                  // no session to the exit came up in time; no exit usable
	FailUpstreamAuth                // an upstream proxy refused our credentials
)

func (f Failure) String() string {
	switch f {
	case FailCanceled:
		return "canceled"
	case FailTimeout:
		return "timeout"
	case FailRefused:
		return "connection refused"
	case FailUnreachable:
		return "unreachable"
	case FailNotFound:
		return "host not found"
	case FailDenied:
		return "not allowed"
	case FailTunnelDown:
		return "tunnel to the exit is down"
	case FailUpstreamAuth:
		return "upstream proxy refused the credentials"
	}
	return "dial failed"
}

// Classify tells what kind of failure a dial error is. It looks only at
// error identities and types, never at error text.
func Classify(err error) Failure {
	var dnsErr *net.DNSError
	var openErr *tunnel.OpenError
	var httpErr *UpstreamHTTPError
	var socksErr *SOCKS5ReplyError
	switch {
	case err == nil:
		return FailOther
	case errors.Is(err, ErrUpstreamAuth):
		return FailUpstreamAuth
	case errors.Is(err, ErrExitDown):
		// Before the cause: the exit's refused connection is not the
		// target's.
		return FailTunnelDown
	case errors.As(err, &httpErr):
		return httpFailure(httpErr.StatusCode)
	case errors.As(err, &socksErr):
		return socks5Failure(socksErr.Code)
	case errors.Is(err, ErrDenied), errors.Is(err, ErrRejected):
		return FailDenied
	case errors.Is(err, context.Canceled), errors.Is(err, ErrTunnelStopped), errors.Is(err, tunnel.ErrClientClosed):
		return FailCanceled
	case errors.Is(err, tunnel.ErrNoSession):
		return FailTunnelDown
	case errors.As(err, &openErr):
		return openFailure(openErr.Code)
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return FailTimeout
		}
		return FailNotFound
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return FailTimeout
	case isRefused(err):
		return FailRefused
	case isUnreachable(err):
		return FailUnreachable
	}
	return FailOther
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// openFailure is the kind of failure an exit's OPEN_FAIL code stands for
// (PROTOCOL.md §2); unknown codes count as other.
func openFailure(c tunnel.Code) Failure {
	switch c {
	case tunnel.CodeTimeout:
		return FailTimeout
	case tunnel.CodeRefused:
		return FailRefused
	case tunnel.CodeUnreachable:
		return FailUnreachable
	case tunnel.CodeNotFound:
		return FailNotFound
	case tunnel.CodeDenied:
		return FailDenied
	}
	return FailOther
}

// httpFailure is the kind of failure an upstream proxy's refusal of a
// CONNECT stands for.
func httpFailure(status int) Failure {
	switch status {
	case 504:
		return FailTimeout
	case 403:
		return FailDenied
	}
	return FailOther
}
