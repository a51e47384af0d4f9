package outbound

import (
	"context"
	"errors"
	"net"
)

// ErrDenied is the reason of a dial refused by policy (the exit server's
// target rules, later a user rule).
var ErrDenied = errors.New("target not allowed")

// Failure is what kind of dial failure an error is, so the inbound side can
// answer in the client's protocol (HTTP 502/504, SOCKS reply codes).
type Failure uint8

const (
	FailOther       Failure = iota // anything else
	FailCanceled                   // the connection was aborted or the proxy stopped: nobody to answer
	FailTimeout                    // dial or DNS timed out
	FailRefused                    // the target answered with a reset
	FailUnreachable                // no route to the host or network
	FailNotFound                   // the name does not resolve
	FailDenied                     // refused by policy
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
	}
	return "dial failed"
}

// Classify tells what kind of failure a dial error is. It looks only at
// error identities and types, never at error text.
func Classify(err error) Failure {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return FailOther
	case errors.Is(err, ErrDenied):
		return FailDenied
	case errors.Is(err, context.Canceled):
		return FailCanceled
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
