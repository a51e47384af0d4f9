package e2e

// The origin server behind the proxy: one loopback listener per behaviour
// (echo, send and close, reset, hang, close together with the client).

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"porthole/internal/origin"
)

type lcOrigin struct {
	echo  string // copies back what it reads until EOF, then closes
	send  string // reads a 4-byte big-endian n, sends n pattern bytes, closes
	reset string // reads a 4-byte n, reads n more bytes, then resets (linger 0)
	hang  string // reads and discards, never writes
	meet  string // reads an 8-byte token, answers one byte, then closes when the test says

	srv  *origin.Server
	done <-chan struct{} // closed when the origin closes

	mu       sync.Mutex
	meetings map[uint64]*lcMeeting
}

// lcMeeting lets a client and the origin close their ends at the same time.
type lcMeeting struct {
	now chan struct{} // closed by the client: both ends close
	rst bool          // the origin resets instead of closing
}

func newOrigin(t *testing.T) *lcOrigin {
	t.Helper()
	srv := origin.New()
	o := &lcOrigin{srv: srv, done: srv.Done(), meetings: make(map[uint64]*lcMeeting)}
	t.Cleanup(o.close)
	for _, s := range []struct {
		addr *string
		h    func(*net.TCPConn)
	}{
		{&o.echo, o.serveEcho},
		{&o.send, o.serveSend},
		{&o.reset, o.serveReset},
		{&o.hang, o.serveHang},
		{&o.meet, o.serveMeet},
	} {
		ln, err := srv.Listen("tcp", s.h)
		if err != nil {
			t.Fatalf("origin listen: %v", err)
		}
		*s.addr = ln.Addr().String()
	}
	return o
}

// close stops the listeners, closes every origin connection and waits for
// the origin's goroutines. Idempotent.
func (o *lcOrigin) close() { _ = o.srv.Close() } // a listener closed twice says nothing about the engine

func (o *lcOrigin) serveEcho(c *net.TCPConn) {
	buf := make([]byte, 32<<10)
	// Plain reader and writer: no splice of a socket onto itself.
	_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
}

func (o *lcOrigin) serveSend(c *net.TCPConn) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	_, _ = writePattern(c, 0, int64(binary.BigEndian.Uint32(hdr[:])))
}

func (o *lcOrigin) serveReset(c *net.TCPConn) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:]))); err != nil {
		return
	}
	_ = c.SetLinger(0) // the deferred Close sends a reset
}

func (o *lcOrigin) serveHang(c *net.TCPConn) {
	_, _ = io.Copy(io.Discard, c)
}

func (o *lcOrigin) serveMeet(c *net.TCPConn) {
	var tok [8]byte
	if _, err := io.ReadFull(c, tok[:]); err != nil {
		return
	}
	o.mu.Lock()
	m := o.meetings[binary.BigEndian.Uint64(tok[:])]
	o.mu.Unlock()
	if m == nil {
		return
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return
	}
	select {
	case <-m.now:
	case <-o.done:
	}
	if m.rst {
		_ = c.SetLinger(0)
	}
}

func (o *lcOrigin) addMeeting(tok uint64, m *lcMeeting) {
	o.mu.Lock()
	o.meetings[tok] = m
	o.mu.Unlock()
}

func (o *lcOrigin) removeMeeting(tok uint64) {
	o.mu.Lock()
	delete(o.meetings, tok)
	o.mu.Unlock()
}
