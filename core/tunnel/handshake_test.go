package tunnel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// exit is a real TLS server whose handler upgrades with an Acceptor and
// echoes one binary message; accepted and refused report what it did.
type exit struct {
	srv      *httptest.Server
	url      string
	accepted chan struct{}
	refused  chan error
}

func newExit(t *testing.T, token string) *exit {
	a, err := NewAcceptor(token)
	if err != nil {
		t.Fatal(err)
	}
	e := &exit{accepted: make(chan struct{}, 8), refused: make(chan error, 8)}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := a.Accept(w, r)
		if err != nil {
			e.refused <- err
			return
		}
		defer ws.Close()
		e.accepted <- struct{}{}
		kind, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		_ = ws.WriteMessage(kind, msg) // the client checks what arrives
	}))
	t.Cleanup(e.srv.Close)
	e.url = "wss" + strings.TrimPrefix(e.srv.URL, "https") + "/porthole"
	return e
}

func (e *exit) opts() DialOptions {
	return DialOptions{TLS: e.srv.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: 10 * time.Second}
}

func TestHandshakeAccepts(t *testing.T) {
	e := newExit(t, "s3cret")
	ws, err := Dial(context.Background(), e.url, "s3cret", e.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if ws.Subprotocol() != Version {
		t.Fatalf("subprotocol %q", ws.Subprotocol())
	}
	f := Frame{Type: TypePing, Time: 42}
	b, err := Append(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatal(err)
	}
	if err := ws.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, got, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Parse(got); err != nil || back.Time != 42 {
		t.Fatalf("echo: %+v %v", back, err)
	}
}

func TestHandshakeRefusesBadTokens(t *testing.T) {
	e := newExit(t, "s3cret")
	for _, token := range []string{"", "wrong", "s3cret-and-more", "S3CRET"} {
		_, err := Dial(context.Background(), e.url, token, e.opts())
		if !errors.Is(err, ErrAuthFailed) {
			t.Errorf("token %q: %v, want ErrAuthFailed", token, err)
		}
		if serr := <-e.refused; !errors.Is(serr, ErrAuthFailed) {
			t.Errorf("token %q: exit says %v", token, serr)
		}
	}
	select {
	case <-e.accepted:
		t.Fatal("a bad token was upgraded")
	default:
	}
}

func TestHandshakeRefusesOtherVersionsAndOrigins(t *testing.T) {
	e := newExit(t, "s3cret")
	d := websocket.Dialer{TLSClientConfig: e.opts().TLS, HandshakeTimeout: 10 * time.Second}
	auth := http.Header{"Authorization": {"Bearer s3cret"}}

	d.Subprotocols = []string{"porthole.v0"}
	_, resp, err := d.Dial(e.url, auth)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown version: %v %v, want 400", resp, err)
	}
	resp.Body.Close()
	if serr := <-e.refused; !errors.Is(serr, ErrVersion) {
		t.Errorf("exit says %v, want ErrVersion", serr)
	}

	d.Subprotocols = []string{Version}
	withOrigin := http.Header{"Authorization": {"Bearer s3cret"}, "Origin": {"https://evil.example"}}
	_, resp, err = d.Dial(e.url, withOrigin)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Origin: %v %v, want 403", resp, err)
	}
	resp.Body.Close()
	if serr := <-e.refused; !errors.Is(serr, ErrOrigin) {
		t.Errorf("exit says %v, want ErrOrigin", serr)
	}
	select {
	case <-e.accepted:
		t.Fatal("a refused upgrade went through")
	default:
	}
}

func TestNewAcceptorNeedsAToken(t *testing.T) {
	if _, err := NewAcceptor(""); err == nil {
		t.Fatal("an exit without a token must be refused")
	}
}
