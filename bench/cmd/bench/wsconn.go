package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn adapts a gorilla WebSocket to net.Conn, so that the reference
// multiplexers (yamux, smux), which want a byte stream, can run over
// WebSocket as Porthole's tunnel does. Each Write goes out as one binary
// message; Read returns the payloads of the incoming messages back to
// back, as one byte stream.
//
// Deadlines are passed to the TCP connection underneath. Gorilla's read
// and write errors are permanent, so a deadline that expires leaves the
// connection broken; the multiplexers never set one, they keep their own
// timers. Close sends a close frame (best effort) and closes the
// connection; later calls return the first result.
type wsConn struct {
	ws *websocket.Conn

	rmu  sync.Mutex // one reader at a time: r is the message being read
	r    io.Reader
	rerr error // the first read error, returned from then on (gorilla panics on repeated reads of a failed connection)

	wmu sync.Mutex // gorilla allows one writer at a time

	closeOnce sync.Once
	closeErr  error
}

// errTextMessage is a text message on a connection that carries bytes.
var errTextMessage = errors.New("wsconn: text message on a binary stream")

// wsBufferSize is the read and write buffer of both ends. Gorilla's
// default (4 KiB) would make a client cut every Write into 4 KiB frames
// with a syscall each, which would measure gorilla's default rather than
// the multiplexers.
const wsBufferSize = 64 << 10

func newWSConn(ws *websocket.Conn) *wsConn { return &wsConn{ws: ws} }

func (c *wsConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return 0, c.rerr
	}
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.rerr = wsReadErr(err)
				return 0, c.rerr
			}
			if typ != websocket.BinaryMessage {
				c.rerr = errTextMessage
				return 0, c.rerr
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r, err = nil, nil // the message ended; the stream goes on
		}
		if err != nil {
			c.rerr = wsReadErr(err)
			return n, c.rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// wsReadErr turns the peer's normal close into io.EOF, the end of a byte
// stream.
func wsReadErr(err error) error {
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
		return io.EOF
	}
	return err
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// closeGrace bounds the close frame's write.
const closeGrace = time.Second

func (c *wsConn) Close() error {
	c.closeOnce.Do(func() {
		// WriteControl may run beside a Write; a peer that is gone makes it
		// fail, which does not matter: the connection is closed anyway.
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeGrace))
		c.closeErr = c.ws.Close()
	})
	return c.closeErr
}

func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.ws.SetWriteDeadline(t))
}

func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
