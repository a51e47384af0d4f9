package outbound

import (
	"sync"
	"time"
)

// A CONNECT or SOCKS client is answered only once its target is connected,
// so that a refusal reaches it in its own protocol (502, a SOCKS reply
// code). Through a tunnel that costs a round trip to the exit before the
// client may send its first byte. For a target the exit opened a moment
// ago the answer is all but certain, and waiting for it buys nothing: a
// browser opens its next connection to the same host within seconds. So
// an exit remembers which targets it opened (the way TCP Fast Open keeps
// a server's cookie), and a dial to one of those returns before the exit
// answers; the client's first bytes travel right behind the OPEN. If the
// exit refuses after all, the client's connection is reset and the target
// forgotten, so the next client gets the refusal in its own protocol.
const (
	// provenFor is how long an exit's OPEN_OK for a target vouches for
	// the next connection to it; each OPEN_OK renews it.
	provenFor = 5 * time.Minute
	// provenMax bounds the targets an exit remembers.
	provenMax = 4096
)

// proven is the targets an exit opened within provenFor, with the time of
// the last OPEN_OK of each.
//
// Concurrency: safe from any goroutine; mu is a leaf lock.
type proven struct {
	mu sync.Mutex
	at map[string]time.Time
}

// has says whether target was opened within provenFor of now.
func (p *proven) has(target string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.at[target]
	return ok && now.Sub(at) < provenFor
}

// add records an OPEN_OK for target at now. When the set is full, the
// expired entries go, and if none had expired, all of them: each target
// then waits for its exit once more, which is what a target not seen
// before does anyway.
func (p *proven) add(target string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.at = make(map[string]time.Time)
	}
	if _, ok := p.at[target]; !ok && len(p.at) >= provenMax {
		for k, at := range p.at {
			if now.Sub(at) >= provenFor {
				delete(p.at, k)
			}
		}
		if len(p.at) >= provenMax {
			clear(p.at)
		}
	}
	p.at[target] = now
}

// forget drops target: the exit refused it.
func (p *proven) forget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.at, target)
}

// reset forgets every target (the tunnel stopped).
func (p *proven) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at = nil
}
