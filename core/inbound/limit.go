package inbound

import (
	"io"
	"math"
)

// headerLimiter sits between the client socket and its bufio.Reader and caps
// the bytes read while a request header is being parsed; it is lifted while
// bytes flow (a body, a relay).
type headerLimiter struct {
	r    io.Reader
	left int64
	err  error // the last read error: a timeout that bufio hid behind a partial line
}

func (l *headerLimiter) limit(n int) { l.left = int64(n) }
func (l *headerLimiter) lift()       { l.left = math.MaxInt64 }

func (l *headerLimiter) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, ErrHeaderTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}
