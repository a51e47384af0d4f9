package exittest

import (
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/core/exit"
	"porthole/core/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A tunnel client with the token connects to the served exit.
func TestServe(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	addr := Serve(t, exit.Config{Token: "s3cret", Logger: quiet})
	c, err := tunnel.NewClient(tunnel.ClientConfig{URL: "ws://" + addr + "/porthole", Token: "s3cret", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	deadline := time.After(20 * time.Second)
	for range 1000 {
		if c.Status().State == tunnel.StateConnected {
			return
		}
		select {
		case <-c.Changed():
		case <-deadline:
			t.Fatalf("not connected within 20 s: %v", c.Status())
		}
	}
	t.Fatalf("not connected after 1000 changes: %v", c.Status())
}
