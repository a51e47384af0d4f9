package relay_test

import (
	"net"
	"sync"
	"testing"

	"porthole/core/relay"
)

// Parked relays ended every way at once, while new ones start: half are
// aborted by closing both of their sockets (as inbound's abort does), half
// end because their peers close; each round's new relays park while the
// last round's end, so the shared epoll set is torn down and made anew
// under load. Every relay returns, nothing stays parked, and (TestMain's
// goleak) no watcher or side goroutine is left.
func TestRelayParkedEndedEveryWayUnderChurn(t *testing.T) {
	defer relay.SetParkAfter(0)()
	const rounds, perRound = 3, 200
	type run struct {
		client, cRelay, tRelay, target *net.TCPConn
		done                           chan error
	}
	start := func() []run {
		runs := make([]run, perRound)
		for i := range runs {
			r := &runs[i]
			r.client, r.cRelay = tcpPair(t)
			r.tRelay, r.target = tcpPair(t)
			r.done = make(chan error, 1)
			go func() { r.done <- relay.Relay(r.cRelay, r.tRelay, &counter{}) }()
		}
		return runs
	}
	var prev []run
	for range rounds {
		cur := start() // parks while prev ends
		var wg sync.WaitGroup
		for i, r := range prev {
			wg.Go(func() {
				if i%2 == 0 { // aborted from our side
					_ = r.cRelay.Close()
					_ = r.tRelay.Close()
				} else { // its peers go away
					_ = r.client.Close()
					_ = r.target.Close()
				}
			})
		}
		wg.Wait()
		for _, r := range prev {
			waitDone(t, r.done)
		}
		prev = cur
	}
	for _, r := range prev {
		_ = r.client.Close()
		_ = r.target.Close()
	}
	for _, r := range prev {
		waitDone(t, r.done)
	}
	waitParked(t, 0)
}

// A server's Hold keeps the shared epoll set across relays that come one
// at a time; releasing it (twice: idempotent) after they ended leaves no
// watcher (TestMain's goleak).
func TestRelayHoldAcrossSequentialRelays(t *testing.T) {
	defer relay.SetParkAfter(0)()
	release := relay.Hold()
	for range 3 {
		client, target, _, done := setup(t)
		waitParked(t, 1)
		_ = client.Close()
		_ = target.Close()
		waitDone(t, done)
		waitParked(t, 0)
	}
	release()
	release()
}
