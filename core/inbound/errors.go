package inbound

import "errors"

// Why a client connection ended without being proxied, or why a proxied one
// was ended by us. Recognise them with errors.Is.
var (
	ErrBadRequest         = errors.New("malformed request")
	ErrBadResponse        = errors.New("malformed response from the target")
	ErrHeaderTooLarge     = errors.New("request header too large")
	ErrAuthFailed         = errors.New("proxy authentication failed")
	ErrUnsupportedCommand = errors.New("unsupported SOCKS command")
	ErrTooManyConns       = errors.New("too many connections")
	ErrStopped            = errors.New("proxy stopped")
	ErrServerClosed       = errors.New("inbound server closed")
)
