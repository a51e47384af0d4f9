package origin

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"porthole/internal/chantest"
)

// A handler serves each connection; Close ends a handler blocked on its
// connection, refuses new ones, and can be called again.
func TestServerServesAndCloses(t *testing.T) {
	s := New()
	defer s.Close()
	accepted := make(chan string, 2)
	s.Accepted = func(c net.Conn) { accepted <- c.RemoteAddr().String() }
	blocked := make(chan struct{})
	ln, err := s.Listen("tcp", func(c *net.TCPConn) {
		if _, err := io.Copy(c, c); err != nil {
			return
		}
		_ = c.CloseWrite()
	})
	if err != nil {
		t.Fatal(err)
	}
	hang, err := s.Listen("tcp4", func(c *net.TCPConn) {
		close(blocked)
		_, _ = io.Copy(io.Discard, c) // until Close closes c
	})
	if err != nil {
		t.Fatal(err)
	}

	c := checkEcho(t, ln.Addr().String())

	h, err := net.Dial("tcp", hang.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	chantest.Within(t, 10*time.Second, "the handler's run", blocked)
	for _, c := range []net.Conn{c, h} {
		if got := <-accepted; got != c.LocalAddr().String() {
			t.Errorf("Accepted saw %s, want %s (in accept order)", got, c.LocalAddr())
		}
	}
	if err := s.Close(); err != nil { // returns only once the blocked handler has
		t.Errorf("Close: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done is not closed after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("a closed Server still accepts")
	}
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(other, func(*net.TCPConn) {}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after Close: %v, want net.ErrClosed", err)
	}
}

func TestLoopbackAddr(t *testing.T) {
	for network, want := range map[string]string{"tcp": "127.0.0.1:0", "tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"} {
		if got := LoopbackAddr(network); got != want {
			t.Errorf("LoopbackAddr(%q) = %q, want %q", network, got, want)
		}
	}
}

func TestSum(t *testing.T) {
	body := bytes.Repeat([]byte("porthole"), 1000)
	rec := httptest.NewRecorder()
	Sum(rec, httptest.NewRequest(http.MethodPost, "/sum", bytes.NewReader(body)))
	if want := fmt.Sprintf("%x %d", sha256.Sum256(body), len(body)); rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("Sum: %d %q, want 200 %q", rec.Code, rec.Body, want)
	}
	rec = httptest.NewRecorder()
	Sum(rec, httptest.NewRequest(http.MethodPost, "/sum", io.MultiReader(strings.NewReader("x"), failing{})))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("Sum of a failing body: %d, want 400", rec.Code)
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("broken body") }

// Echo sends back what a client sends and closes after its input ends.
func TestEcho(t *testing.T) { checkEcho(t, Echo(t)) }

// checkEcho sends "ping" to the echo server at addr, half-closes, and
// fails the test unless exactly "ping" comes back before EOF. It returns
// the connection, closed when the test ends.
func checkEcho(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(c); err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q, %v; want ping", got, err)
	}
	return c
}
