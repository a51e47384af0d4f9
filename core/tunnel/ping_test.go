package tunnel

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// An on-demand PING measures a round trip and makes it RTT's; the
// keepalive (one interval of an hour here) plays no part.
func TestPingMeasures(t *testing.T) {
	client, _, _ := sessionPair(t, Config{PingInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		d, err := client.Ping(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d <= 0 {
			t.Fatalf("Ping = %v, want a positive round trip", d)
		}
		if rtt := client.RTT(); rtt <= 0 {
			t.Fatalf("RTT after Ping = %v", rtt)
		}
	}
}

// Callers from many goroutines at once share PINGs (a PING has no id but
// its time) and each gets a measure.
func TestPingConcurrent(t *testing.T) {
	client, exit, _ := sessionPair(t, Config{PingInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		s := client
		if i%2 == 1 {
			s = exit // either end may ping
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				d, err := s.Ping(ctx)
				if err == nil && d <= 0 {
					err = errors.New("non-positive round trip")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A caller that gives up leaves no PING behind that the next must wait for.
func TestPingCanceledThenAgain(t *testing.T) {
	client, _, _ := sessionPair(t, Config{PingInterval: time.Hour})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := client.Ping(gone); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping with a canceled context: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// A session that ends answers its waiters with why; a closed one refuses.
func TestPingSessionEnded(t *testing.T) {
	client, _, _ := sessionPair(t, Config{PingInterval: time.Hour})
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Ping(ctx); !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("Ping on a closed session: %v, want ErrTunnelLost", err)
	}
}

// The client pings its current session, and says so when it has none.
func TestClientPing(t *testing.T) {
	e := newTestExit(t, "tok", exitEcho)
	c := newTestClient(t, ClientConfig{URL: e.url(), Token: "tok", MinBackoff: 300 * time.Millisecond, MaxBackoff: 600 * time.Millisecond})
	waitStatus(t, c, 5*time.Second, "the first session", connectedWith(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d, err := c.Ping(ctx); err != nil || d <= 0 {
		t.Fatalf("Ping = %v, %v", d, err)
	}
	e.kill()
	waitStatus(t, c, 5*time.Second, "the loss", func(s Status) bool { return s.State != StateConnected })
	if _, err := c.Ping(ctx); !errors.Is(err, ErrNoSession) && !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("Ping without a session: %v, want ErrNoSession", err)
	}
}
