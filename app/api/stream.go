package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// writeWait bounds each write of a stream: a client that stops reading
// is let go rather than waited for.
const writeWait = 10 * time.Second

var newline = []byte{'\n'}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 16 << 10,
	// Dashboards are pages on other origins; the secret guards the API.
	CheckOrigin: func(*http.Request) bool { return true },
}

// sender sends one value of a stream as one WebSocket text message or one
// line of newline-delimited JSON. A rawJSON is sent as it is.
type sender func(v any) error

// rawJSON is JSON already encoded.
type rawJSON []byte

// encode is v's JSON.
func encode(v any) ([]byte, error) {
	if b, ok := v.(rawJSON); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// stream serves one stream as mihomo does: a WebSocket when the request
// asks to upgrade, else newline-delimited JSON over a streaming HTTP
// answer. run sends until it returns; its ctx ends when the client goes
// away or the server closes. stream returns when run has and the
// connection is let go.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, send sender) error) {
	if !websocket.IsWebSocketUpgrade(r) {
		s.streamHTTP(w, r, run)
		return
	}
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The reader notices the client's close (and answers pings); what a
	// client sends is not read otherwise.
	c.SetReadLimit(4 << 10)
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer cancel()
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}()
	send := func(v any) error {
		b, err := encode(v)
		if err != nil {
			return err
		}
		if err := c.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
			return err
		}
		return c.WriteMessage(websocket.TextMessage, b)
	}
	err = run(ctx, send)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err != nil && !errors.Is(err, context.Canceled) {
		msg = websocket.FormatCloseMessage(websocket.CloseTryAgainLater, err.Error())
	}
	// Best effort: the client may be gone already.
	_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = c.Close() // ends the reader's NextReader
	<-read
}

func (s *Server) streamHTTP(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, send sender) error) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	send := func(v any) error {
		b, err := encode(v)
		if err != nil {
			return err
		}
		if err := rc.SetWriteDeadline(time.Now().Add(writeWait)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if _, err := w.Write(newline); err != nil {
			return err
		}
		return rc.Flush()
	}
	_ = run(r.Context(), send) // the answer has started: nothing more to say
}

// ticking sends next() at once and then every interval until ctx ends or
// a send fails.
func ticking(ctx context.Context, send sender, interval time.Duration, next func() any) error {
	if err := send(next()); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := send(next()); err != nil {
				return err
			}
		}
	}
}
